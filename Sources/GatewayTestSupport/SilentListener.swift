import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket on 127.0.0.1 that listens but never accepts: the kernel completes the TCP
/// handshake, nobody answers the TLS ClientHello. A client's connect timeout fires.
public final class SilentListener: Sendable {
    public let port: Int
    private let descriptor: Int32

    public init() throws {
        let socket = try LoopbackSocket.listening(backlog: 64)
        self.descriptor = socket.descriptor
        self.port = socket.port
    }

    deinit {
        close(descriptor)
    }
}

/// A loopback port with nothing listening (bound, then closed): connections are refused.
public func refusedPort() throws -> Int {
    let listener = try SilentListener()
    return listener.port  // the listener closes when it goes out of scope
}

/// A TCP socket bound to 127.0.0.1 on a free port and listening: the test servers' one way to
/// get one.
struct LoopbackSocket {
    let descriptor: Int32
    let port: Int

    static func listening(backlog: Int32) throws -> LoopbackSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return LoopbackSocket(descriptor: fd, port: Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// A TCP connection to 127.0.0.1:`port` (a blocking socket); `configure` sets options on the
/// socket before it connects (a receive buffer must be set then to shape the window).
public func connectToLoopback(port: Int, configure: (Int32) -> Void = { _ in }) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    configure(fd)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}
