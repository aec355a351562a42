import HTTPTransport
import CCurl
import Logging
import NIOCore
import Synchronization

/// One swift-nio event loop's libcurl: a multi handle, a share handle and pooled easy handles,
/// all used on that loop's thread only.
///
/// A transfer asked for on the loop (a cache miss the hot path serves on the caller's own
/// connection) is added, sent and finished on that thread without a change of thread: libcurl is
/// driven with `curl_multi_socket_action`, its timers are the loop's scheduled tasks, and only
/// the wait for a socket to become ready happens elsewhere, in the client's one
/// ``CurlSocketWatcher`` thread, which hands the ready socket back to this loop.
///
/// Concurrency contract: `stats` and `stopped` are Mutex-guarded and read from any thread; every
/// other stored property is touched only on `eventLoop` (hence `@unchecked Sendable`). Calls
/// from other threads (``submit(_:)`` off the loop, ``cancel(_:)``, ``requestShutdown()``,
/// ``socketsReady(_:)``) are `execute`d onto it. libcurl's socket and timer callbacks run inside
/// the loop's own libcurl calls; they record what libcurl asks for and never call libcurl back.
final class CurlEventLoop: @unchecked Sendable {
    struct Stopped {
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// What libcurl asked to be told about one socket.
    private struct WatchedSocket {
        /// `CURL_POLL_IN`, `_OUT` or `_INOUT`.
        var what: Int32
        /// Whether the watcher holds a registration that has not fired yet.
        var armed: Bool
    }

    let eventLoop: any EventLoop
    let index: Int
    private let client: CurlClientCore
    private let stats = Mutex(CurlClient.Statistics())
    private let stopped = Mutex(Stopped())
    /// Set once by ``requestShutdown()``: later submissions are refused at once, from any thread,
    /// and nothing more is `execute`d for shutting down (the loop's group may be gone by then).
    private let shutdownRequested = Atomic<Bool>(false)

    // Loop-thread state.
    /// Nil once the loop's libcurl has been freed.
    private var multi: UnsafeMutableRawPointer?
    private let share: UnsafeMutableRawPointer
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var activeByTicket: [ObjectIdentifier: UnsafeMutableRawPointer] = [:]
    private var sockets: [Int32: WatchedSocket] = [:]
    /// Sockets libcurl stopped watching whose watcher registration was left in place: a
    /// kept-alive connection goes quiet after every transfer (its one-shot registration spent by
    /// the answer's last read) and is watched again by the next, so its registration is changed
    /// then instead of deleted now and added again. An event a parked socket still reports finds
    /// it unwatched and is dropped. A number that was closed meanwhile is no longer registered
    /// (the kernel drops a closed descriptor), which ``CurlSocketWatcher/arm(_:what:loop:isNew:)``
    /// finds out and mends; such a number stays here until libcurl uses it again (the set is
    /// bounded by the descriptor numbers libcurl has had). Parked numbers are never deleted from
    /// the watcher by number: a closed one may belong to another loop's socket by then.
    private var parked: Set<Int32> = []
    /// When libcurl wants `socket_action(CURL_SOCKET_TIMEOUT)`, nil for never. Its callback only
    /// records this; ``settleTimer()`` turns it into a scheduled task once the libcurl call that
    /// changed it has returned, so a deadline libcurl sets and moves within one call (every
    /// transfer's start asks for 0 ms, then for its real deadline) costs no task.
    private var timerDue: NIODeadline?
    /// The scheduled task and when it fires. A task that fires before `timerDue` schedules the
    /// next one instead of driving libcurl, so a later deadline never cancels and reschedules.
    private var timer: Scheduled<Void>?
    private var timerAt = NIODeadline.distantFuture

    init(eventLoop: any EventLoop, index: Int, client: CurlClientCore) throws(UpstreamError) {
        guard let multi = curl_multi_init() else {
            throw UpstreamError(.invalidRequest, "curl_multi_init failed")
        }
        guard let share = curl_share_init() else {
            curl_multi_cleanup(multi)
            throw UpstreamError(.invalidRequest, "curl_share_init failed")
        }
        self.eventLoop = eventLoop
        self.index = index
        self.client = client
        self.multi = multi
        self.share = share
        let configuration = client.configuration
        // One thread uses the share, so no lock callbacks are needed.
        _ = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
        _ = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        _ = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_CONNECT.rawValue))
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxTotalConnections)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxIdleConnections)
        // The callbacks get this object unretained: the client keeps every loop alive until
        // its multi handle is freed, and libcurl calls them only from inside our own calls.
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = ccurl_multi_setopt_socket_function(multi, curlSocketCallback)
        _ = ccurl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, context)
        _ = ccurl_multi_setopt_timer_function(multi, curlTimerCallback)
        _ = ccurl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, context)
    }

    var statistics: CurlClient.Statistics { stats.withLock { $0 } }

    // MARK: - Called from any thread

    /// Starts the transfer: at once when called on the loop, otherwise on its next turn.
    func submit(_ ticket: TransferTicket) {
        if shutdownRequested.load(ordering: .acquiring) {
            ticket.finish(.failure(Self.shutDown))
            return
        }
        if eventLoop.inEventLoop {
            start(ticket, onCallerLoop: true)
        } else {
            eventLoop.execute { self.start(ticket, onCallerLoop: false) }
        }
    }

    func cancel(_ ticket: TransferTicket) {
        eventLoop.execute { self.abort(ticket) }
    }

    func requestShutdown() {
        guard !shutdownRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        eventLoop.execute { self.close() }
    }

    /// Called by the watcher's thread: these sockets are ready.
    func socketsReady(_ events: [CurlSocketEvent]) {
        eventLoop.execute {
            for event in events { self.socketReady(event) }
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

    // MARK: - libcurl's callbacks (on the loop, inside our libcurl calls)

    /// libcurl wants to hear about `socket` (`what`: `CURL_POLL_*`), or no longer (`CURL_POLL_REMOVE`).
    fileprivate func socketChanged(_ socket: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            if sockets.removeValue(forKey: socket) != nil { parked.insert(socket) }
            return
        }
        let isNew = sockets[socket] == nil && parked.remove(socket) == nil
        if isNew { stats.withLock { $0.socketsAdded += 1 } }
        sockets[socket] = WatchedSocket(what: what, armed: true)
        client.watcher.arm(socket, what: what, loop: index, isNew: isNew)
    }

    /// libcurl wants `socket_action(CURL_SOCKET_TIMEOUT)` in `milliseconds`, or never (-1).
    fileprivate func timerChanged(_ milliseconds: Int) {
        timerDue = milliseconds < 0 ? nil : .now() + .milliseconds(Int64(milliseconds))
    }

    // MARK: - On the loop

    /// Makes `timerDue` a scheduled task, after each libcurl call that may have changed it: kept
    /// as it is when the task already fires no later (it re-arms itself then), else moved earlier.
    private func settleTimer() {
        guard let due = timerDue else { return }  // a task still scheduled fires, finds nothing due
        if timer != nil, timerAt <= due { return }
        timer?.cancel()
        timerAt = due
        timer = eventLoop.scheduleTask(deadline: due) { self.timerFired() }
        stats.withLock { $0.timerTasksScheduled += 1 }
    }

    private func timerFired() {
        timer = nil
        timerAt = .distantFuture
        guard let due = timerDue else { return }
        if due > .now() {
            settleTimer()  // libcurl moved its deadline later meanwhile
            return
        }
        timerDue = nil
        drive(ccurl_socket_timeout(), flags: 0)
    }

    private func socketReady(_ event: CurlSocketEvent) {
        guard multi != nil, sockets[event.socket] != nil else { return }  // gone since it fired
        sockets[event.socket]?.armed = false
        drive(event.socket, flags: event.flags)
        // Still wanted and not armed again by libcurl's callback meanwhile: ask for the next event.
        if let watched = sockets[event.socket], !watched.armed {
            sockets[event.socket]?.armed = true
            client.watcher.arm(event.socket, what: watched.what, loop: index, isNew: false)
        }
    }

    /// Lets libcurl act on `socket` (or on its timers), then hands finished transfers back.
    private func drive(_ socket: Int32, flags: Int32) {
        guard let multi else { return }
        var running: Int32 = 0
        _ = curl_multi_socket_action(multi, socket, flags, &running)
        collectFinished()
        settleTimer()
    }

    /// What a submission gets once the loop's libcurl is shut down (or being shut down).
    private static let shutDown = UpstreamError(.shutdown, "the HTTP client is shut down")

    private func start(_ ticket: TransferTicket, onCallerLoop: Bool) {
        guard let multi else {
            ticket.finish(.failure(Self.shutDown))
            return
        }
        if ticket.isCancelRequested {
            stats.withLock { $0.transfersCancelled += 1 }
            ticket.finish(.failure(CancellationError()))
            return
        }
        guard let handle = idleHandles.popLast() ?? curl_easy_init() else {
            ticket.finish(.failure(UpstreamError(.invalidRequest, "curl_easy_init failed")))
            return
        }
        if ticket.options.tls.insecure { client.warnInsecureOnce(url: ticket.request.url) }
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
            $0.transfersOnCallerLoop += onCallerLoop ? 1 : 0
            $0.active = active.count
            $0.pooledHandles = idleHandles.count
        }
        // Send now rather than on the timer libcurl just set: a kept-alive connection takes the
        // request in this very call.
        drive(ccurl_socket_timeout(), flags: 0)
    }

    private func abort(_ ticket: TransferTicket) {
        guard let multi, let handle = activeByTicket.removeValue(forKey: ObjectIdentifier(ticket)),
            let transfer = active.removeValue(forKey: handle)
        else { return }  // finished already, or never started (start() saw the flag)
        _ = curl_multi_remove_handle(multi, handle)
        settleTimer()
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
        guard let multi else { return }
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
        if idleHandles.count < client.configuration.handlePoolSize {
            curl_easy_reset(handle)
            idleHandles.append(handle)
        } else {
            curl_easy_cleanup(handle)
        }
    }

    /// Fails what is running, frees every handle and tells the client this loop is done.
    private func close() {
        guard let multi else { return }
        // Unregistered while this loop's libcurl still holds them open (once closed below, a
        // number may be another loop's socket). Parked ones are closed with their connections.
        for socket in sockets.keys { client.watcher.forget(socket) }
        sockets.removeAll()
        parked.removeAll()
        timer?.cancel()
        timer = nil
        timerDue = nil
        let failure = UpstreamError(.shutdown, "the HTTP client was shut down during the transfer")
        for (handle, transfer) in active {
            _ = curl_multi_remove_handle(multi, handle)
            transfer.release()
            curl_easy_cleanup(handle)
            transfer.ticket.finish(.failure(failure))
        }
        active.removeAll()
        activeByTicket.removeAll()
        for handle in idleHandles { curl_easy_cleanup(handle) }
        idleHandles.removeAll()
        curl_multi_cleanup(multi)
        self.multi = nil
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
        client.loopStopped()
    }
}

/// libcurl's socket callback (`CURLMOPT_SOCKETFUNCTION`).
private let curlSocketCallback: curl_socket_callback = { _, socket, what, context, _ in
    guard let context else { return 0 }
    Unmanaged<CurlEventLoop>.fromOpaque(context).takeUnretainedValue().socketChanged(socket, what: what)
    return 0
}

/// libcurl's timer callback (`CURLMOPT_TIMERFUNCTION`).
private let curlTimerCallback: curl_multi_timer_callback = { _, milliseconds, context in
    guard let context else { return 0 }
    Unmanaged<CurlEventLoop>.fromOpaque(context).takeUnretainedValue().timerChanged(milliseconds)
    return 0
}
