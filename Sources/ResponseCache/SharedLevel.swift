public import GatewayClock
import Synchronization

/// A second cache level shared by every replica (the shared tier), behind each replica's own
/// ``ResponseCache``: a local miss asks it before the upstream, and one replica at a time fills
/// a key for all (a claim with an expiry and a fencing token). It holds bytes; what they mean is
/// the caller's (see ``SharedFills``). Every method degrades to "nothing shared" when the level
/// is down: the replica then fills from its upstream, as a single gateway does.
public protocol SharedCacheLevel: Sendable {
    /// The value stored under `key` while fresh; else a claim to fill it (held for `lifetime`
    /// unless stored or released first); else `.busy` when another replica holds the claim.
    /// `skipValue` (a `no-cache` refresh) claims without looking at what is stored.
    func lookup(_ key: String, claimFor lifetime: Duration, skipValue: Bool) async -> SharedLookup
    /// Stores a filled value for `ttl` under the claim (unless a later claim has stored already:
    /// the fence), releases it, and wakes every replica waiting for `key`.
    func store(_ bytes: [UInt8], ttl: Duration, claim: SharedClaim) async
    /// Gives a claim up (its fill failed, or its value is not to be shared) and wakes the waiters,
    /// who then fill for themselves at once (for a moment, lookups of the key answer
    /// `.unavailable`): a failing upstream is not tried again by one replica after another.
    func release(_ claim: SharedClaim) async
    /// Returns when `key` was stored or released by any replica since `since`, or after `timeout`.
    func waitForFill(_ key: String, since: ContinuousClock.Instant, timeout: Duration) async
    /// Removes the values stored under `keys` and under every key starting with one of
    /// `prefixes` ("" is every key); false when the level could not be reached.
    func purge(keys: [String], prefixes: [String]) async -> Bool
}

/// What ``SharedCacheLevel/lookup(_:claimFor:skipValue:)`` found.
public enum SharedLookup: Sendable {
    /// A fresh value, and how long ago it was stored.
    case found(bytes: [UInt8], age: Duration)
    /// This replica fills the key; the others wait.
    case claimed(SharedClaim)
    /// Another replica is filling it.
    case busy
    /// The level did not answer (down, slow, refused): fill locally.
    case unavailable
}

/// A held claim on a key: the fencing token orders fills, so a holder whose claim expired never
/// overwrites what a later one stored; `holder` (random) tells this holder's claim from another's.
public struct SharedClaim: Sendable, Equatable {
    public var key: String
    public var fence: Int64
    public var holder: String
    public init(key: String, fence: Int64, holder: String) {
        self.key = key
        self.fence = fence
        self.holder = holder
    }
}

/// Counters of the shared level, for `/metrics` and the status page.
public struct SharedLevelStatistics: Sendable, Equatable, Codable {
    /// Local misses answered from the shared level.
    public var hits = 0
    /// Local misses this replica filled from its upstream for every replica (it held the claim).
    public var misses = 0
    /// Waits for another replica's fill.
    public var lockWaits = 0
    /// Fills made locally because the level was unavailable, a wait ran out, or the last fill of
    /// the key was not shared (it failed, or its value was too large).
    public var fallbacks = 0
    /// Values stored under a claim.
    public var stores = 0
    public init() {}
}

/// Fills through a ``SharedCacheLevel``: wraps a local fill so that a value another replica
/// stored is taken instead, and a value this replica fills is stored for the others. `encode`
/// and `decode` turn a value into the level's bytes and back (nil: not shared).
public final class SharedFills<Value: Sendable>: Sendable {
    public let level: any SharedCacheLevel
    let encode: @Sendable (CacheFill<Value>) -> [UInt8]?
    let decode: @Sendable ([UInt8]) -> CacheFill<Value>?
    let clock: GatewayClock
    private let counters = Mutex(SharedLevelStatistics())

    public init(
        level: any SharedCacheLevel, clock: GatewayClock = .continuous, encode: @escaping @Sendable (CacheFill<Value>) -> [UInt8]?,
        decode: @escaping @Sendable ([UInt8]) -> CacheFill<Value>?
    ) {
        self.level = level
        self.clock = clock
        self.encode = encode
        self.decode = decode
    }

    public var statistics: SharedLevelStatistics { counters.withLock { $0 } }

    /// The value for `key`: the shared level's when fresh there; else this replica's `fill`,
    /// stored for `ttl` for every replica (when it holds the claim); else, while another replica
    /// fills it, that replica's value (woken when it is stored), up to `waitBudget`, after which
    /// (or when the level is unavailable) `fill` runs here. `claimLifetime` bounds a dead
    /// holder's claim. `bypass` (a `no-cache` refresh) does not take what is stored, but still
    /// waits for a fill already running on another replica (it is as new).
    public func fill(
        _ key: String, ttl: Duration, claimLifetime: Duration, waitBudget: Duration, bypass: Bool,
        _ fill: @Sendable () async throws -> CacheFill<Value>
    ) async throws -> CacheFill<Value> {
        let deadline = clock.now + waitBudget
        var skipValue = bypass
        while true {
            let asked = clock.now
            switch await level.lookup(key, claimFor: claimLifetime, skipValue: skipValue) {
            case .found(let bytes, let age):
                if var found = decode(bytes) {
                    found.age = age
                    counters.withLock { $0.hits += 1 }
                    return found
                }
                // Not ours to read (another version's layout): fill here, share nothing.
                counters.withLock { $0.fallbacks += 1 }
                return try await fill()
            case .claimed(let claim):
                counters.withLock { $0.misses += 1 }
                let filled: CacheFill<Value>
                do {
                    filled = try await fill()
                } catch {
                    await level.release(claim)
                    throw error
                }
                if filled.cacheable, ttl > .zero, let bytes = encode(filled) {
                    await level.store(bytes, ttl: ttl, claim: claim)
                    counters.withLock { $0.stores += 1 }
                } else {
                    await level.release(claim)
                }
                return filled
            case .busy:
                let left = deadline - clock.now
                guard left > .zero else {
                    counters.withLock { $0.fallbacks += 1 }
                    return try await fill()
                }
                counters.withLock { $0.lockWaits += 1 }
                try Task.checkCancellation()
                await level.waitForFill(key, since: asked, timeout: min(left, .seconds(1)))
                skipValue = false
            case .unavailable:
                counters.withLock { $0.fallbacks += 1 }
                return try await fill()
            }
        }
    }
}
