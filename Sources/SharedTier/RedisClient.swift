import CHiredis
import Foundation
public import GatewayClock
public import Logging
import Synchronization

/// Where and how to reach Redis (`shared.redis`).
public struct RedisSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var database: Int
    /// `AUTH` with this password (from a secret reference), when set.
    public var password: String?
    /// Every key the gateway writes starts with this.
    public var keyPrefix: String
    /// A command's whole budget: queueing, connecting and the round trip (default 50 ms).
    public var timeout: Duration
    /// Dedicated threads (each with its own connection).
    public var threads: Int
    /// How often each replica publishes on `{prefix}heartbeat`; a subscriber that hears nothing
    /// for three of these takes its connection for dead and connects again (a connection that
    /// stops forwarding without closing never fails a read on its own).
    public var heartbeat: Duration = .seconds(5)

    public init(host: String, port: Int, database: Int = 0, password: String? = nil, keyPrefix: String = "veeam-gateway:",
                timeout: Duration = .milliseconds(50), threads: Int = 2) {
        self.host = host
        self.port = port
        self.database = database
        self.password = password
        self.keyPrefix = keyPrefix
        self.timeout = timeout
        self.threads = max(1, threads)
    }

    /// `redis://[:password@]host[:port][/db]`. `rediss://` is refused: the hiredis of this
    /// platform (Debian 12: 0.14) has no TLS; put a TLS tunnel (stunnel) on loopback instead.
    public static func parse(_ url: String) -> Result<RedisSettings, RedisURLError> {
        if url.hasPrefix("rediss://") {
            return .failure(RedisURLError(reason: "rediss:// (TLS) is not supported by this build's hiredis (0.14); reach Redis over a loopback TLS tunnel (stunnel) with redis://"))
        }
        guard url.hasPrefix("redis://"), let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            return .failure(RedisURLError(reason: "must be redis://host:port/db"))
        }
        let port = components.port ?? 6379
        guard (1...65535).contains(port) else { return .failure(RedisURLError(reason: "the port must be 1-65535")) }
        var database = 0
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let number = Int(path), number >= 0 else { return .failure(RedisURLError(reason: "the path must be a database number")) }
            database = number
        }
        if components.password != nil {
            return .failure(RedisURLError(reason: "no password in the URL: give shared.redis.password as a secret reference"))
        }
        return .success(RedisSettings(host: host, port: port, database: database))
    }
}

public struct RedisURLError: Error, Sendable, Equatable {
    public var reason: String
}

/// A Redis answer.
public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)

    public var bytes: [UInt8]? {
        if case .string(let bytes) = self { return bytes }
        return nil
    }
}

/// Why a Redis command did not run or did not answer. Stable codes; never a key's value.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The circuit is open after repeated failures: not tried (the caller falls back at once).
        case unavailable = "shared.unavailable"
        /// No answer within `timeout` (queueing included).
        case timeout = "shared.timeout"
        /// Too many commands waiting for a thread.
        case overloaded = "shared.overloaded"
        /// Connecting, authenticating or the connection failed.
        case connection = "shared.connection"
        /// Redis answered with an error.
        case refused = "shared.refused"
        case shutdown = "shared.shutdown"
    }
    public var code: Code
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }
}

/// Redis through hiredis's synchronous API on a few dedicated threads (each with one connection),
/// fed from a bounded queue: no event loop or cooperative thread ever blocks on Redis. Every
/// command has one budget, `timeout`, from the moment it is asked for: a command still queued
/// at its deadline is not sent, and the socket timeout of a command is what is left of it. A
/// ``CircuitBreaker`` fails commands at once while Redis is known to be down, and lets one
/// through now and then to see whether it is back.
public final class RedisClient: Sendable {
    struct Job {
        var arguments: [[UInt8]]
        var deadline: ContinuousClock.Instant
        var done: @Sendable (Result<RedisReply, RedisError>) -> Void
    }

    struct Queue {
        var jobs: [Job] = []
        var open = true
    }

    public let settings: RedisSettings
    public let breaker: CircuitBreaker
    private let queue = Mutex(Queue())
    private let wakeups = DispatchSemaphore(value: 0)
    private let capacity = 1_024
    private let logger: Logger
    private let statistics = Mutex(Statistics())

    /// Counters, for `/metrics` and the status page.
    public struct Statistics: Sendable, Equatable {
        public var commands = 0
        public var failures = 0
        public var fastFailures = 0
    }

    public init(settings: RedisSettings, logger: Logger, clock: GatewayClock = .continuous) {
        self.settings = settings
        self.logger = logger
        self.breaker = CircuitBreaker(clock: clock)
        for index in 0..<settings.threads {
            let thread = Thread { [self] in self.work() }
            thread.name = "redis-\(index)"
            thread.start()
        }
    }

    public var counters: Statistics { statistics.withLock { $0 } }

    /// Stops the threads (commands still queued fail with `shared.shutdown`).
    public func shutdown() {
        let left = queue.withLock { queue -> [Job] in
            queue.open = false
            defer { queue.jobs.removeAll() }
            return queue.jobs
        }
        for job in left { job.done(.failure(RedisError(code: .shutdown, message: "the client is shutting down"))) }
        for _ in 0..<settings.threads { wakeups.signal() }
    }

    /// Runs one command (`["SET", key, value, "NX", "PX", "10000"]`).
    public func command(_ arguments: [String]) async throws(RedisError) -> RedisReply {
        try await command(arguments.map { Array($0.utf8) })
    }

    /// Runs one command with binary arguments.
    public func command(_ arguments: [[UInt8]]) async throws(RedisError) -> RedisReply {
        guard breaker.allows() else {
            statistics.withLock { $0.fastFailures += 1 }
            throw RedisError(code: .unavailable, message: "Redis is marked down; not tried")
        }
        let deadline = ContinuousClock.now + settings.timeout
        let result: Result<RedisReply, RedisError> = await withCheckedContinuation { continuation in
            let job = Job(arguments: arguments, deadline: deadline) { continuation.resume(returning: $0) }
            let accepted = queue.withLock { queue -> Bool in
                guard queue.open, queue.jobs.count < capacity else { return false }
                queue.jobs.append(job)
                return true
            }
            if accepted {
                wakeups.signal()
            } else {
                continuation.resume(returning: .failure(RedisError(code: .overloaded, message: "too many Redis commands waiting")))
            }
        }
        statistics.withLock { $0.commands += 1 }
        switch result {
        case .success(let reply):
            breaker.succeeded()
            if case .error(let message) = reply { throw RedisError(code: .refused, message: message) }
            return reply
        case .failure(let error):
            statistics.withLock { $0.failures += 1 }
            if error.code != .refused { breaker.failed() }
            throw error
        }
    }

    // MARK: The threads

    private func next() -> Job? {
        while true {
            wakeups.wait()
            let (job, open) = queue.withLock { queue -> (Job?, Bool) in
                guard !queue.jobs.isEmpty else { return (nil, queue.open) }
                return (queue.jobs.removeFirst(), true)
            }
            if let job { return job }
            if !open { return nil }
        }
    }

    private func work() {
        var connection: UnsafeMutablePointer<redisContext>?
        defer { if let connection { redisFree(connection) } }
        while let job = next() {
            let left = job.deadline - ContinuousClock.now
            guard left > .zero else {
                job.done(.failure(RedisError(code: .timeout, message: "no thread was free within the timeout")))
                continue
            }
            let milliseconds = left.clampedMilliseconds
            if connection == nil {
                switch Self.connect(settings, timeoutMilliseconds: milliseconds) {
                case .success(let made): connection = made
                case .failure(let error):
                    job.done(.failure(error))
                    continue
                }
            }
            guard let context = connection else { continue }
            chiredis_set_timeout(context, milliseconds)
            switch Self.run(context, job.arguments) {
            case .success(let reply):
                job.done(.success(reply))
            case .failure(let error):
                // The connection's state is unknown after an I/O error or a timeout: a new one.
                redisFree(context)
                connection = nil
                job.done(.failure(error))
            }
        }
    }

    /// A connection to `settings`' server, authenticated and on its database (the command
    /// threads' and the subscriber's, alike).
    static func connect(_ settings: RedisSettings, timeoutMilliseconds: Int) -> Result<UnsafeMutablePointer<redisContext>, RedisError> {
        guard let context = chiredis_connect(settings.host, Int32(settings.port), timeoutMilliseconds) else {
            return .failure(RedisError(code: .connection, message: "cannot allocate a connection"))
        }
        if chiredis_err(context) != 0 {
            let message = String(cString: chiredis_errstr(context))
            redisFree(context)
            return .failure(RedisError(code: .connection, message: "connect to \(settings.host):\(settings.port): \(message)"))
        }
        chiredis_set_timeout(context, timeoutMilliseconds)
        var setup: [[[UInt8]]] = []
        if let password = settings.password { setup.append([Array("AUTH".utf8), Array(password.utf8)]) }
        if settings.database != 0 { setup.append([Array("SELECT".utf8), Array(String(settings.database).utf8)]) }
        for arguments in setup {
            switch Self.run(context, arguments) {
            case .success(.error(let message)):
                redisFree(context)
                // The password is never in the message: Redis answers WRONGPASS without it.
                return .failure(RedisError(code: .connection, message: "\(String(decoding: arguments[0], as: UTF8.self)) refused: \(message.prefix(200))"))
            case .success:
                continue
            case .failure(let error):
                redisFree(context)
                return .failure(error)
            }
        }
        return .success(context)
    }

    static func run(_ context: UnsafeMutablePointer<redisContext>, _ arguments: [[UInt8]]) -> Result<RedisReply, RedisError> {
        // hiredis copies the arguments into its output buffer before returning.
        let buffers = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, bytes.count))
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: bytes.count) }
            }
            return buffer
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0) }
        var lengths = arguments.map(\.count)
        let reply = pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeMutableBufferPointer { argvlen in
                chiredis_command(context, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
            }
        }
        guard let reply else {
            let err = chiredis_err(context)
            let message = String(cString: chiredis_errstr(context))
            // hiredis 0.14 reports a socket timeout as an I/O error (EAGAIN).
            let timedOut = err == REDIS_ERR_IO && (message.contains("Resource temporarily unavailable") || message.lowercased().contains("timed out"))
            return .failure(RedisError(code: timedOut ? .timeout : .connection, message: message))
        }
        defer { freeReplyObject(reply) }
        return .success(convert(reply))
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        func text() -> String {
            guard let str = value.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: value.len), as: UTF8.self)
        }
        switch value.type {
        case REDIS_REPLY_STRING:
            guard let str = value.str else { return .string([]) }
            return .string(Array(UnsafeRawBufferPointer(start: str, count: value.len)))
        case REDIS_REPLY_INTEGER: return .integer(value.integer)
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            for index in 0..<value.elements {
                if let element = value.element?[index] { items.append(convert(element)) }
            }
            return .array(items)
        default: return .null
        }
    }
}
