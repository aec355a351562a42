import Foundation

/// A real `redis-server` (Debian's) on a free loopback port, for the shared-tier tests; stopped
/// and started again on the same port at will. `.ci/run` installs it.
public final class RunningRedis: @unchecked Sendable {
    public let port: Int
    private var process: Process?
    private let lock = NSLock()

    public var url: String { "redis://127.0.0.1:\(port)" }

    init(port: Int) { self.port = port }

    /// Starts the server (again) and waits until it accepts connections.
    public func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        lock.withLock { self.process = process }
        for _ in 0..<200 {
            if Self.accepts(port) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw RedisUnavailable(reason: "redis-server did not listen on \(port)")
    }

    /// Kills the server at once (SIGKILL: as a crash would).
    public func kill() {
        let process = lock.withLock { () -> Process? in
            defer { self.process = nil }
            return self.process
        }
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static func binary() throws -> String {
        for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw RedisUnavailable(reason: "redis-server is not installed (apt-get install redis-server; .ci/run does)")
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

public struct RedisUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Runs `body` with a fresh `redis-server` on a free port, then kills it.
public func withRedis<T: Sendable>(_ body: (RunningRedis) async throws -> T) async throws -> T {
    let redis = RunningRedis(port: try refusedPort())
    try await redis.start()
    defer { redis.kill() }
    return try await body(redis)
}
