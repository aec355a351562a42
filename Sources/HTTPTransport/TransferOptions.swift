/// How to reach one upstream: trust, timeouts and limits. One value per configured upstream.
///
/// Trust, in order of precedence:
/// - `insecure: true` turns every check off (a warning is logged once per host);
/// - `pinnedPublicKey` alone (no `caFile`): the pin *is* the trust anchor, as with a self-signed
///   certificate; the chain and host name are not checked, the key is;
/// - `caFile` (with or without a pin): the chain must lead to that CA and the name must match;
///   a pin, if given, must match too;
/// - neither: the system's CA store, with name verification.
public struct TransferOptions: Sendable, Equatable {
    /// TLS settings.
    public struct TLS: Sendable, Equatable {
        /// A PEM file of CA certificates to trust instead of the system store.
        public var caFile: String?
        /// `sha256//<base64 of the SHA-256 of the DER SubjectPublicKeyInfo>`; several may be joined with `;`.
        public var pinnedPublicKey: String?
        /// Turns off all verification. Never the default; logs a warning once per host.
        public var insecure: Bool
        /// A client certificate (PEM) and its key, for upstreams that ask for one.
        public var clientCertificateFile: String?
        public var clientKeyFile: String?

        public init(
            caFile: String? = nil,
            pinnedPublicKey: String? = nil,
            insecure: Bool = false,
            clientCertificateFile: String? = nil,
            clientKeyFile: String? = nil
        ) {
            self.caFile = caFile
            self.pinnedPublicKey = pinnedPublicKey
            self.insecure = insecure
            self.clientCertificateFile = clientCertificateFile
            self.clientKeyFile = clientKeyFile
        }
    }

    /// Which HTTP versions to offer.
    public enum HTTPVersion: Sendable, Equatable {
        /// Offer HTTP/2 through ALPN, fall back to HTTP/1.1 (the default).
        case http2Preferred
        /// HTTP/1.1 only.
        case http1
    }

    public var tls: TLS
    /// Time allowed for TCP connect and TLS handshake.
    public var connectTimeout: Duration
    /// Time allowed for the whole transfer.
    public var totalTimeout: Duration
    /// Largest response body accepted (after decompression); larger ones abort the transfer.
    public var maxResponseBytes: Int
    public var httpVersion: HTTPVersion
    /// Sent as `User-Agent`.
    public var userAgent: String

    public init(
        tls: TLS = .init(),
        connectTimeout: Duration = .seconds(5),
        totalTimeout: Duration = .seconds(30),
        maxResponseBytes: Int = 16 * 1024 * 1024,
        httpVersion: HTTPVersion = .http2Preferred,
        userAgent: String = "VeeamGateway/0.1"
    ) {
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.maxResponseBytes = maxResponseBytes
        self.httpVersion = httpVersion
        self.userAgent = userAgent
    }
}
