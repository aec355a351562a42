public import HTTPTransport
import CCurl
public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// An asynchronous HTTP/1.1 and HTTP/2 client over libcurl's multi interface, run on the
/// event loops of a swift-nio `EventLoopGroup` (the HTTP server's, so a cache miss never
/// changes thread to reach its upstream).
///
/// Each event loop of the group has its own libcurl (a multi handle, a `CURLSH` share of
/// connections, DNS answers and TLS sessions, pooled easy handles) driven with
/// `curl_multi_socket_action` on that loop's thread; one watcher thread waits on every loop's
/// sockets and hands a ready one back to its loop (``CurlSocketWatcher``). A caller running on
/// one of the loops is served by that loop's libcurl; any other caller by the first loop's, so
/// background work shares one pool. HTTP/2 connections are multiplexed where the upstream offers
/// ALPN `h2`. The connection limits of ``Configuration`` apply per event loop.
///
/// Cancelling the calling task removes the transfer from its multi handle on its loop at once
/// and frees its handle; the caller gets `CancellationError`.
///
/// Create one client per process, share it between ``CurlTransport``s, and call
/// ``shutdown()`` when done (transfers still running then fail with `upstream.shutdown`).
public final class CurlClient: Sendable {
    /// Settings that apply to the whole client (per-upstream settings are ``TransferOptions``).
    public struct Configuration: Sendable {
        /// Most connections open to one host at once from one event loop
        /// (`CURLMOPT_MAX_HOST_CONNECTIONS`). Transfers beyond it wait for a connection, or
        /// share one through HTTP/2.
        public var maxConnectionsPerHost: Int
        /// Most connections open in total from one event loop; 0 means no limit
        /// (`CURLMOPT_MAX_TOTAL_CONNECTIONS`).
        public var maxTotalConnections: Int
        /// Idle connections kept for reuse per event loop (`CURLMOPT_MAXCONNECTS`).
        public var maxIdleConnections: Int
        /// Easy handles kept for reuse per event loop after their transfer ends.
        public var handlePoolSize: Int

        public init(
            maxConnectionsPerHost: Int = 8,
            maxTotalConnections: Int = 0,
            maxIdleConnections: Int = 32,
            handlePoolSize: Int = 64
        ) {
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.maxTotalConnections = maxTotalConnections
            self.maxIdleConnections = maxIdleConnections
            self.handlePoolSize = handlePoolSize
        }
    }

    /// Counters since the client started, summed over its event loops.
    public struct Statistics: Sendable, Equatable {
        public var transfersStarted = 0
        public var transfersCompleted = 0
        public var transfersFailed = 0
        public var transfersCancelled = 0
        /// Transfers asked for on one of the client's event loops and started there at once,
        /// without a change of thread.
        public var transfersOnCallerLoop = 0
        /// Connections libcurl opened (the sum of `CURLINFO_NUM_CONNECTS`).
        public var connectionsOpened = 0
        /// Sockets added to the watcher. A kept-alive connection's socket is added once and its
        /// registration changed for each later transfer on it, not deleted and added again.
        public var socketsAdded = 0
        /// Scheduled tasks made for libcurl's timers. A deadline libcurl sets and moves within one
        /// of our calls, or moves later, makes none (a transfer on a kept-alive connection
        /// usually makes none at all).
        public var timerTasksScheduled = 0
        /// Transfers on the multi handles now.
        public var active = 0
        /// Easy handles idle in the pools now.
        public var pooledHandles = 0
        public init() {}

        static func + (lhs: Self, rhs: Self) -> Self {
            var sum = lhs
            sum.transfersStarted += rhs.transfersStarted
            sum.transfersCompleted += rhs.transfersCompleted
            sum.transfersFailed += rhs.transfersFailed
            sum.transfersCancelled += rhs.transfersCancelled
            sum.transfersOnCallerLoop += rhs.transfersOnCallerLoop
            sum.connectionsOpened += rhs.connectionsOpened
            sum.socketsAdded += rhs.socketsAdded
            sum.timerTasksScheduled += rhs.timerTasksScheduled
            sum.active += rhs.active
            sum.pooledHandles += rhs.pooledHandles
            return sum
        }
    }

    let core: CurlClientCore
    /// One per event loop of the group, in the group's order.
    let loops: [CurlEventLoop]
    private let loopIndex: [ObjectIdentifier: Int]

    /// libcurl's version string, e.g. `libcurl/7.88.1 OpenSSL/3.0.x …`.
    public static var libcurlVersion: String { String(cString: curl_version()) }

    /// Sets up libcurl on every loop of `eventLoopGroup` (by default swift-nio's shared group,
    /// which is the HTTP server's unless it was given threads of its own) and starts the
    /// socket watcher.
    public init(
        configuration: Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "veeam-gateway.curl")
    ) throws {
        guard CurlClientCore.globalInit == CURLE_OK else {
            throw UpstreamError(.invalidRequest, "curl_global_init failed")
        }
        let eventLoops = Array(eventLoopGroup.makeIterator())
        guard !eventLoops.isEmpty else { throw UpstreamError(.invalidRequest, "the event loop group has no loop") }
        let core = CurlClientCore(configuration: configuration, logger: logger, watcher: try CurlSocketWatcher(), loops: eventLoops.count)
        var loops: [CurlEventLoop] = []
        var loopIndex: [ObjectIdentifier: Int] = [:]
        for eventLoop in eventLoops {
            loopIndex[ObjectIdentifier(eventLoop)] = loops.count
            loops.append(try CurlEventLoop(eventLoop: eventLoop, index: loops.count, client: core))
        }
        self.core = core
        self.loops = loops
        self.loopIndex = loopIndex
        core.watcher.start(loops)
    }

    deinit {
        for loop in loops { loop.requestShutdown() }
    }

    /// The client's counters.
    public var statistics: Statistics { loops.reduce(Statistics()) { $0 + $1.statistics } }

    /// The libcurl of the caller's event loop, or the first loop's for a caller on none.
    private var callersLoop: CurlEventLoop {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let index = loopIndex[ObjectIdentifier(current)] {
            return loops[index]
        }
        return loops[0]
    }

    /// Performs one request with the given options. HTTP error statuses are returned, not thrown.
    /// - Throws: ``UpstreamError`` for transport failures; `CancellationError` when the task is cancelled.
    public func perform(_ request: UpstreamRequest, options: TransferOptions) async throws -> UpstreamResponse {
        let ticket = TransferTicket(request: request, options: options)
        let loop = callersLoop
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<UpstreamResponse, any Error>) in
                if ticket.attach(continuation) {
                    loop.submit(ticket)
                }
            }
        } onCancel: {
            if ticket.requestCancel() {
                loop.cancel(ticket)
            }
        }
    }

    /// Stops every loop's libcurl, then the watcher. Transfers still running fail with
    /// `upstream.shutdown`; later calls to ``perform(_:options:)`` fail the same way.
    public func shutdown() async {
        for loop in loops { loop.requestShutdown() }
        for loop in loops { await loop.waitUntilStopped() }
    }
}

/// What a client's event loops share: settings, the logger, the watcher, and the count of loops
/// still running (the last to stop stops the watcher, so no socket is armed after it closes).
final class CurlClientCore: Sendable {
    let configuration: CurlClient.Configuration
    let logger: Logger
    let watcher: CurlSocketWatcher
    private let running: Mutex<Int>
    private let insecureWarned = Mutex(Set<String>())

    static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

    init(configuration: CurlClient.Configuration, logger: Logger, watcher: CurlSocketWatcher, loops: Int) {
        self.configuration = configuration
        self.logger = logger
        self.watcher = watcher
        self.running = Mutex(loops)
    }

    /// A loop has freed its libcurl; after the last, the watcher stops.
    func loopStopped() {
        let last = running.withLock { count -> Bool in
            count -= 1
            return count == 0
        }
        if last { watcher.stop() }
    }

    /// Logs the insecure-TLS warning once per host.
    func warnInsecureOnce(url: String) {
        let host = CurlTransfer.hostPart(of: url)
        let first = insecureWarned.withLock { $0.insert(host).inserted }
        if first {
            logger.warning(
                "TLS verification is OFF for this upstream (insecure: true); anyone on the path can read and change its traffic",
                metadata: ["upstream.host": "\(host)"]
            )
        }
    }
}

/// One request's passage through the event loop. The continuation is resumed exactly once,
/// by whoever moves the ticket to `finished`.
final class TransferTicket: Sendable {
    enum Phase {
        case created
        case submitted(CheckedContinuation<UpstreamResponse, any Error>)
        case cancelledEarly
        case finished
    }

    struct State {
        var phase: Phase = .created
        var cancelRequested = false
    }

    let request: UpstreamRequest
    let options: TransferOptions
    private let state = Mutex(State())

    init(request: UpstreamRequest, options: TransferOptions) {
        self.request = request
        self.options = options
    }

    /// Stores the continuation; returns false (having resumed it) if the task was already cancelled.
    func attach(_ continuation: CheckedContinuation<UpstreamResponse, any Error>) -> Bool {
        let cancelled = state.withLock { state -> Bool in
            if case .cancelledEarly = state.phase {
                state.phase = .finished
                return true
            }
            state.phase = .submitted(continuation)
            return false
        }
        if cancelled {
            continuation.resume(throwing: CancellationError())
            return false
        }
        return true
    }

    /// Marks the ticket cancelled; returns true when the event loop must be told.
    func requestCancel() -> Bool {
        state.withLock { state in
            state.cancelRequested = true
            switch state.phase {
            case .created:
                state.phase = .cancelledEarly
                return false
            case .submitted:
                return true
            case .cancelledEarly, .finished:
                return false
            }
        }
    }

    var isCancelRequested: Bool { state.withLock { $0.cancelRequested } }

    /// Resumes the caller with this result, unless it was resumed already.
    func finish(_ result: Result<UpstreamResponse, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<UpstreamResponse, any Error>? in
            guard case .submitted(let continuation) = state.phase else { return nil }
            state.phase = .finished
            return continuation
        }
        continuation?.resume(with: result)
    }
}

extension CurlClient: Service {
    /// Runs until graceful shutdown (or cancellation), then stops the event thread. Put the
    /// client after the HTTP server in a `ServiceGroup`, so it stops after the server has drained.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
