#if os(Linux)
import CCurl
import Glibc
import HTTPTransport
import Foundation

/// One readiness event of one of libcurl's sockets, for the event loop that owns it.
struct CurlSocketEvent: Sendable {
    /// The socket.
    let socket: Int32
    /// `CURL_CSELECT_IN`, `_OUT` and `_ERR`, as `curl_multi_socket_action` takes them.
    let flags: Int32
}

/// The one thread that waits on libcurl's sockets for every ``CurlEventLoop`` of a client.
///
/// libcurl runs on the event loops themselves (a transfer asked for on a loop is started, sent
/// and finished there), but swift-nio's selector takes no foreign descriptor, so something else
/// has to wait for an upstream's answer. This thread does only that: it sleeps in `epoll_wait`
/// and hands each ready socket to the loop that owns it (one `execute` per loop and wake-up),
/// which then lets libcurl read it. Every registration is `EPOLLONESHOT`, so a socket reports
/// once and stays quiet until its loop, having handled it, asks again with ``arm(_:what:loop:isNew:)``;
/// `epoll_ctl` from a loop's thread changes what a sleeping `epoll_wait` watches without waking it.
///
/// Concurrency contract: the descriptors are immutable after `init` and the kernel serializes
/// `epoll_ctl` against `epoll_wait`; the loops are handed to the thread once, in ``start(_:)``.
/// The epoll descriptor is closed by the thread itself, after ``stop()``, which the client calls
/// only once every loop has freed its multi handle (so no socket callback can arm it any more).
final class CurlSocketWatcher: Sendable {
    private let epoll: Int32
    private let stopSignal: Int32
    private static let stopToken = UInt64.max

    init() throws(UpstreamError) {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw UpstreamError(.invalidRequest, "epoll_create1 failed (errno \(errno))") }
        let stopSignal = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard stopSignal >= 0 else {
            close(epoll)
            throw UpstreamError(.invalidRequest, "eventfd failed (errno \(errno))")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.stopToken
        guard epoll_ctl(epoll, Int32(EPOLL_CTL_ADD), stopSignal, &event) == 0 else {
            close(stopSignal)
            close(epoll)
            throw UpstreamError(.invalidRequest, "epoll_ctl failed (errno \(errno))")
        }
        self.epoll = epoll
        self.stopSignal = stopSignal
    }

    /// Starts the thread; events of a socket armed for loop `i` go to `loops[i]`.
    func start(_ loops: [CurlEventLoop]) {
        let thread = Thread { [self] in self.run(loops) }
        thread.name = "curl-sockets"
        thread.start()
    }

    /// Asks for one event of `socket` (`what`: libcurl's `CURL_POLL_IN`, `_OUT` or `_INOUT`) on
    /// behalf of loop `index`. `isNew` adds the socket, otherwise its registration is changed; when
    /// that fails (libcurl closed a socket without saying so and the number came back, or the
    /// kernel dropped a closed one), the other operation is tried.
    func arm(_ socket: Int32, what: Int32, loop index: Int, isNew: Bool) {
        var event = epoll_event()
        var mask = EPOLLONESHOT.rawValue | EPOLLRDHUP.rawValue
        if what & CURL_POLL_IN != 0 { mask |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { mask |= EPOLLOUT.rawValue }
        event.events = mask
        event.data.u64 = UInt64(UInt32(truncatingIfNeeded: index)) << 32 | UInt64(UInt32(bitPattern: socket))
        let first = isNew ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
        if epoll_ctl(epoll, Int32(first), socket, &event) != 0 {
            _ = epoll_ctl(epoll, Int32(isNew ? EPOLL_CTL_MOD : EPOLL_CTL_ADD), socket, &event)
        }
    }

    /// Stops watching `socket` (its loop is shutting down; a socket libcurl merely stops
    /// watching keeps its disarmed registration for the next transfer on it). A socket already
    /// closed is gone anyway.
    func forget(_ socket: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(epoll, Int32(EPOLL_CTL_DEL), socket, &event)
    }

    /// Ends the thread, which then closes its descriptors.
    func stop() {
        _ = eventfd_write(stopSignal, 1)
    }

    private func run(_ loops: [CurlEventLoop]) {
        let capacity = 64
        var events = [epoll_event](repeating: epoll_event(), count: capacity)
        var batches = [[CurlSocketEvent]](repeating: [], count: loops.count)
        while true {
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32(capacity), -1) }
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            var stopping = false
            for event in events.prefix(Int(count)) {
                let token = event.data.u64
                if token == Self.stopToken {
                    stopping = true
                    continue
                }
                let index = Int(token >> 32)
                guard loops.indices.contains(index) else { continue }
                var flags: Int32 = 0
                if event.events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_IN }
                if event.events & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
                if event.events & EPOLLERR.rawValue != 0 { flags |= CURL_CSELECT_ERR }
                batches[index].append(CurlSocketEvent(socket: Int32(bitPattern: UInt32(truncatingIfNeeded: token)), flags: flags))
            }
            for index in batches.indices where !batches[index].isEmpty {
                loops[index].socketsReady(batches[index])
                batches[index].removeAll(keepingCapacity: true)
            }
            if stopping { break }
        }
        close(stopSignal)
        close(epoll)
    }
}
#else
#error("CurlHTTP waits on libcurl's sockets with epoll: Linux only")
#endif
