import GatewayClock
import HTTPTransport
import CCurl

/// One transfer's easy-handle settings, buffers and outcome. Lives on the event thread only.
final class CurlTransfer {
    let ticket: TransferTicket
    let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var retainedSelf: Unmanaged<CurlTransfer>?

    private(set) var body: [UInt8] = []
    private(set) var headers: [(name: String, value: String)] = []
    private(set) var tooLarge = false
    private(set) var connectionsOpened = 0
    private let maxBytes: Int

    init(ticket: TransferTicket, handle: UnsafeMutableRawPointer) {
        self.ticket = ticket
        self.handle = handle
        self.maxBytes = max(0, ticket.options.maxResponseBytes)
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        errorBuffer.deallocate()
    }

    /// Frees what the easy handle pointed at; call once the handle is off the multi handle.
    func release() {
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
        retainedSelf?.release()
        retainedSelf = nil
    }

    // MARK: - Setup

    func configure(share: UnsafeMutableRawPointer) throws {
        let request = ticket.request
        let options = ticket.options
        let h = handle
        func set(_ option: CURLoption, _ value: Int) throws {
            let code = ccurl_easy_setopt_long(h, option, value)
            if code != CURLE_OK { throw Self.optionError(option, code) }
        }
        func set(_ option: CURLoption, _ value: String) throws {
            let code = value.withCString { ccurl_easy_setopt_string(h, option, $0) }
            if code != CURLE_OK { throw Self.optionError(option, code) }
        }

        let unmanaged = Unmanaged.passRetained(self)
        retainedSelf = unmanaged
        let context = unmanaged.toOpaque()

        try set(CURLOPT_NOSIGNAL, 1)
        guard request.url.hasPrefix("https://") || request.url.hasPrefix("http://") else {
            throw UpstreamError(.invalidRequest, "only http and https URLs are allowed")
        }
        guard !request.url.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) else {
            throw UpstreamError(.invalidRequest, "the URL holds a control character or a space")
        }
        try set(CURLOPT_URL, request.url)
        try set(CURLOPT_PROTOCOLS_STR, "http,https")
        try set(CURLOPT_FOLLOWLOCATION, 0)
        _ = ccurl_easy_setopt_share(h, share)
        _ = ccurl_easy_setopt_pointer(h, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        try set(CURLOPT_PIPEWAIT, 1)
        switch options.httpVersion {
        case .http2Preferred: try set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        case .http1: try set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        }
        try set(CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeout.clampedMilliseconds)
        try set(CURLOPT_TIMEOUT_MS, (request.timeout ?? options.totalTimeout).clampedMilliseconds)
        _ = ccurl_easy_setopt_offset(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(maxBytes))
        try set(CURLOPT_ACCEPT_ENCODING, "")  // every encoding libcurl decodes: gzip, deflate, br, zstd
        try set(CURLOPT_USERAGENT, options.userAgent)

        // TLS
        let tls = options.tls
        if tls.insecure {
            try set(CURLOPT_SSL_VERIFYPEER, 0)
            try set(CURLOPT_SSL_VERIFYHOST, 0)
        } else if tls.pinnedPublicKey != nil && tls.caFile == nil {
            // The pin is the trust anchor (self-signed upstream): libcurl still checks the key.
            try set(CURLOPT_SSL_VERIFYPEER, 0)
            try set(CURLOPT_SSL_VERIFYHOST, 0)
        } else {
            try set(CURLOPT_SSL_VERIFYPEER, 1)
            try set(CURLOPT_SSL_VERIFYHOST, 2)
        }
        if let caFile = tls.caFile, !tls.insecure { try set(CURLOPT_CAINFO, caFile) }
        if let pin = tls.pinnedPublicKey, !tls.insecure { try set(CURLOPT_PINNEDPUBLICKEY, pin) }
        if let cert = tls.clientCertificateFile { try set(CURLOPT_SSLCERT, cert) }
        if let key = tls.clientKeyFile { try set(CURLOPT_SSLKEY, key) }

        // Method and body
        var headerLines: [String] = []
        switch request.body {
        case .none:
            break
        case .form(let items):
            headerLines.append("Content-Type: application/x-www-form-urlencoded")
            try setBody(Array(URLBuilder.formEncode(items).utf8))
        case .json(let bytes):
            headerLines.append("Content-Type: application/json")
            try setBody(bytes)
        case .bytes(let bytes, let contentType):
            headerLines.append("Content-Type: \(contentType)")
            try setBody(bytes)
        }
        switch request.method {
        case .get where request.body == nil: try set(CURLOPT_HTTPGET, 1)
        case .head: try set(CURLOPT_NOBODY, 1)
        case .post where request.body != nil: break
        default: try set(CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }

        // Headers: the caller's, then ours; no `Expect: 100-continue` round trip.
        for (name, value) in request.headers {
            guard Self.isSafeHeader(name: name, value: value) else {
                throw UpstreamError(.invalidRequest, "header \(name.prefix(64)) holds a forbidden character")
            }
            headerLines.append("\(name): \(value)")
        }
        headerLines.append("Expect:")
        for line in headerLines {
            let appended = line.withCString { curl_slist_append(headerList, $0) }
            guard let appended else { throw UpstreamError(.invalidRequest, "curl_slist_append failed") }
            headerList = appended
        }
        _ = ccurl_easy_setopt_slist(h, CURLOPT_HTTPHEADER, headerList)

        // Callbacks
        _ = ccurl_easy_setopt_write_function(h, CURLOPT_WRITEFUNCTION, curlBodyCallback)
        _ = ccurl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, context)
        _ = ccurl_easy_setopt_write_function(h, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
        _ = ccurl_easy_setopt_pointer(h, CURLOPT_HEADERDATA, context)
    }

    private func setBody(_ bytes: [UInt8]) throws {
        _ = ccurl_easy_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
        let code = bytes.withUnsafeBytes { raw -> CURLcode in
            if raw.isEmpty {
                return "".withCString { ccurl_easy_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, $0) }
            }
            return ccurl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
        }
        if code != CURLE_OK { throw Self.optionError(CURLOPT_COPYPOSTFIELDS, code) }
    }

    /// Header names are tokens; values hold no CR, LF or NUL (no header injection).
    static func isSafeHeader(name: String, value: String) -> Bool {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else { return false }
        return !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    private static func optionError(_ option: CURLoption, _ code: CURLcode) -> UpstreamError {
        UpstreamError(.invalidRequest, "libcurl refused option \(option.rawValue): \(String(cString: curl_easy_strerror(code)))", curlCode: Int(code.rawValue))
    }

    static func hostPart(of url: String) -> String {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        return String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
    }

    // MARK: - Callbacks

    func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if body.count + bytes.count > maxBytes {
            tooLarge = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }

    /// One header line, read as bytes: CR LF trimmed (`"\r\n"` is one `Character`, so string
    /// suffix checks miss it), and a `String` made only of the name and the value.
    func receiveHeader(_ bytes: UnsafeRawBufferPointer) {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<end])
        if line.starts(with: "HTTP/".utf8) {
            headers.removeAll()  // a new response (after 100 Continue or a redirect)
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = colon + 1
        while start < end, isBlank(line[start]) { start += 1 }
        while end > start, isBlank(line[end - 1]) { end -= 1 }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<colon]), as: UTF8.self)
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
        headers.append((name, value))
    }

    // MARK: - Outcome

    func result(code: CURLcode) -> Result<UpstreamResponse, any Error> {
        var numConnects = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &numConnects)
        connectionsOpened = numConnects
        var totalMicros: curl_off_t = 0
        _ = ccurl_easy_getinfo_offset(handle, CURLINFO_TOTAL_TIME_T, &totalMicros)
        guard code == CURLE_OK else { return .failure(error(for: code, elapsedMicros: Int(totalMicros))) }
        var status = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var version = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_HTTP_VERSION, &version)
        let info = TransferInfo(
            connectionsOpened: numConnects,
            httpVersion: version == Int(CURL_HTTP_VERSION_2_0) ? "2" : (version == Int(CURL_HTTP_VERSION_1_0) ? "1.0" : "1.1"),
            totalTime: .microseconds(Int64(totalMicros))
        )
        return .success(UpstreamResponse(status: status, headers: headers, body: body, info: info))
    }

    private func error(for code: CURLcode, elapsedMicros: Int) -> UpstreamError {
        let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        let curlCode = Int(code.rawValue)
        switch code {
        case CURLE_WRITE_ERROR where tooLarge, CURLE_FILESIZE_EXCEEDED:
            return UpstreamError(.tooLarge, "response larger than \(maxBytes) bytes; transfer aborted", curlCode: curlCode)
        case CURLE_OPERATION_TIMEDOUT:
            var appConnect: curl_off_t = 0
            var connect: curl_off_t = 0
            _ = ccurl_easy_getinfo_offset(handle, CURLINFO_APPCONNECT_TIME_T, &appConnect)
            _ = ccurl_easy_getinfo_offset(handle, CURLINFO_CONNECT_TIME_T, &connect)
            let isTLS = ticket.request.url.hasPrefix("https://")
            let established = isTLS ? appConnect > 0 : connect > 0
            let limit = (ticket.request.timeout ?? ticket.options.totalTimeout).clampedMilliseconds.multipliedReportingOverflow(by: 1000)
            let totalLimit = limit.overflow ? Int.max : limit.partialValue
            if !established && elapsedMicros < totalLimit {
                return UpstreamError(.connectTimeout, "no connection within \(ticket.options.connectTimeout): \(detail)", curlCode: curlCode)
            }
            return UpstreamError(.timeout, "no complete answer within the total timeout: \(detail)", curlCode: curlCode)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return UpstreamError(.connect, detail, curlCode: curlCode)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_ISSUER_ERROR, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_INITFAILED,
            CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED, CURLE_USE_SSL_FAILED:
            return UpstreamError(.tls, detail, curlCode: curlCode)
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE,
            CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return UpstreamError(.io, detail, curlCode: curlCode)
        case CURLE_BAD_CONTENT_ENCODING, CURLE_WEIRD_SERVER_REPLY, CURLE_UNSUPPORTED_PROTOCOL:
            return UpstreamError(.protocol, detail, curlCode: curlCode)
        case CURLE_URL_MALFORMAT, CURLE_BAD_FUNCTION_ARGUMENT:
            return UpstreamError(.invalidRequest, detail, curlCode: curlCode)
        default:
            return UpstreamError(.io, detail, curlCode: curlCode)
        }
    }
}

/// libcurl write callback: appends body bytes, refusing past the size limit.
private let curlBodyCallback: curl_write_callback = { pointer, size, count, context in
    guard let context else { return 0 }
    let length = size * count
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    guard length > 0, let pointer else { return length }
    return transfer.receiveBody(UnsafeRawBufferPointer(start: pointer, count: length)) ? length : 0
}

/// libcurl header callback: one header line per call.
private let curlHeaderCallback: curl_write_callback = { pointer, size, count, context in
    guard let context else { return 0 }
    let length = size * count
    guard length > 0, let pointer else { return length }
    Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
        .receiveHeader(UnsafeRawBufferPointer(start: pointer, count: length))
    return length
}
