public import GatewayClock
/// Authentication and authorization settings of a running gateway: an immutable snapshot (swap
/// the whole value on reload) plus the limiters. Every check is synchronous.
public final class AccessControl: Sendable {
    public let directory: CallerDirectory
    public let policy: AccessPolicy
    public let defaultRate: RateLimit
    public let rateLimiter: RateLimiter
    public let failedAuth: FailedAuthLimiter
    /// The gateway's own token issuer, when `auth.tokens` is configured.
    public let tokens: GatewayTokenIssuer?
    /// An external identity provider, when `auth.idp` is configured.
    public let identityProvider: IdentityProvider?
    /// Which client a request counts against for failed authentication (`listen.trustedProxies`).
    public let clientAddresses: ClientAddresses

    public init(
        callers: [CallerRecord], policy: AccessPolicy, defaultRate: RateLimit, failedAuthPerMinute: Int,
        tokens: GatewayTokenIssuer? = nil, identityProvider: IdentityProvider? = nil, trustedProxies: [AddressRange] = [],
        clock: GatewayClock = .continuous
    ) {
        self.clientAddresses = ClientAddresses(trustedProxies: trustedProxies)
        self.tokens = tokens
        self.identityProvider = identityProvider
        self.directory = CallerDirectory(callers)
        self.policy = policy
        self.defaultRate = defaultRate
        self.rateLimiter = RateLimiter(clock: clock)
        self.failedAuth = FailedAuthLimiter(limit: failedAuthPerMinute, clock: clock)
    }

    /// The outcome of authenticating one request.
    public enum Outcome: Sendable, Equatable {
        case caller(Caller)
        /// 401: no credentials were sent.
        case missing
        /// 401: credentials were sent and are not valid (whatever the reason: no detail leaks).
        case invalid
        /// 429: this address failed too often; try again after so many seconds.
        case tooManyFailures(retryAfter: Int)
        /// 429: the caller is over its request rate.
        case rateLimited(retryAfter: Int)
    }

    /// Authenticates a client certificate the front end verified (TLS with a client CA), then
    /// applies the caller's rate. A certificate bound to no caller is an invalid credential.
    public func authenticate(certificate: PeerCertificate, address: String) -> Outcome {
        if let wait = failedAuth.blocked(address) { return .tooManyFailures(retryAfter: wait) }
        guard let record = directory.authenticate(certificate: certificate) else {
            failedAuth.recordFailure(address)
            return .invalid
        }
        return admitted(Caller(id: record.id, roles: record.roles, scopes: record.scopes, method: .clientCertificate))
    }

    /// Authenticates an API key presented by `address`, then applies the caller's rate.
    public func authenticate(apiKey: String?, address: String) -> Outcome {
        var memo = PresentedKeyMemo()
        return authenticate(apiKey: apiKey, address: address, memo: &memo)
    }

    /// Authenticates an API key presented by `address` on a connection that remembers the last
    /// key it presented (`memo`), then applies the caller's rate. The same key again, under the
    /// same configuration, is the same caller without hashing and scanning the directory again;
    /// a blocked address and the rate are checked every time, as for any key.
    public func authenticate(apiKey: String?, address: String, memo: inout PresentedKeyMemo) -> Outcome {
        if let wait = failedAuth.blocked(address) { return .tooManyFailures(retryAfter: wait) }
        guard let apiKey, !apiKey.isEmpty else { return .missing }
        if let known = memo.caller(for: apiKey, under: self) { return admitted(known.caller, rate: known.rate, bucket: known.bucket) }
        guard let record = directory.authenticate(apiKey: apiKey) else {
            failedAuth.recordFailure(address)
            return .invalid
        }
        let caller = Caller(id: record.id, roles: record.roles, scopes: record.scopes, method: .apiKey)
        let rate = rate(of: record)
        let bucket = rateLimiter.bucket(caller.id)
        memo = PresentedKeyMemo(key: apiKey, caller: caller, rate: rate, bucket: bucket, access: self)
        return admitted(caller, rate: rate, bucket: bucket)
    }

    /// An authenticated caller, held to its rate (`rate` and its `bucket`, when already known,
    /// else looked up by its id): every admitted request takes one request of it, here and nowhere
    /// else.
    func admitted(_ caller: Caller, rate: RateLimit? = nil, bucket: RateLimiter.Bucket? = nil) -> Outcome {
        let rate = rate ?? self.rate(of: caller.id)
        if let wait = rateLimiter.take(from: bucket ?? rateLimiter.bucket(caller.id), rate: rate) { return .rateLimited(retryAfter: wait) }
        return .caller(caller)
    }
}

/// The last valid API key one connection presented, and the caller it authenticated under which
/// configuration. Kept by the connection (never shared between connections), and compared in
/// constant time (a proxy may carry several clients' requests on one connection); the
/// constant-time scan of every configured key stays the way any new key is authenticated. A
/// reload makes a new ``AccessControl``, which the memo does not match.
public struct PresentedKeyMemo: Sendable {
    /// A remembered caller, its rate (both as the configuration in force defined them) and its
    /// bucket in that configuration's rate limiter.
    struct Known {
        var caller: Caller
        var rate: RateLimit
        var bucket: RateLimiter.Bucket
    }

    private var key: String
    private var known: Known?
    /// Held, not only compared by identity: a freed configuration's address can be reused by the next.
    private var access: AccessControl?

    /// Remembers nothing yet.
    public init() {
        key = ""
        known = nil
        access = nil
    }

    init(key: String, caller: Caller, rate: RateLimit, bucket: RateLimiter.Bucket, access: AccessControl) {
        self.key = key
        self.known = Known(caller: caller, rate: rate, bucket: bucket)
        self.access = access
    }

    /// The remembered caller and its rate when `key` is the key it was authenticated by under `access`.
    func caller(for key: String, under access: AccessControl) -> Known? {
        guard self.access === access, let known, Self.sameKey(self.key, key) else { return nil }
        return known
    }

    /// The remembered key alone (nil while no key has authenticated): what a parser matches the
    /// bytes of a presented key against, without copying the rest of the memo.
    public var remembered: RememberedKey? { known == nil ? nil : RememberedKey(text: key) }

    /// Whether `presented` is the remembered key, in a time that depends on the lengths alone,
    /// never on where the two first differ: a connection that a proxy shares between its clients
    /// must not let one of them time its way, byte by byte, to the key another presented before.
    /// A presented text that is the remembered string itself (its storage: what
    /// ``RememberedKey/text(matching:)`` hands a parser after comparing the bytes in constant
    /// time) is not compared again.
    static func sameKey(_ remembered: String, _ presented: String) -> Bool {
        var remembered = remembered
        var presented = presented
        return remembered.withUTF8 { known in
            presented.withUTF8 { text in
                if known.count == text.count, known.baseAddress == text.baseAddress { return true }
                return ConstantTime.equal(UnsafeRawBufferPointer(known), UnsafeRawBufferPointer(text))
            }
        }
    }
}

/// A connection's remembered API key (the last that authenticated, ``PresentedKeyMemo``), for
/// matching the bytes a request presents against it.
public struct RememberedKey: Sendable {
    let text: String

    /// The key's text when `presented` holds the same bytes (compared in constant time, as
    /// ``PresentedKeyMemo`` compares keys), so that a connection presenting its key again needs no
    /// new string for it; nil otherwise.
    public func text(matching presented: UnsafeRawBufferPointer) -> String? {
        let same = text.utf8.withContiguousStorageIfAvailable { ConstantTime.equal(UnsafeRawBufferPointer($0), presented) } ?? false
        return same ? text : nil
    }
}
