/// An upstream call that gave no HTTP answer we could use: a transport failure, or a call the
/// gateway's own upstream stack did not make (the upstream's quiet period after a 429, a full
/// queue in front of it).
///
/// `code` is stable and carries no data, so it doubles as a metric label and as the `code` of
/// the problem+json the front end makes of it. `message` is for logs: it never holds a secret.
public struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Certificate verification, pin mismatch or handshake failure.
        public static let tls = Code(rawValue: "upstream.tls")
        /// The whole transfer took longer than its total timeout.
        public static let timeout = Code(rawValue: "upstream.timeout")
        /// No connection (TCP and TLS handshake) within the connect timeout.
        public static let connectTimeout = Code(rawValue: "upstream.connect_timeout")
        /// Connection refused, host not resolved, unreachable.
        public static let connect = Code(rawValue: "upstream.connect")
        /// The response body exceeded the configured maximum; the transfer was aborted.
        public static let tooLarge = Code(rawValue: "upstream.too_large")
        /// The connection broke while sending or receiving (reset, closed mid-body).
        public static let io = Code(rawValue: "upstream.io")
        /// The upstream spoke something we could not parse (bad encoding, bad HTTP).
        public static let `protocol` = Code(rawValue: "upstream.protocol")
        /// The request could not be built (bad URL, bad option).
        public static let invalidRequest = Code(rawValue: "upstream.invalid_request")
        /// The client was shut down before the transfer finished.
        public static let shutdown = Code(rawValue: "upstream.shutdown")
        /// Not sent: the upstream's quiet period after it answered 429 (``UpstreamError/retryAfter`` says how long is left).
        public static let throttled = Code(rawValue: "upstream.throttled")
        /// Not sent: too many requests already wait for the upstream.
        public static let overloaded = Code(rawValue: "upstream.overloaded")
    }

    public var code: Code
    /// A human-readable account, for logs. Never contains credentials.
    public var message: String
    /// libcurl's `CURLcode`, when the error came from libcurl.
    public var curlCode: Int?
    /// Seconds until a call may be tried again (``Code/throttled``, ``Code/overloaded``).
    public var retryAfter: Int?

    public init(_ code: Code, _ message: String, curlCode: Int? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.curlCode = curlCode
        self.retryAfter = retryAfter
    }

    /// Whether the upstream could not be reached at all (not a call the stack held back).
    public var isUnreachable: Bool { code != .throttled && code != .overloaded }

    public var description: String {
        if let curlCode { return "\(code): \(message) (curl \(curlCode))" }
        return "\(code): \(message)"
    }
}
