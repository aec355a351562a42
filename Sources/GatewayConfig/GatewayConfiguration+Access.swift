import GatewayAccess
import Foundation
import GatewayCore
import HTTPTransport
import ResponseCache
import TenantModel
import TokenBroker

// The access sections: `callers`, `policy`, `limits` rates and roles, `auth.idp`.
extension GatewayConfiguration {
    static func identityProvider(_ node: ConfigNode) throws -> IdentityProviderSettings? {
        guard !node.isMissing else { return nil }
        node.requireMapping()
        node.requireKeys(["issuer", "audience", "jwksURL", "rolesClaim", "scopesClaim", "tls", "timeouts", "minimumRefreshInterval", "algorithms"])
        var algorithms = IdentityProviderSettings.defaultAlgorithms
        if !node.child("algorithms").isMissing {
            algorithms = try node.child("algorithms").array().map { item in
                let name = item.string()
                guard IdentityProviderSettings.supportedAlgorithms.contains(name) else {
                    throw item.error("must be one of \(IdentityProviderSettings.supportedAlgorithms.joined(separator: ", ")) (never none or HS*)")
                }
                return name
            }
            guard !algorithms.isEmpty else { throw node.child("algorithms").error("must name at least one algorithm") }
        }
        let jwksURL = node.child("jwksURL").string()
        guard jwksURL.hasPrefix("https://") || jwksURL.hasPrefix("http://127.0.0.1") || jwksURL.hasPrefix("http://localhost") else {
            throw node.child("jwksURL").error("must be an https:// URL (plain http only on loopback)")
        }
        let tls = node.child("tls")
        tls.requireKeys(["caFile", "pinnedPublicKey"])
        let caFile = tls.child("caFile").optionalReadableFile()
        let timeouts = node.child("timeouts")
        timeouts.requireKeys(["connect", "total"])
        let options = TransferOptions(
            tls: .init(caFile: caFile, pinnedPublicKey: tls.child("pinnedPublicKey").optionalString()),
            connectTimeout: timeouts.child("connect").duration(default: .seconds(5)),
            totalTimeout: timeouts.child("total").duration(default: .seconds(10)),
            maxResponseBytes: 1 << 20)
        return IdentityProviderSettings(
            issuer: node.child("issuer").string(), audience: node.child("audience").string(), jwksURL: jwksURL,
            rolesClaim: node.child("rolesClaim").string(default: "roles"), scopesClaim: node.child("scopesClaim").optionalString(),
            options: options, minimumRefreshInterval: node.child("minimumRefreshInterval").duration(default: .seconds(30)), algorithms: algorithms)
    }

    static func rate(_ node: ConfigNode, default value: RateLimit) throws -> RateLimit {
        func number(_ child: ConfigNode, _ fallback: Double) throws -> Double {
            if child.isMissing { return fallback }
            guard let parsed = Double(child.string()), parsed > 0, parsed.isFinite else { throw child.error("must be a positive number") }
            return parsed
        }
        let perSecond = try number(node.child("requestsPerSecond"), value.requestsPerSecond)
        let burst = try number(node.child("burst"), max(value.burst, perSecond))
        guard burst >= 1 else { throw node.child("burst").error("must be at least 1") }
        return RateLimit(requestsPerSecond: perSecond, burst: burst)
    }

    static func roles(_ node: ConfigNode) throws -> Set<String> {
        var roles = Set<String>()
        for item in node.array() {
            let role = item.string()
            if Role.all.contains(role) {
                roles.insert(role)
            } else {
                item.note("unknown role \(role); known roles: \(Role.all.sorted().joined(separator: ", "))")
            }
        }
        return roles
    }

    static func policy(_ node: ConfigNode) throws -> AccessPolicy {
        node.requireKeys(["cloudTenant", "organization", "admin"])
        var policy = AccessPolicy()
        if !node.child("cloudTenant").isMissing { policy.cloudTenantReaders = try roles(node.child("cloudTenant")) }
        if !node.child("organization").isMissing { policy.organizationReaders = try roles(node.child("organization")) }
        if !node.child("admin").isMissing { policy.administrators = try roles(node.child("admin")) }
        return policy
    }

    /// `callers`: each caller read apart, so an error in one leaves the others checked.
    static func callers(_ node: ConfigNode, upstreams: [UpstreamDefinition], frontTLS: FrontTLSSettings?) throws -> [CallerRecord] {
        var records: [CallerRecord] = []
        for item in node.array() {
            let record: CallerRecord? = item.collect(nil) { try caller(item, upstreams: upstreams, frontTLS: frontTLS, records: records) }
            if let record {
                records.append(record)
            } else if let id = item.child("id").optionalString() {
                node.diagnostics.unreadableCallers.insert(id)
            }
        }
        return records
    }

    /// Whether `name` is an upstream of the file (configured, or named by one whose errors are
    /// already noted), and of `product` when one is given.
    static func names(_ name: String, in upstreams: [UpstreamDefinition], product: Tenant.Product? = nil, node: ConfigNode) -> Bool {
        upstreams.contains { $0.name == name && (product == nil || $0.product == product) } || node.diagnostics.unreadableUpstreams.contains(name)
    }

    static func caller(_ item: ConfigNode, upstreams: [UpstreamDefinition], frontTLS: FrontTLSSettings?, records: [CallerRecord]) throws -> CallerRecord? {
        guard item.requireMapping() else { return nil }
        item.requireKeys(["id", "keyHash", "certificate", "roles", "scopes", "rateLimit"])
        let id = item.child("id").string()
        guard (1...64).contains(id.count), id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw item.child("id").error("must be 1-64 letters, digits, '-', '_' or '.'")
        }
        guard !records.contains(where: { $0.id == id }) else { throw item.child("id").error("\(id) is used by another caller") }
        let certificate = item.collect(nil) { try certificateBinding(item.child("certificate"), frontTLS: frontTLS, records: records) }
        let hash = item.child("keyHash").optionalString()?.lowercased()
        if let hash {
            if !APIKey.isValidHash(hash) {
                item.child("keyHash").note("must be sha256:<64 hex digits>, from `veeam-gateway hash-key` (never the key itself)")
            } else if records.contains(where: { $0.keyHash == hash }) {
                item.child("keyHash").note("is the same as another caller's")
            }
        } else if certificate == nil, item.child("certificate").isMissing {
            item.child("keyHash").note("is required (or a certificate, with listen.tls.clientCAFile)")
        }
        var scopes = Set<String>()
        for scope in item.child("scopes").array() {
            let value: String? = scope.collect(nil) {
                // `{ company: {vspc upstream}.{uuid} }`: a customer's own portal.
                if case .mapping? = scope.node {
                    scope.requireKeys(["company"])
                    let company = scope.child("company")
                    let value = company.string()
                    guard let (upstream, _) = TenantID.parse(value) else { throw company.error("must be a customer id, {vspc upstream}.{company uuid}") }
                    guard names(upstream, in: upstreams, product: .vspc, node: company) else {
                        throw company.error("names \(upstream), which is not a configured vspc upstream")
                    }
                    return Scope.company(value)
                }
                let value = scope.string()
                guard let (upstream, _) = TenantID.parse(value) else { throw scope.error("must be a tenant id, {upstream}.{uuid}, or { company: {vspc upstream}.{uuid} }") }
                guard names(upstream, in: upstreams, node: scope) else { throw scope.error("names upstream \(upstream), which is not configured") }
                return value.lowercased()
            }
            if let value { scopes.insert(value) }
        }
        let rateNode = item.child("rateLimit")
        rateNode.requireKeys(["requestsPerSecond", "burst"])
        let callerRate: RateLimit? = rateNode.isMissing ? nil : item.collect(nil) { try rate(rateNode, default: RateLimit(requestsPerSecond: 50, burst: 100)) }
        let callerRoles: Set<String> = item.collect([]) { try roles(item.child("roles")) }
        var record = CallerRecord(id: id, keyHash: hash, roles: callerRoles, scopes: scopes, rate: callerRate)
        record.certificate = certificate
        return record
    }

    /// `callers[].certificate`: `subject` (RFC 4514, as `openssl x509 -noout -subject -nameopt
    /// RFC2253` prints it; parsed, and compared RDN by RDN), or one subject alternative name:
    /// `dns`, `email`, `uri` or `ip`, or `san` (its kind taken from its form: an IP address, a URI
    /// with `://` or `urn:`, an e-mail address with `@`, else a DNS name), of a client certificate
    /// the front end verified against `listen.tls.clientCAFile`.
    static func certificateBinding(_ node: ConfigNode, frontTLS: FrontTLSSettings?, records: [CallerRecord]) throws -> CertificateBinding? {
        guard !node.isMissing else { return nil }
        node.requireMapping()
        let kinds = ["subject", "san", "dns", "email", "uri", "ip"]
        node.requireKeys(Set(kinds))
        guard frontTLS?.clientCAFile != nil else {
            throw node.error("needs listen.tls with a clientCAFile (the CA that issues callers' certificates)")
        }
        var given: [(key: String, value: String)] = []
        for kind in kinds {
            if let value = node.child(kind).optionalString() { given.append((kind, value)) }
        }
        guard given.count == 1, let (kind, value) = given.first else { throw node.error("must name exactly one of \(kinds.joined(separator: ", "))") }
        guard !value.isEmpty else { throw node.child(kind).error("must not be empty") }
        let binding: CertificateBinding
        switch kind {
        case "subject":
            do {
                binding = CertificateBinding(subject: try DistinguishedNameValue.parse(rfc4514: value))
            } catch {
                throw node.child(kind).error("is not an RFC 4514 name: \(error.reason)")
            }
        case "ip":
            guard let address = IPAddress(value) else { throw node.child(kind).error("is not an IPv4 or IPv6 address") }
            binding = CertificateBinding(alternativeName: .ip(address.bytes))
        case "dns": binding = CertificateBinding(alternativeName: .dns(value))
        case "email": binding = CertificateBinding(alternativeName: .email(value))
        case "uri": binding = CertificateBinding(alternativeName: .uri(value))
        default: binding = CertificateBinding(alternativeName: AlternativeName.inferred(value))
        }
        guard !records.contains(where: { $0.certificate == binding }) else { throw node.error("is the same as another caller's") }
        return binding
    }
}
