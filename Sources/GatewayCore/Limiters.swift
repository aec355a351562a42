import Synchronization

/// Per-key token buckets (per caller), synchronous and thread-safe.
public final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    fileprivate let buckets = Mutex<[String: Bucket]>([:])
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.now = now
    }

    /// Takes one token for `key`; nil when allowed, else the seconds to wait (`Retry-After`).
    public func take(_ key: String, rate: RateLimit) -> Int? {
        let now = now()
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: rate.burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(rate.burst, bucket.tokens + seconds * rate.requestsPerSecond)
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            let wait = (1 - bucket.tokens) / max(rate.requestsPerSecond, 0.001)
            return max(1, Int(wait.rounded(.up)))
        }
    }
}

extension RateLimiter {
    /// Gives back the token a request took when that request is handed to another path that
    /// will take its own (the hot path passing a cache miss to the router): one request, one token.
    public func refund(_ key: String, rate: RateLimit) {
        buckets.withLock { buckets in
            guard var bucket = buckets[key] else { return }
            bucket.tokens = min(rate.burst, bucket.tokens + 1)
            buckets[key] = bucket
        }
    }
}

/// Slows repeated failed authentication from one address: after `limit` failures within a
/// window, further attempts get 429 until the window passes. The same answer whether or not the
/// key (id) exists.
public final class FailedAuthLimiter: Sendable {
    struct Window {
        var count: Int
        var started: ContinuousClock.Instant
    }

    private let windows = Mutex<[String: Window]>([:])
    /// How many addresses have a window: zero (the common case) answers without the lock.
    private let tracked = Atomic<Int>(0)
    private let limit: Int
    private let window: Duration
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(limit: Int, window: Duration = .seconds(60), now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.limit = limit
        self.window = window
        self.now = now
    }

    /// Seconds to wait when `address` has failed too often; nil when it may try.
    public func blocked(_ address: String) -> Int? {
        guard tracked.load(ordering: .acquiring) > 0 else { return nil }
        let now = now()
        return windows.withLock { windows in
            guard let entry = windows[address] else { return nil }
            if now - entry.started >= window {
                windows[address] = nil
                tracked.store(windows.count, ordering: .releasing)
                return nil
            }
            guard entry.count >= limit else { return nil }
            let left = window - (now - entry.started)
            return max(1, Int(left.components.seconds) + (left.components.attoseconds > 0 ? 1 : 0))
        }
    }

    public func recordFailure(_ address: String) {
        let now = now()
        windows.withLock { windows in
            if var entry = windows[address], now - entry.started < window {
                entry.count += 1
                windows[address] = entry
            } else {
                windows[address] = Window(count: 1, started: now)
            }
            if windows.count > 100_000 { windows = windows.filter { now - $0.value.started < window } }
            tracked.store(windows.count, ordering: .releasing)
        }
    }
}
