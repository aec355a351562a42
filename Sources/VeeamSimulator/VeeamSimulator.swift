import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
public import ServiceLifecycle
import Synchronization

/// What to simulate and how.
public struct SimulatorConfiguration: Sendable {
    /// Address both listeners bind to.
    public var host: String = "127.0.0.1"
    /// Port of the VB365 listener (`0`: any free port; `nil`: not started).
    public var vb365Port: Int? = 4443
    /// Port of the VSPC listener (`0`: any free port; `nil`: not started).
    public var vspcPort: Int? = 1280
    public var dialect: SimulatorDialect = .seed
    /// The VB365 REST version served (only that one, under `/vN/`).
    public var vb365API: SimulatorVB365API = .v5
    /// Lifetime of access tokens (`expires_in`).
    public var tokenLifetime: Duration = .seconds(3600)
    /// Offer HTTP/2 through ALPN besides HTTP/1.1.
    public var http2: Bool = false
    /// gzip answers to requests that send `Accept-Encoding: gzip`.
    public var gzip: Bool = false
    /// The estate served from the start; ``SimulatorState/changeEstate(_:)`` (and the `/_sim`
    /// admin routes) change it while running, in ``VeeamSimulator/state``, not here.
    public var fixtures: SimulatorFixtures
    public var tls: TLSMaterial
    /// Faults active from the start.
    public var faults: [SimulatedProduct: SimulatorFaults] = [:]

    public init(fixtures: SimulatorFixtures, tls: TLSMaterial) {
        self.fixtures = fixtures
        self.tls = tls
    }
}

/// Both simulated Veeam servers, each on its own HTTPS listener, sharing one ``SimulatorState``.
/// A ServiceLifecycle `Service`: `run()` serves until cancelled or shut down gracefully.
public final class VeeamSimulator: Service, Sendable {
    public let configuration: SimulatorConfiguration
    public let state: SimulatorState
    private let logger: Logger
    private let ready = Mutex<(ports: [SimulatedProduct: Int], waiters: [CheckedContinuation<[SimulatedProduct: Int], Never>])>(([:], []))

    public init(configuration: SimulatorConfiguration, logger: Logger = Logger(label: "veeam-sim")) {
        self.configuration = configuration
        self.state = SimulatorState(tokenLifetime: configuration.tokenLifetime, faults: configuration.faults, fixtures: configuration.fixtures)
        self.logger = logger
    }

    private var expectedProducts: [SimulatedProduct] {
        var products: [SimulatedProduct] = []
        if configuration.vb365Port != nil { products.append(.vb365) }
        if configuration.vspcPort != nil { products.append(.vspc) }
        return products
    }

    /// Waits until every configured listener is bound and returns the ports.
    public func waitUntilReady() async -> [SimulatedProduct: Int] {
        await withCheckedContinuation { continuation in
            let ports = ready.withLock { state -> [SimulatedProduct: Int]? in
                if state.ports.count == expectedProducts.count { return state.ports }
                state.waiters.append(continuation)
                return nil
            }
            if let ports { continuation.resume(returning: ports) }
        }
    }

    private func markReady(_ product: SimulatedProduct, port: Int) {
        let expected = expectedProducts.count
        let (ports, waiters) = ready.withLock { state -> ([SimulatedProduct: Int], [CheckedContinuation<[SimulatedProduct: Int], Never>]) in
            state.ports[product] = port
            guard state.ports.count == expected else { return (state.ports, []) }
            defer { state.waiters.removeAll() }
            return (state.ports, state.waiters)
        }
        for waiter in waiters { waiter.resume(returning: ports) }
    }

    public func run() async throws {
        let tlsConfiguration = try makeTLSConfiguration()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for product in expectedProducts {
                let port = (product == .vb365 ? configuration.vb365Port : configuration.vspcPort) ?? 0
                let router = Router(context: SimulatorContext.self)
                if configuration.gzip { router.add(middleware: GzipMiddleware()) }
                switch product {
                case .vb365: VB365Routes(state: state, api: configuration.vb365API).register(on: router)
                case .vspc:
                    router.add(middleware: VSPCAsyncActionsMiddleware(state: state))
                    VSPCRoutes(
                        state: state, dialect: configuration.dialect, vb365API: configuration.vb365API,
                        vb365Host: configuration.vb365Port == nil ? nil : Self.reachableName(configuration.host)
                    ).register(on: router)
                }
                AdminRoutes(state: state).register(on: router)
                let server: HTTPServerBuilder =
                    configuration.http2
                    ? try .http2Upgrade(tlsConfiguration: tlsConfiguration)
                    : try .tls(.http1(), tlsConfiguration: tlsConfiguration)
                var appLogger = logger
                appLogger[metadataKey: "product"] = "\(product.rawValue)"
                let app = Application(
                    router: router,
                    server: server,
                    configuration: .init(address: .hostname(configuration.host, port: port), serverName: nil),
                    onServerRunning: { [weak self] channel in
                        self?.markReady(product, port: channel.localAddress?.port ?? port)
                    },
                    logger: appLogger
                )
                group.addTask { try await app.run() }
            }
            try await group.waitForAll()
        }
    }

    /// The host a client reaches a listener bound to `host` at (a wildcard address: `localhost`).
    static func reachableName(_ host: String) -> String {
        host == "0.0.0.0" || host == "::" || host.isEmpty ? "localhost" : host
    }

    private func makeTLSConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(configuration.tls.serverCertificatePEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(configuration.tls.serverPrivateKeyPEM.utf8), format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // Clients rarely answer close_notify on an idle pooled connection; do not hold shutdown for it.
        tls.shutdownTimeout = .milliseconds(250)
        return tls
    }
}
