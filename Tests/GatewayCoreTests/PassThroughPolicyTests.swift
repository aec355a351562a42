import Foundation
import GatewayAccess
import GatewayCore
import Testing

@Suite("Pass-through: paths, route policy, secret members")
struct PassThroughPolicyTests {
    static func path(_ raw: String, _ query: String? = nil) throws -> PassThroughPath {
        try PassThroughPath(rawPath: Substring(raw), rawQuery: query.map { Substring($0) })
    }

    static func refused(_ raw: String, _ query: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try path(raw, query)
            Issue.record("\(raw)?\(query ?? "") was accepted", sourceLocation: sourceLocation)
        } catch let error as GatewayError {
            #expect(error.code == .passThroughInvalidPath, sourceLocation: sourceLocation)
            #expect(error.status == 400, sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("traversal, encoded slashes and dots, absolute URLs, empty segments and injected queries are refused with 400")
    func hostilePaths() {
        for raw in [
            "/../v8/Jobs", "/Jobs/..", "/Jobs/./x", "/Jobs/%2e%2e", "/Jobs%2F..%2Ftoken", "/Jobs%3Fx=1", "//evil.example/x", "/https:/x",
            "/Jobs//x", "", "/", "Jobs", "/Jobs#frag", "/Jobs/ä", "/Jobs/a b", "/Jobs\\..\\token", "/" + String(repeating: "a/", count: 40) + "a",
            "/" + String(repeating: "a", count: 1100),
        ] {
            Self.refused(raw)
        }
        Self.refused("/Jobs", "limit=1&%00=x")
        Self.refused("/Jobs", "na%26me=x")
        Self.refused("/Jobs", "x=%0d%0aHost:%20evil")
        Self.refused("/Jobs", "x=%zz")
        Self.refused("/Jobs", String(repeating: "a=1&", count: 40))
    }

    @Test("a plain path and query pass, the query decoded and re-encoded canonically")
    func plainPaths() throws {
        let checked = try Self.path("/Organizations/0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01/Users", "limit=10&offset=0&filter=%5B%7B%22a%22%3A1%7D%5D&$select=name")
        #expect(checked.segments == ["Organizations", "0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01", "Users"])
        #expect(checked.query.map(\.name) == ["limit", "offset", "filter", "$select"])
        #expect(checked.query[2].value == #"[{"a":1}]"#)
        // A value that held `&`, `=` or `#` decoded stays one value: re-encoded, it cannot add a parameter upstream.
        let sneaky = try Self.path("/Jobs", "q=a%26limit%3D9999%23x")
        #expect(sneaky.query.count == 1)
        #expect(sneaky.canonical == "/Jobs?q=a%26limit%3D9999%23x")
    }

    @Test("patterns: * stays within a segment, a trailing * takes the rest")
    func globs() throws {
        func matches(_ pattern: String, _ raw: String) throws -> Bool {
            try PassThroughRoute(form: .upstream, applies: .any, pattern: pattern, roles: ["PortalAdministrator"], ttl: .seconds(1)).matches(Self.path(raw))
        }
        #expect(try matches("/organizations/companies*", "/organizations/companies"))
        #expect(try matches("/organizations/companies*", "/organizations/companies/0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01/sites"))
        #expect(try !matches("/organizations/companies*", "/organizations/compan"))
        #expect(try !matches("/organizations/companies*", "/organizations"))
        #expect(try matches("/Organizations/*/Users*", "/Organizations/abc/Users"))
        #expect(try matches("/Organizations/*/Users*", "/Organizations/abc/Users/def"))
        #expect(try !matches("/Organizations/*/Users*", "/Organizations/abc/x/Users"))
        #expect(try !matches("/Organizations/*/Users*", "/Organizations/abc/Groups"))
        #expect(try matches("/License", "/License"))
        #expect(try !matches("/License", "/Licenses"))
        #expect(try !matches("/License", "/License/x"))
    }

    @Test("deny by default: the first matching route decides, by form, upstream or product, and method")
    func policy() throws {
        let policy = PassThroughPolicy(routes: [
            PassThroughRoute(form: .upstream, applies: .upstream("vspc-main"), pattern: "/alarms/active*", roles: ["PortalOperator"], ttl: .seconds(5))
        ] + PassThroughPolicy.defaultRoutes)
        let alarms = try Self.path("/alarms/active")
        #expect(policy.route(form: .upstream, upstream: "vspc-main", product: .vspc, method: "GET", path: alarms)?.roles == ["PortalOperator"])
        #expect(policy.route(form: .upstream, upstream: "vspc-other", product: .vspc, method: "GET", path: alarms)?.roles == Set(Role.tenantReaders))
        #expect(policy.route(form: .upstream, upstream: "vspc-main", product: .vspc, method: "POST", path: alarms) == nil)
        #expect(policy.route(form: .tenant, upstream: "vspc-main", product: .vspc, method: "GET", path: alarms) == nil)
        #expect(policy.route(form: .upstream, upstream: "vspc-main", product: .vspc, method: "GET", path: try Self.path("/users")) == nil)
        #expect(policy.route(form: .tenant, upstream: "vb365-eu", product: .vb365, method: "GET", path: try Self.path("/Jobs"))?.origin == .organizationRead)
        #expect(policy.route(form: .tenant, upstream: "vb365-eu", product: .vb365, method: "GET", path: try Self.path("/Organizations/x/Users"))
            != nil)
        #expect(policy.route(form: .tenant, upstream: "vb365-eu", product: .vb365, method: "GET", path: try Self.path("/Organization")) == nil)
        #expect(policy.route(form: .tenant, upstream: "vb365-eu", product: .vb365, method: "GET", path: try Self.path("/Token")) == nil)
        // The shipped table reads only: no route of it allows another method.
        #expect(PassThroughPolicy.defaultRoutes.allSatisfy { $0.methods == ["GET"] })
    }

    @Test("secret members go at any depth, whatever their case; the rest stays, keys sorted")
    func redaction() throws {
        let body = #"""
            {"data":[{"instanceUid":"a","name":"n","hashedPassword":"h","credentials":{"userName":"u","password":"p"},
            "nested":{"deeper":[{"ClientSecret":"s","keep":1,"adminPassword":"x","accessKey":"k","privateKey":"-----BEGIN","secretKey":"z"}]},
            "repository":{"encryptionPassword":"e","sizeBytes":10.5,"isOk":true,"none":null,"apiKey":"ak"}}],
            "meta":{"pagingInfo":{"total":1,"count":1,"offset":0}},"token":"t","mine":"drop me"}
            """#
        let clean = try #require(SecretMembers.redacted(Array(body.utf8), extra: ["mine"]))
        let text = String(decoding: clean, as: UTF8.self)
        for secret in ["hashedPassword", "credentials", "\"password\"", "ClientSecret", "adminPassword", "accessKey", "privateKey", "secretKey",
            "encryptionPassword", "apiKey", "\"token\"", "mine", "BEGIN", "drop me"]
        {
            #expect(!text.contains(secret), "\(secret) in \(text)")
        }
        let back = try #require(try JSONSerialization.jsonObject(with: Data(clean)) as? [String: Any])
        let tenant = try #require((back["data"] as? [[String: Any]])?.first)
        #expect(tenant["name"] as? String == "n")
        #expect(((tenant["nested"] as? [String: Any])?["deeper"] as? [[String: Any]])?.first?["keep"] as? Int == 1)
        let repository = try #require(tenant["repository"] as? [String: Any])
        #expect(repository["sizeBytes"] as? Double == 10.5)
        #expect(repository["isOk"] as? Bool == true)
        #expect(repository["none"] is NSNull)
        #expect(text.hasPrefix(#"{"data":"#), "sorted keys: \(text)")
        #expect(SecretMembers.redacted(Array("not json".utf8)) == nil)
    }
}

@Suite("Pass-through targets")
struct PassThroughTargetTests {
    @Test("names(_:) accepts exactly the targets the pipeline takes apart")
    func names() {
        let named = [
            "/v1/tenants/x/api/Jobs", "/v1/upstreams/vspc-main/api/alarms/active?limit=1", "/v1/tenants/vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127/api/",
            "/v1/upstreams/a/api/..%2F",
        ]
        let other = [
            "/v1/tenants", "/v1/tenants/x", "/v1/tenants/x/api", "/v1/tenants//api/Jobs", "/v1/upstreams", "/v1/upstreams/x/apix/y",
            "/v1/upstreams/x?y=/api/z", "/v2/tenants/x/api/Jobs", "/v1/tenantsx/y/api/z", "/v1/status",
        ]
        for target in named { #expect(PassThroughTarget.names(Substring(target)), "\(target)") }
        for target in other { #expect(!PassThroughTarget.names(Substring(target)), "\(target)") }
    }
}
