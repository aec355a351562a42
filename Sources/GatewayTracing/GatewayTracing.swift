public import Tracing
public import Instrumentation
import Synchronization

/// The gateway's spans (OpenTelemetry through swift-distributed-tracing): whether this process
/// traces, the server span of a request, the W3C trace context in and out of header lists, and
/// a span's trace id for the access log. Tracing is off unless `tracing` is configured: every
/// span is asked for here first, so a request with tracing off pays one atomic load and makes
/// nothing.
public enum GatewayTracing {
    private static let on = Atomic<Bool>(false)

    /// Whether spans are made (set once at start, after the tracer is bootstrapped).
    public static var isOn: Bool { on.load(ordering: .relaxed) }

    /// Turns span making on: called once the process-wide tracer is bootstrapped.
    public static func turnOn() { on.store(true, ordering: .relaxed) }

    /// A request's server span, continuing the caller's trace when it sent a valid `traceparent`
    /// (and `tracestate`); nil with tracing off. Its name (method and route template) is given
    /// when it ends (``finish(_:method:status:route:caller:cache:problem:withTraceID:)``).
    public static func serverSpan(traceparent: String?, tracestate: String?) -> (any Span)? {
        guard isOn else { return nil }
        var context = ServiceContext.topLevel
        if traceparent != nil {
            InstrumentationSystem.instrument.extract(
                TraceHeaders(traceparent: traceparent, tracestate: tracestate), into: &context, using: TraceHeaders.Reader())
        }
        return startSpan("request", context: context, ofKind: .server)
    }

    /// Runs `body` in a span named `name` of `kind` (a child of the task's current span), or
    /// without one when tracing is off.
    public static func span<T>(
        _ name: String, ofKind kind: SpanKind, _ body: (_ span: (any Span)?) async throws -> T
    ) async throws -> T {
        guard isOn else { return try await body(nil) }
        return try await withSpan(name, ofKind: kind) { span in try await body(span.isRecording ? span : nil) }
    }

    /// Runs `body` with `span` as the task's current span (its children's parent); as is without one.
    public static func within<T>(
        _ span: (any Span)?, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async rethrows -> T {
        guard let span else { return try await body() }
        return try await ServiceContext.withValue(span.context, isolation: isolation) { try await body() }
    }

    /// Ends a request's server span with what was answered: its name (`method`, a bounded label,
    /// and the route template), the status (an error from 500), the route template, the caller's
    /// id, the `X-Cache` status and the problem's code; returns the trace id, for the access line.
    /// (`withTraceID`: whether the trace id is wanted; it is worked out only then.) A span not
    /// sampled (not recording) is only ended.
    @discardableResult
    public static func finish(
        _ span: any Span, method: String, status: Int, route: String, caller: String?, cache: String?, problem: String?, withTraceID: Bool
    ) -> String? {
        guard span.isRecording else {
            span.end()
            return nil
        }
        span.operationName = method + " " + route
        span.attributes["http.request.method"] = method
        span.attributes["http.response.status_code"] = status
        span.attributes["http.route"] = route
        if let caller { span.attributes["veeam_gateway.caller"] = caller }
        if let cache { span.attributes["veeam_gateway.cache"] = cache }
        if let problem { span.attributes["veeam_gateway.problem"] = problem }
        if status >= 500 { span.setStatus(SpanStatus(code: .error, message: problem)) }
        let trace = withTraceID ? traceID(of: span) : nil
        span.end()
        return trace
    }

    /// Adds the current span's `traceparent` (and `tracestate`) to outgoing headers.
    public static func inject(into headers: inout [(name: String, value: String)]) {
        guard isOn else { return }
        InstrumentationSystem.instrument.inject(ServiceContext.current ?? .topLevel, into: &headers, using: HeaderListWriter())
    }

    /// The trace id of `span` (32 hex digits), as the W3C `traceparent` written for it carries it.
    public static func traceID(of span: any Span) -> String? {
        var headers: [(name: String, value: String)] = []
        InstrumentationSystem.instrument.inject(span.context, into: &headers, using: HeaderListWriter())
        guard let parent = headers.first(where: { $0.name == "traceparent" })?.value else { return nil }
        let parts = parent.split(separator: "-")
        guard parts.count == 4, parts[1].utf8.count == 32 else { return nil }
        return String(parts[1])
    }
}

/// A request's W3C trace context headers, as read (at most one value each).
public struct TraceHeaders: Sendable {
    public var traceparent: String?
    public var tracestate: String?

    public init(traceparent: String?, tracestate: String?) {
        self.traceparent = traceparent
        self.tracestate = tracestate
    }

    /// Reads `traceparent` and `tracestate` for the propagator.
    public struct Reader: Extractor {
        public init() {}
        public func extract(key: String, from carrier: TraceHeaders) -> String? {
            switch key.lowercased() {
            case "traceparent": carrier.traceparent
            case "tracestate": carrier.tracestate
            default: nil
            }
        }
    }
}

/// Writes the propagator's headers into an outgoing request's header list.
public struct HeaderListWriter: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout [(name: String, value: String)]) {
        carrier.removeAll { $0.name.lowercased() == key.lowercased() }
        carrier.append((key, value))
    }
}

/// What an upstream call's span reports that the layers below it learn: how long the call
/// waited at the upstream's gate, and whether the token layer sent it again after a 401.
/// Present (``current``) only inside a traced upstream call.
public final class UpstreamCallNotes: Sendable {
    @TaskLocal public static var current: UpstreamCallNotes?

    private struct Notes {
        var gateWait: Duration = .zero
        var retried = false
    }
    private let notes = Mutex(Notes())

    public init() {}

    public func noteGateWait(_ wait: Duration) { notes.withLock { $0.gateWait += wait } }
    public func noteRetry() { notes.withLock { $0.retried = true } }
    public var gateWait: Duration { notes.withLock { $0.gateWait } }
    public var retried: Bool { notes.withLock { $0.retried } }
}

/// An upstream path as a span names it: segments that are ids (UUIDs, numbers, long hex) become
/// `{id}`, and the query is left out (`/api/v3/infrastructure/sites/tenants/{id}`).
public enum UpstreamPathTemplate {
    public static func of(url: String) -> String {
        var rest = Substring(url)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            rest = rest[rest.index(colon, offsetBy: 3)...]
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let query = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<query] }
        return rest.split(separator: "/", omittingEmptySubsequences: false).map { isID($0) ? "{id}" : String($0) }.joined(separator: "/")
    }

    private static func isID(_ segment: Substring) -> Bool {
        guard !segment.isEmpty else { return false }
        if segment.allSatisfy(\.isNumber) { return true }
        let hex = segment.filter { $0 != "-" }
        return hex.count >= 16 && hex.allSatisfy(\.isHexDigit)
    }
}
