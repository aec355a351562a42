import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A plain-HTTP server on 127.0.0.1 that answers every connection with the same bytes, written
/// as given (after reading the request head), then closes it: for clients meeting responses no
/// well-behaved server sends (odd header spacing, an interim `100 Continue`).
public final class CannedHTTPServer: Sendable {
    public let port: Int
    private let descriptor: Int32
    private let stopped = Atomic<Bool>(false)

    public init(response: [UInt8]) throws {
        let socket = try LoopbackSocket.listening(backlog: 16)
        self.descriptor = socket.descriptor
        self.port = socket.port
        let thread = Thread { [self] in serve(response) }
        thread.start()
    }

    /// Stops accepting (the accept loop ends at its next connection or error).
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    deinit {
        close(descriptor)
    }

    private func serve(_ response: [UInt8]) {
        while !stopped.load(ordering: .relaxed) {
            let client = accept(descriptor, nil, nil)
            guard client >= 0 else { return }
            var head: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
                let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { break }
                head += chunk[0..<count]
            }
            var sent = 0
            while sent < response.count {
                let count = response[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard count > 0 else { break }
                sent += count
            }
            close(client)
        }
    }
}
