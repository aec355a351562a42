import CurlHTTP
import Foundation
import GatewayAccess
import GatewayConfig
import GatewayHTTP
import GatewayCore
import GatewayRuntime
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// The front connection's handler in an `EmbeddedChannel`: each transition of its state
/// (HotPathHandler+StateMachine.swift) driven by the channel events that cause it, and what the
/// handler then does to the channel (answers written and flushed, bytes handed on, reads held or
/// issued, the connection closed). Only answers that need no upstream are asked for: 401, 400 and
/// 404 are decided by the request pipeline on the event loop.
@Suite("HotPathHandler in an EmbeddedChannel")
struct HotPathHandlerTests {
    /// Counts the socket reads that reach the head of the pipeline (in front of the handler).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = IOData
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Keeps the user events that reach the end of the pipeline.
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var quiesced = 0
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { quiesced += 1 }
            context.fireUserInboundEventTriggered(event)
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
        }
    }

    struct Connection {
        let channel: EmbeddedChannel
        /// Reads that reach the head (the socket).
        let reads: ReadCounter
        /// Reads that pass through the handlers behind the hot-path handler (the router's side).
        let behind: ReadCounter
        let events: EventRecorder

        /// Every byte written and flushed so far, as text.
        func written() throws -> String {
            var text = ""
            while let data = try channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let buffer) = data { text += String(buffer: buffer) }
            }
            return text
        }

        /// Every byte handed on to the codec so far, as text.
        func handedOn() throws -> String {
            var text = ""
            while let buffer = try channel.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    /// The libcurl client's loop (never used: no request here reaches an upstream), one for the suite.
    static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let idle = TimeAmount.seconds(5)
    static let head = TimeAmount.seconds(1)

    /// A gateway state with the test callers and one VSPC upstream it never needs to call, and an
    /// embedded connection with the handler in front.
    func withConnection(answers: Bool = true, _ body: (Connection) throws -> Void) async throws {
        try await withState { state, logger, metrics in
            try Self.embedded(state: state, logger: logger, metrics: metrics, answers: answers, body)
        }
    }

    /// The gateway state of ``withConnection(answers:_:)``, for a test that makes connections of its own.
    func withState(_ body: (SnapshotSource, Logger, MetricsEndpoint) throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "hot-path-handler-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("Gateway-Svc-Pass-1\n".utf8).write(to: URL(fileURLWithPath: directory + "/vspc.pw"))
        let yaml = "listen: { host: 127.0.0.1, port: 0 }\nlog: { level: warning }\n" + """
            callers:
              - id: portal-admin
                keyHash: "\(APIKey.hash(TestKeys.portalAdmin))"
                roles: [PortalAdministrator]
            """ + "\n" + """
            upstreams:
              - name: vspc-main
                product: vspc
                baseURL: https://127.0.0.1:1
                account: { username: gateway-svc, password: { file: \(directory)/vspc.pw } }

            """
        let configuration = try GatewayConfiguration.parse(yaml: yaml, file: directory + "/gateway.yaml")
        let loops = Self.loops
        let logger = Logger(label: "hot-path-handler-test")
        let client = try CurlClient(eventLoopGroup: loops, logger: logger)
        let metrics = MetricsEndpoint()
        let state = try await GatewayState(configuration: configuration, client: client, metrics: metrics, logger: logger)
        // Each embedded channel is made, used and finished on one thread, with no suspension
        // point in between (an EmbeddedEventLoop belongs to the thread that made it).
        try body(state.source, logger, metrics)
    }

    static func embedded(
        state: SnapshotSource, logger: Logger, metrics: MetricsEndpoint, answers: Bool, _ body: (Connection) throws -> Void
    ) throws {
        let reads = ReadCounter()
        let behind = ReadCounter()
        let events = EventRecorder()
        let handler = HotPathHandler(state: state, logger: logger, metrics: metrics, answers: answers, idleTimeout: Self.idle, headTimeout: Self.head)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([reads, handler, behind, events])
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1), promise: nil)
        try body(Connection(channel: channel, reads: reads, behind: behind, events: events))
        _ = try? channel.finish()
    }

    static func get(_ path: String, key: String? = nil) -> String {
        "GET \(path) HTTP/1.1\r\nHost: gateway\r\n" + (key.map { "X-API-Key: \($0)\r\n" } ?? "") + "\r\n"
    }

    /// The status lines in what was written, in order (a body is not followed by a line break).
    static func statuses(_ text: String) -> [String] {
        var found: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "HTTP/1.1 ") {
            let line = rest[start.lowerBound...].prefix { $0 != "\r\n" && $0 != "\r" }
            found.append(String(line))
            rest = rest[line.endIndex...]
        }
        return found
    }

    /// Each buffer written so far, as text (one answer per buffer).
    static func buffers(_ connection: Connection) throws -> [String] {
        var found: [String] = []
        while let data = try connection.channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { found.append(String(buffer: buffer)) }
        }
        return found
    }

    /// Whether `answer` is one whole answer: a head, then exactly `Content-Length` bytes of body.
    static func isWhole(_ answer: String) -> Bool {
        guard let end = answer.range(of: "\r\n\r\n"),
            let field = answer[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.hasPrefix("Content-Length: ") }),
            let length = Int(field.dropFirst("Content-Length: ".count))
        else { return false }
        return answer[end.upperBound...].utf8.count == length
    }

    static func get(_ path: String, key: String, requestID: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: gateway\r\nX-API-Key: \(key)\r\nX-Request-Id: \(requestID)\r\n\r\n"
    }

    @Test("a connection's answer buffer is written again only once the channel has let go of it: answers still pending keep their bytes, and a reused one holds nothing of the last")
    func answerBufferReuse() async throws {
        try await withConnection { connection in
            let long = "long-" + String(repeating: "a", count: 100)
            // Two answers in one burst: the first is still the channel's when the second is written.
            try connection.send(
                Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin, requestID: long)
                    + Self.get("/v1/tenants/elsewhere.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", key: TestKeys.portalAdmin, requestID: "short-1"))
            let burst = try Self.buffers(connection)
            #expect(burst.count == 2)
            #expect(burst.allSatisfy(Self.isWhole))
            #expect(burst.first?.contains("X-Request-Id: \(long)\r\n") == true && burst.first?.contains("short-1") == false)
            #expect(burst.last?.contains("X-Request-Id: short-1\r\n") == true && burst.last?.contains(long) == false)
            #expect(Self.statuses(burst.joined()) == ["HTTP/1.1 400 Bad Request", "HTTP/1.1 404 Not Found"])
            // Read out and let go: the next, shorter answer is written into the kept storage.
            for id in ["short-2", "s3"] {
                try connection.send(Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin, requestID: id))
                let next = try Self.buffers(connection)
                #expect(next.count == 1)
                #expect(next.allSatisfy(Self.isWhole))
                #expect(next.first?.contains("X-Request-Id: \(id)\r\n") == true)
                #expect(next.first?.contains("aaaa") == false && next.first?.contains("short-1") == false)
            }
        }
    }

    @Test("a connection's next key is never taken for its remembered one: the same key again is its caller; a key that differs in its last byte, lacks it or has one more is refused, in any order")
    func rememberedKeyText() async throws {
        try await withConnection { connection in
            let key = TestKeys.portalAdmin
            var other = Array(key.utf8)
            other[other.count - 1] = other[other.count - 1] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
            let sameLength = String(decoding: other, as: UTF8.self)
            #expect(sameLength.utf8.count == key.utf8.count && sameLength != key)
            let shorter = String(key.dropLast())
            let longer = key + "x"
            // 400: admitted, then the id refused; 401: not admitted.
            let admitted = "HTTP/1.1 400 Bad Request"
            let refused = "HTTP/1.1 401 Unauthorized"
            let sequence: [(String, String)] = [
                (key, admitted), (key, admitted), (sameLength, refused), (sameLength, refused), (key, admitted), (shorter, refused),
                (key, admitted), (longer, refused), (key, admitted),
            ]
            for (presented, expected) in sequence {
                try connection.send(Self.get("/v1/tenants/nonsense", key: presented))
                #expect(Self.statuses(try connection.written()) == [expected], "\(presented.utf8.count) bytes")
            }
        }
    }

    @Test("a burst answered whole asks for the next socket read from the handler, past none of the handlers behind it; a burst that hands a request on, or one while the router has a request, leaves the read to the pipeline")
    func readAfterAnsweredBurst() async throws {
        try await withConnection { connection in
            let atHead = connection.reads.reads
            try connection.send(Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin))
            #expect(Self.statuses(try connection.written()) == ["HTTP/1.1 400 Bad Request"])
            #expect(connection.reads.reads == atHead + 1, "the next read is asked for at the burst's end")
            #expect(connection.behind.reads == 0, "by the handler itself, not through the handlers behind it")
            try connection.send(Self.get("/healthz"))
            #expect(connection.reads.reads == atHead + 1, "bytes went on: the channel's own read follows, through the pipeline")
            try connection.send(Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin))
            #expect(try connection.written().isEmpty, "handed on behind the routed request")
            #expect(connection.reads.reads == atHead + 1)
            #expect(try connection.handedOn() == Self.get("/healthz") + Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin))
            try connection.send("GET /v1/ten")
            #expect(try connection.handedOn().isEmpty, "a partial head is held, handing nothing on")
            #expect(connection.reads.reads == atHead + 1, "the router has requests: the read stays the pipeline's")
            let handler = try connection.channel.pipeline.syncOperations.handler(type: HotPathHandler.self)
            handler.routedResponseCompleted()
            handler.routedResponseCompleted()
            try connection.send("ants/nonsense HTTP/1.1\r\nHost: gateway\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n\r\n")
            #expect(Self.statuses(try connection.written()) == ["HTTP/1.1 400 Bad Request"])
            #expect(connection.reads.reads == atHead + 2, "answered whole again: the handler asks for the next read")
            #expect(connection.behind.reads == 0)
        }
    }

    @Test("a byte the hot path leaves to the codec (a control byte, DEL, a bare LF, one beyond ASCII) sends the head on at every offset of a line; printable bytes and a tab at every offset are framed and answered here")
    func bytesJudgedAtEveryOffset() async throws {
        try await withState { state, logger, metrics in
            let request = "GET /v1/tenants/nonsense HTTP/1.1\r\nHost: gateway\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n"
            // Heads of every length around the scanner's eight-byte steps, the byte at each place.
            for offset in 0..<20 {
                for byte in ["\u{00}", "\u{01}", "\u{1F}", "\u{7F}", "\n", "\u{80}", "\u{E9}"] {
                    let head = request + "X-Pad: " + String(repeating: "a", count: offset) + byte + "z~ \r\n\r\n"
                    try Self.embedded(state: state, logger: logger, metrics: metrics, answers: true) { connection in
                        try connection.send(head)
                        #expect(try connection.written().isEmpty, "offset \(offset), byte \(Array(byte.utf8)): nothing answered here")
                        #expect(try connection.handedOn() == head, "offset \(offset), byte \(Array(byte.utf8)): the head goes on whole")
                    }
                }
            }
            try Self.embedded(state: state, logger: logger, metrics: metrics, answers: true) { connection in
                var sent = 0
                for offset in 0..<20 {
                    for filler in ["\t", " ", "~", "!"] {
                        try connection.send(request + "X-Pad: " + String(repeating: "a", count: offset) + filler + "z\r\n\r\n")
                        sent += 1
                    }
                }
                #expect(Self.statuses(try connection.written()) == Array(repeating: "HTTP/1.1 400 Bad Request", count: sent))
                #expect(try connection.handedOn().isEmpty)
            }
        }
    }

    @Test("pipelined requests are answered on the read, in order, none handed on")
    func answeredOnTheRead() async throws {
        try await withConnection { connection in
            try connection.send(
                Self.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4") + Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin)
                    + Self.get("/v1/tenants/elsewhere.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", key: TestKeys.portalAdmin))
            let written = try connection.written()
            #expect(Self.statuses(written) == ["HTTP/1.1 401 Unauthorized", "HTTP/1.1 400 Bad Request", "HTTP/1.1 404 Not Found"])
            #expect(try connection.handedOn().isEmpty, "nothing reached the codec")
            #expect(connection.channel.isActive)
        }
    }

    @Test("another route goes on byte for byte; what follows it is handed on too until the router has answered, then answered again")
    func routedThenAnswered() async throws {
        try await withConnection { connection in
            let routed = Self.get("/healthz") + Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin)
            try connection.send(routed)
            #expect(try connection.handedOn() == routed, "the second waits behind the first: the router answers both")
            #expect(try connection.written().isEmpty)
            let handler = try connection.channel.pipeline.syncOperations.handler(type: HotPathHandler.self)
            handler.routedResponseCompleted()
            handler.routedResponseCompleted()
            try connection.send(Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin))
            #expect(Self.statuses(try connection.written()) == ["HTTP/1.1 400 Bad Request"])
        }
    }

    @Test("a peer that does not read: the handler pauses, holds socket reads, and on writability answers what waited and issues the held read once")
    func pausedByThePeer() async throws {
        try await withConnection { connection in
            connection.channel.isWritable = false
            try connection.send(Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin))
            #expect(try connection.written().isEmpty, "not answered while the peer reads nothing")
            let before = connection.reads.reads
            connection.channel.read()
            connection.channel.read()
            #expect(connection.reads.reads == before, "reads are held while paused")
            connection.channel.isWritable = true
            connection.channel.pipeline.fireChannelWritabilityChanged()
            #expect(Self.statuses(try connection.written()) == ["HTTP/1.1 400 Bad Request"])
            #expect(connection.reads.reads == before + 1, "the held read is issued once")
            connection.channel.read()
            #expect(connection.reads.reads == before + 2, "reading again")
        }
    }

    @Test("a head that does not complete within the head deadline closes the connection")
    func headDeadline() async throws {
        try await withConnection { connection in
            try connection.send("GET /v1/tenants/vspc-main.c386d34c")
            #expect(try connection.written().isEmpty)
            connection.channel.embeddedEventLoop.advanceTime(by: Self.head - .milliseconds(1))
            #expect(connection.channel.isActive)
            connection.channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
            #expect(!connection.channel.isActive, "closed at the head deadline")
        }
    }

    @Test("a quiet connection closes at the idle timeout; a graceful close with nothing owed passes on at once")
    func idleAndQuiesce() async throws {
        try await withConnection { connection in
            connection.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            #expect(connection.events.quiesced == 1)
            try connection.send(Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin))
            #expect(Self.statuses(try connection.written()) == ["HTTP/1.1 400 Bad Request"])
            connection.channel.embeddedEventLoop.advanceTime(by: Self.idle - .milliseconds(100))
            #expect(connection.channel.isActive)
            connection.channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
            #expect(!connection.channel.isActive, "closed after the idle timeout")
        }
    }

    @Test("a head over the limits is answered 431 (problem, Connection: close) after the answers before it, nothing is handed on, and the connection closes; with the hot path off too; behind a routed request it goes on")
    func oversizedHead() async throws {
        let many = (0..<150).map { "X-Field-\($0): v\r\n" }.joined()
        for answers in [true, false] {
            try await withConnection(answers: answers) { connection in
                let first = Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin)
                try connection.send((answers ? first : "") + "GET /v1/tenants HTTP/1.1\r\nHost: gateway\r\n\(many)\r\n" + Self.get("/v1/tenants"))
                let written = try connection.written()
                #expect(Self.statuses(written) == (answers ? ["HTTP/1.1 400 Bad Request"] : []) + ["HTTP/1.1 431 Request Header Fields Too Large"], "\(written)")
                #expect(written.contains("Connection: close\r\n") && written.contains("application/problem+json") && written.contains("request.invalid"), "\(written)")
                #expect(try connection.handedOn().isEmpty, "neither the head nor what follows it reaches the codec")
                #expect(!connection.channel.isActive, "closed once the answer is written")
            }
        }
        // Behind a request the router has not answered, the head goes on with it (the codec
        // refuses it after that answer): nothing is written here, the connection stays.
        try await withConnection { connection in
            let routed = Self.get("/healthz")
            let big = "GET /v1/tenants HTTP/1.1\r\nHost: gateway\r\n\(many)\r\n"
            try connection.send(routed + big)
            #expect(try connection.written().isEmpty)
            #expect(try connection.handedOn() == routed + big)
            #expect(connection.channel.isActive)
        }
        // No end within maxHead: refused alike.
        try await withConnection { connection in
            try connection.send("GET /v1/tenants HTTP/1.1\r\nX-Padding: " + String(repeating: "p", count: 48 * 1024))
            #expect(Self.statuses(try connection.written()) == ["HTTP/1.1 431 Request Header Fields Too Large"])
            #expect(try connection.handedOn().isEmpty)
            #expect(!connection.channel.isActive)
        }
    }

    @Test("with the hot path off, every request goes on byte for byte and nothing is answered here")
    func answeringOff() async throws {
        try await withConnection(answers: false) { connection in
            let bytes = Self.get("/v1/tenants/nonsense", key: TestKeys.portalAdmin) + Self.get("/v1/tenants")
            try connection.send(bytes)
            #expect(try connection.handedOn() == bytes)
            #expect(try connection.written().isEmpty)
        }
    }
}
