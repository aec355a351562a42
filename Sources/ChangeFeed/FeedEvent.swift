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
    /// `{"id":…,"type":…,"time":…,"upstream":…,"data":…[,"changed":[…]]}`.
    public let bytes: [UInt8]
    /// The cursor naming it (`{epoch}.{sequence}`).
    public let id: String
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
