import CHiredis
import Foundation
public import Logging
import GatewayClock
import Synchronization

/// Redis channels, listened to on a thread of its own (hiredis's blocking `SUBSCRIBE`): every
/// message goes to `onMessage` with its channel. When Redis is away the thread reconnects every second; nothing
/// else waits for it. ``stop()`` closes the socket, which ends the blocking read.
public final class RedisSubscriber: Sendable {
    public let channels: [String]
    private let settings: RedisSettings
    private let logger: Logger
    private let onMessage: @Sendable (_ channel: String, _ payload: [UInt8]) -> Void
    private struct State {
        var stopped = false
        var fd: Int32 = -1
    }
    private let state = Mutex(State())
    /// Whether the subscription is in place now.
    private let listening = Atomic<Bool>(false)

    /// Reads wait at most this long: nil waits for ever (only ``stop()`` ends them).
    private let readTimeout: Duration?
    /// Subscriptions made so far (the first and every reconnection).
    private let subscriptions = Atomic<Int>(0)

    /// With `readTimeout`, a subscription that receives nothing for that long is dropped and
    /// made again: give it only with a channel something is published on at least that often
    /// (``RedisSharedTier``'s heartbeat).
    public init(
        settings: RedisSettings, channels: [String], logger: Logger, readTimeout: Duration? = nil,
        onMessage: @escaping @Sendable (_ channel: String, _ payload: [UInt8]) -> Void
    ) {
        self.settings = settings
        self.channels = channels
        self.readTimeout = readTimeout
        self.logger = logger
        self.onMessage = onMessage
        let thread = Thread { [self] in self.run() }
        thread.name = "redis-subscriber"
        thread.start()
    }

    public var isListening: Bool { listening.load(ordering: .relaxed) }

    /// How many times it has subscribed (1 until a connection is lost or found silent).
    public var subscriptionCount: Int { subscriptions.load(ordering: .relaxed) }

    public func stop() {
        let fd = state.withLock { state -> Int32 in
            state.stopped = true
            return state.fd
        }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func run() {
        var announced = false
        while !stopped {
            if let context = subscribe() {
                state.withLock { $0.fd = chiredis_fd(context) }
                listening.store(true, ordering: .relaxed)
                if !announced {
                    logger.info("shared tier: listening", metadata: ["channels": "\(channels.joined(separator: ","))"])
                    announced = true
                }
                while let reply = chiredis_get_reply(context) {
                    let message = RedisClient.convert(reply)
                    freeReplyObject(reply)
                    if case .array(let parts) = message, parts.count == 3, parts[0].bytes == Array("message".utf8), let channel = parts[1].bytes,
                        let payload = parts[2].bytes
                    {
                        onMessage(String(decoding: channel, as: UTF8.self), payload)
                    }
                }
                listening.store(false, ordering: .relaxed)
                state.withLock { $0.fd = -1 }
                redisFree(context)
                if !stopped {
                    logger.warning(
                        "shared tier: subscription lost or silent; reconnecting",
                        metadata: ["channels": "\(channels.joined(separator: ","))", "silent_for_ms": "\(readTimeout?.clampedMilliseconds ?? 0)"])
                }
            }
            if !stopped { Thread.sleep(forTimeInterval: 1) }
        }
    }

    private func subscribe() -> UnsafeMutablePointer<redisContext>? {
        guard case .success(let context) = RedisClient.connect(settings, timeoutMilliseconds: 1000) else { return nil }
        // One confirmation per channel: the first is read here, the others by the message loop.
        guard case .success(let reply) = RedisClient.run(context, [Array("SUBSCRIBE".utf8)] + channels.map { Array($0.utf8) }), !isError(reply) else {
            redisFree(context)
            return nil
        }
        // Without a heartbeat, messages may be minutes apart: no read timeout (stop() closes the
        // socket). With one, silence longer than `readTimeout` means the connection is gone.
        chiredis_set_timeout(context, readTimeout.map { max(1, $0.clampedMilliseconds) } ?? 0)
        // TCP keepalive too: a peer that vanished (no RST) is noticed even between heartbeats' reads.
        var on: Int32 = 1
        setsockopt(chiredis_fd(context), SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size))
        subscriptions.add(1, ordering: .relaxed)
        return context
    }

    private func isError(_ reply: RedisReply) -> Bool {
        if case .error = reply { return true }
        return false
    }
}
