public import GatewayAccess
public import GatewayConfig
public import GatewayCore
public import NIOSSL
import Synchronization

/// The configuration-derived parts a request runs under, built by the runtime (GatewayRuntime's
/// `GatewayState`) and swapped whole on reload. A class, so that taking the snapshot (every
/// request, on the hot path too) is one retain.
public final class GatewaySnapshot: Sendable {
    public let configuration: GatewayConfiguration
    public let service: TenantService
    public let access: AccessControl
    /// The front end's TLS context (`listen.tls`), made from the files as they were when this
    /// snapshot was built: new connections take the current one.
    public let tlsContext: NIOSSLContext?
    /// With `listen.tls.crlFile`: the gateway's verification of client certificates.
    public let clientCheck: ClientCertificateCheck?

    public init(
        configuration: GatewayConfiguration, service: TenantService, access: AccessControl, tlsContext: NIOSSLContext?,
        clientCheck: ClientCertificateCheck? = nil
    ) {
        self.configuration = configuration
        self.service = service
        self.access = access
        self.tlsContext = tlsContext
        self.clientCheck = clientCheck
    }
}

/// Where the front end takes each request's snapshot from. The runtime replaces it on reload;
/// the front end only reads it.
public final class SnapshotSource: Sendable {
    private let current: Mutex<GatewaySnapshot>

    public init(_ snapshot: GatewaySnapshot) {
        self.current = Mutex(snapshot)
    }

    /// The snapshot in force now.
    public var snapshot: GatewaySnapshot { current.withLock { $0 } }

    /// Puts `snapshot` in force for every request that starts from now on.
    public func replace(with snapshot: GatewaySnapshot) {
        current.withLock { $0 = snapshot }
    }
}
