import GatewaySecrets
import Crypto
import Foundation
public import TenantModel

/// The role vocabulary of VSPC's per-operation role lists (seed 004 and the 3.6.1 spec).
public enum Role {
    public static let portalAdministrator = "PortalAdministrator"
    public static let serviceProviderGlobalAdministrator = "ServiceProviderGlobalAdministrator"
    public static let serviceProviderAdministrator = "ServiceProviderAdministrator"

    /// Every role a caller may carry; a config naming another is refused (typos would lock out).
    public static let all: Set<String> = [
        "PortalAdministrator", "PortalOperator", "PortalReadonlyOperator", "SiteAdministrator",
        "ServiceProviderGlobalAdministrator", "ServiceProviderAdministrator", "ServiceProviderOperator",
        "ServiceProviderUser", "ServiceProviderInvoiceAuditor", "CompanyOwner", "CompanyAdministrator",
        "CompanyInvoiceAuditor", "CompanyLocationAdministrator", "CompanyLocationUser", "CompanySubtenant", "ReadOnlyUser",
    ]

    /// Seed 004: who may read a CloudTenant.
    public static let tenantReaders: [String] = [portalAdministrator, serviceProviderGlobalAdministrator, serviceProviderAdministrator]

    /// Who reads customers whole and their drift report: seed 004's roles for tenants, by
    /// inference for companies (docs/security.md says why).
    public static let customerReaders = Set(tenantReaders)

    /// The VSPC `UserRole` values (users/me) that hold seed 004's three roles. The Service Provider
    /// ones map to Reseller* by inference (API-NOTES), not by documentation.
    public static let vspcAccountRolesAllowed: Set<String> = ["PortalAdministrator", "ResellerOwner", "ResellerAdministrator"]
}

/// What a caller's scopes hold: tenant ids (`{upstream}.{uuid}`: an organization's own app), and
/// companies, written `company:{vspc upstream}.{uuid}` (a customer's own portal).
public enum Scope {
    static let companyPrefix = "company:"

    /// The scope of a customer (`{vspc upstream}.{company uuid}`, lower case).
    public static func company(_ customerID: String) -> String { companyPrefix + customerID.lowercased() }

    /// The customer a scope names, when it is a company scope.
    public static func customer(of scope: String) -> String? {
        scope.hasPrefix(companyPrefix) ? String(scope.dropFirst(companyPrefix.count)) : nil
    }
}

/// Someone calling the gateway, as authenticated.
public struct Caller: Sendable, Equatable {
    public var id: String
    public var roles: Set<String>
    /// Tenant ids (`{upstream}.{uuid}`) the caller is limited to; empty means not scoped.
    public var scopes: Set<String>
    /// How the caller proved who it is.
    public var method: Method

    /// How a caller proved who it is; the raw value is how logs and the status page name it.
    public enum Method: String, Sendable, Equatable {
        case apiKey = "api-key"
        case gatewayToken = "gateway-token"
        case idpToken = "idp-token"
        case clientCertificate = "client-certificate"
        case statusSession = "status-session"
        /// A client id and its key, exchanged for a gateway token (`POST /v1/auth/token`).
        case clientCredentials = "client-credentials"
    }

    /// Whether one of its scopes is a company's (``Scope/company(_:)``).
    public var hasCompanyScope: Bool { scopes.contains { $0.hasPrefix(Scope.companyPrefix) } }

    public init(id: String, roles: Set<String>, scopes: Set<String> = [], method: Method = .apiKey) {
        self.id = id
        self.roles = roles
        self.scopes = scopes
        self.method = method
    }
}

/// A configured caller: an id, the *hash* of its API key (never the key), roles and scopes.
public struct CallerRecord: Sendable, Equatable {
    public var id: String
    /// `sha256:` + 64 hex digits, from `veeam-gateway hash-key`; nil for a caller that
    /// authenticates with a client certificate only.
    public var keyHash: String?
    /// The client certificate this caller is bound to, if any (`callers[].certificate`).
    public var certificate: CertificateBinding?
    public var roles: Set<String>
    public var scopes: Set<String>
    /// Requests per second and burst of this caller; nil uses the default.
    public var rate: RateLimit?

    public init(id: String, keyHash: String?, roles: Set<String>, scopes: Set<String> = [], rate: RateLimit? = nil) {
        self.id = id
        self.keyHash = keyHash
        self.roles = roles
        self.scopes = scopes
        self.rate = rate
    }
}

/// Which verified client certificate stands for a caller: its subject, as a parsed
/// distinguished name (``DistinguishedNameValue``), or one of its subject alternative names, with
/// its kind (``AlternativeName``).
public struct CertificateBinding: Sendable, Equatable, Hashable {
    public var subject: DistinguishedNameValue?
    public var alternativeName: AlternativeName?
    public init(subject: DistinguishedNameValue? = nil, alternativeName: AlternativeName? = nil) {
        self.subject = subject
        self.alternativeName = alternativeName?.normalized
    }
    public var isEmpty: Bool { subject == nil && alternativeName == nil }
}

/// What the front end read from a client certificate it verified (TLS with
/// `listen.tls.clientCAFile`): the subject and the subject alternative names, each with its kind.
public struct PeerCertificate: Sendable, Equatable {
    public var subject: DistinguishedNameValue
    public var alternativeNames: [AlternativeName]
    public init(subject: DistinguishedNameValue, alternativeNames: [AlternativeName]) {
        self.subject = subject
        self.alternativeNames = alternativeNames
    }
}

/// A token-bucket rate: `requestsPerSecond` sustained, `burst` at once.
public struct RateLimit: Sendable, Equatable {
    public var requestsPerSecond: Double
    public var burst: Double
    public init(requestsPerSecond: Double, burst: Double) {
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
    }
}

/// API key hashing: SHA-256 from swift-crypto. Keys are long random strings, so a fast hash is
/// right here (it is not a password store); the config holds only the hash.
public enum APIKey {
    public static func hash(_ key: String) -> String {
        "sha256:" + Hex.lowercase(SHA256.hash(data: Data(key.utf8)))
    }

    static func digest(fromHash text: String) -> [UInt8]? {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = Array(text.utf8.dropFirst(7))
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = hexValue(hex[index]), let low = hexValue(hex[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    public static func isValidHash(_ text: String) -> Bool { digest(fromHash: text) != nil }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}

/// An immutable snapshot of the configured callers; lookups are synchronous and thread-safe.
public struct CallerDirectory: Sendable {
    /// Every caller's key digest, 32 bytes each, back to back (one buffer: the constant-time scan
    /// below copies nothing); `records[i]` goes with bytes `32 i ..< 32 (i + 1)`.
    private let digests: [UInt8]
    public let records: [CallerRecord]
    /// The callers with a key, in digest order.
    private let keyed: [CallerRecord]
    /// Certificate-bound callers by normalized subject and by subject alternative name.
    private let bySubject: [DistinguishedNameValue: CallerRecord]
    private let byAlternativeName: [AlternativeName: CallerRecord]
    /// Each caller by id (ids are unique; the config refuses a second one).
    private let byID: [String: CallerRecord]

    public init(_ records: [CallerRecord]) {
        var digests: [UInt8] = []
        var kept: [CallerRecord] = []
        var keyed: [CallerRecord] = []
        var bySubject: [DistinguishedNameValue: CallerRecord] = [:]
        var byAlternativeName: [AlternativeName: CallerRecord] = [:]
        for record in records {
            var usable = false
            if let certificate = record.certificate {
                if let subject = certificate.subject { bySubject[subject] = bySubject[subject] ?? record }
                if let name = certificate.alternativeName { byAlternativeName[name] = byAlternativeName[name] ?? record }
                usable = true
            }
            if let hash = record.keyHash, let digest = APIKey.digest(fromHash: hash) {
                digests += digest
                keyed.append(record)
                usable = true
            }
            if usable { kept.append(record) }
        }
        self.digests = digests
        self.keyed = keyed
        self.records = kept
        self.bySubject = bySubject
        self.byAlternativeName = byAlternativeName
        self.byID = Dictionary(kept.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether any caller is bound to a client certificate.
    public var hasCertificateCallers: Bool { !bySubject.isEmpty || !byAlternativeName.isEmpty }

    /// The caller bound to a verified client certificate: by subject first, then by each
    /// subject alternative name in the certificate's order.
    public func authenticate(certificate: PeerCertificate) -> CallerRecord? {
        if let record = bySubject[certificate.subject] { return record }
        for name in certificate.alternativeNames {
            if let record = byAlternativeName[name.normalized] { return record }
        }
        return nil
    }

    /// The configured caller with this id, if there is one now.
    public func record(id: String) -> CallerRecord? { byID[id] }

    /// The caller whose key this is. Compares the key's digest with **every** configured digest
    /// in constant time, so timing tells nothing about which (or whether any) caller matched.
    public func authenticate(apiKey: String) -> CallerRecord? {
        guard !apiKey.isEmpty, apiKey.utf8.count <= 512 else { return nil }
        var key = apiKey
        let digest = key.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        var found = -1
        digest.withUnsafeBytes { presented in
            digests.withUnsafeBytes { all in
                for index in 0..<keyed.count where ConstantTime.equal(UnsafeRawBufferPointer(rebasing: all[(index * 32)..<(index * 32 + 32)]), presented) {
                    found = index
                }
            }
        }
        return found >= 0 ? keyed[found] : nil
    }
}

/// Byte comparison for secrets: the time taken depends on the lengths alone, never on where two
/// inputs first differ, so timing cannot walk an attacker towards a key byte by byte.
enum ConstantTime {
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// Who may read what. The default is seed 004 for cloud tenants, the same roles or a scope for
/// organizations, and PortalAdministrator for admin operations; the config can override each.
public struct AccessPolicy: Sendable, Equatable {
    public var cloudTenantReaders: Set<String>
    public var organizationReaders: Set<String>
    public var administrators: Set<String>

    public init(
        cloudTenantReaders: Set<String> = Set(Role.tenantReaders),
        organizationReaders: Set<String> = Set(Role.tenantReaders),
        administrators: Set<String> = [Role.portalAdministrator]
    ) {
        self.cloudTenantReaders = cloudTenantReaders
        self.organizationReaders = organizationReaders
        self.administrators = administrators
    }

    public enum Decision: Sendable, Equatable {
        case allow
        /// 403, naming the roles that would be allowed.
        case forbidden(requiredRoles: [String])
        /// 404: the caller is scoped and this is not one of its tenants (existence does not leak).
        case hidden
    }

    func readers(for kind: Tenant.Kind) -> Set<String> {
        kind == .cloudTenant ? cloudTenantReaders : organizationReaders
    }

    /// May `caller` read the tenant `id` of this kind? Decided before any cache or upstream call.
    /// `customers` says which customers the tenant belongs to (asked only for a caller scoped to
    /// a company, which reads its customer's tenants of both kinds).
    public func canRead(_ caller: Caller, kind: Tenant.Kind, id: String, customers: () -> [String] = { [] }) -> Decision {
        let readers = readers(for: kind)
        if !caller.roles.isDisjoint(with: readers) { return .allow }
        if kind == .organization, caller.scopes.contains(id) { return .allow }
        if caller.hasCompanyScope, customers().contains(where: { caller.scopes.contains(Scope.company($0)) }) { return .allow }
        if !caller.scopes.isEmpty { return .hidden }
        return .forbidden(requiredRoles: readers.sorted())
    }

    /// May `caller` see anything of this kind without a scope?
    public func readsAll(_ caller: Caller, kind: Tenant.Kind) -> Bool {
        !caller.roles.isDisjoint(with: readers(for: kind))
    }

    public func isAdministrator(_ caller: Caller) -> Bool {
        !caller.roles.isDisjoint(with: administrators)
    }
}
