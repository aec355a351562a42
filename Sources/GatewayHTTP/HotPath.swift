import GatewayAccess
import GatewayCore
import HummingbirdCore
public import Logging
public import NIOCore
import ResponseCache

// The hot path: authenticated cache hits answered on the event loop (docs/architecture.md, "The
// hot path: cache hits on the event loop").
//
// A Hummingbird route costs a trip through the async request path for every request, far more
// than a fixed answer needs. So a channel handler sits *ahead of the HTTP
// codec* and reads the raw bytes: a plain `GET /v1/tenants/{id}` or `GET /v1/tenants?…` whose
// caller it can admit without waiting goes through the request pipeline (RequestPipeline.swift)
// right there; a cache hit or a refusal is answered at once, and what needs a fill is served in
// a task on the connection's event loop (``HotPathHandler``'s `serve`). Everything else — other
// routes, bodies, an identity provider's token, anything unusual — is handed on, byte for byte,
// to the codec and the router, whose `/v1` routes call the same pipeline. `HotPathTests`
// compares the two front ends' answers header by header.

/// The raw-bytes handler at the front of each connection. Frames HTTP/1.1 requests itself (only
/// the clean, common shape; anything else switches the connection to pass-through for good), and
/// for each complete request either answers it (``HotPathResponder``) or hands its exact bytes on.
/// Answers keep request order: while a handed-on request is unanswered, later ones are handed on
/// too. It also owns the keep-alive idle timeout, since requests it answers never reach the
/// router's connection-state handler.
public final class HotPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    /// The most of an unfinished head it holds; beyond this (already past the head bound) the
    /// head is refused (431), as a complete one over ``RequestHeadLimits`` is.
    static let maxHead = RequestHeadLimits.headSize + 8 * 1024

    private let responder: HotPathResponder
    /// Whether it answers cache hits (`listen.hotPath`); when not, it only frames, times and
    /// hands on.
    private let answers: Bool
    /// Framing, request order, flow and time: every decision about the connection
    /// (HotPathHandler+StateMachine.swift). What stays here are the bytes and the channel.
    private var machine: HotPathConnectionStateMachine
    /// Bytes read and not yet framed or handed on.
    private var pending: ByteBuffer?
    /// The head scanner's cursor over `pending`: how far the head now waiting has been searched
    /// for its end, so a trickled head is not searched from its first byte on every read.
    private var headScanned = 0
    /// `process` is on the stack (a writability event raised by its own flush must not re-enter
    /// it): a property of the call, not of the connection, so it is not in the machine.
    private var processing = false
    /// When the last read's bytes arrived (``now()``): the start of each request framed from them.
    private var arrived: UInt64 = 0
    private var idleCheck: Scheduled<Void>?
    private var remoteAddress = "unknown"
    /// The peer's failed-authentication key (IPv6 by /64), worked out once per connection.
    private var peerKey = "unknown"
    private var scratch = ConnectionScratch()
    /// Runs this connection's misses on its event loop (made when the handler is added).
    private var executor: EventLoopTaskExecutor?
    /// The connection's event loop, whose clock times the connection (set when the handler is added).
    private var loop: (any EventLoop)?

    /// The handler as ``GatewayApplication/make(state:logger:metrics:port:accessLog:eventLoopGroup:onRunning:)``
    /// puts it in front of each connection: answering through the request pipeline under
    /// `state`'s snapshots (when `answers`, as `listen.hotPath`), recording into `metrics` and
    /// `accessLog`, with the connection's idle timeout and head deadline.
    public convenience init(
        state: SnapshotSource, logger: Logger, metrics: MetricsEndpoint, accessLog: AccessLog? = nil, answers: Bool, idleTimeout: TimeAmount,
        headTimeout: TimeAmount
    ) {
        self.init(
            responder: HotPathResponder(state: state, logger: logger, metrics: metrics, accessLog: accessLog), answers: answers, idleTimeout: idleTimeout,
            headTimeout: headTimeout)
    }

    init(responder: HotPathResponder, answers: Bool, idleTimeout: TimeAmount, headTimeout: TimeAmount) {
        self.responder = responder
        self.answers = answers
        self.machine = HotPathConnectionStateMachine(
            now: NIODeadline.now().uptimeNanoseconds, headTimeout: headTimeout.nanoseconds, idleTimeout: idleTimeout.nanoseconds,
            maxHead: Self.maxHead)
    }

    private var idleTimeout: TimeAmount { .nanoseconds(machine.idleTimeout) }

    /// Now on the connection's event loop's clock (the loop's own: an `EmbeddedEventLoop`'s
    /// virtual time in tests), in uptime nanoseconds.
    private func now() -> UInt64 {
        (loop?.now ?? .now()).uptimeNanoseconds
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        loop = context.eventLoop
        machine.restartClock(now: now())
        executor = EventLoopTaskExecutor(loop: context.eventLoop)
        remoteAddress = context.channel.remoteAddress?.ipAddress ?? "unknown"
        peerKey = ClientAddresses().limiterKey(peer: remoteAddress, forwardedFor: nil)
        if context.channel.isActive { scheduleIdleCheck(context, in: idleTimeout) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress?.ipAddress ?? "unknown"
        peerKey = ClientAddresses().limiterKey(peer: remoteAddress, forwardedFor: nil)
        scheduleIdleCheck(context, in: idleTimeout)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        machine.closed()
        idleCheck?.cancel()
        idleCheck = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        machine.closed()
        idleCheck?.cancel()
        idleCheck = nil
        pending = nil
        context.fireChannelInactive()
    }

    /// Called once the router has written a whole response (``ResponseCompletionObserver``).
    public func routedResponseCompleted() {
        machine.routedResponseCompleted(now: now())
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        arrived = now()
        if machine.bytesArrived(now: arrived) {
            machine.owed.insert(.readComplete)
            context.fireChannelRead(data)
            return
        }
        // After a refused head nothing more is framed: what arrives until the close is dropped.
        if machine.isClosed { return }
        var bytes = unwrapInboundIn(data)
        if pending == nil || pending?.readableBytes == 0 {
            pending = bytes
            if machine.bodyRemaining == 0 { headScanned = 0 }  // a new head starts here
        } else {
            if let reader = pending?.readerIndex, reader > 4096 { pending?.discardReadBytes() }
            pending?.writeBuffer(&bytes)
        }
        process(context)
    }

    /// Flushes the burst's answers. The read-complete goes on only when bytes went on in this
    /// burst: the handlers behind have nothing to complete otherwise, and a burst the hot path
    /// answered whole costs no walk through them. Nor does its next read: with nothing of the
    /// connection's behind it (``HotPathConnectionStateMachine/readsForItself``), the handler
    /// asks for the next socket read here, so the channel's automatic read, which starts at the
    /// pipeline's tail and passes every router handler on its way, finds one pending and is not
    /// made. The server's connections read automatically (`autoRead`, as Hummingbird sets them
    /// up): the read asked for here is the one the channel would have asked for.
    public func channelReadComplete(context: ChannelHandlerContext) {
        let owed = machine.owed
        machine.owed = []
        if owed.contains(.flush) { context.flush() }
        if owed.contains(.readComplete) {
            context.fireChannelReadComplete()
        } else if machine.readsForItself {
            context.read()
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, !machine.quiesceArrived() { return }
        context.fireUserInboundEventTriggered(event)
    }

    /// Holds socket reads while answers wait for the peer, or for a miss being served (the machine's flow).
    public func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, machine.isPaused, !processing {
            resume(context)
            process(context)
            settleOwed(context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// Ends a pause: reading goes on (a read held meanwhile is issued now).
    private func resume(_ context: ChannelHandlerContext) {
        if machine.resume() { context.read() }
    }

    /// Frames and serves every complete request in `pending`.
    private func process(_ context: ChannelHandlerContext) {
        guard !processing, !machine.isClosed else { return }
        processing = true
        defer { processing = false }
        while var buffer = pending, buffer.readableBytes > 0 {
            if machine.answering { return }  // everything after a miss being served waits for its answer
            if machine.bodyRemaining > 0 {
                headScanned = 0  // the next head starts after this body
                let count = min(machine.bodyRemaining, buffer.readableBytes)
                if let slice = buffer.readSlice(length: count) { forward(slice, context) }
                machine.bodyForwarded(count)
                pending = buffer
                continue
            }
            let resumedAt = headScanned
            var examined = 0
            guard let headLength = RawRequest.headLength(buffer, scanned: &headScanned, examined: &examined) else {
                responder.metrics.hotPathPartialHeadScan(bytes: examined)
                switch machine.headIncomplete(buffered: buffer.readableBytes, now: now()) {
                case .refuse: refuseHead(context, buffer)
                case .handOver: handOverForever(context)
                case .armDeadline(let delay): scheduleIdleCheck(context, in: .nanoseconds(delay))
                case .wait: break
                }
                return  // wait for the rest of the head
            }
            machine.headCompleted()
            if resumedAt > 0 { responder.metrics.hotPathPartialHeadScan(bytes: examined) }
            headScanned = 0  // whatever happens next, the next head starts after this one
            guard let request = RawRequest(buffer, headLength: headLength, remembered: scratch.presentedKey.remembered) else {
                machine.unframeable()
                handOverForever(context)
                return
            }
            if request.headTooLarge {
                if machine.refuseHead() { refuseHead(context, buffer) } else { handOverForever(context) }
                return
            }
            if machine.mayAnswer(answers: answers, contentLength: request.contentLength, needsRouter: request.needsRouter) {
                if !context.channel.isWritable {
                    // A peer that sends requests without reading answers: write out what waits,
                    // and if that does not drain it, stop here (and stop reading) until it does.
                    context.flush()
                    machine.owed.remove(.flush)
                    if !context.channel.isWritable {
                        machine.pause()
                        responder.logger.debug("hot path paused: the peer is not reading its answers")
                        return
                    }
                }
                // Writable: whatever paused this connection is over (the writability event may
                // have come while this loop ran, and been left to it).
                if machine.isPaused { resume(context) }
                switch responder.respond(
                    to: request, arrived: arrived, now: now, peer: remoteAddress, peerKey: peerKey, scratch: &scratch, allocator: context.channel.allocator)
                {
                case .answered(let answer, let largeBody):
                    buffer.moveReaderIndex(forwardBy: headLength)
                    pending = buffer
                    context.write(wrapOutboundOut(.byteBuffer(answer)), promise: nil)
                    if let largeBody { context.write(wrapOutboundOut(.byteBuffer(largeBody)), promise: nil) }
                    machine.owed.insert(.flush)
                    continue
                case .fill(let miss):
                    buffer.moveReaderIndex(forwardBy: headLength)
                    pending = buffer
                    serve(miss, context)
                    return
                case .handOn:
                    break
                }
            }
            // Hand this request's head on; its body (Content-Length) follows as it arrives.
            if let head = buffer.readSlice(length: headLength) { forward(head, context) }
            machine.routed(contentLength: request.contentLength)
            pending = buffer
        }
    }

    /// Answers 431 to the head at the start of `buffer` (over ``RequestHeadLimits``) and closes the
    /// connection once it is written: what follows such a head is not framed. Answers written
    /// before it in this burst go out first.
    private func refuseHead(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        pending = nil
        machine.owed.remove(.flush)
        let answer = responder.refuseHead(
            RawRequest.RequestLine(buffer), hotPath: answers, now: now(), scratch: &scratch, allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(answer))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Serves a miss in a task on this connection's event loop (``EventLoopTaskExecutor``; its
    /// cache fill too, through ``FillExecutor``), then writes the answer and goes on with what
    /// came after it.
    private func serve(_ miss: HotPathMiss, _ context: ChannelHandlerContext) {
        machine.answerStarted()
        let loop = context.eventLoop
        let bound = NIOLoopBound(Served(handler: self, context: context), eventLoop: loop)
        let responder = responder
        let date = scratch.date(at: now())
        let allocator = context.channel.allocator
        let executor = executor ?? EventLoopTaskExecutor(loop: loop)
        Task(executorPreference: executor) {
            let answer = await FillExecutor.$preferred.withValue(executor) {
                await responder.serve(miss, date: date, allocator: allocator)
            }
            if loop.inEventLoop {
                bound.value.handler.answerReady(answer, bound.value.context)
            } else {
                loop.execute { bound.value.handler.answerReady(answer, bound.value.context) }
            }
            responder.served(miss, answer, now: loop.now.uptimeNanoseconds)
        }
    }

    /// The handler and context a miss's answer goes back to (on their event loop only).
    private struct Served {
        let handler: HotPathHandler
        let context: ChannelHandlerContext
    }

    /// A miss's answer is ready (on the event loop): write it, then frame what waited behind it.
    private func answerReady(_ answer: HotPathAnswer, _ context: ChannelHandlerContext) {
        guard !machine.isClosed else { return }
        let after = machine.answerWritten(now: now())
        context.write(wrapOutboundOut(.byteBuffer(answer.head)), promise: nil)
        if let largeBody = answer.largeBody { context.write(wrapOutboundOut(.byteBuffer(largeBody)), promise: nil) }
        machine.owed = [.flush]
        process(context)
        // Requests that waited behind this one and went to the router now came in reads whose
        // read-complete has passed, so the router's stream is told they are there.
        settleOwed(context)
        if after.passQuiesce {
            if machine.answering {
                _ = machine.quiesceArrived()  // another answer started meanwhile: held for it
            } else {
                context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }
        if after.issueRead { context.read() }
    }

    /// Outside a read burst (a resume, an answer written later): flushes what was written and
    /// passes on a read-complete for what was handed on.
    private func settleOwed(_ context: ChannelHandlerContext) {
        let owed = machine.owed
        machine.owed = []
        if owed.contains(.flush) { context.flush() }
        if owed.contains(.readComplete) { context.fireChannelReadComplete() }
    }

    /// Hands bytes on to the codec (and so to the router).
    private func forward(_ bytes: ByteBuffer, _ context: ChannelHandlerContext) {
        machine.owed.insert(.readComplete)
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    private func handOverForever(_ context: ChannelHandlerContext) {
        if let rest = pending, rest.readableBytes > 0 { forward(rest, context) }
        pending = nil
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        idleCheck?.cancel()
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            idleCheck = nil
            switch machine.timerFired(now: now(), pendingBytes: pending?.readableBytes ?? 0) {
            case .closeHeadTimedOut:
                // The peer had its time for the head (slow or partial), whatever else goes on.
                responder.logger.debug("closing a connection whose request head did not complete in time")
                context.close(promise: nil)
            case .closeIdle:
                context.close(promise: nil)
            case .check(let next):
                scheduleIdleCheck(context, in: .nanoseconds(next))
            }
        }
    }
}
