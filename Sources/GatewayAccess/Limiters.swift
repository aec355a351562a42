public import GatewayClock
import DequeModule
import Synchronization

/// Per-key token buckets (per caller), synchronous and thread-safe.
public final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    fileprivate let buckets = Mutex<[String: Bucket]>([:])
    private let clock: GatewayClock

    public init(clock: GatewayClock = .continuous) {
        self.clock = clock
    }

    /// Takes one token for `key`; nil when allowed, else the seconds to wait (`Retry-After`).
    public func take(_ key: String, rate: RateLimit) -> Int? {
        let now = clock.now
        return buckets.withLock { buckets in
            // Updated in place: one hash of the key per request.
            Self.take(from: &buckets[key, default: Bucket(tokens: rate.burst, updated: now)], rate: rate, now: now)
        }
    }

    private static func take(from bucket: inout Bucket, rate: RateLimit, now: ContinuousClock.Instant) -> Int? {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        bucket.tokens = min(rate.burst, bucket.tokens + seconds * rate.requestsPerSecond)
        bucket.updated = now
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            return nil
        }
        let wait = (1 - bucket.tokens) / max(rate.requestsPerSecond, 0.001)
        return max(1, Int(wait.rounded(.up)))
    }
}

/// Slows repeated failed authentication from one client: after `limit` failures within a
/// window, further attempts get 429 until the window passes. The same answer whether or not the
/// key (id) exists. Clients are counted by ``ClientAddresses/limiterKey(peer:forwardedFor:)``
/// (IPv6 by /64). Memory is bounded: at most `maxTracked` clients, the oldest window evicted
/// first; every failure costs O(1) amortized (windows expire from the front of a queue kept in
/// start order), never a scan of all of them.
public final class FailedAuthLimiter: Sendable {
    struct Window {
        var count: Int
        var started: ContinuousClock.Instant
    }

    /// A window's place in the expiry queue: the client and when its window started (an entry
    /// whose client has since started another window is skipped when it reaches the front).
    struct Started {
        var key: String
        var at: ContinuousClock.Instant
    }

    struct State {
        var windows: [String: Window] = [:]
        var order = Deque<Started>()
    }

    private let state = Mutex(State())
    /// How many clients have a window: zero (the common case) answers without the lock.
    private let tracked = Atomic<Int>(0)
    private let limit: Int
    private let window: Duration
    /// The most clients tracked at once.
    public let maxTracked: Int
    private let clock: GatewayClock

    public init(limit: Int, window: Duration = .seconds(60), maxTracked: Int = 100_000, clock: GatewayClock = .continuous) {
        self.limit = limit
        self.window = window
        self.maxTracked = max(1, maxTracked)
        self.clock = clock
    }

    /// Seconds to wait when `client` has failed too often; nil when it may try.
    public func blocked(_ client: String) -> Int? {
        guard tracked.load(ordering: .acquiring) > 0 else { return nil }
        let now = clock.now
        return state.withLock { state in
            guard let entry = state.windows[client], now - entry.started < window, entry.count >= limit else { return nil }
            let left = window - (now - entry.started)
            return max(1, Int(left.components.seconds) + (left.components.attoseconds > 0 ? 1 : 0))
        }
    }

    public func recordFailure(_ client: String) {
        let now = clock.now
        state.withLock { state in
            // Expired windows leave from the front (the queue is in start order).
            while let first = state.order.first, now - first.at >= window {
                state.order.removeFirst()
                if state.windows[first.key]?.started == first.at { state.windows[first.key] = nil }
            }
            // A new client past the bound: the oldest windows make room.
            if state.windows[client] == nil {
                while state.windows.count >= maxTracked, let first = state.order.popFirst() {
                    if state.windows[first.key]?.started == first.at { state.windows[first.key] = nil }
                }
            }
            if var entry = state.windows[client], now - entry.started < window {
                entry.count += 1
                state.windows[client] = entry
            } else {
                state.windows[client] = Window(count: 1, started: now)
                state.order.append(Started(key: client, at: now))
            }
            tracked.store(state.windows.count, ordering: .releasing)
        }
    }

    /// How many clients are tracked now (for tests and metrics).
    public var trackedClients: Int { tracked.load(ordering: .acquiring) }
}
