import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on 127.0.0.1 to a target port whose connections can be made to stop forwarding
/// without closing (``stall()``): what a half-dead network path, a frozen NAT entry or a hung
/// proxy does to a long-lived connection. Connections accepted after a stall forward again.
/// One thread per direction of each connection (tests only).
public final class StallingRelay: Sendable {
    public let port: Int
    private let listener: Int32
    private let targetPort: Int
    /// Bumped by ``stall()``: a connection forwards while the generation it was accepted in is current.
    private let generation = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    private let descriptors = Mutex<[Int32]>([])

    public init(to targetPort: Int) throws {
        let socket = try LoopbackSocket.listening(backlog: 64)
        self.listener = socket.descriptor
        self.port = socket.port
        self.targetPort = targetPort
        let thread = Thread { [self] in self.acceptLoop() }
        thread.start()
    }

    /// Every open connection stops forwarding (its sockets stay open); new ones forward.
    public func stall() { generation.add(1, ordering: .relaxed) }

    /// Closes the listener and every connection.
    public func close() {
        closed.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for fd in descriptors.withLock({ $0 }) { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while !closed.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let upstream = try? connectToLoopback(port: targetPort) else {
                Glibc.close(client)
                continue
            }
            descriptors.withLock { $0 += [client, upstream] }
            let born = generation.load(ordering: .relaxed)
            for (from, to) in [(client, upstream), (upstream, client)] {
                let thread = Thread { [self] in self.pump(from: from, to: to, born: born) }
                thread.start()
            }
        }
    }

    private func pump(from: Int32, to: Int32, born: Int) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(from, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while !closed.load(ordering: .relaxed) {
            if generation.load(ordering: .relaxed) != born {
                // Stalled: read nothing more, write nothing more, close nothing.
                usleep(100_000)
                continue
            }
            let count = recv(from, &buffer, buffer.count, 0)
            if count == 0 { break }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                break
            }
            if generation.load(ordering: .relaxed) != born { continue }  // arrived after the stall: dropped
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { bytes -> Int in
                    guard let base = bytes.baseAddress else { return -1 }
                    return send(to, base + sent, count - sent, Int32(MSG_NOSIGNAL))
                }
                if written <= 0 { return }
                sent += written
            }
        }
        shutdown(to, Int32(SHUT_WR))
    }
}
