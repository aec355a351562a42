import Foundation
public import Logging
public import ResponseCache

/// The shared cache level in Redis (``SharedCacheLevel``), behind each replica's local cache.
///
/// - **Values**: `{prefix}cache:{KEY}` holds AES-GCM (``Sealer``) of the payload and the TTL it
///   was stored with, expiring after that TTL (`PX`): present means fresh, and its age is the TTL
///   less what Redis says is left (`PTTL`), so replicas' clocks never enter into it.
/// - **One fill at a time**: `{prefix}cache:{KEY}:lock` holds the claim's fencing token, a number
///   from `{prefix}fences` (`INCR`), set with an expiry (a dead holder's claim lapses). A store
///   is written only when its fence is above the last stored one (`…:fence`), so a holder whose
///   claim lapsed never overwrites a later fill. Looking, claiming and storing are each one Lua
///   script: one round trip each, and no replica sees half of another's step.
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

    public init(client: RedisClient, encryptionKey: String, notifier: FillNotifier, logger: Logger) {
        self.client = client
        self.sealer = Sealer(secret: encryptionKey)
        self.notifier = notifier
        self.logger = logger
    }

    /// The channel stores and releases are announced on (shared with logins).
    public var channel: String { client.settings.keyPrefix + "filled" }

    /// `{prefix}cache:{tenant|vspc-main.…}`: the braces make the key its own hash tag, so a
    /// value, its lock and its fence would live on one node of a cluster.
    func valueKey(_ key: String) -> String { client.settings.keyPrefix + "cache:{" + key + "}" }

    static let lookupScript = """
        if ARGV[1] == '0' then
          local v = redis.call('GET', KEYS[1])
          if v then return {1, v, redis.call('PTTL', KEYS[1])} end
        end
        if redis.call('EXISTS', KEYS[2]) == 1 then return {3} end
        local f = redis.call('INCR', KEYS[3])
        redis.call('SET', KEYS[2], f, 'PX', ARGV[2])
        return {2, f}
        """

    public func lookup(_ key: String, claimFor lifetime: Duration, skipValue: Bool) async -> SharedLookup {
        let name = valueKey(key)
        do {
            let reply = try await client.command([
                "EVAL", Self.lookupScript, "3", name, name + ":lock", client.settings.keyPrefix + "fences", skipValue ? "1" : "0",
                String(max(1, lifetime.milliseconds)),
            ])
            guard case .array(let parts) = reply, case .integer(let kind)? = parts.first else { return .unavailable }
            switch kind {
            case 1:
                guard parts.count == 3, let sealed = parts[1].bytes, case .integer(let left) = parts[2], let plain = sealer.open(sealed, for: name),
                    plain.count >= 8
                else {
                    logger.warning("a shared cache value did not decrypt (another encryption key?); filled here", metadata: ["key": "\(key)"])
                    return .unavailable
                }
                let ttl = plain.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
                return .found(bytes: Array(plain.dropFirst(8)), age: .milliseconds(max(0, ttl - max(0, left))))
            case 2:
                guard parts.count == 2, case .integer(let fence) = parts[1] else { return .unavailable }
                return .claimed(SharedClaim(key: key, fence: fence))
            default:
                return .busy
            }
        } catch {
            logger.debug("shared cache: lookup failed", metadata: ["error": "\(error.code.rawValue)"])
            return .unavailable
        }
    }

    static let storeScript = """
        local last = tonumber(redis.call('GET', KEYS[3]) or '0')
        local stored = 0
        if tonumber(ARGV[1]) > last then
          redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
          redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3])
          stored = 1
        end
        if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
        redis.call('PUBLISH', ARGV[4], ARGV[5])
        return stored
        """

    public func store(_ bytes: [UInt8], ttl: Duration, claim: SharedClaim) async {
        let name = valueKey(claim.key)
        let milliseconds = max(1, ttl.milliseconds)
        var plain: [UInt8] = (0..<8).reversed().map { UInt8(truncatingIfNeeded: Int64(milliseconds) >> ($0 * 8)) }
        plain += bytes
        guard let sealed = sealer.seal(plain, for: name) else { return await release(claim) }
        do {
            let reply = try await client.command([
                Array("EVAL".utf8), Array(Self.storeScript.utf8), Array("3".utf8), Array(name.utf8), Array((name + ":lock").utf8),
                Array((name + ":fence").utf8), Array(String(claim.fence).utf8), sealed, Array(String(milliseconds).utf8), Array(channel.utf8),
                Array(claim.key.utf8),
            ])
            if reply == .integer(0) { logger.debug("shared cache: a later fill stored first; kept", metadata: ["key": "\(claim.key)"]) }
        } catch {
            logger.debug("shared cache: store failed", metadata: ["error": "\(error.code.rawValue)"])
        }
    }

    static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """

    public func release(_ claim: SharedClaim) async {
        let name = valueKey(claim.key)
        _ = try? await client.command(["EVAL", Self.releaseScript, "1", name + ":lock", String(claim.fence), channel, claim.key])
    }

    public func waitForFill(_ key: String, since: ContinuousClock.Instant, timeout: Duration) async {
        await notifier.wait(key, since: since, timeout: timeout)
    }

    public func purge(keys: [String], prefixes: [String]) async -> Bool {
        do {
            if !keys.isEmpty {
                _ = try await client.command(["UNLINK"] + keys.map(valueKey))
            }
            for prefix in prefixes {
                let pattern = Self.escapeGlob(client.settings.keyPrefix + "cache:{" + prefix) + "*"
                var cursor = "0"
                repeat {
                    guard case .array(let parts) = try await client.command(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]), parts.count == 2,
                        let next = parts[0].bytes, case .array(let found) = parts[1]
                    else { return false }
                    cursor = String(decoding: next, as: UTF8.self)
                    // Values only: a running fill's claim and fence stay theirs.
                    let values = found.compactMap { $0.bytes }.filter { $0.last == UInt8(ascii: "}") }
                    if !values.isEmpty { _ = try await client.command([Array("UNLINK".utf8)] + values) }
                } while cursor != "0"
            }
            return true
        } catch {
            logger.warning("shared cache: purge failed", metadata: ["error": "\(error.code.rawValue)"])
            return false
        }
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

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int {
        Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000)
    }
}
