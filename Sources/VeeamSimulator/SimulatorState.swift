public import Foundation
import Synchronization

/// Which simulated product.
public enum SimulatedProduct: String, Sendable, Codable, CaseIterable {
    case vb365
    case vspc
}

/// How a simulated VSPC spells its answers.
public enum SimulatorDialect: String, Sendable, Codable, CaseIterable {
    /// The seeds' spelling: `general`, `gatewayPool`, `"throttlingUnit": null` (older servers).
    case seed
    /// What a VSPC 9.1 (REST 3.6.1) sends: PascalCase enums, `throttlingUnit` always set.
    case v3_6_1 = "3.6.1"
}

/// Which VB365 REST version a simulated VB365 serves (`--vb365-api`). The simulator's own reading
/// of the specs, on purpose apart from the gateway's `VB365APIVersion`.
public enum SimulatorVB365API: String, Sendable, Codable, CaseIterable, Comparable {
    /// VB365 5 (OWIN): `/v5/Token`, HTTP-date `.issued`, OAuth error bodies, the seed's spellings.
    case v5
    /// VB365 6: `/v6/token`, ISO-8601 `.issued`, `RESTExceptionInfo` errors, `extendedView` required.
    case v6
    /// VB365 7: `disable_antiforgery_token`, `errorCode`, `description`.
    case v7
    /// VB365 8: paged `/Organizations`, ten error codes and `stackTrace`, anonymous `/v8/Health`.
    case v8

    var number: Int { Int(rawValue.dropFirst()) ?? 5 }
    public static func < (a: Self, b: Self) -> Bool { a.number < b.number }
}

/// Faults injected into one product's resource routes (token routes only get `latencyMs`).
public struct SimulatorFaults: Sendable, Codable, Equatable {
    /// Added to every request, token requests included.
    public var latencyMs: Int = 0
    /// Share of resource requests answered with a server error (VB365: 500, VSPC: 520).
    public var errorRate: Double = 0
    /// Share answered 200 with a truncated, malformed JSON body.
    public var malformedRate: Double = 0
    /// Share whose connection is closed mid-body.
    public var resetRate: Double = 0
    /// Share answered 429 (`retryAfter` seconds in the VSPC error object).
    public var throttleRate: Double = 0
    public var retryAfterSeconds: Int = 5
    /// Share answered 202 with a `Location` to an async action (VSPC).
    public var asyncRate: Double = 0
    /// What token grants say for `expires_in` instead of the token's lifetime, as JSON: a whole
    /// number when it reads as one, another number when it reads as one, else a string (a
    /// server that misstates its tokens' lifetime; the token itself lives as configured).
    public var expiresIn: String?

    /// `expires_in` for a grant whose token lives `lifetime` seconds.
    func expiresInValue(lifetime: Int) -> JSONValue {
        guard let expiresIn else { return .int(lifetime) }
        if let whole = Int(expiresIn) { return .int(whole) }
        if let number = Double(expiresIn) { return .double(number) }
        return .string(expiresIn)
    }

    public init(
        latencyMs: Int = 0, errorRate: Double = 0, malformedRate: Double = 0, resetRate: Double = 0,
        throttleRate: Double = 0, retryAfterSeconds: Int = 5, asyncRate: Double = 0
    ) {
        self.latencyMs = latencyMs
        self.errorRate = errorRate
        self.malformedRate = malformedRate
        self.resetRate = resetRate
        self.throttleRate = throttleRate
        self.retryAfterSeconds = retryAfterSeconds
        self.asyncRate = asyncRate
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        latencyMs = try c.decodeIfPresent(Int.self, forKey: .latencyMs) ?? 0
        errorRate = try c.decodeIfPresent(Double.self, forKey: .errorRate) ?? 0
        malformedRate = try c.decodeIfPresent(Double.self, forKey: .malformedRate) ?? 0
        resetRate = try c.decodeIfPresent(Double.self, forKey: .resetRate) ?? 0
        throttleRate = try c.decodeIfPresent(Double.self, forKey: .throttleRate) ?? 0
        retryAfterSeconds = try c.decodeIfPresent(Int.self, forKey: .retryAfterSeconds) ?? 5
        asyncRate = try c.decodeIfPresent(Double.self, forKey: .asyncRate) ?? 0
        expiresIn = try c.decodeIfPresent(String.self, forKey: .expiresIn)
    }
}

/// Counters of one product, readable by tests (`GET /_sim/counters`).
public struct SimulatorCounters: Sendable, Codable, Equatable {
    /// Requests per route, e.g. `"GET /v5/Organization": 3`.
    public var requests: [String: Int] = [:]
    /// Successful password-grant logins.
    public var logins = 0
    public var loginFailures = 0
    /// Successful refresh-token grants.
    public var refreshes = 0
    public var refreshFailures = 0
    /// Requests refused with 401 (missing, expired or revoked token).
    public var unauthorized = 0
    /// Requests refused with 403 (wrong kind of account, role not allowed).
    public var forbidden = 0
    /// Faults injected (errors, malformed bodies, resets, 429s, 202s).
    public var faultsInjected = 0
    /// `X-Client-Version` values received (VSPC clients send the REST version they speak), and
    /// how often; `"none"` counts requests without one.
    public var clientVersions: [String: Int] = [:]
    public init() {}

    /// Requests to resource routes (everything but the token endpoint).
    public var resourceRequests: Int {
        requests.filter { !$0.key.lowercased().hasSuffix("/token") }.values.reduce(0, +)
    }
}

/// Tokens, counters, faults, the simulated clock and the estate, shared by both products' routes.
public final class SimulatorState: Sendable {
    struct AccessToken {
        var product: SimulatedProduct
        var username: String
        var expiresAt: Date
        var revoked = false
    }

    struct RefreshToken {
        var product: SimulatedProduct
        var username: String
        /// VB365 v7+: the antiforgery cookie a refresh must present (a login without
        /// `disable_antiforgery_token=true`); nil when none is needed.
        var antiforgery: String?
    }

    /// What redeeming a refresh token gave.
    enum Redemption {
        case user(String)
        case invalid
        /// The token was issued with an antiforgery cookie and the refresh did not present it.
        case antiforgeryMissing
    }

    struct Inner {
        var accessTokens: [String: AccessToken] = [:]
        var refreshTokens: [String: RefreshToken] = [:]
        /// Every access and refresh token ever issued, spent or not (for leak checks).
        var everIssued: [String] = []
        var counters: [SimulatedProduct: SimulatorCounters] = [:]
        var faults: [SimulatedProduct: SimulatorFaults] = [:]
        var clockOffset: TimeInterval = 0
        var tokenLifetime: TimeInterval
        var rejectRefresh = false
        var requestIDs: [SimulatedProduct: [String]] = [:]
        var traceparents: [SimulatedProduct: [String]] = [:]
    }

    private let inner: Mutex<Inner>
    /// VSPC's queued actions (``SimulatedAsyncAction``), by id, oldest first in `order`.
    struct AsyncActionStore {
        var byID: [String: SimulatedAsyncAction] = [:]
        var order: [String] = []
    }
    let asyncActions = Mutex(AsyncActionStore())
    /// The estate both products serve, what is derived from it, and VSPC's activity log
    /// (``EstateStore``; read and changed through SimulatorState+Estate.swift).
    let estateStore: Mutex<EstateStore>

    /// `fixtures` is the estate served from the start; ``changeEstate(_:)`` changes it while running.
    public init(tokenLifetime: Duration, faults: [SimulatedProduct: SimulatorFaults] = [:], fixtures: SimulatorFixtures = SimulatorFixtures()) {
        let seconds = Double(tokenLifetime.components.seconds) + Double(tokenLifetime.components.attoseconds) / 1e18
        self.inner = Mutex(Inner(faults: faults, tokenLifetime: seconds))
        self.estateStore = Mutex(EstateStore(fixtures: fixtures))
    }

    /// The simulated now: the wall clock plus any offset set through ``advanceClock(by:)``.
    public var now: Date { Date().addingTimeInterval(inner.withLock { $0.clockOffset }) }

    /// Moves the simulated clock forward, so tokens expire without waiting.
    public func advanceClock(by seconds: TimeInterval) {
        inner.withLock { $0.clockOffset += seconds }
    }

    public var tokenLifetime: TimeInterval {
        get { inner.withLock { $0.tokenLifetime } }
        set { inner.withLock { $0.tokenLifetime = newValue } }
    }

    /// When true, every refresh-token grant is refused (as after a server restart).
    public var rejectRefresh: Bool {
        get { inner.withLock { $0.rejectRefresh } }
        set { inner.withLock { $0.rejectRefresh = newValue } }
    }

    // MARK: Counters

    public func counters(_ product: SimulatedProduct) -> SimulatorCounters {
        inner.withLock { $0.counters[product] ?? SimulatorCounters() }
    }

    /// The `X-Request-Id` values received, newest last (at most 1,000 per product).
    public func receivedRequestIDs(_ product: SimulatedProduct) -> [String] {
        inner.withLock { $0.requestIDs[product] ?? [] }
    }

    /// The W3C `traceparent` values received, newest last (at most 1,000 per product).
    public func receivedTraceparents(_ product: SimulatedProduct) -> [String] {
        inner.withLock { $0.traceparents[product] ?? [] }
    }

    func recordRequestID(_ id: String, product: SimulatedProduct) { record(id, in: \.requestIDs, product: product) }
    func recordTraceparent(_ value: String, product: SimulatedProduct) { record(value, in: \.traceparents, product: product) }

    /// Keeps a received header value (its first 200 characters), the last 1,000 per product.
    private func record(_ value: String, in list: WritableKeyPath<Inner, [SimulatedProduct: [String]]>, product: SimulatedProduct) {
        inner.withLock { inner in
            var values = inner[keyPath: list][product] ?? []
            values.append(String(value.prefix(200)))
            if values.count > 1000 { values.removeFirst(values.count - 1000) }
            inner[keyPath: list][product] = values
        }
    }

    public func resetCounters() {
        inner.withLock { $0.counters.removeAll() }
    }

    func count(_ product: SimulatedProduct, _ update: (inout SimulatorCounters) -> Void) {
        inner.withLock { inner in
            var counters = inner.counters[product] ?? SimulatorCounters()
            update(&counters)
            inner.counters[product] = counters
        }
    }

    // MARK: Faults

    public func faults(_ product: SimulatedProduct) -> SimulatorFaults {
        inner.withLock { $0.faults[product] ?? SimulatorFaults() }
    }

    public func setFaults(_ faults: SimulatorFaults, for product: SimulatedProduct) {
        inner.withLock { $0.faults[product] = faults }
    }

    // MARK: Tokens

    struct IssuedToken {
        var accessToken: String
        var refreshToken: String
        var issued: Date
        var expires: Date
        var lifetime: Int
    }

    func issueToken(product: SimulatedProduct, username: String, antiforgery: String? = nil) -> IssuedToken {
        let access = Self.randomToken()
        let refresh = Self.randomToken()
        return inner.withLock { inner in
            let issued = Date().addingTimeInterval(inner.clockOffset)
            let expires = issued.addingTimeInterval(inner.tokenLifetime)
            inner.accessTokens[access] = AccessToken(product: product, username: username, expiresAt: expires)
            inner.refreshTokens[refresh] = RefreshToken(product: product, username: username, antiforgery: antiforgery)
            inner.everIssued.append(contentsOf: [access, refresh])
            return IssuedToken(
                accessToken: access, refreshToken: refresh, issued: issued, expires: expires,
                lifetime: Int(min(max(1, inner.tokenLifetime.rounded(.up)), Double(Int32.max)))
            )
        }
    }

    /// Consumes a refresh token (each works once); returns its user.
    func redeemRefreshToken(_ token: String, product: SimulatedProduct) -> String? {
        if case .user(let user) = redeemRefreshToken(token, product: product, antiforgery: nil) { return user }
        return nil
    }

    /// Consumes a refresh token, checking the antiforgery cookie it was issued with, if any. A
    /// refresh refused for a missing cookie does not spend the token.
    func redeemRefreshToken(_ token: String, product: SimulatedProduct, antiforgery: String?) -> Redemption {
        inner.withLock { inner in
            guard !inner.rejectRefresh, let entry = inner.refreshTokens[token], entry.product == product else { return .invalid }
            if let required = entry.antiforgery, required != antiforgery { return .antiforgeryMissing }
            inner.refreshTokens[token] = nil
            return .user(entry.username)
        }
    }

    /// The user of a valid bearer token, or nil when missing, unknown, expired or revoked.
    func authenticate(bearer: String?, product: SimulatedProduct) -> String? {
        guard let bearer else { return nil }
        return inner.withLock { inner in
            guard let token = inner.accessTokens[bearer], token.product == product, !token.revoked,
                token.expiresAt > Date().addingTimeInterval(inner.clockOffset)
            else { return nil }
            return token.username
        }
    }

    /// Every access and refresh token issued so far, spent, expired and revoked ones included
    /// (tests and the chaos run search logs and answers for them).
    public var issuedTokens: [String] {
        inner.withLock { $0.everIssued }
    }

    /// Revokes every access and refresh token of a product (of one user, if given).
    public func revokeTokens(product: SimulatedProduct, username: String? = nil) {
        inner.withLock { inner in
            for (key, token) in inner.accessTokens where token.product == product && (username == nil || token.username == username) {
                inner.accessTokens[key]?.revoked = true
            }
            inner.refreshTokens = inner.refreshTokens.filter { !($0.value.product == product && (username == nil || $0.value.username == username)) }
        }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
    }
}
