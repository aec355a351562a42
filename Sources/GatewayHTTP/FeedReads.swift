import ChangeFeed
import Foundation
import GatewayAccess
import GatewayCore
import Hummingbird
import HummingbirdCore
import HTTPTypes
import NIOCore

/// What a reader of the change feed asked for: where it is (`after`, or the stream's
/// `Last-Event-ID`), how many events at most, and how long to wait when there are none.
struct FeedQuery: Sendable {
    /// nil: from now on.
    var after: FeedCursor?
    var limit: Int
    var wait: Duration

    static let defaultLimit = 100
    static let maxLimit = 1_000

    /// Parses `after`, `limit` and `wait` (`30s`, `500ms`, or seconds) of `uri`; a stream's
    /// `Last-Event-ID` wins over `after`. 400 for anything malformed or beyond `maxWait`.
    static func parse(_ uri: URI, lastEventID: String?, maxWait: Duration) throws(GatewayError) -> FeedQuery {
        let parameters = uri.queryParameters
        var query = FeedQuery(after: nil, limit: defaultLimit, wait: .zero)
        if let raw = lastEventID ?? parameters["after"].map(String.init) {
            guard let cursor = FeedCursor(Substring(raw)) else {
                throw GatewayError.badRequest(.invalidParameter, "after (or Last-Event-ID) is a cursor of this feed: the id of an event, or meta.cursor.")
            }
            query.after = cursor
        }
        if let raw = parameters["limit"] {
            guard let limit = Int(raw), (1...maxLimit).contains(limit) else {
                throw GatewayError.badRequest(.invalidParameter, "limit is a whole number from 1 to \(maxLimit).")
            }
            query.limit = limit
        }
        if let raw = parameters["wait"] {
            guard let wait = Self.duration(raw), wait >= .zero, wait <= maxWait else {
                throw GatewayError.badRequest(
                    .invalidParameter, "wait is a duration from 0s to \(Int(maxWait.components.seconds))s (for example 30s or 500ms).")
            }
            query.wait = wait
        }
        return query
    }

    /// `30s`, `500ms`, `2m` or plain seconds; nil for anything else.
    static func duration(_ text: Substring) -> Duration? {
        guard text.utf8.count <= 12 else { return nil }
        let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000)]
        for (suffix, milliseconds) in units where text.hasSuffix(suffix) {
            guard let value = Int64(text.dropLast(suffix.count)), value >= 0 else { return nil }
            return .milliseconds(value * milliseconds)
        }
        return Int64(text).map { .seconds($0) }
    }
}

/// `GET /v1/events` (a page of events, waiting for one up to `wait`) and `GET /v1/events/stream`
/// (Server-Sent Events), for one caller.
enum FeedReads {
    /// The page after `query.after`: answered at once when the caller may see events there, else
    /// after waiting up to `query.wait` for one (a place among ``EventLog/maxWaiters`` held while
    /// waiting). 410 for a cursor that is gone, 503 when too many readers wait.
    static func page(_ query: FeedQuery, feed: any FeedLog, visible: @escaping @Sendable (FeedEvent) -> Bool) async throws -> [UInt8] {
        var cursor: FeedCursor
        if let after = query.after { cursor = after } else { cursor = await feed.currentHead() }
        let deadline = ContinuousClock.now + query.wait
        func next() async throws(GatewayError) -> [FeedEvent] {
            switch await feed.events(after: cursor, limit: query.limit, visible: visible) {
            case .gone: throw gone
            case .events(let events, let position):
                cursor = position
                return events
            }
        }
        var events = try await next()
        if events.isEmpty, query.wait > .zero {
            do {
                try await feed.withPlace {
                    while events.isEmpty, ContinuousClock.now < deadline {
                        guard await feed.waitForEvents(after: cursor, until: deadline) else { break }
                        events = try await next()
                    }
                }
            } catch is EventLog.WaitRefusal {
                throw busy(feed)
            }
        }
        var body = Array(#"{"data":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += event.bytes
        }
        body += Array(#"],"meta":{"cursor":"\#(cursor)","limit":\#(query.limit)}}"#.utf8)
        return body
    }

    static let gone = GatewayError(
        .feedCursorGone,
        detail: "The cursor is older than the events this gateway keeps, or from before it restarted: read /v1/tenants (and /v1/customers) again, then follow the feed from its meta.cursor.")

    static func busy(_ feed: any FeedLog) -> GatewayError {
        GatewayError(.feedBusy, detail: "\(feed.maxWaiters) readers wait on the change feed already; try again shortly.", retryAfter: 1)
    }

    /// A stream's plan: where it starts, what its caller may see, how often it speaks when quiet.
    struct StreamPlan: Sendable {
        var feed: any FeedLog
        var start: FeedCursor
        var visible: @Sendable (FeedEvent) -> Bool
        var heartbeat: Duration
    }

    /// Checks a stream can start (its cursor is not gone) and plans it.
    static func plan(_ query: FeedQuery, feed: any FeedLog, visible: @escaping @Sendable (FeedEvent) -> Bool, heartbeat: Duration) async throws(GatewayError) -> StreamPlan {
        let start: FeedCursor
        if let after = query.after { start = after } else { start = await feed.currentHead() }
        if case .gone = await feed.events(after: start, limit: 0, visible: { _ in false }) { throw gone }
        return StreamPlan(feed: feed, start: start, visible: visible, heartbeat: heartbeat)
    }

    /// The stream's response: `text/event-stream`, each event as `id`, `event` and `data` lines,
    /// a comment line every `heartbeat` while quiet; it ends when the caller goes, when the
    /// gateway stops, or (as an `event: gone` line) when the caller fell behind what is kept.
    static func response(_ plan: StreamPlan, requestID: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        if let requestIDName = HTTPField.Name("X-Request-Id") { headers[requestIDName] = requestID }
        // Proxies that buffer answers (nginx) pass this one through as it comes.
        if let buffering = HTTPField.Name("X-Accel-Buffering") { headers[buffering] = "no" }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                try await plan.feed.withPlace {
                    try await stream(plan, to: &writer)
                }
            } catch is EventLog.WaitRefusal {
                try await writer.write(ByteBuffer(string: "event: busy\ndata: {\"retryAfter\":1}\n\n"))
            }
            try await writer.finish(nil)
        })
    }

    private static func stream(_ plan: StreamPlan, to writer: inout any ResponseBodyWriter) async throws {
        var cursor = plan.start
        // The first line tells the caller's EventSource how long to wait before reconnecting.
        try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
        while !Task.isCancelled {
            switch await plan.feed.events(after: cursor, limit: 100, visible: plan.visible) {
            case .gone:
                try await writer.write(ByteBuffer(string: "event: gone\ndata: {\"resync\":\"/v1/tenants\"}\n\n"))
                return
            case .events(let events, let position):
                cursor = position
                if !events.isEmpty {
                    var buffer = ByteBuffer()
                    for event in events {
                        buffer.writeString("id: \(event.id)\nevent: \(event.kind.rawValue)\ndata: ")
                        buffer.writeBytes(event.bytes)
                        buffer.writeString("\n\n")
                    }
                    try await writer.write(buffer)
                    continue
                }
            }
            let open = await plan.feed.waitForEvents(after: cursor, until: .now + plan.heartbeat)
            guard open else { return }
            if case .events(let events, _) = await plan.feed.events(after: cursor, limit: 1, visible: { _ in true }), events.isEmpty {
                try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
            }
        }
    }
}
