import GatewayObservability
import GatewayTracing
import Tracing
import GatewayCore
import Logging
import TenantModel

/// What every answered request leaves behind, whichever front end served it: its request
/// series (count and latency by route template, method and status; `X-Cache`), its status-board
/// entry, its access-log line, and for a problem worth keeping the status board's problem entry
/// and a warning. One call per request: the hot path makes it once an answer is rendered, the
/// router's ``RouterRecording`` after the route returned.
struct RequestRecorder: Sendable {
    let metrics: GatewayMetrics
    let accessLog: AccessLog
    let logger: Logger

    /// One answered request.
    struct Entry {
        var method: String
        var path: RecordedPath
        var requestID: RequestID
        var callerID: String?
        var status: Int
        /// `X-Cache` of the answer, when it has one.
        var cache: String?
        var elapsed: Duration
        /// The problem answered, if any.
        var problem: GatewayError?
        /// Answered by the event-loop hot path (counted apart as well).
        var hotPath: Bool
        /// The request's server span (tracing on), ended here.
        var span: (any Span)? = nil
    }

    func record(_ entry: Entry) {
        let route = entry.path.route
        if let problem = entry.problem { note(problem, entry, route: route) }
        metrics.request(route: route, method: entry.method, status: entry.status, duration: entry.elapsed, cache: entry.cache, hotPath: entry.hotPath)
        let traceID = entry.span.flatMap {
            GatewayTracing.finish(
                $0, method: MethodLabel.label(entry.method), status: entry.status, route: route, caller: entry.callerID, cache: entry.cache, problem: entry.problem?.code.rawValue,
                withTraceID: accessLog.writesLines)
        }
        accessLog.record(
            requestID: entry.requestID.text, method: entry.method, route: route, path: entry.path.text, caller: entry.callerID, status: entry.status,
            elapsed: entry.elapsed, traceID: traceID)
    }

    /// Refuses a head over ``RequestHeadLimits``, for either front end: writes the 431
    /// (``RequestHeadLimits/exceeded``) into `writer` and records it. `target` as sent (its query
    /// is not recorded); `hotPath` when the HTTP/1.1 handler answered with the hot path on.
    func refuseHead<Writer: AnswerWriter>(method: String, target: String, requestID: String, hotPath: Bool, into writer: inout Writer) {
        let started = ContinuousClock.now
        let status = AnswerRendering.write(.problem(RequestHeadLimits.exceeded), requestID: RequestID(requestID), ifNoneMatch: nil, instance: "", into: &writer)
        record(
            Entry(
                method: method, path: .path(String(target.prefix { $0 != "?" })), requestID: RequestID(requestID), callerID: nil, status: status, cache: nil,
                elapsed: ContinuousClock.now - started, problem: RequestHeadLimits.exceeded, hotPath: hotPath))
    }

    /// A problem answered: on the status board (the route template, the code, the upstream, the
    /// request id, and the tenant id only when it is a well-formed one, never raw input), and
    /// logged when it needs an operator's attention.
    private func note(_ problem: GatewayError, _ entry: Entry, route: String) {
        if StatusBoard.keeps(problem) {
            let tenant = entry.path.tenantID
            metrics.board.problem(
                route: MethodLabel.label(entry.method) + " " + route, status: problem.status, code: problem.code.rawValue, upstream: problem.upstream,
                requestID: entry.requestID.text, tenant: tenant.flatMap { TenantID.parse($0) != nil ? $0 : nil }, caller: entry.callerID)
        }
        if problem.status >= 500 || problem.logDetail != nil {
            logger.warning(
                "request failed",
                metadata: [
                    "request_id": "\(entry.requestID.text)", "code": "\(problem.code)", "upstream": "\(problem.upstream ?? "-")",
                    "detail": "\(problem.logDetail ?? problem.detail)",
                ])
        }
    }
}

/// The path of a recorded request: the path itself, or for a request the hot path framed as
/// `/v1/tenants/{id}` (a plain id: no query, no escapes) the id alone. Such a hit makes no string
/// for a path that only an access line or a problem's note may need: its route template is known
/// without it.
enum RecordedPath {
    case path(String)
    case tenant(id: String)

    private static let tenantsPrefix = "/v1/tenants/"

    /// The path as the request named it.
    var text: String {
        switch self {
        case .path(let path): path
        case .tenant(let id): Self.tenantsPrefix + id
        }
    }

    /// The route template it is counted under (``APISurface/routeTemplate(_:)``).
    var route: String {
        switch self {
        case .path(let path): APISurface.routeTemplate(path)
        case .tenant: APISurface.tenantRoute
        }
    }

    /// The tenant id the path names below `/v1/tenants/`, as sent (whether it is well-formed is
    /// the reader's to check).
    var tenantID: String? {
        switch self {
        case .path(let path): path.hasPrefix(Self.tenantsPrefix) ? String(path.dropFirst(Self.tenantsPrefix.count)) : nil
        case .tenant(let id): id
        }
    }
}
