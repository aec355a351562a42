public import GatewaySecrets
import Crypto
import Foundation
import GatewayClock
public import Logging
public import TokenBroker

/// Upstream sessions in Redis, shared by every replica: one login per account for all of them.
///
/// - **At rest**: `{prefix}session:{upstream}:{server}:{sha256(username)}` holds AES-GCM of the session
///   (access and refresh token, expiry), under a key derived from `shared.redis.encryptionKey`,
///   with the Redis key as associated data (a value moved to another key does not open); `server`
///   is ``SharedAccount/server``, so replicas that mean different servers by one name share nothing. Nothing
///   in Redis is usable without the encryption key; it expires with the session (`PX`).
/// - **One login at a time**: `{prefix}lock:{upstream}:{sha256(username)}`, `SET … NX PX 10000`
///   with a random fencing token; released only by its holder (compare-and-delete in Lua, the
///   cache's release script), or by expiry when the holder died. The release wakes the waiting
///   replicas at once; after a refused login it leaves `…:skip` for ``rejectionLifetime``, and
///   the waiters answer with the refusal instead of sending the same password again.
/// - **Never a new way to fail**: every call is bounded by `shared.redis.timeout` and the
///   client's circuit breaker; any failure reads as "nothing shared" and the broker logs in itself.
public final class RedisSharedSessions: SharedSessions {
    public let client: RedisClient
    private let sealer: Sealer
    private let logger: Logger
    /// Wakes this replica's brokers when another replica stored a session or gave its lock up.
    public let notifier: FillNotifier
    /// How long a login lock lives if its holder never releases it.
    public let lockLifetime: Duration

    /// `encryptionKey` is the secret (any length; SHA-256 makes the AES-256 key of it).
    public init(client: RedisClient, encryptionKey: String, notifier: FillNotifier, logger: Logger, lockLifetime: Duration = .seconds(10)) {
        self.client = client
        self.sealer = Sealer(secret: encryptionKey)
        self.notifier = notifier
        self.logger = logger
        self.lockLifetime = lockLifetime
    }

    /// Stores and releases are announced where the cache's are (`{prefix}filled`).
    public var channel: String { RedisSharedTier.filledChannel(client.settings) }

    public var isAvailable: Bool { client.breaker.state != .open }

    /// `redis 127.0.0.1:6379/0: closed` (the circuit: closed, open, half-open).
    public var statusLine: String {
        "redis \(client.settings.host):\(client.settings.port)/\(client.settings.database): \(client.breaker.state.rawValue)"
    }

    func name(_ kind: String, _ account: SharedAccount) -> String {
        let user = Hex.lowercase(SHA256.hash(data: Data(account.username.utf8)))
        let server = account.server.isEmpty ? "" : account.server + ":"
        return "\(client.settings.keyPrefix)\(kind):\(account.upstream):\(server)\(user)"
    }

    struct Stored: Codable {
        var access: String
        var refresh: String?
        var expiresAt: Double
    }

    /// Seals a session for `redisKey`.
    func seal(_ session: SharedSession, redisKey: String) -> [UInt8]? {
        let stored = Stored(access: session.access.value, refresh: session.refresh?.value, expiresAt: session.expiresAt.timeIntervalSince1970)
        guard let plain = try? JSONEncoder().encode(stored) else { return nil }
        return sealer.seal(Array(plain), for: redisKey)
    }

    /// Opens what `seal` made, or nil (another key, another Redis key, tampered, garbage).
    func open(_ bytes: [UInt8], redisKey: String) -> SharedSession? {
        guard let plain = sealer.open(bytes, for: redisKey), let stored = try? JSONDecoder().decode(Stored.self, from: Data(plain)) else { return nil }
        return SharedSession(access: Secret(stored.access), refresh: stored.refresh.map(Secret.init), expiresAt: Date(timeIntervalSince1970: stored.expiresAt))
    }

    public func load(_ account: SharedAccount) async -> SharedSession? {
        let redisKey = name("session", account)
        do {
            guard let bytes = try await client.command([Array("GET".utf8), Array(redisKey.utf8)]).bytes else { return nil }
            guard let session = open(bytes, redisKey: redisKey) else {
                logger.warning("a shared session did not decrypt (another encryption key?); ignored", metadata: ["upstream": "\(account.upstream)"])
                return nil
            }
            return session
        } catch {
            logger.debug("shared tier: load failed", metadata: ["error": "\(error.code.rawValue)"])
            return nil
        }
    }

    public func store(_ session: SharedSession, for account: SharedAccount) async {
        let redisKey = name("session", account)
        let milliseconds = Int(saturating: session.expiresAt.timeIntervalSinceNow * 1000)
        guard milliseconds > 1000, let sealed = seal(session, redisKey: redisKey) else { return }
        do {
            _ = try await client.command([Array("SET".utf8), Array(redisKey.utf8), sealed, Array("PX".utf8), Array(String(milliseconds).utf8)])
            _ = try await client.command(["PUBLISH", channel, redisKey])
        } catch {
            logger.debug("shared tier: store failed", metadata: ["error": "\(error.code.rawValue)"])
        }
    }

    public func discard(_ account: SharedAccount, refused: Secret) async {
        guard let stored = await load(account), stored.access == refused else { return }
        _ = try? await client.command(["DEL", name("session", account)])
    }

    /// Takes the lock unless it is held (0) or a login of the account was just refused (its
    /// skip mark, left by the release: 2).
    static let lockScript = """
        if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        return 0
        """

    /// How long a refused login keeps the other replicas from trying the same credentials.
    public let rejectionLifetime: Duration = .seconds(5)

    public func lock(_ account: SharedAccount) async -> SharedLockAttempt {
        let fence = RedisSharedCache.randomHolder() + RedisSharedCache.randomHolder()
        let milliseconds = max(1, lockLifetime.clampedMilliseconds)
        let lockName = name("lock", account)
        do {
            switch try await client.command(["EVAL", Self.lockScript, "2", lockName, lockName + ":skip", fence, String(milliseconds)]) {
            case .integer(1): return .acquired(SharedLock(account: account, fence: fence))
            case .integer(2): return .rejectedElsewhere
            case .integer(0): return .heldElsewhere
            default: return .unavailable
            }
        } catch {
            return .unavailable
        }
    }

    public func unlock(_ lock: SharedLock, loginRejected: Bool) async {
        await release(lock, loginRejected: loginRejected)
    }

    /// The cache's release (one path for both): deletes the lock if it is still this holder's
    /// and wakes the waiters on the session's key; after a refused login it leaves the skip mark
    /// for ``rejectionLifetime``, which the waiters' next ``lock(_:)`` finds. True when Redis ran it.
    @discardableResult
    public func release(_ lock: SharedLock, loginRejected: Bool) async -> Bool {
        let lockName = name("lock", lock.account)
        return await RedisSharedCache.release(
            on: client, lock: lockName, skip: lockName + ":skip", holder: lock.fence, channel: channel, announce: name("session", lock.account),
            skipFor: loginRejected ? rejectionLifetime : nil)
    }

    public func waitForChange(_ account: SharedAccount, since: ContinuousClock.Instant, timeout: Duration) async {
        await notifier.wait(name("session", account), since: since, timeout: timeout)
    }
}
