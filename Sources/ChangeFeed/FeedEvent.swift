import Foundation
public import TenantModel

/// One change the gateway noticed, as `/v1/events`, the event stream and webhooks tell it.
///
/// Its JSON is made once, when it is logged (`bytes`); who may see it is decided from its
/// `audience` per caller, never by reading the JSON again.
public struct FeedEvent: Sendable {
    /// What happened.
    public enum Kind: String, Sendable, CaseIterable, Encodable {
        case tenantCreated = "tenant.created"
        case tenantChanged = "tenant.changed"
        case tenantRemoved = "tenant.removed"
        case upstreamState = "upstream.state"
        case customerCreated = "customer.created"
        case customerChanged = "customer.changed"
        case customerRemoved = "customer.removed"
        case driftChanged = "drift.changed"
    }

    /// Whom an event is about, which decides who may see it.
    public enum Audience: Sendable, Equatable {
        /// A tenant of this kind: whoever may read it (its customers decide for a company's caller).
        case tenant(kind: Tenant.Kind, id: String, customers: [String])
        /// A customer: whoever may read customers whole, or the company's caller.
        case customer(id: String)
        /// An upstream's state: whoever reads every tenant of its kind.
        case upstream(kind: Tenant.Kind)
        /// The customers' drift: whoever may read the drift report.
        case drift
    }

    /// Its position in the log (the cursor's sequence number).
    public let sequence: UInt64
    public let kind: Kind
    public let upstream: String
    public let audience: Audience
    /// `{"id":…,"changed":…,"data":…,"time":…,"type":…,"upstream":…}` (`changed` only when given).
    public let bytes: [UInt8]
    /// The cursor naming it (`{epoch}.{sequence}`).
    public let id: String

    /// An event of log `epoch` at `sequence`, from its JSON without the id (``EventLog/tail(_:time:)``).
    public init(epoch: String, sequence: UInt64, kind: Kind, upstream: String, audience: Audience, tail: [UInt8]) {
        let id = "\(epoch).\(sequence)"
        var bytes = Array(#"{"id":"\#(id)""#.utf8)
        let rest = tail.dropFirst()
        if rest.first != UInt8(ascii: "}") { bytes.append(UInt8(ascii: ",")) }
        bytes += rest
        self.sequence = sequence
        self.kind = kind
        self.upstream = upstream
        self.audience = audience
        self.bytes = bytes
        self.id = id
    }
}

extension FeedEvent.Audience {
    /// One line a store keeps it as: `tenant|{kind}|{id}|{customer,…}`, `customer|{id}`,
    /// `upstream|{kind}`, `drift`.
    public var stored: String {
        switch self {
        case .tenant(let kind, let id, let customers): "tenant|\(kind.rawValue)|\(id)|\(customers.joined(separator: ","))"
        case .customer(let id): "customer|\(id)"
        case .upstream(let kind): "upstream|\(kind.rawValue)"
        case .drift: "drift"
        }
    }

    /// What ``stored`` wrote; nil for anything else.
    public init?(stored: String) {
        let parts = stored.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "tenant":
            guard parts.count == 4, let kind = Tenant.Kind(rawValue: parts[1]) else { return nil }
            self = .tenant(kind: kind, id: parts[2], customers: parts[3].isEmpty ? [] : parts[3].split(separator: ",").map(String.init))
        case "customer":
            guard parts.count == 2 else { return nil }
            self = .customer(id: parts[1])
        case "upstream":
            guard parts.count == 2, let kind = Tenant.Kind(rawValue: parts[1]) else { return nil }
            self = .upstream(kind: kind)
        case "drift":
            self = .drift
        default:
            return nil
        }
    }
}

/// An event before it is logged: the log gives it its sequence, id and time.
public struct FeedEventDraft: Sendable {
    public var kind: FeedEvent.Kind
    public var upstream: String
    public var audience: FeedEvent.Audience
    /// The resource as the API answers it: a tenant, a customer, an upstream's state, drift counts.
    public var data: FeedPayload
    /// The members that changed (`tenant.changed`, `customer.changed`), in order.
    public var changed: [String]?

    public init(kind: FeedEvent.Kind, upstream: String, audience: FeedEvent.Audience, data: FeedPayload, changed: [String]? = nil) {
        self.kind = kind
        self.upstream = upstream
        self.audience = audience
        self.data = data
        self.changed = changed
    }
}

/// What an event carries, encoded as the API encodes it.
public struct FeedPayload: Sendable, Encodable {
    private let encodeValue: @Sendable (any Encoder) throws -> Void

    public init<Value: Encodable & Sendable>(_ value: Value) {
        self.encodeValue = { encoder in try value.encode(to: encoder) }
    }

    public func encode(to encoder: any Encoder) throws {
        try encodeValue(encoder)
    }
}

/// `upstream.state`'s data: how an upstream fared at its last poll.
public struct UpstreamStateChange: Sendable, Encodable, Equatable {
    public enum State: String, Sendable, Encodable {
        case ok
        /// Read in part (an organization account failed): what was read is reported, nothing removed.
        case degraded
        /// Not read: no change is reported until it answers again.
        case down
    }

    public var state: State
    public var previous: State
    /// Why, when it is not `ok` (the problem's detail, which names no secret).
    public var reason: String?

    public init(state: State, previous: State, reason: String?) {
        self.state = state
        self.previous = previous
        self.reason = reason
    }
}
