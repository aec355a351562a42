public import GatewayAccess
public import GatewayConfig
import GatewayCore
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
public import NIOSSL
import NIOTLS
import X509

// HTTPS on the front end (`listen.tls`).
//
// Each accepted connection gets a TLS handler made from the TLS context of the configuration
// snapshot in force when it arrives, so a reload (SIGHUP) that re-reads the certificate and key
// applies to every new connection while open ones keep theirs. ALPN then picks the protocol:
// `h2` goes to Hummingbird's HTTP/2 channel (every stream through the router), `http/1.1` (or no
// ALPN at all) to the same raw-bytes front handler and router as plain HTTP, so the hot path
// answers cache hits behind TLS exactly as without it.

/// Building the front end's TLS context, and reading the client certificate it verified.
public enum FrontTLS {
    /// Loads `listen.tls`'s files as serving would, so that `check-config` and the start report a
    /// certificate or key that does not load as a ``ConfigError`` naming its key.
    public static func check(_ configuration: GatewayConfiguration) throws {
        if let settings = configuration.tls {
            _ = try context(settings, file: configuration.file)
            _ = try clientCheck(settings, file: configuration.file)
        }
    }

    /// The gateway's own client-certificate verification when `listen.tls.crlFile` is set (see
    /// ``ClientCertificateCheck``); nil otherwise. A CRL that does not load, or is not signed by a
    /// client CA, is a ``ConfigError`` naming `listen.tls.crlFile`.
    public static func clientCheck(_ settings: GatewayConfiguration.FrontTLSSettings, file: String) throws -> ClientCertificateCheck? {
        guard let crlFile = settings.crlFile, let caFile = settings.clientCAFile else { return nil }
        do {
            return try ClientCertificateCheck.load(caFile: caFile, crlFile: crlFile)
        } catch {
            throw ConfigError(file: file, key: "listen.tls.crlFile", message: error.message)
        }
    }

    /// The TLS context for `settings`: the certificate chain and key, ALPN `h2` and `http/1.1`
    /// (or `http/1.1` alone), TLS 1.2 at least, and, with a client CA, client certificates
    /// verified when presented (connections without one are still accepted). A file that does not
    /// load is a ``ConfigError`` naming its key.
    public static func context(_ settings: GatewayConfiguration.FrontTLSSettings, file: String) throws -> NIOSSLContext {
        func failure(_ key: String, _ what: String, _ error: any Error) -> ConfigError {
            ConfigError(file: file, key: "listen.tls." + key, message: "\(what) could not be loaded (\(error))")
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificateFile)
        } catch {
            throw failure("certificateFile", "the PEM certificate chain in \(settings.certificateFile)", error)
        }
        guard !chain.isEmpty else {
            throw ConfigError(file: file, key: "listen.tls.certificateFile", message: "\(settings.certificateFile) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: settings.keyFile, format: .pem)
        } catch {
            throw failure("keyFile", "the PEM private key in \(settings.keyFile)", error)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // A connection the gateway closes (a deadline, an idle timeout) waits this long for the
        // peer's close_notify before the socket is closed anyway: a peer that reads nothing must
        // not keep it the default 5 s longer.
        configuration.shutdownTimeout = .seconds(1)
        configuration.applicationProtocols = settings.http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        if let clientCA = settings.clientCAFile {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(clientCA)
            } catch {
                throw failure("clientCAFile", "the PEM CA certificates in \(clientCA)", error)
            }
            configuration.trustRoots = .certificates(roots)
            configuration.certificateVerification = .optionalVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigError(
                file: file, key: "listen.tls",
                message: "the certificate and key in \(settings.certificateFile) and \(settings.keyFile) do not make a TLS context (\(error)); is the key the certificate's?")
        }
    }

    /// The verified client certificate of the connection a request came on: on the channel
    /// itself (HTTP/1.1) or on its parent (an HTTP/2 stream); nil without TLS or without one.
    static func peerCertificate(of channel: any Channel) async -> PeerCertificate? {
        for candidate in [channel, channel.parent].compactMap({ $0 }) {
            let certificate: NIOSSLCertificate?
            do {
                certificate = try await candidate.nioSSL_peerCertificate().get()
            } catch {
                continue  // no TLS handler on this channel
            }
            return certificate.flatMap(identity)
        }
        return nil
    }

    /// The subject, as its RDNs with each attribute's OID and value, and the subject alternative
    /// names with their kinds (DNS, e-mail, URI, IP; other kinds are not bindable).
    static func identity(_ certificate: NIOSSLCertificate) -> PeerCertificate? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        var names: [AlternativeName] = []
        if let alternatives = try? parsed.extensions.subjectAlternativeNames {
            for name in alternatives {
                switch name {
                case .dnsName(let value): names.append(.dns(value))
                case .rfc822Name(let value): names.append(.email(value))
                case .uniformResourceIdentifier(let value): names.append(.uri(value))
                case .ipAddress(let octets): names.append(.ip(Array(octets.bytes)))
                default: break
                }
            }
        }
        let rdns = parsed.subject.map { rdn in
            // The value itself, not its RFC 4514 rendering (which escapes commas and the like); a
            // value of another ASN.1 type as that rendering, `#` and hex.
            rdn.map { attribute in
                DistinguishedNameValue.Attribute(type: attribute.type.description, value: String(attribute.value) ?? String(describing: attribute.value))
            }
        }
        return PeerCertificate(subject: DistinguishedNameValue(rdns: rdns), alternativeNames: names)
    }
}

/// The TLS child channel: the TLS handler of the current snapshot, then ALPN to HTTP/2 or to the
/// HTTP/1.1 channel with the raw-bytes front handler (``HotPathChannel``).
struct TLSFrontChannel: ServerChildChannel {
    enum Negotiated: Sendable {
        case http1(HotPathChannel.Value)
        case http2(HTTP2Channel.Value)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    let state: SnapshotSource
    let http1: HotPathChannel
    let http2: HTTP2Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard let context = state.snapshot.tlsContext else {
            return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
        }
        do {
            let pipeline = channel.pipeline.syncOperations
            if let check = state.snapshot.clientCheck {
                // listen.tls.crlFile: the chain and the revocation lists checked by the gateway.
                try pipeline.addHandler(
                    NIOSSLServerHandler(context: context) { chain, promise in
                        promise.completeWithTask { await check.verify(chain) }
                    })
            } else {
                try pipeline.addHandler(NIOSSLServerHandler(context: context))
            }
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).flatMapThrowing { value in
                        // After Hummingbird's connection manager: counts the streams (HTTP2Guard.swift).
                        try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionGuard(headTimeout: http1.headTimeout, idleTimeout: http1.idleTimeout))
                        return .http2(value)
                    }
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel: channel, logger: logger).map { .http1($0) }
                case .negotiated:
                    return channel.close().flatMapThrowing { throw ChannelError.inappropriateOperationForState }
                }
            }
            try pipeline.addHandler(alpn)
            // Until a protocol is agreed no other timeout runs: a peer that connects and sends
            // nothing (or stops mid-handshake) gets the head deadline, then is closed.
            let handshakeDeadline = channel.eventLoop.scheduleTask(in: http1.headTimeout) { channel.close(promise: nil) }
            alpn.protocolNegotiationResult.whenComplete { _ in handshakeDeadline.cancel() }
            return channel.eventLoop.makeSucceededFuture(Value(negotiated: alpn.protocolNegotiationResult, channel: channel))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let negotiated: Negotiated
        do {
            // Shutdown cancels this task: a connection still in its handshake is closed then.
            negotiated = try await withTaskCancellationHandler {
                try await value.negotiated.get()
            } onCancel: {
                value.channel.close(promise: nil)
            }
        } catch {
            // A failed handshake (no common protocol, an untrusted client certificate, plain
            // HTTP on the TLS port, the handshake deadline): nothing to answer; make sure it is closed.
            logger.debug("TLS connection ended before a protocol was agreed", metadata: ["error": "\(error)"])
            value.channel.close(promise: nil)
            return
        }
        switch negotiated {
        case .http1(let connection): await http1.handle(value: connection, logger: logger)
        case .http2(let connection): await http2.handle(value: connection, logger: logger)
        }
    }
}
