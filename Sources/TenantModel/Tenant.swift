/// The unified resource the gateway serves: a VB365 Organization or a VSPC CloudTenant.
///
/// `id` is `{upstream}.{upstream id}`; a field the source does not have is `null`, never
/// invented; timestamps are RFC 3339 in UTC with the upstream's precision; enum values use the
/// current specs' spelling, unknown ones kept as sent. Encodes with explicit nulls.
public struct Tenant: Sendable, Equatable, Codable {
    /// Which upstream product a tenant comes from.
    public enum Product: String, Sendable, Codable, CaseIterable {
        case vb365
        case vspc

        /// What a tenant of this product is: VB365's are organizations, VSPC's cloud tenants.
        public var tenantKind: Kind { self == .vb365 ? .organization : .cloudTenant }
    }

    public enum Kind: String, Sendable, Codable {
        case organization
        case cloudTenant
    }

    public struct Source: Sendable, Equatable, Codable {
        public var product: Product
        public var upstream: String
        public var id: String
        public init(product: Product, upstream: String, id: String) {
            self.product = product
            self.upstream = upstream
            self.id = id
        }
    }

    public struct Backup: Sendable, Equatable, Codable {
        public var protected: Bool?
        public var firstBackupAt: String?
        public var lastBackupAt: String?

        public init(protected: Bool?, firstBackupAt: String?, lastBackupAt: String?) {
            self.protected = protected
            self.firstBackupAt = firstBackupAt
            self.lastBackupAt = lastBackupAt
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(protected, forKey: .protected)
            try c.encode(firstBackupAt, forKey: .firstBackupAt)
            try c.encode(lastBackupAt, forKey: .lastBackupAt)
        }

        enum CodingKeys: String, CodingKey { case protected, firstBackupAt, lastBackupAt }
    }

    public var id: String
    public var kind: Kind
    public var source: Source
    public var name: String?
    public var description: String?
    public var type: String?
    public var enabled: Bool?
    public var backup: Backup
    /// Product-specific fields, camelCase; secrets never appear here.
    public var details: [String: DetailValue]

    /// The customer it belongs to (`{vspc upstream}.{company uuid}`), when one is known: answered
    /// as `links.customer`, not a field of the upstream's record.
    public var customer: String?

    /// `/v1/tenants/{id}`.
    public var selfLink: String { "/v1/tenants/" + id }

    /// `/v1/customers/{customer}`, when it belongs to one.
    public var customerLink: String? { customer.map { "/v1/customers/" + $0 } }

    enum CodingKeys: String, CodingKey {
        case id, kind, source, name, description, type, enabled, backup, details, links
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encode(source, forKey: .source)
        try c.encode(name, forKey: .name)
        try c.encode(description, forKey: .description)
        try c.encode(type, forKey: .type)
        try c.encode(enabled, forKey: .enabled)
        try c.encode(backup, forKey: .backup)
        try c.encode(details, forKey: .details)
        try c.encode(Links(customer: customerLink, self: selfLink), forKey: .links)
    }

    /// `links`: `customer` only when there is one.
    struct Links: Codable {
        var customer: String?
        var `self`: String
    }
}

extension Tenant {
    /// Reads what ``encode(to:)`` wrote (the shared cache level stores tenants so): of `links`,
    /// only the customer is read (`self` is derived from `id`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decode(String.self, forKey: .id)
        self.kind = try c.decode(Kind.self, forKey: .kind)
        self.source = try c.decode(Source.self, forKey: .source)
        self.name = try c.decodeIfPresent(String.self, forKey: .name)
        self.description = try c.decodeIfPresent(String.self, forKey: .description)
        self.type = try c.decodeIfPresent(String.self, forKey: .type)
        self.enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled)
        self.backup = try c.decode(Backup.self, forKey: .backup)
        self.details = try c.decode([String: DetailValue].self, forKey: .details)
        self.customer = try c.decodeIfPresent(Links.self, forKey: .links)?.customer.flatMap { link in
            link.hasPrefix("/v1/customers/") ? String(link.dropFirst("/v1/customers/".count)) : nil
        }
    }
}

/// A value in `Tenant.details`.
public enum DetailValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case strings([String])

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .strings(let v): try c.encode(v)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let value = try? c.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? c.decode(Int.self) {
            self = .int(value)
        } else if let value = try? c.decode(String.self) {
            self = .string(value)
        } else {
            self = .strings(try c.decode([String].self))
        }
    }

    init(_ value: Bool?) { self = value.map { .bool($0) } ?? .null }
    init(_ value: Int?) { self = value.map { .int($0) } ?? .null }
    init(_ value: String?) { self = value.map { .string($0) } ?? .null }
    init(_ value: [String]?) { self = value.map { .strings($0) } ?? .null }
}

/// Upstream names match `[a-z0-9-]{1,32}`, so the dot in a tenant id is unambiguous.
public enum TenantID {
    public static func isValidUpstreamName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    /// A GUID in its 8-4-4-4-12 hex form (both products use them).
    public static func isValidUpstreamID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count == 36 else { return false }
        for (i, b) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                guard b == 0x2D else { return false }
            } else {
                let hex = (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
                guard hex else { return false }
            }
        }
        return true
    }

    /// Splits `{upstream}.{id}`; nil when either part is malformed.
    public static func parse(_ value: String) -> (upstream: String, id: String)? {
        guard let dot = value.firstIndex(of: ".") else { return nil }
        let upstream = String(value[..<dot])
        let id = String(value[value.index(after: dot)...])
        guard isValidUpstreamName(upstream), isValidUpstreamID(id) else { return nil }
        return (upstream, id.lowercased())
    }

    public static func make(upstream: String, id: String) -> String { upstream + "." + id.lowercased() }
}
