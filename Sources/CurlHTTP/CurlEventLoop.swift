import HTTPTransport
import CCurl
import Foundation
import Logging
import Synchronization

/// The thread that owns the multi handle, the share handle and every easy handle.
///
/// Concurrency contract: `inbox`, `wakeGuard`, `stats` and `stopped` are Mutex-guarded and
/// touched from any thread; every other stored property is touched only by the event thread
/// (hence `@unchecked Sendable`). `curl_multi_wakeup` is the one libcurl call made from other
/// threads, and only while holding `wakeGuard` with it false (not closed), so it never races
/// cleanup. It is *not* made under the inbox lock: the woken event thread takes that lock at
/// once, and would find it held by the waker still in its system call (a second sleep and
/// wake-up per transfer, measured on the miss path). A wake-up already pending is not repeated.
final class CurlEventLoop: @unchecked Sendable {
    struct Inbox {
        var submissions: [TransferTicket] = []
        var cancellations: [TransferTicket] = []
        var shutdownRequested = false
        /// Set by the event thread, under the lock, right before it frees the multi handle.
        var closed = false
        /// A wake-up was sent and the event thread has not drained the inbox since.
        var wakePending = false
    }

    struct Stopped {
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let inbox = Mutex(Inbox())
    /// True once the multi handle is being freed: no wake-up after that.
    private let wakeGuard = Mutex(false)
    private let stats = Mutex(CurlClient.Statistics())
    private let stopped = Mutex(Stopped())
    private let insecureWarned = Mutex(Set<String>())
    let logger: Logger
    let configuration: CurlClient.Configuration

    // Event-thread state.
    private let multi: UnsafeMutableRawPointer
    private let share: UnsafeMutableRawPointer
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var activeByTicket: [ObjectIdentifier: UnsafeMutableRawPointer] = [:]

    private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

    init(configuration: CurlClient.Configuration, logger: Logger) throws {
        guard Self.globalInit == CURLE_OK else {
            throw UpstreamError(.invalidRequest, "curl_global_init failed")
        }
        guard let multi = curl_multi_init() else {
            throw UpstreamError(.invalidRequest, "curl_multi_init failed")
        }
        guard let share = curl_share_init() else {
            curl_multi_cleanup(multi)
            throw UpstreamError(.invalidRequest, "curl_share_init failed")
        }
        // One thread uses the share, so no lock callbacks are needed.
        _ = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
        _ = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        _ = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_CONNECT.rawValue))
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxTotalConnections)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxIdleConnections)
        self.multi = multi
        self.share = share
        self.configuration = configuration
        self.logger = logger
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "curl-event-loop"
        thread.start()
    }

    var statistics: CurlClient.Statistics { stats.withLock { $0 } }

    // MARK: - Called from any thread

    /// What a change to the inbox asks of the event thread.
    private enum Posted {
        case refused, queued, wake
    }

    func submit(_ ticket: TransferTicket) {
        let posted = inbox.withLock { inbox -> Posted in
            guard !inbox.shutdownRequested, !inbox.closed else { return .refused }
            inbox.submissions.append(ticket)
            return Self.needsWake(&inbox)
        }
        switch posted {
        case .refused: ticket.finish(.failure(UpstreamError(.shutdown, "the HTTP client is shut down")))
        case .wake: wake()
        case .queued: break
        }
    }

    func cancel(_ ticket: TransferTicket) {
        let posted = inbox.withLock { inbox -> Posted in
            guard !inbox.closed else { return .refused }
            inbox.cancellations.append(ticket)
            return Self.needsWake(&inbox)
        }
        if case .wake = posted { wake() }
    }

    func requestShutdown() {
        let posted = inbox.withLock { inbox -> Posted in
            guard !inbox.closed, !inbox.shutdownRequested else { return .refused }
            inbox.shutdownRequested = true
            return Self.needsWake(&inbox)
        }
        if case .wake = posted { wake() }
    }

    /// Whether this change must wake the event thread (none is pending yet); marks it pending.
    private static func needsWake(_ inbox: inout Inbox) -> Posted {
        if inbox.wakePending { return .queued }
        inbox.wakePending = true
        return .wake
    }

    /// Wakes the event thread out of `curl_multi_poll`, unless the multi handle is going away.
    private func wake() {
        wakeGuard.withLock { closing in
            guard !closing else { return }
            _ = curl_multi_wakeup(multi)
        }
    }

    func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = stopped.withLock { state -> Bool in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
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

    // MARK: - Event thread

    private func runLoop() {
        while true {
            let (submissions, cancellations, shutdown) = inbox.withLock { inbox in
                defer {
                    inbox.submissions.removeAll(keepingCapacity: true)
                    inbox.cancellations.removeAll(keepingCapacity: true)
                    inbox.wakePending = false
                }
                return (inbox.submissions, inbox.cancellations, inbox.shutdownRequested)
            }
            for ticket in submissions { start(ticket) }
            for ticket in cancellations { abort(ticket) }
            if shutdown { break }

            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            collectFinished()
            var ready: Int32 = 0
            _ = curl_multi_poll(multi, nil, 0, 1000, &ready)
        }
        close()
    }

    private func start(_ ticket: TransferTicket) {
        if ticket.isCancelRequested {
            stats.withLock { $0.transfersCancelled += 1 }
            ticket.finish(.failure(CancellationError()))
            return
        }
        guard let handle = idleHandles.popLast() ?? curl_easy_init() else {
            ticket.finish(.failure(UpstreamError(.invalidRequest, "curl_easy_init failed")))
            return
        }
        if ticket.options.tls.insecure { warnInsecureOnce(url: ticket.request.url) }
        let transfer = CurlTransfer(ticket: ticket, handle: handle)
        do {
            try transfer.configure(share: share)
        } catch {
            transfer.release()
            recycle(handle)
            ticket.finish(.failure(error))
            return
        }
        let added = curl_multi_add_handle(multi, handle)
        guard added == CURLM_OK else {
            transfer.release()
            recycle(handle)
            ticket.finish(.failure(UpstreamError(.invalidRequest, "curl_multi_add_handle failed (\(added.rawValue))")))
            return
        }
        active[handle] = transfer
        activeByTicket[ObjectIdentifier(ticket)] = handle
        stats.withLock {
            $0.transfersStarted += 1
            $0.active = active.count
            $0.pooledHandles = idleHandles.count
        }
    }

    private func abort(_ ticket: TransferTicket) {
        guard let handle = activeByTicket.removeValue(forKey: ObjectIdentifier(ticket)),
            let transfer = active.removeValue(forKey: handle)
        else { return }  // finished already, or never started (start() saw the flag)
        _ = curl_multi_remove_handle(multi, handle)
        transfer.release()
        recycle(handle)
        stats.withLock {
            $0.transfersCancelled += 1
            $0.active = active.count
            $0.pooledHandles = idleHandles.count
        }
        ticket.finish(.failure(CancellationError()))
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
            let code = ccurl_msg_result(message)
            _ = curl_multi_remove_handle(multi, handle)
            guard let transfer = active.removeValue(forKey: handle) else { continue }
            activeByTicket.removeValue(forKey: ObjectIdentifier(transfer.ticket))
            let result = transfer.result(code: code)
            transfer.release()
            recycle(handle)
            let opened = transfer.connectionsOpened
            let failed: Bool
            if case .failure = result { failed = true } else { failed = false }
            stats.withLock {
                $0.transfersCompleted += failed ? 0 : 1
                $0.transfersFailed += failed ? 1 : 0
                $0.connectionsOpened += opened
                $0.active = active.count
                $0.pooledHandles = idleHandles.count
            }
            transfer.ticket.finish(result)
        }
    }

    private func recycle(_ handle: UnsafeMutableRawPointer) {
        if idleHandles.count < configuration.handlePoolSize {
            curl_easy_reset(handle)
            idleHandles.append(handle)
        } else {
            curl_easy_cleanup(handle)
        }
    }

    private func close() {
        let failure = UpstreamError(.shutdown, "the HTTP client was shut down during the transfer")
        for (handle, transfer) in active {
            _ = curl_multi_remove_handle(multi, handle)
            transfer.release()
            curl_easy_cleanup(handle)
            transfer.ticket.finish(.failure(failure))
        }
        active.removeAll()
        activeByTicket.removeAll()
        let leftovers = inbox.withLock { inbox -> [TransferTicket] in
            inbox.closed = true
            defer { inbox.submissions.removeAll() }
            return inbox.submissions
        }
        for ticket in leftovers { ticket.finish(.failure(failure)) }
        for handle in idleHandles { curl_easy_cleanup(handle) }
        idleHandles.removeAll()
        wakeGuard.withLock { $0 = true }  // a waker past the inbox's `closed` check finishes first
        curl_multi_cleanup(multi)
        curl_share_cleanup(share)
        stats.withLock {
            $0.active = 0
            $0.pooledHandles = 0
        }
        let waiters = stopped.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.done = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
