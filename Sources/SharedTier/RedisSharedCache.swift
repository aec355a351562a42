import Foundation
import GatewayClock
public import Logging
public import ResponseCache

/// The shared cache level in Redis (``SharedCacheLevel``), behind each replica's local cache.
///
/// - **Values**: `{prefix}cache:{KEY}` holds AES-GCM (``Sealer``) of the payload with the TTL it
///   was stored with and the wall-clock time it was stored (``SealedValue``), expiring after that
///   TTL (`PX`): present means fresh, and its age is the TTL less what Redis says is left
///   (`PTTL`). The sealed time bounds that: a value older than its sealed TTL (plus
///   ``SealedValue/clockSkewMilliseconds``) is refused, so whoever can write to Redis but lacks the key cannot
///   pin stale data by setting an old value again with a longer expiry. A value over
///   ``maxValueBytes`` is not shared (each replica fills it itself).
/// - **One fill at a time**: `{prefix}cache:{KEY}:lock` holds the claim, `fence:holder`: the
///   fence a number from `{prefix}fences` (`INCR`), the holder random; it expires (a dead
///   holder's claim lapses). A store is written only when its fence is above the last stored or
///   purged one (`…:fence`), so a holder whose claim lapsed, or that began before a purge, never
///   overwrites what came after. Looking, claiming, storing and releasing are each one Lua
///   script: one round trip each, and no replica sees half of another's step.
/// - **Given up**: a released claim (a failed fill, a value not to share) leaves `…:skip` for
///   ``skipLifetime``: lookups then answer `.unavailable` and the waiters fill for themselves
///   at once, instead of claiming and failing one after another.
/// - **Wake-ups**: a store or a release publishes the key on `{prefix}filled`; every replica's
///   subscriber hands it to the ``FillNotifier`` its waiters sleep on.
///
/// Every command is bounded by `shared.redis.timeout` and the client's circuit breaker; any
/// failure reads as `.unavailable` and the replica fills from its upstream.
public final class RedisSharedCache: SharedCacheLevel {
    public let client: RedisClient
    public let notifier: FillNotifier
    private let sealer: Sealer
    private let logger: Logger
    /// Values larger than this (sealed) are not shared: moving them within a command's budget
    /// (`timeout`, 50 ms by default) cannot be counted on.
    public let maxValueBytes: Int
    /// How long lookups answer `.unavailable` after a claim was given up.
    public let skipLifetime: Duration = .seconds(2)

    public init(client: RedisClient, encryptionKey: String, notifier: FillNotifier, logger: Logger, maxValueBytes: Int = 4 << 20) {
        self.client = client
        self.sealer = Sealer(secret: encryptionKey)
        self.notifier = notifier
        self.logger = logger
        self.maxValueBytes = maxValueBytes
    }

    /// The channel stores and releases are announced on (shared with logins).
    public var channel: String { RedisSharedTier.filledChannel(client.settings) }

    /// `{prefix}cache:{…|tenant|vspc-main.…}`: the braces make the key its own hash tag, so a
    /// value, its lock and its fence live in one slot (the global fence counter does not: Redis
    /// Cluster is not supported, see docs/operations.md).
    func valueKey(_ key: String) -> String { client.settings.keyPrefix + "cache:{" + key + "}" }
    var fences: String { client.settings.keyPrefix + "fences" }

    static let lookupScript = """
        if ARGV[1] == '0' then
          local v = redis.call('GET', KEYS[1])
          if v then return {1, v, redis.call('PTTL', KEYS[1])} end
        end
        if redis.call('EXISTS', KEYS[4]) == 1 then return {4} end
        if redis.call('EXISTS', KEYS[2]) == 1 then return {3} end
        local f = redis.call('INCR', KEYS[3])
        redis.call('SET', KEYS[2], f .. ':' .. ARGV[3], 'PX', ARGV[2])
        return {2, f}
        """

    public func lookup(_ key: String, claimFor lifetime: Duration, skipValue: Bool) async -> SharedLookup {
        let name = valueKey(key)
        let holder = Self.randomHolder()
        do {
            let reply = try await client.command([
                "EVAL", Self.lookupScript, "4", name, name + ":lock", fences, name + ":skip", skipValue ? "1" : "0",
                String(max(1, lifetime.clampedMilliseconds)), holder,
            ])
            guard case .array(let parts) = reply, case .integer(let kind)? = parts.first else { return .unavailable }
            switch kind {
            case 1:
                guard parts.count == 3, let sealed = parts[1].bytes, case .integer(let left) = parts[2], let plain = sealer.open(sealed, for: name)
                else {
                    logger.warning("a shared cache value did not decrypt (another encryption key?); filled here", metadata: ["key": "\(key)"])
                    return .unavailable
                }
                guard let value = SealedValue(plain), let age = value.age(left: Int64(left), now: Date()) else {
                    logger.warning("a shared cache value is past the lifetime sealed in it (rewritten with a longer expiry?); filled here", metadata: ["key": "\(key)"])
                    return .unavailable
                }
                return .found(bytes: value.payload, age: age)
            case 2:
                guard parts.count == 2, case .integer(let fence) = parts[1] else { return .unavailable }
                return .claimed(SharedClaim(key: key, fence: fence, holder: holder))
            case 3:
                return .busy
            default:
                return .unavailable
            }
        } catch {
            // The script may have run and claimed the key with no answer reaching us: give that
            // claim up (if it is ours), or the others would wait for it until it lapses.
            logger.debug("shared cache: lookup failed", metadata: ["error": "\(error.code.rawValue)"])
            _ = try? await client.command(["EVAL", Self.abandonScript, "1", name + ":lock", ":" + holder, channel, key])
            return .unavailable
        }
    }

    static func randomHolder() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next() as UInt64, radix: 16)
    }

    static let storeScript = """
        local last = tonumber(redis.call('GET', KEYS[3]) or '0')
        local stored = 0
        if tonumber(ARGV[1]) > last then
          redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
          redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[4])
          stored = 1
        end
        if redis.call('GET', KEYS[2]) == ARGV[1] .. ':' .. ARGV[5] then redis.call('DEL', KEYS[2]) end
        redis.call('PUBLISH', ARGV[6], ARGV[7])
        return stored
        """

    public func store(_ bytes: [UInt8], ttl: Duration, claim: SharedClaim) async {
        let name = valueKey(claim.key)
        let milliseconds = max(1, ttl.clampedMilliseconds)
        let plain = SealedValue.encode(bytes, ttlMilliseconds: Int64(milliseconds), storedAt: Date())
        guard let sealed = sealer.seal(plain, for: name), sealed.count <= maxValueBytes else {
            logger.debug("shared cache: value not shared (too large)", metadata: ["key": "\(claim.key)", "bytes": "\(plain.count)"])
            return await release(claim)
        }
        do {
            let reply = try await client.command([
                Array("EVAL".utf8), Array(Self.storeScript.utf8), Array("3".utf8), Array(name.utf8), Array((name + ":lock").utf8),
                Array((name + ":fence").utf8), Array(String(claim.fence).utf8), sealed, Array(String(milliseconds).utf8),
                // The fence outlives the value by a minute: a late holder's store is refused after it expires too.
                Array(String(milliseconds + 60_000).utf8), Array(claim.holder.utf8), Array(channel.utf8), Array(claim.key.utf8),
            ])
            if reply == .integer(0) { logger.debug("shared cache: a later fill or a purge came first; not stored", metadata: ["key": "\(claim.key)"]) }
        } catch {
            logger.debug("shared cache: store failed", metadata: ["error": "\(error.code.rawValue)"])
            await release(claim)
        }
    }

    /// Deletes the claim if it is still this holder's, leaves the skip mark, wakes the waiters.
    /// Run only through ``releaseCommand(lock:skip:holder:channel:announce:skipFor:)``, which
    /// gives it exactly the keys and arguments it reads.
    static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        if ARGV[4] ~= '0' then redis.call('SET', KEYS[2], '1', 'PX', ARGV[4]) end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """

    /// The one release of a lock, for fill claims and login locks alike: `EVAL` of
    /// ``releaseScript`` with its 2 keys (the lock and its skip mark) and 4 arguments (the value
    /// only its holder knows, the channel, the key announced on it, and how long the skip mark
    /// lives: `nil` leaves none). The waiters on `announce` wake as soon as it runs.
    static func releaseCommand(lock: String, skip: String, holder: String, channel: String, announce: String, skipFor: Duration?) -> [String] {
        ["EVAL", releaseScript, "2", lock, skip, holder, channel, announce, String(skipFor.map { max(1, $0.clampedMilliseconds) } ?? 0)]
    }

    /// Runs ``releaseCommand(lock:skip:holder:channel:announce:skipFor:)``: true when the script
    /// ran (Redis answered 1), false when Redis was away or refused it.
    @discardableResult
    static func release(on client: RedisClient, lock: String, skip: String, holder: String, channel: String, announce: String, skipFor: Duration?) async -> Bool {
        let reply = try? await client.command(releaseCommand(lock: lock, skip: skip, holder: holder, channel: channel, announce: announce, skipFor: skipFor))
        return reply == .integer(1)
    }

    /// Deletes a claim whose value ends with `ARGV[1]` (`:holder`), when the claim's answer was lost.
    static let abandonScript = """
        local v = redis.call('GET', KEYS[1])
        if v and string.sub(v, -string.len(ARGV[1])) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], ARGV[3])
        end
        return 1
        """

    public func release(_ claim: SharedClaim) async {
        let name = valueKey(claim.key)
        await Self.release(
            on: client, lock: name + ":lock", skip: name + ":skip", holder: "\(claim.fence):\(claim.holder)", channel: channel, announce: claim.key,
            skipFor: skipLifetime)
    }

    public func waitForFill(_ key: String, since: ContinuousClock.Instant, timeout: Duration) async {
        await notifier.wait(key, since: since, timeout: timeout)
    }

    /// Deletes values and fences them: every claim taken before (a fill already running) is
    /// refused when it stores, so nothing read before the purge lands after it.
    static let purgeScript = """
        for i = 2, #KEYS do
          local f = redis.call('INCR', KEYS[1])
          redis.call('SET', KEYS[i] .. ':fence', f, 'PX', ARGV[1])
          redis.call('DEL', KEYS[i])
        end
        return #KEYS - 1
        """

    public func purge(keys: [String], prefixes: [String]) async -> Bool {
        do {
            try await purgeNames(keys.map(valueKey))
            for prefix in prefixes {
                let pattern = Self.escapeGlob(client.settings.keyPrefix + "cache:{" + prefix) + "*"
                var cursor = "0"
                repeat {
                    guard case .array(let parts) = try await client.command(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]), parts.count == 2,
                        let next = parts[0].bytes, case .array(let found) = parts[1]
                    else { return false }
                    cursor = String(decoding: next, as: UTF8.self)
                    // The value each name belongs to (a value, or its lock, fence or skip mark).
                    var values = Set<String>()
                    for bytes in found.compactMap(\.bytes) {
                        let name = String(decoding: bytes, as: UTF8.self)
                        guard let close = name.lastIndex(of: "}") else { continue }
                        values.insert(String(name[...close]))
                    }
                    try await purgeNames(Array(values))
                } while cursor != "0"
            }
            return true
        } catch {
            logger.warning("shared cache: purge failed", metadata: ["error": "\(error.code.rawValue)"])
            return false
        }
    }

    private func purgeNames(_ names: [String]) async throws(RedisError) {
        guard !names.isEmpty else { return }
        // A fence outlives any claim (the upstream's total timeout + 2 s) by far.
        _ = try await client.command(["EVAL", Self.purgeScript, String(names.count + 1), fences] + names + ["3600000"])
    }

    /// `pattern` for `SCAN MATCH` matching `text` literally.
    static func escapeGlob(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

/// What a shared cache value seals: a version byte (2), the TTL and the store time in
/// milliseconds (big-endian), then the payload.
struct SealedValue {
    /// How far replicas' clocks may disagree before a value is refused as too old (or too new).
    static let clockSkewMilliseconds: Int64 = 5_000
    static let version: UInt8 = 2

    var ttlMilliseconds: Int64
    var storedAtMilliseconds: Int64
    var payload: [UInt8]

    static func encode(_ payload: [UInt8], ttlMilliseconds: Int64, storedAt: Date) -> [UInt8] {
        let stored = Int64(Int(saturating: storedAt.timeIntervalSince1970 * 1000))
        func bigEndian(_ value: Int64) -> [UInt8] { (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        return [version] + bigEndian(ttlMilliseconds) + bigEndian(stored) + payload
    }

    /// Reads what ``encode(_:ttlMilliseconds:storedAt:)`` made; nil for another layout.
    init?(_ plain: [UInt8]) {
        guard plain.count >= 17, plain[0] == Self.version else { return nil }
        func read(_ offset: Int) -> Int64 { plain[offset..<(offset + 8)].reduce(Int64(0)) { $0 << 8 | Int64($1) } }
        ttlMilliseconds = read(1)
        storedAtMilliseconds = read(9)
        payload = Array(plain[17...])
    }

    /// The value's age from Redis's remaining lifetime (`left`, ms), or nil when the sealed time
    /// says it is past its TTL, or from the future, beyond the clock skew allowed.
    func age(left: Int64, now: Date) -> Duration? {
        let nowMilliseconds = Int64(Int(saturating: now.timeIntervalSince1970 * 1000))
        let (sealedAge, overflow) = nowMilliseconds.subtractingReportingOverflow(storedAtMilliseconds)
        guard !overflow, sealedAge >= -Self.clockSkewMilliseconds, sealedAge <= ttlMilliseconds + Self.clockSkewMilliseconds else { return nil }
        return .milliseconds(max(0, ttlMilliseconds - max(0, left)))
    }
}
