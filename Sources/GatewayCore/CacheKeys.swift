import GatewaySecrets
import Crypto
import Foundation
import TokenBroker
import TenantModel

/// The cache's names, decided once: the key of each entry, the tags a purge selects entries by,
/// and what a purge covers on the shared level.
enum CacheKeys {
    /// A single tenant's entry.
    static func tenant(_ tenantID: String) -> String { "tenant|" + tenantID }
    /// An upstream's list entry.
    static func list(_ upstream: String) -> String { "list|" + upstream }
    /// A VSPC upstream's customers, joined.
    static func customers(_ upstream: String) -> String { "customers|" + upstream }
    /// A pass-through answer's entry: which upstream, which account read it (an organization's id
    /// for the tenant form, `account` for the upstream form), and the canonical path and query.
    static func passThrough(_ upstream: String, account: String, _ path: String) -> String { passThroughPrefix(upstream, account: account) + path }
    /// The start of an upstream's pass-through keys (of one account's, when given).
    static func passThroughPrefix(_ upstream: String, account: String? = nil) -> String {
        "pass|" + upstream + "|" + (account.map { $0 + "|" } ?? "")
    }
    static func upstreamTag(_ upstream: String) -> String { "upstream:" + upstream }
    static func tenantTag(_ tenantID: String) -> String { "tenant:" + tenantID }
    /// The upstream a list entry's tags name.
    static func upstream(ofTags tags: Set<String>) -> String? {
        tags.first { $0.hasPrefix("upstream:") }.map { String($0.dropFirst("upstream:".count)) }
    }

    /// An entry's name on the shared level: the key behind its upstream's fingerprint, so that a
    /// replica whose configuration of that upstream differs (another base URL, other accounts, a
    /// reload in progress on some replicas) neither reads nor overwrites what the others stored.
    static func shared(_ key: String, fingerprint: String) -> String { fingerprint + "|" + key }

    /// A few hex digits of SHA-256 over what decides an upstream's answers.
    static func fingerprint(_ definition: UpstreamDefinition) -> String {
        var accounts = (definition.organizations.map(\.username) + [definition.account?.username ?? ""]).joined(separator: ",")
        if let administrator = definition.passThroughAccount { accounts += ";" + administrator.username }
        let text = [
            definition.name, definition.product.rawValue, definition.baseURL, accounts, "\(definition.vb365APIVersion)",
            definition.vspcClientVersion ?? "-",
        ].joined(separator: "\n")
        return Hex.lowercase(SHA256.hash(data: Data(text.utf8)).prefix(6))
    }

    /// A few hex digits of SHA-256 over which server an upstream is (its product and base URL):
    /// what names its sessions on the shared tier (``SharedAccount/server``). Narrower than
    /// ``fingerprint(_:)``: adding an organization account does not make the others log in again.
    static func server(_ definition: UpstreamDefinition) -> String {
        Hex.lowercase(SHA256.hash(data: Data("\(definition.product.rawValue)\n\(definition.baseURL)".utf8)).prefix(6))
    }

    /// What a purge removes: one tenant, one upstream's entries, or everything.
    enum Scope: Sendable {
        case tenant(String)
        case upstream(String)
        case everything

        init(upstream: String?, tenant: String?) {
            if let tenant { self = .tenant(tenant.lowercased()) } else if let upstream { self = .upstream(upstream) } else { self = .everything }
        }

        /// The local cache's tag for it (nil: every entry).
        var tag: String? {
            switch self {
            case .tenant(let id): return CacheKeys.tenantTag(id)
            case .upstream(let name): return CacheKeys.upstreamTag(name)
            case .everything: return nil
            }
        }

        /// Its keys and key prefixes on the shared level, given each upstream's fingerprint.
        func shared(fingerprints: [String: String]) -> (keys: [String], prefixes: [String]) {
            switch self {
            case .tenant(let id):
                guard let (upstream, organization) = TenantID.parse(id), let fingerprint = fingerprints[upstream] else { return ([], []) }
                // The tenant, and what was passed through with its own session.
                return (
                    [CacheKeys.shared(CacheKeys.tenant(id), fingerprint: fingerprint)],
                    [CacheKeys.shared(CacheKeys.passThroughPrefix(upstream, account: organization), fingerprint: fingerprint)]
                )
            case .upstream(let name):
                guard let fingerprint = fingerprints[name] else { return ([], []) }
                return (
                    [CacheKeys.shared(CacheKeys.list(name), fingerprint: fingerprint)],
                    [
                        CacheKeys.shared(CacheKeys.tenant(name + "."), fingerprint: fingerprint),
                        CacheKeys.shared(CacheKeys.passThroughPrefix(name), fingerprint: fingerprint),
                    ]
                )
            case .everything:
                return ([], [""])
            }
        }
    }
}
