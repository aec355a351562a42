import GatewayClock
import GatewayObservability
public import GatewayLogging
public import Logging
import GatewayCore

/// The access log: one line per request (`request_id`, method, route, path, caller, status,
/// `duration_ms`, and `trace_id` when the request was traced) at `info`, written by the router
/// and the hot path alike.
///
/// Through a ``Logger`` each line costs a metadata dictionary, its sorting and a copy of every
/// value; when the process logs with ``GatewayLogHandler`` (as `veeam-gateway serve` does),
/// ``standard(format:logger:write:)`` formats the line straight into the handler's format with the same
/// ``GatewayLogHandler/line(format:label:level:message:_:)`` and hands it to the same sink, which
/// takes that cost off every request. Tests give a capturing logger and get the same fields.
public struct AccessLog: Sendable {
    let logger: Logger
    private let direct: Direct?
    /// Whether access lines are written (the level is `info` or lower). A `Logger`'s level is
    /// fixed once it is made, so it is read once here rather than through the handler's
    /// existential on every request.
    let writesLines: Bool

    struct Direct: Sendable {
        let format: GatewayLogHandler.Format
        let label: String
        let write: @Sendable (String) -> Void
    }

    /// Access lines through `logger` (its handler formats them).
    public init(logger: Logger) {
        self.init(logger: logger, direct: nil)
    }

    /// Access lines formatted as ``GatewayLogHandler`` formats them, written to `write` (by
    /// default standard error's ``LogSink``), while `logger`'s level decides whether they are
    /// written at all.
    public static func standard(
        format: GatewayLogHandler.Format, logger: Logger, write: @escaping @Sendable (String) -> Void = { LogSink.standardError.append($0) }
    ) -> AccessLog {
        AccessLog(logger: logger, direct: Direct(format: format, label: logger.label, write: write))
    }

    private init(logger: Logger, direct: Direct?) {
        self.logger = logger
        self.direct = direct
        self.writesLines = logger.logLevel <= .info
    }

    /// Writes the access line of one request, when the level is `info` or lower.
    public func record(requestID: String, method: String, path: String, caller: String?, status: Int, elapsed: Duration) {
        record(requestID: requestID, method: method, route: APISurface.routeTemplate(path), path: path, caller: caller, status: status, elapsed: elapsed)
    }

    /// As above, with the path's route template (``APISurface``) already known.
    func record(
        requestID: @autoclosure () -> String, method rawMethod: String, route: String, path: @autoclosure () -> String, caller: String?, status: Int, elapsed: Duration,
        traceID: String? = nil
    ) {
        guard writesLines else { return }
        let path = path()
        let requestID = requestID()
        let method = MethodLabel.label(rawMethod)
        // Milliseconds with two decimals, by integer arithmetic (no formatter per line).
        let hundredths = max(0, elapsed.wholeMicroseconds / 10)
        let fraction = hundredths % 100
        let ms = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
        let shownPath = path.utf8.count > 200 ? String(path.prefix(200)) : path
        let callerID = caller ?? "-"
        guard let direct else {
            var metadata: Logger.Metadata = [
                "request_id": "\(requestID)", "method": "\(method)", "route": "\(route)", "path": "\(shownPath)", "caller": "\(callerID)",
                "status": "\(status)", "duration_ms": "\(ms)",
            ]
            if let traceID { metadata["trace_id"] = "\(traceID)" }
            logger.info("request", metadata: metadata)
            return
        }
        // The fields in the order the handler gives them (sorted by key).
        direct.write(
            GatewayLogHandler.line(format: direct.format, label: direct.label, level: .info, message: "request") { fields in
                fields.add("caller", callerID)
                fields.add("duration_ms", ms)
                fields.add("method", method)
                fields.add("path", shownPath)
                fields.add("request_id", requestID)
                fields.add("route", route)
                fields.add("status", String(status))
                if let traceID { fields.add("trace_id", traceID) }
            })
    }
}
