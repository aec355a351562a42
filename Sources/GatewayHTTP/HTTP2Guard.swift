import GatewayCore
import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes

// The HTTP/2 twins of what the raw-bytes front handler (``HotPathHandler``) does for HTTP/1:
//
// - per stream (``HTTP2StreamGuard``, one per stream channel): the request must start within
//   the head deadline and, until it ends, never go quiet for longer than the idle timeout (a
//   HEADERS frame without END_STREAM and then nothing is a stalled request, as an HTTP/1 body
//   promised by Content-Length and never sent is); a stalled stream is reset. Heads over the
//   HTTP/1 limits (``RequestHeadLimits``: field count, field size, head size) are answered 431
//   without reaching the router, and recorded, as the HTTP/1 front handler answers and records them.
// - per connection (``HTTP2ConnectionGuard``): a connection that opens no stream within the head
//   deadline is closed, and so is one whose last open stream was reset for stalling (a client
//   whose every stream stalls is not waited for twice). One left without an open stream is
//   closed after the idle timeout and a grace period, whatever the peer does: Hummingbird's
//   connection manager starts a graceful close at the idle timeout (GOAWAY and a PING) but waits
//   for the PING's answer before its own deadline runs, and a header block left without its
//   CONTINUATION opens no stream at all.
// - swift-nio-http2 itself bounds the rest, at its defaults, which Hummingbird's HTTP/2 channel
//   keeps: at most 100 concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS; more are refused),
//   16 KiB of decoded header list, 200 stream resets per 30 s before the connection is closed
//   (rapid reset, CVE-2023-44487), and limits on CONTINUATION floods and control frames.
//
// Authentication, failed-authentication and rate limits need no twin: every HTTP/2 stream goes
// through the router's `Authenticate`, keyed by the connection's peer as HTTP/1 is.

/// Per-connection bookkeeping of the HTTP/2 front, on the connection's event loop (the loop its
/// stream channels share): open streams, the first-stream deadline, closing a connection whose
/// streams all stalled. Passes every frame on untouched.
final class HTTP2ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    private let headTimeout: TimeAmount
    /// How long a connection without an open stream is kept: the idle timeout and the grace
    /// Hummingbird's graceful close is given.
    private let idleLimit: TimeAmount
    private var open = 0
    private var deadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    /// The grace after the idle timeout, for a peer that answers the graceful close.
    static let closeGrace: TimeAmount = .seconds(2)

    init(headTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.idleLimit = idleTimeout + Self.closeGrace
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Until the first stream, the head deadline runs (the TLS handshake's has just ended).
        closeWhenQuiet(after: headTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        self.context = nil
    }

    /// Closes the connection after `delay` unless a stream opens first.
    private func closeWhenQuiet(after delay: TimeAmount) {
        deadline?.cancel()
        deadline = context?.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self, self.open == 0 else { return }
            self.context?.close(promise: nil)
        }
    }

    /// A stream began (its guard was added).
    func streamOpened() {
        open += 1
        deadline?.cancel()
        deadline = nil
    }

    /// A stream ended; `stalled` when its guard reset it for stalling. When that was the last
    /// open stream, the connection is closed at once after a stall, else after ``idleLimit``
    /// unless another stream opens.
    func streamClosed(stalled: Bool) {
        open = max(0, open - 1)
        guard open == 0 else { return }
        if stalled {
            context?.close(promise: nil)
        } else {
            closeWhenQuiet(after: idleLimit)
        }
    }

    /// Streams open now (for tests).
    var openStreams: Int { open }
}

/// One HTTP/2 stream's deadlines and head limits (see the notes at the top of this file), after
/// Hummingbird's frame-to-HTTP codec, before the router.
final class HTTP2StreamGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase {
        /// No head yet.
        case awaitingHead
        /// Head read, the request has not ended.
        case reading
        /// The request ended (the answer may still be on its way: no deadline then).
        case ended
        /// Refused (431): what else arrives is dropped.
        case refused
    }

    private let headTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    /// Records a refused head as the router records what it answers.
    private let recorder: RequestRecorder
    private var phase = Phase.awaitingHead
    private var timer: Scheduled<Void>?
    /// When the stream last received something; the timer, when it fires early, re-arms from it.
    private var lastRead = NIODeadline.now()
    private var connection: HTTP2ConnectionGuard?
    private var stalled = false
    private var reported = false

    init(headTimeout: TimeAmount, idleTimeout: TimeAmount, recorder: RequestRecorder) {
        self.headTimeout = headTimeout
        self.idleTimeout = idleTimeout
        self.recorder = recorder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection = try? context.channel.parent?.pipeline.syncOperations.handler(type: HTTP2ConnectionGuard.self)
        connection?.streamOpened()
        lastRead = .now()
        arm(context, at: lastRead + headTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        report()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        report()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        let part = unwrapInboundIn(data)
        switch (phase, part) {
        case (.refused, _):
            return
        case (.awaitingHead, .head(let head)):
            if !Self.withinLimits(head) {
                refuse(context, head: head)
                return
            }
            phase = .reading
            armIfIdle(context)
        case (_, .end):
            phase = .ended
            timer?.cancel()
            timer = nil
        default:
            break
        }
        context.fireChannelRead(data)
    }

    /// Whether a head keeps to the HTTP/1 front's limits (pseudo-headers count as fields).
    static func withinLimits(_ head: HTTPRequest) -> Bool {
        var count = 4
        var size = head.method.rawValue.utf8.count + (head.path?.utf8.count ?? 0) + (head.authority?.utf8.count ?? 0) + (head.scheme?.utf8.count ?? 0)
        guard size <= RequestHeadLimits.fieldSize else { return false }
        for field in head.headerFields {
            count += 1
            let fieldSize = field.name.rawName.utf8.count + 2 + field.value.utf8.count
            size += fieldSize
            if count > RequestHeadLimits.fieldCount || fieldSize > RequestHeadLimits.fieldSize || size > RequestHeadLimits.headSize { return false }
        }
        return true
    }

    /// Answers 431 with the gateway's problem and ends the stream, and records it (metrics,
    /// status board, access line) as any answer; the head never reaches the router.
    private func refuse(_ context: ChannelHandlerContext, head: HTTPRequest) {
        phase = .refused
        timer?.cancel()
        timer = nil
        var answer = ResponseAnswerWriter()
        recorder.refuseHead(method: head.method.rawValue, target: head.path ?? "", requestID: RequestIDs.make(), hotPath: false, into: &answer)
        let body = answer.body ?? []
        var fields = answer.fields
        fields[.contentLength] = String(body.count)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Arms the deadline for a stream whose request has not ended: the idle timeout from its last read.
    private func armIfIdle(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }  // the running timer re-arms from `lastRead` when it fires
        arm(context, at: lastRead + idleTimeout)
    }

    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.timer = nil
            switch self.phase {
            case .ended, .refused:
                return
            case .awaitingHead:
                self.stall(context)
            case .reading:
                let due = self.lastRead + self.idleTimeout
                if due > .now() {
                    self.arm(context, at: due)
                } else {
                    self.stall(context)
                }
            }
        }
    }

    /// Resets the stalled stream (closing a stream channel sends RST_STREAM) and tells the connection.
    private func stall(_ context: ChannelHandlerContext) {
        stalled = true
        context.close(promise: nil)
    }

    private func report() {
        guard !reported else { return }
        reported = true
        connection?.streamClosed(stalled: stalled)
        connection = nil
    }
}
