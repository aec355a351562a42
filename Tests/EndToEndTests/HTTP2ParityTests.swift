import Foundation
import GatewayTestSupport
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// What an HTTP/2 peer saw, frame by frame (only what the tests look at).
enum SeenFrame: Sendable, Equatable {
    case headers(stream: Int, status: String?, endStream: Bool)
    case reset(stream: Int, code: Int)
    case goAway(code: Int)
    case settings([String: Int])
}

/// Records a connection's inbound frames.
final class FrameRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame
    private let frames = Mutex<[SeenFrame]>([])

    var seen: [SeenFrame] { frames.withLock { $0 } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let stream = Int(Int32(frame.streamID))
        let seen: SeenFrame?
        switch frame.payload {
        case .headers(let headers): seen = .headers(stream: stream, status: headers.headers.first(name: ":status"), endStream: headers.endStream)
        case .rstStream(let code): seen = .reset(stream: stream, code: code.networkCode)
        case .goAway(_, let code, _): seen = .goAway(code: code.networkCode)
        case .settings(.settings(let settings)):
            seen = .settings(
                Dictionary(
                    settings.map { ($0.parameter == .maxConcurrentStreams ? "maxConcurrentStreams" : $0.parameter == .maxHeaderListSize ? "maxHeaderListSize" : "\($0.parameter)", $0.value) },
                    uniquingKeysWith: { _, last in last }))
        default: seen = nil
        }
        if let seen { frames.withLock { $0.append(seen) } }
    }
}

/// A raw HTTP/2 client over TLS: swift-nio-http2's frame handler with no stream multiplexer, so a
/// test writes exactly the frames it means (HEADERS without END_STREAM, made-up methods, resets),
/// which libcurl would never send.
final class RawHTTP2Connection: Sendable {
    let channel: any Channel
    let recorder: FrameRecorder
    private let nextStream = Atomic<Int32>(1)

    init(channel: any Channel, recorder: FrameRecorder) {
        self.channel = channel
        self.recorder = recorder
    }

    static func connect(port: Int, caFile: String) async throws -> RawHTTP2Connection {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        let recorder = FrameRecorder()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client))
                    try channel.pipeline.syncOperations.addHandler(recorder)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTP2Connection(channel: channel, recorder: recorder)
    }

    /// Opens a stream with a request head; returns its id.
    @discardableResult
    func open(method: String = "GET", path: String, headers: [(String, String)] = [], endStream: Bool) async throws -> Int {
        let id = nextStream.add(2, ordering: .relaxed).oldValue
        var fields = HPACKHeaders([(":method", method), (":scheme", "https"), (":authority", "localhost"), (":path", path)])
        for (name, value) in headers { fields.add(name: name, value: value) }
        try await channel.writeAndFlush(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: fields, endStream: endStream))))
        return Int(id)
    }

    func reset(_ stream: Int) async throws {
        try await channel.writeAndFlush(HTTP2Frame(streamID: HTTP2StreamID(Int32(stream)), payload: .rstStream(.cancel)))
    }

    var isOpen: Bool { channel.isActive }

    func close() { channel.close(promise: nil) }
}

@Suite("End to end: HTTP/2 at parity with HTTP/1 (deadlines, head limits, made-up methods, rapid reset)", .serialized)
struct HTTP2ParityTests {
    /// A TLS gateway with short deadlines: 2 s for a head (the TLS handshake's deadline too, so
    /// not shorter: a loaded machine can take a second to shake hands), 3 s of quiet in a request.
    func withTLSGateway(_ body: (RunningGateway, Int, FrontTLSFiles) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        try await withSimulator { sim in
            try await withGateway(
                vb365: sim, vspc: sim, listen: files.listen() + ", requestHeadTimeout: 2s, idleTimeout: 3s", frontCAFile: files.ca
            ) { gw in
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                try await body(gw, port, files)
            }
        }
    }

    /// Polls `condition` every 100 ms for up to `seconds`.
    func eventually(within seconds: Double, _ condition: () -> Bool) async throws -> Bool {
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }

    @Test("streams whose HEADERS never end are reset at the idle timeout, and a connection left with only such streams is closed")
    func stalledStreams() async throws {
        try await withTLSGateway { gw, port, files in
            var connections: [RawHTTP2Connection] = []
            for _ in 0..<8 {
                let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
                for _ in 0..<25 { try await connection.open(path: "/healthz", endStream: false) }
                connections.append(connection)
            }
            // One well-behaved connection alongside, busy the whole time: it is not closed.
            let busy = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            let started = ContinuousClock.now
            var answered = 0
            while ContinuousClock.now - started < .seconds(5) {
                try await busy.open(path: "/healthz", endStream: true)
                answered += 1
                try await Task.sleep(for: .milliseconds(250))
            }
            let closed = try await eventually(within: 4) { connections.allSatisfy { !$0.isOpen } }
            #expect(closed, "\(connections.filter(\.isOpen).count) of \(connections.count) stalled connections still open 9 s after their heads (idle timeout 3 s)")
            for connection in connections {
                let resets = connection.recorder.seen.filter { if case .reset = $0 { return true } else { return false } }
                let answers = connection.recorder.seen.filter { if case .headers(_, "200", _) = $0 { return true } else { return false } }
                #expect(answers.count == 25, "/healthz answers at once; the stream stays open until the request ends")
                #expect(!resets.isEmpty || !connection.isOpen)
            }
            #expect(busy.isOpen, "a connection whose streams end is kept")
            #expect(answered > 10)
            let healthy = busy.recorder.seen.filter { if case .headers(_, "200", _) = $0 { return true } else { return false } }.count
            #expect(healthy == answered)
            busy.close()
            connections.forEach { $0.close() }
            #expect(try await gw.get("/healthz").status == 200)
        }
    }

    @Test("a connection that opens no stream is closed at the head deadline")
    func silentConnection() async throws {
        try await withTLSGateway { _, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            #expect(try await eventually(within: 6) { !connection.isOpen }, "closed ~2 s after the handshake")
        }
    }

    @Test("a connection silent after one answered request (its peer reads nothing, so never answers the close's PING) is closed after the idle timeout and its grace")
    func silentAfterOneRequest() async throws {
        try await withTLSGateway { _, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            let stream = try await connection.open(path: "/healthz", endStream: true)
            #expect(try await eventually(within: 5) { connection.recorder.seen.contains { if case .headers(stream, "200", _) = $0 { return true } else { return false } } })
            // From now on the peer reads nothing: the server's GOAWAY and PING go unanswered.
            try await connection.channel.setOption(ChannelOptions.autoRead, value: false)
            // Idle timeout 3 s and a 2 s grace: the server closes it about 5 s later (without the
            // guard, never). A peer that reads nothing cannot see the close, so the server's side
            // of the socket is looked at: established, or closed by the server (FIN_WAIT).
            #expect(try await eventually(within: 9) { Self.establishedServerSockets(port: port) == 0 }, "the server still holds the connection")
            connection.close()
        }
    }

    /// Sockets in this process's network namespace established on the server side of `port`
    /// (from /proc/net/tcp and tcp6: local port `port`, state 01).
    static func establishedServerSockets(port: Int) -> Int {
        let digits = String(port, radix: 16, uppercase: true)
        let hexPort = ":" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        var count = 0
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3 else { continue }
                if fields[1].hasSuffix(hexPort) && fields[3] == "01" { count += 1 }
            }
        }
        return count
    }

    @Test("made-up :method values are recorded as `other`: no series, board row or log field per name")
    func madeUpMethods() async throws {
        try await withTLSGateway { gw, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            for index in 0..<300 {
                try await connection.open(method: "X\(index)Y", path: "/healthz", endStream: true)
                if index % 50 == 49 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(try await eventually(within: 10) { connection.recorder.seen.filter { if case .headers(_, _?, _) = $0 { return true } else { return false } }.count >= 300 })
            connection.close()
            let metrics = try await gw.get("/metrics", key: nil).text
            let methods = Set(
                metrics.split(separator: "\n").filter { $0.hasPrefix("veeam_gateway_http_requests_total{") }.compactMap { line -> String? in
                    guard let range = line.range(of: #"method="([^"]*)""#, options: .regularExpression) else { return nil }
                    return String(line[range].dropFirst(8).dropLast())
                })
            #expect(methods.isSubset(of: ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "other"]), "\(methods.sorted())")
            #expect(methods.contains("other"))
            #expect(!gw.logs.all.joined(separator: "\n").contains("X17Y"), "no made-up method in a log line")
            let status = try await gw.json("/v1/status")
            #expect(!"\(status)".contains("X17Y"), "no made-up method on the status board")
        }
    }

    @Test("heads over the HTTP/1 limits are answered 431 on HTTP/2 too, before the router, and recorded as any answer")
    func headLimits() async throws {
        try await withTLSGateway { gw, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            let many = (0..<150).map { ("x-field-\($0)", "v") }
            let tooMany = try await connection.open(path: "/v1/tenants?limit=5", headers: many + [("x-api-key", TestKeys.portalAdmin)], endStream: true)
            let fine = try await connection.open(path: "/healthz", headers: Array(many.prefix(20)), endStream: true)
            #expect(try await eventually(within: 5) { connection.recorder.seen.contains(.headers(stream: fine, status: "200", endStream: false)) || connection.recorder.seen.contains(.headers(stream: fine, status: "200", endStream: true)) })
            #expect(connection.recorder.seen.contains { if case .headers(tooMany, "431", _) = $0 { return true } else { return false } }, "\(connection.recorder.seen)")
            connection.close()
            #expect(try await gw.get("/healthz").status == 200)
            // Recorded as the router records an answer: its series and its access line, with the
            // route of the path without its query.
            #expect(try await eventually(within: 5) { gw.logs.all.contains { $0.contains("route=/v1/tenants") && $0.contains("status=431") } }, "\(gw.logs.all.suffix(5))")
            let metrics = try await gw.get("/metrics", key: nil).text
            #expect(metrics.contains(#"veeam_gateway_http_requests_total{route="/v1/tenants",method="GET",status="431"} 1"#), "\(metrics.prefix(600))")
        }
    }

    @Test("the server bounds concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS 100), and rapid resets close the connection")
    func streamBoundsAndRapidReset() async throws {
        try await withTLSGateway { gw, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            try await connection.open(path: "/healthz", endStream: true)
            #expect(try await eventually(within: 5) { connection.recorder.seen.contains { if case .settings = $0 { return true } else { return false } } })
            let advertised = connection.recorder.seen.compactMap { frame -> Int? in
                if case .settings(let values) = frame { return values["maxConcurrentStreams"] }
                return nil
            }.first
            #expect(advertised.map { $0 <= 100 } == true, "\(connection.recorder.seen.prefix(3))")

            // Rapid reset: open and cancel streams as fast as possible.
            let attacker = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            var sent = 0
            for _ in 0..<400 where attacker.isOpen {
                // A write may meet the connection already closed: that is the point.
                guard let stream = try? await attacker.open(path: "/v1/tenants", headers: [("x-api-key", TestKeys.portalAdmin)], endStream: true) else { break }
                try? await attacker.reset(stream)
                sent += 1
            }
            #expect(try await eventually(within: 5) { !attacker.isOpen }, "the connection is closed (after \(sent) resets)")
            #expect(sent > 200 - 10, "not before the limit of 200 resets: \(sent)")
            // The GOAWAY may be lost when the server closes with the attacker's frames unread (a
            // TCP reset discards it); when it arrives, it names an error.
            let goAways = attacker.recorder.seen.compactMap { frame -> Int? in if case .goAway(let code) = frame { return code } else { return nil } }
            #expect(goAways.allSatisfy { $0 != 0 }, "\(goAways)")
            connection.close()
            #expect(try await gw.get("/healthz").status == 200)
        }
    }

    @Test("a caller's rate limit holds on HTTP/2 as on HTTP/1 (the limited caller: burst 3)")
    func rateLimitOverHTTP2() async throws {
        try await withTLSGateway { _, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            var streams: [Int] = []
            for _ in 0..<5 {
                streams.append(try await connection.open(path: cloudTenantPath, headers: [("x-api-key", TestKeys.limited)], endStream: true))
                #expect(try await eventually(within: 5) { connection.recorder.seen.contains { if case .headers(streams.last ?? -1, _?, _) = $0 { return true } else { return false } } })
            }
            let statuses = streams.map { stream in
                connection.recorder.seen.compactMap { frame -> String? in
                    if case .headers(stream, let status?, _) = frame { return status }
                    return nil
                }.first ?? "-"
            }
            #expect(statuses == ["200", "200", "200", "429", "429"], "\(statuses)")
            connection.close()
        }
    }

    @Test("failed authentications are limited per client on HTTP/2 as on HTTP/1")
    func failedAuthOverHTTP2() async throws {
        try await withTLSGateway { _, port, files in
            let connection = try await RawHTTP2Connection.connect(port: port, caFile: files.ca)
            var streams: [Int] = []
            for index in 0..<8 {
                streams.append(try await connection.open(path: "/v1/tenants", headers: [("x-api-key", "wrong-key-\(index)")], endStream: true))
                try await Task.sleep(for: .milliseconds(30))
            }
            #expect(try await eventually(within: 5) { connection.recorder.seen.filter { if case .headers(_, _, _) = $0 { return true } else { return false } }.count >= 8 })
            let statuses = streams.map { stream in
                connection.recorder.seen.compactMap { frame -> String? in
                    if case .headers(stream, let status?, _) = frame { return status }
                    return nil
                }.first ?? "-"
            }
            #expect(statuses.prefix(5).allSatisfy { $0 == "401" }, "\(statuses)")
            #expect(statuses.suffix(3).allSatisfy { $0 == "429" }, "limits.failedAuthPerMinute: 5 — \(statuses)")
            connection.close()
        }
    }
}
