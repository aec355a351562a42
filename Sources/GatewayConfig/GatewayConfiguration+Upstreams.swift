public import GatewaySecrets
import Foundation
import GatewayCore
import HTTPTransport
import ResponseCache
import TenantModel
import VeeamWire

// The upstream sections: `upstreams[]`, their freshness, accounts and secret references.
extension GatewayConfiguration {
    static func freshness(_ node: ConfigNode, default value: FreshnessPolicy) throws -> FreshnessPolicy {
        FreshnessPolicy(
            ttl: node.child("ttl").duration(default: value.ttl),
            staleWhileRevalidate: node.child("staleWhileRevalidate").duration(default: value.staleWhileRevalidate),
            staleIfError: node.child("staleIfError").duration(default: value.staleIfError))
    }

    static func upstream(_ node: ConfigNode, environment: [String: String]) throws -> UpstreamDefinition {
        node.requireMapping()
        node.requireKeys([
            "name", "product", "baseURL", "tls", "timeouts", "maxResponseBytes", "refreshSkew", "maxConnections", "organizations", "account", "cache",
            "maxConcurrentRequests", "maxQueuedRequests", "apiVersion", "clientVersion", "passThrough", "vspcServer",
        ])
        let name = node.child("name").string()
        guard TenantID.isValidUpstreamName(name) else {
            throw node.child("name").error("must match [a-z0-9-]{1,32} (it becomes part of every tenant id)")
        }
        let productText = node.child("product").string()
        guard let product = Tenant.Product(rawValue: productText) else { throw node.child("product").error("must be vb365 or vspc") }
        var baseURL = node.child("baseURL").string()
        while baseURL.hasSuffix("/") { baseURL.removeLast() }
        if let url = URL(string: baseURL), url.user != nil || url.password != nil {
            node.child("baseURL").note("must carry no user or password (they would show in /v1/upstreams and /v1/status): use organizations or account")
        } else if !(baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) || URL(string: baseURL).map({ $0.host == nil || $0.query != nil || !$0.path.isEmpty }) ?? true {
            node.child("baseURL").note("must be https://host:port (no path, no query), e.g. https://vspc.example.internal:1280")
        }

        let tls = try transferTLS(node.child("tls"))
        let timeouts = node.child("timeouts")
        timeouts.requireKeys(["connect", "total"])
        let connect = timeouts.child("connect").duration(default: .seconds(5))
        let total = timeouts.child("total").duration(default: .seconds(30))
        if connect <= .zero {
            timeouts.child("connect").note("must be more than 0")
        } else if total < connect {
            timeouts.child("total").note("must be at least timeouts.connect")
        }

        let options = TransferOptions(
            tls: tls,
            connectTimeout: connect,
            totalTimeout: total,
            maxResponseBytes: node.child("maxResponseBytes").byteSize(default: 16 << 20)
        )

        var organizations: [Credential] = []
        var account: Credential?
        var apiVersion = VB365VersionResolver.Setting.auto
        var clientVersion: String? = "3.6"
        switch product {
        case .vb365:
            if !node.child("clientVersion").isMissing { throw node.child("clientVersion").error("only vspc upstreams send X-Client-Version") }
            let text = node.child("apiVersion").string(default: "auto")
            if text == "auto" {
                apiVersion = .auto
            } else if let version = VB365APIVersion(rawValue: text) {
                apiVersion = .fixed(version)
            } else {
                let known = VB365APIVersion.allCases.map(\.rawValue).joined(separator: ", ")
                throw node.child("apiVersion").error("must be auto or one of \(known) (the VB365 REST versions this gateway speaks)")
            }
            let orgNodes = node.child("organizations").array()
            guard !orgNodes.isEmpty else {
                throw node.child("organizations").error("a vb365 upstream lists each organization's own account (seed 000: never an administrator's)")
            }
            if !node.child("account").isMissing { throw node.child("account").error("vb365 upstreams use organizations, not account") }
            organizations = orgNodes.compactMap { item in item.collect(nil) { try credential(item, environment: environment) } }
        case .vspc:
            if !node.child("apiVersion").isMissing {
                throw node.child("apiVersion").error("only vb365 upstreams have an apiVersion (VSPC is REST v3; see clientVersion)")
            }
            let versionNode = node.child("clientVersion")
            let writtenNull: Bool
            if case .scalar(let scalar)? = versionNode.node { writtenNull = ["null", "Null", "NULL", "~", ""].contains(scalar.string) } else { writtenNull = false }
            if versionNode.node != nil, versionNode.isMissing || writtenNull {
                clientVersion = nil  // written as null: send no X-Client-Version
            } else if !versionNode.isMissing {
                let text = versionNode.string()
                let parts = text.split(separator: ".", omittingEmptySubsequences: false)
                guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else {
                    throw versionNode.error("must be a VSPC REST version such as 3.6 or 3.6.1 (or null to send no X-Client-Version)")
                }
                clientVersion = text
            }
            guard !node.child("account").isMissing else { throw node.child("account").error("a vspc upstream needs the gateway's account") }
            if !node.child("organizations").isMissing { throw node.child("organizations").error("only vb365 upstreams list organizations") }
            account = try credential(node.child("account"), environment: environment)
        }
        var definition = UpstreamDefinition(
            name: name, product: product, baseURL: baseURL, options: options, organizations: organizations, account: account,
            refreshSkew: node.child("refreshSkew").duration(default: .seconds(60)))
        definition.vb365APIVersion = apiVersion
        definition.vspcClientVersion = clientVersion
        let vspcServer = node.child("vspcServer")
        if !vspcServer.isMissing {
            vspcServer.requireMapping()
            vspcServer.requireKeys(["upstream", "serverUid"])
            guard product == .vb365 else { throw vspcServer.error("only a vb365 upstream is one of a VSPC's VB365 servers") }
            let uid = vspcServer.child("serverUid").string()
            guard UUID(uuidString: uid) != nil else { throw vspcServer.child("serverUid").error("must be the server's instanceUid (a UUID)") }
            definition.vspcServer = VSPCServerReference(upstream: vspcServer.child("upstream").string(), serverUid: uid)
        }
        let passThrough = node.child("passThrough")
        if !passThrough.isMissing {
            passThrough.requireMapping()
            passThrough.requireKeys(["account"])
            guard product == .vb365 else {
                throw passThrough.error("only vb365 upstreams take a passThrough.account (a vspc upstream's pass-through reads use its account)")
            }
            if !passThrough.child("account").isMissing {
                definition.passThroughAccount = try credential(passThrough.child("account"), environment: environment)
            }
        }
        return definition
    }

    static func credential(_ node: ConfigNode, environment: [String: String]) throws -> Credential {
        node.requireMapping()
        node.requireKeys(["username", "password"])
        let username = node.child("username").string()
        return Credential(username: username, password: try secretReference(node.child("password"), environment: environment))
    }

    /// A `tls` mapping of an outgoing call (an upstream, a webhook): CA file, pins, client certificate.
    static func transferTLS(_ tlsNode: ConfigNode) throws -> TransferOptions.TLS {
        tlsNode.requireKeys(["caFile", "pinnedPublicKey", "insecure", "clientCertificateFile", "clientKeyFile"])
        let caFile = tlsNode.child("caFile").optionalReadableFile()
        let pin = tlsNode.child("pinnedPublicKey").optionalString()
        if let pin {
            let pins = pin.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            if !pins.allSatisfy({ $0.hasPrefix("sha256//") && Data(base64Encoded: String($0.dropFirst(8)))?.count == 32 }) {
                tlsNode.child("pinnedPublicKey").note("must be sha256//<base64 of 32 bytes> (several joined with ;)")
            }
        }
        return .init(
            caFile: caFile, pinnedPublicKey: pin, insecure: tlsNode.child("insecure").bool(default: false),
            clientCertificateFile: tlsNode.child("clientCertificateFile").optionalString(),
            clientKeyFile: tlsNode.child("clientKeyFile").optionalString())
    }

    /// `{env: NAME}` or `{file: PATH}`, resolved once to fail early (the value is not kept).
    static func secretReference(_ node: ConfigNode, environment: [String: String]) throws -> SecretReference {
        guard case .mapping? = node.node else {
            throw node.error("must be a secret reference, {env: NAME} or {file: PATH}; a secret is never written in the config")
        }
        node.requireKeys(["env", "file"])
        let env = node.child("env").optionalString()
        let file = node.child("file").optionalString()
        let reference: SecretReference
        switch (env, file) {
        case (let name?, nil): reference = .env(name)
        case (nil, let path?): reference = .file(path)
        default: throw node.error("give exactly one of env or file")
        }
        do {
            _ = try reference.resolve(environment: environment)
        } catch let error as SecretError {
            throw node.error(error.reason)
        }
        return reference
    }
}
