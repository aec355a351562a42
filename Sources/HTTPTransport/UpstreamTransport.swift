import Foundation

/// The one upstream-call abstraction of the gateway.
///
/// libcurl implements it (``CurlTransport``); token injection, retry-once-on-401, metrics and
/// timeouts wrap it, each in a type of its own, so that every layer sees the same shape.
public protocol UpstreamTransport: Sendable {
    /// Sends one request and returns the upstream's answer.
    ///
    /// HTTP error statuses (4xx, 5xx, 520) are *answers* and come back as responses;
    /// only transport failures throw, as ``UpstreamError``.
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse
}

/// An HTTP method an upstream request may use.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let get = HTTPMethod(rawValue: "GET")
    public static let post = HTTPMethod(rawValue: "POST")
    public static let put = HTTPMethod(rawValue: "PUT")
    public static let delete = HTTPMethod(rawValue: "DELETE")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public var description: String { rawValue }
}

/// One request to an upstream.
public struct UpstreamRequest: Sendable {
    /// The body of a request.
    public enum Body: Sendable, Equatable {
        /// `application/x-www-form-urlencoded`, encoded by the client.
        case form([(String, String)])
        /// `application/json`, already encoded.
        case json([UInt8])
        /// Raw bytes with the given content type.
        case bytes([UInt8], contentType: String)

        public static func == (lhs: Body, rhs: Body) -> Bool {
            switch (lhs, rhs) {
            case (.form(let a), .form(let b)): return a.elementsEqual(b, by: { $0 == $1 })
            case (.json(let a), .json(let b)): return a == b
            case (.bytes(let a, let ca), .bytes(let b, let cb)): return a == b && ca == cb
            default: return false
            }
        }
    }

    public var method: HTTPMethod
    /// The absolute URL, including any query (see ``URLBuilder``).
    public var url: String
    /// Request headers, in order. Names are case-insensitive.
    public var headers: [(name: String, value: String)]
    public var body: Body?
    /// Overrides the transport's total timeout for this request.
    public var timeout: Duration?
    /// Whether a layer may send it again (the token layer after a 401). False for a caller's
    /// write passed through: it is sent once, whatever comes back.
    public var retryable: Bool

    public init(
        method: HTTPMethod = .get,
        url: String,
        headers: [(name: String, value: String)] = [],
        body: Body? = nil,
        timeout: Duration? = nil,
        retryable: Bool = true
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.retryable = retryable
    }

    /// The value of the first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Facts about how one transfer went, read from libcurl.
public struct TransferInfo: Sendable, Equatable {
    /// New connections this transfer had to open (0 when it reused one).
    public var connectionsOpened: Int
    /// `1.1` or `2`, as negotiated.
    public var httpVersion: String
    /// Time from start to the end of the transfer.
    public var totalTime: Duration

    public init(connectionsOpened: Int = 0, httpVersion: String = "1.1", totalTime: Duration = .zero) {
        self.connectionsOpened = connectionsOpened
        self.httpVersion = httpVersion
        self.totalTime = totalTime
    }
}

/// An upstream's answer, whatever its status.
public struct UpstreamResponse: Sendable {
    public var status: Int
    /// Response headers, in order, of the final response (not of a `100 Continue`).
    public var headers: [(name: String, value: String)]
    /// The body, already decoded from any `Content-Encoding`.
    public var body: [UInt8]
    public var info: TransferInfo

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], info: TransferInfo = .init()) {
        self.status = status
        self.headers = headers
        self.body = body
        self.info = info
    }

    /// How long an upstream asks to be left alone, from its `Retry-After` header (seconds), as
    /// ``quietPeriod(seconds:)`` bounds it; nil without a usable header.
    public var retryAfterHeader: Int? {
        header("retry-after").flatMap { Int($0) }.map(Self.quietPeriod(seconds:))
    }

    /// An upstream's wait, not ours to trust: bounded to 1 s … 1 h.
    public static func quietPeriod(seconds: Int) -> Int {
        min(max(seconds, 1), 3600)
    }

    /// The value of the first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// The body as UTF-8 text (lossy), for logs and tests.
    public var text: String { String(decoding: body, as: UTF8.self) }
}
