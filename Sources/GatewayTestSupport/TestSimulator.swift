public import HTTPTransport
import Foundation
public import VeeamSimulator
import Logging
import ServiceLifecycle

/// The repository root, found from this file's location.
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// `config/simulator` in the repository.
public var simulatorFixtureDirectory: String { repositoryRoot + "/config/simulator" }

/// A simulator running in this process on free loopback ports, with a CA written to a file.
public struct RunningSimulator: Sendable {
    public let simulator: VeeamSimulator
    public let ports: [SimulatedProduct: Int]
    /// The CA that signed the server certificate (PEM file).
    public let caFile: String
    public let tls: TLSMaterial
    /// Stops the simulator now (connections refused from then on).
    public let stop: @Sendable () async -> Void

    public var state: SimulatorState { simulator.state }

    /// The same simulator with other ports named for its products (a test pointing one
    /// product's client at the other product's listener).
    public func withPorts(_ ports: [SimulatedProduct: Int]) -> RunningSimulator {
        RunningSimulator(simulator: simulator, ports: ports, caFile: caFile, tls: tls, stop: stop)
    }
    public var vb365BaseURL: String { "https://127.0.0.1:\(ports[.vb365] ?? 0)" }
    public var vspcBaseURL: String { "https://127.0.0.1:\(ports[.vspc] ?? 0)" }

    /// Options that trust this simulator's CA, with verification on.
    public func trustingOptions(
        connectTimeout: Duration = .seconds(5),
        totalTimeout: Duration = .seconds(20),
        maxResponseBytes: Int = 16 * 1024 * 1024,
        httpVersion: TransferOptions.HTTPVersion = .http2Preferred
    ) -> TransferOptions {
        TransferOptions(
            tls: .init(caFile: caFile),
            connectTimeout: connectTimeout,
            totalTimeout: totalTimeout,
            maxResponseBytes: maxResponseBytes,
            httpVersion: httpVersion
        )
    }
}

/// A fresh temporary directory, removed by the caller.
public func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "veeam-gateway-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `body` with a simulator serving both products on free ports over TLS, then stops it.
public func withSimulator<T: Sendable>(
    dialect: SimulatorDialect = .seed,
    vb365API: SimulatorVB365API = .v5,
    http2: Bool = false,
    gzip: Bool = false,
    generate: Int = 0,
    products: Set<SimulatedProduct> = [.vb365, .vspc],
    tokenLifetime: Duration = .seconds(3600),
    faults: [SimulatedProduct: SimulatorFaults] = [:],
    _ body: (RunningSimulator) async throws -> T
) async throws -> T {
    var fixtures = try SimulatorFixtures.load(directory: simulatorFixtureDirectory)
    fixtures.generate(count: generate)
    let tls = try TLSMaterial.generate()
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let caFile = directory + "/ca.pem"
    try tls.writeCA(to: caFile)

    var configuration = SimulatorConfiguration(fixtures: fixtures, tls: tls)
    configuration.vb365Port = products.contains(.vb365) ? 0 : nil
    configuration.vspcPort = products.contains(.vspc) ? 0 : nil
    configuration.dialect = dialect
    configuration.vb365API = vb365API
    configuration.http2 = http2
    configuration.gzip = gzip
    configuration.tokenLifetime = tokenLifetime
    configuration.faults = faults
    var logger = Logger(label: "veeam-sim")
    logger.logLevel = .critical
    let simulator = VeeamSimulator(configuration: configuration, logger: logger)
    // Graceful shutdown closes idle keep-alive connections at once; cancellation would wait for them.
    let group = ServiceGroup(configuration: .init(services: [simulator], logger: logger))
    let server = Task { try await group.run() }
    defer { server.cancel() }
    let ports = await simulator.waitUntilReady()
    let stop: @Sendable () async -> Void = {
        await group.triggerGracefulShutdown()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(1))
            server.cancel()
        }
        _ = await server.result
        watchdog.cancel()
    }
    let running = RunningSimulator(simulator: simulator, ports: ports, caFile: caFile, tls: tls, stop: stop)
    let result: Result<T, any Error>
    do {
        result = .success(try await body(running))
    } catch {
        result = .failure(error)
    }
    // Graceful first (closes idle HTTP/1.1 connections at once); an HTTP/2 connection waits for
    // the client to act on GOAWAY, and a handler may still be sleeping a latency fault: after
    // a second, cancel.
    await stop()
    return try result.get()
}
