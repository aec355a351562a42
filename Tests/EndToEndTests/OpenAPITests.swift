import GatewayRuntime
import CurlHTTP
import Foundation
import GatewayCore
import GatewayConfig
import GatewayHTTP
import GatewayTestSupport
import Hummingbird
import Logging
import Testing
import Yams

@Suite("OpenAPI document")
struct OpenAPITests {
    /// (method, path) pairs of the document, paths in OpenAPI syntax.
    func documented() throws -> Set<String> {
        let text = try String(contentsOfFile: repositoryRoot + "/docs/openapi.yaml", encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var pairs = Set<String>()
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys where ["get", "put", "post", "delete", "patch"].contains(method) {
                pairs.insert(method.uppercased() + " " + path)
            }
        }
        return pairs
    }

    @Test("every route in the router is in docs/openapi.yaml, and every documented operation is routed")
    func routesMatchDocument() async throws {
        let client = try CurlClient()
        let configuration = GatewayConfiguration(file: "test", upstreams: [])
        let metrics = MetricsEndpoint()
        let state = try await GatewayState(configuration: configuration, client: client, metrics: metrics, logger: Logger(label: "test"))
        let router = GatewayApplication.router(state: state.source, logger: Logger(label: "test"), metrics: metrics)
        var routed = Set<String>()
        var unexpected: [String] = []
        // Paths in OpenAPI syntax: ":id" becomes "{id}", ":name" "{name}", and the pass-through's
        // catch-all "**" the "{path}" parameter.
        func openAPIPath(_ path: String) -> String {
            let withSlash = path.hasPrefix("/") ? path : "/" + path
            return withSlash.replacingOccurrences(of: ":id", with: "{id}").replacingOccurrences(of: ":name", with: "{name}")
                .replacingOccurrences(of: "**", with: "{path}")
        }
        let operations = Dictionary(uniqueKeysWithValues: APISurface.operations.map { (openAPIPath($0.key), $0.value) })
        for route in router.routes {
            let path = openAPIPath("\(route.path)")
            if let allowed = operations[path], allowed.contains(route.method) {
                routed.insert(route.method.rawValue + " " + path)
            } else {
                unexpected.append("\(route.method) \(path)")
            }
        }
        let documentedPairs = try documented()
        #expect(routed == documentedPairs, "only routed: \(routed.subtracting(documentedPairs).sorted()); only documented: \(documentedPairs.subtracting(routed).sorted())")
        #expect(unexpected.isEmpty, "routed but not in APISurface.operations: \(unexpected)")
        await client.shutdown()
    }

    @Test("the served document is docs/openapi.yaml")
    func served() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let response = try await gw.get("/openapi.yaml", key: nil)
                #expect(response.status == 200)
                #expect(response.header("content-type") == "application/yaml")
                #expect(response.text == (try String(contentsOfFile: repositoryRoot + "/docs/openapi.yaml", encoding: .utf8)))
            }
        }
    }

    @Test("a path is counted under its route template, never as written")
    func routeTemplates() {
        let expected: [String: String] = [
            "/v1/tenants": "/v1/tenants",
            "/v1/tenants/": "/v1/tenants/{id}",
            "/v1/tenants/abc": "/v1/tenants/{id}",
            "/v1/tenants/abc/other": "/v1/tenants/{id}",
            "/v1/tenants/abc/api": "/v1/tenants/{id}",
            "/v1/tenants/abc/api/": "/v1/tenants/{id}/api/{path}",
            "/v1/tenants//api/x": "/v1/tenants/{id}/api/{path}",
            "/v1/tenants/abc/api/v8/Jobs": "/v1/tenants/{id}/api/{path}",
            "/v1/upstreams": "/v1/upstreams",
            "/v1/upstreams/vspc": "other",
            "/v1/upstreams/vspc/api/v3/about": "/v1/upstreams/{name}/api/{path}",
            "/v1/upstreams/vspc/apis/x": "other",
            "/v1/customers": "/v1/customers",
            "/v1/customers/drift": "/v1/customers/drift",
            "/v1/customers/c-1": "/v1/customers/{id}",
            "/v1/events/stream": "/v1/events/stream",
            "/metrics": "/metrics",
            "/v1/tenantsX": "other",
            "/nowhere/\u{e9}t\u{e9}": "other",
            "": "other",
        ]
        for (path, template) in expected {
            #expect(APISurface.routeTemplate(path) == template, "\(path)")
        }
    }
}
