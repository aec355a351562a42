public import HTTPTransport
import CCurl
public import Logging
public import ServiceLifecycle
import Synchronization

/// An asynchronous HTTP/1.1 and HTTP/2 client over libcurl's multi interface.
///
/// One thread per client drives every transfer with `curl_multi_poll`; callers `await`
/// responses while any number of transfers run at once. Connections, DNS answers and TLS
/// sessions are shared across all transfers of a client (a `CURLSH` share plus the multi
/// handle's connection pool), and HTTP/2 connections are multiplexed where the upstream offers
/// ALPN `h2`. Easy handles are pooled and reset between transfers.
///
/// Cancelling the calling task removes the transfer from the multi handle on the event thread
/// at once and frees its handle; the caller gets `CancellationError`.
///
/// Create one client per process, share it between ``CurlTransport``s, and call
/// ``shutdown()`` when done (transfers still running then fail with `upstream.shutdown`).
public final class CurlClient: Sendable {
    /// Settings that apply to the whole client (per-upstream settings are ``TransferOptions``).
    public struct Configuration: Sendable {
        /// Most connections open to one host at once (`CURLMOPT_MAX_HOST_CONNECTIONS`).
        /// Transfers beyond it wait for a connection, or share one through HTTP/2.
        public var maxConnectionsPerHost: Int
        /// Most connections open in total; 0 means no limit (`CURLMOPT_MAX_TOTAL_CONNECTIONS`).
        public var maxTotalConnections: Int
        /// Idle connections kept for reuse (`CURLMOPT_MAXCONNECTS`).
        public var maxIdleConnections: Int
        /// Easy handles kept for reuse after their transfer ends.
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

    /// Counters since the client started.
    public struct Statistics: Sendable, Equatable {
        public var transfersStarted = 0
        public var transfersCompleted = 0
        public var transfersFailed = 0
        public var transfersCancelled = 0
        /// Connections libcurl opened (the sum of `CURLINFO_NUM_CONNECTS`).
        public var connectionsOpened = 0
        /// Transfers on the multi handle now.
        public var active = 0
        /// Easy handles idle in the pool now.
        public var pooledHandles = 0
        public init() {}
    }

    let loop: CurlEventLoop

    /// libcurl's version string, e.g. `libcurl/7.88.1 OpenSSL/3.0.x …`.
    public static var libcurlVersion: String { String(cString: curl_version()) }

    /// Starts the client's event thread.
    public init(configuration: Configuration = .init(), logger: Logger = Logger(label: "veeam-gateway.curl")) throws {
        self.loop = try CurlEventLoop(configuration: configuration, logger: logger)
    }

    deinit {
        loop.requestShutdown()
    }

    /// The client's counters.
    public var statistics: Statistics { loop.statistics }

    /// Performs one request with the given options. HTTP error statuses are returned, not thrown.
    /// - Throws: ``UpstreamError`` for transport failures; `CancellationError` when the task is cancelled.
    public func perform(_ request: UpstreamRequest, options: TransferOptions) async throws -> UpstreamResponse {
        let ticket = TransferTicket(request: request, options: options)
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

    /// Stops the event thread. Transfers still running fail with `upstream.shutdown`;
    /// later calls to ``perform(_:options:)`` fail the same way.
    public func shutdown() async {
        loop.requestShutdown()
        await loop.waitUntilStopped()
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
