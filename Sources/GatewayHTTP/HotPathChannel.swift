import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import NIOSSL

// How each HTTP/1 connection is set up: Hummingbird's HTTP/1 channel with the raw-bytes handler
// (``HotPathHandler``, HotPath.swift) in front of it, and an observer behind the router that
// tells the handler when a routed response is complete.

/// Hummingbird's HTTP/1 child channel with ``HotPathHandler`` in front of its pipeline.
struct HotPathChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let responder: HotPathResponder
    /// `listen.hotPath`: whether cache hits are answered here (else every request goes on).
    let answers: Bool
    let idleTimeout: TimeAmount
    let headTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let hot = HotPathHandler(responder: responder, answers: answers, idleTimeout: idleTimeout, headTimeout: headTimeout)
            // First in line, or right behind TLS (which hands it the decrypted bytes).
            if let tls = try? pipeline.handler(type: NIOSSLServerHandler.self) {
                try pipeline.addHandler(hot, position: .after(tls))
            } else {
                try pipeline.addHandler(hot, position: .first)
            }
            let connectionState = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(ResponseCompletionObserver(hot: hot), position: .before(connectionState))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Sees each response the router writes (as HTTP parts, after the router, before the codec) and
/// tells the hot-path handler when one is complete, so that it never answers a later request
/// ahead of an earlier one still being served.
final class ResponseCompletionObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    let hot: HotPathHandler

    init(hot: HotPathHandler) {
        self.hot = hot
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd: Bool
        if case .end = unwrapOutboundIn(data) { isEnd = true } else { isEnd = false }
        context.write(data, promise: promise)  // first pass it on: the bytes of that response go out first
        if isEnd { hot.routedResponseCompleted() }
    }
}
