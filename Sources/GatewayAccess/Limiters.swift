public import GatewayClock
import DequeModule
import Synchronization

/// Per-key token buckets (per caller), synchronous and thread-safe.
///
/// Each bucket is kept as the generic cell rate algorithm keeps it: one number, the time at which
/// the bucket would be full again were nothing more taken (its "theoretical arrival time"). A
/// request at `now` is allowed when that time, advanced by one request's interval, is no more
/// than the burst's worth of intervals ahead of `now`; this allows and refuses exactly what a
/// token bucket of `burst` tokens refilled at `requestsPerSecond` does, with the same
/// `Retry-After`. One number fits one atomic, so taking a request is a compare-and-swap on the
/// caller's own bucket: no lock, and no lookup when the caller's ``Bucket`` is already at hand (a
/// connection keeps the one of the API key it presented).
public final class RateLimiter: Sendable {
    /// One caller's bucket: its theoretical arrival time in nanoseconds since the limiter's origin.
    public final class Bucket: Sendable {
        fileprivate let arrival = Atomic<Int64>(0)
    }

    fileprivate let buckets = Mutex<[String: Bucket]>([:])
    private let clock: GatewayClock
    /// Time zero of every bucket: a new bucket (arrival 0) is full.
    private let origin: ContinuousClock.Instant

    public init(clock: GatewayClock = .continuous) {
        self.clock = clock
        self.origin = clock.now
    }

    /// The bucket of `key`, made (full) the first time it is asked for.
    public func bucket(_ key: String) -> Bucket {
        buckets.withLock { buckets in
            if let known = buckets[key] { return known }
            let made = Bucket()
            buckets[key] = made
            return made
        }
    }

    /// Takes one request for `key`; nil when allowed, else the seconds to wait (`Retry-After`).
    public func take(_ key: String, rate: RateLimit) -> Int? {
        take(from: bucket(key), rate: rate)
    }

    /// Takes one request from `bucket` (one of this limiter's); nil when allowed, else the seconds
    /// to wait (`Retry-After`, at least 1).
    public func take(from bucket: Bucket, rate: RateLimit) -> Int? {
        let now = (clock.now - origin).wholeNanoseconds
        // The interval between two requests at the rate, and how far ahead of now the bucket
        // may run: a full bucket of `burst` requests is `burst - 1` intervals of tolerance.
        let perSecond = max(rate.requestsPerSecond, 0.001)
        let interval = max(1, Int64((1e9 / perSecond).rounded()))
        // (A burst too large for nanoseconds in 62 bits is as good as unlimited.)
        let tolerance = Int64(min(max(((rate.burst - 1) * 1e9 / perSecond).rounded(), -0x1p62), 0x1p62))
        var seen = bucket.arrival.load(ordering: .relaxed)
        while true {
            let arrival = max(seen, now)
            let ahead = arrival - now
            if ahead > tolerance {
                // Refused: nothing is taken. The wait is until one more request fits.
                let wait = ahead - tolerance
                return max(1, Int((wait + 999_999_999) / 1_000_000_000))
            }
            let (exchanged, current) = bucket.arrival.compareExchange(expected: seen, desired: arrival + interval, ordering: .relaxed)
            if exchanged { return nil }
            seen = current
        }
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
