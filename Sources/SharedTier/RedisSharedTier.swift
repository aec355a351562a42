import Foundation
public import GatewayClock
public import Logging
import Synchronization

/// The replicas' shared tier over one Redis, made once per process (its threads and connections
/// outlive reloads): the client, the shared sessions and cache level, and the channels replicas
/// tell each other things on.
///
/// | channel | message | what a replica does |
/// |---|---|---|
/// | `{prefix}filled` | a key stored or released | wakes its tasks waiting for that fill or login |
/// | `{prefix}purge` | a `DELETE /v1/cache` (JSON, with its origin), signed | purges its local cache the same way |
/// | `{prefix}reload` | a reload (JSON, with its origin), signed | reloads its own file, if it changed |
/// | `{prefix}heartbeat` | `1`, from each replica every `shared.redis.heartbeat` | nothing: a subscription silent for three heartbeats reconnects |
///
/// Purges and reloads are acted on only when signed under the encryption key, recent and not
/// seen before (``SignedMessages``); the others are ignored and counted.
public final class RedisSharedTier: Sendable {
    public let client: RedisClient
    public let notifier: FillNotifier
    public let sessions: RedisSharedSessions
    public let cache: RedisSharedCache
    /// Signs purges and reloads sent, and checks those received.
    public let messages: SignedMessages
    private let logger: Logger

    public init(settings: RedisSettings, encryptionKey: String, logger: Logger, clock: GatewayClock = .continuous) {
        self.logger = logger
        self.client = RedisClient(settings: settings, logger: logger, clock: clock)
        self.notifier = FillNotifier(clock: clock)
        self.sessions = RedisSharedSessions(client: client, encryptionKey: encryptionKey, notifier: notifier, logger: logger)
        self.cache = RedisSharedCache(client: client, encryptionKey: encryptionKey, notifier: notifier, logger: logger)
        self.messages = SignedMessages(secret: encryptionKey)
    }

    public var purgeChannel: String { client.settings.keyPrefix + "purge" }
    /// What every replica publishes on each `settings.heartbeat`, so that subscriptions can tell
    /// a quiet channel from a dead connection.
    public var heartbeatChannel: String { client.settings.keyPrefix + "heartbeat" }
    public var reloadChannel: String { client.settings.keyPrefix + "reload" }
    public var filledChannel: String { Self.filledChannel(client.settings) }

    /// Where stores and releases of fills and logins are announced: `{prefix}filled`.
    public static func filledChannel(_ settings: RedisSettings) -> String { settings.keyPrefix + "filled" }

    /// `redis 127.0.0.1:6379/0: closed` (the circuit: closed, open, half-open).
    public var statusLine: String { sessions.statusLine }

    /// Sends `payload`, signed (``SignedMessages``), to every replica listening on `channel`;
    /// false when Redis did not take it.
    public func publish(_ channel: String, _ payload: [UInt8]) async -> Bool {
        (try? await client.command([Array("PUBLISH".utf8), Array(channel.utf8), messages.sign(payload, channel: channel)])) != nil
    }

    /// Listens on the three channels: fills wake this replica's waiters here; purges and reloads
    /// go to `onPurge` and `onReload` (with their JSON payload).
    public func listen(onPurge: @escaping @Sendable ([UInt8]) -> Void, onReload: @escaping @Sendable ([UInt8]) -> Void) -> RedisSubscriber {
        let filled = filledChannel
        let purge = purgeChannel
        let notifier = self.notifier
        let messages = self.messages
        let logger = self.logger
        let heartbeat = heartbeatChannel
        startHeartbeat()
        return RedisSubscriber(
            settings: client.settings, channels: [filled, purge, reloadChannel, heartbeat], logger: logger, readTimeout: client.settings.heartbeat * 3
        ) { channel, message in
            if channel == heartbeat { return }  // it arrived: the connection lives
            if channel == filled {
                // A wake-up only: a forged one makes a waiter look again, nothing more.
                notifier.notify(String(decoding: message, as: UTF8.self))
                return
            }
            guard let payload = messages.open(message, channel: channel) else {
                logger.warning("shared tier: a message that is unsigned, stale or replayed was ignored", metadata: ["channel": "\(channel)"])
                return
            }
            if channel == purge {
                onPurge(payload)
            } else {
                onReload(payload)
            }
        }
    }

    /// The heartbeat publisher, while listening.
    private let heartbeatTask = Mutex<Task<Void, Never>?>(nil)

    private func startHeartbeat() {
        let client = self.client
        let channel = heartbeatChannel
        let interval = client.settings.heartbeat
        let task = Task {
            while !Task.isCancelled {
                _ = try? await client.command(["PUBLISH", channel, "1"])
                try? await Task.sleep(for: interval)
            }
        }
        heartbeatTask.withLock { running in
            running?.cancel()
            running = task
        }
    }

    public func shutdown() {
        heartbeatTask.withLock { $0?.cancel() }
        client.shutdown()
    }
}
