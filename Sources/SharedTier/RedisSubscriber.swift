import CHiredis
import Foundation
public import Logging
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

    public init(settings: RedisSettings, channels: [String], logger: Logger, onMessage: @escaping @Sendable (_ channel: String, _ payload: [UInt8]) -> Void) {
        self.settings = settings
        self.channels = channels
        self.logger = logger
        self.onMessage = onMessage
        let thread = Thread { [self] in self.run() }
        thread.name = "redis-subscriber"
        thread.start()
    }

    public var isListening: Bool { listening.load(ordering: .relaxed) }

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
                if !stopped { logger.warning("shared tier: subscription lost; reconnecting", metadata: ["channels": "\(channels.joined(separator: ","))"]) }
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
        // Messages may be minutes apart: no read timeout from here on (stop() closes the socket).
        chiredis_set_timeout(context, 0)
        return context
    }

    private func isError(_ reply: RedisReply) -> Bool {
        if case .error = reply { return true }
        return false
    }
}
