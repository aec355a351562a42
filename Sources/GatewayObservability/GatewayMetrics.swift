public import CoreMetrics
import GatewayClock
import Synchronization

/// The gateway's metrics, through swift-metrics with an injected factory (Prometheus in
/// production). Labels are route templates, methods, statuses, upstream names and stable error
/// codes only: never an id, a key, a token or a user name.
public final class GatewayMetrics: Sendable {
    public let factory: any MetricsFactory
    private let lastSeen = Mutex<[String: Int]>([:])
    /// Request series already made, by route, method, status and whether the hot path answered
    /// (its series also counts `veeam_gateway_hot_path_responses_total`): one lookup per request
    /// instead of a registration call into the factory, in the calling thread's shard (the factory
    /// hands every shard the same series).
    private let requestSeries = ThreadShards { KnownRequestSeries() }

    /// One shard's request series, and the one it recorded last: a thread recording the same
    /// route and status again (the common case) finds it by comparing the key, without hashing it.
    struct KnownRequestSeries {
        var last: (key: RequestSeriesKey, series: RequestSeries)?
        var all: [RequestSeriesKey: RequestSeries] = [:]
    }

    /// A class: a lookup hands back one reference, not three.
    final class RequestSeries: Sendable {
        let count: Counter
        let duration: Timer
        /// `veeam_gateway_hot_path_responses_total` of the status (answers the hot path wrote).
        let hotPath: Counter?

        init(count: Counter, duration: Timer, hotPath: Counter?) {
            self.count = count
            self.duration = duration
            self.hotPath = hotPath
        }
    }

    struct RequestSeriesKey: Hashable {
        var route: String
        var method: String
        var status: Int
        var hotPath: Bool
    }

    /// Upstream-call series already made, by upstream and outcome (every miss makes one call).
    private let upstreamSeries = Mutex<[UpstreamSeriesKey: UpstreamSeries]>([:])

    struct UpstreamSeriesKey: Hashable {
        var upstream: String
        var outcome: String
    }

    struct UpstreamSeries {
        var count: Counter
        var duration: Timer
    }

    /// The last 15 minutes and the recent problems, for `/v1/status`.
    public let board: StatusBoard

    public init(factory: any MetricsFactory, board: StatusBoard = StatusBoard()) {
        self.factory = factory
        self.board = board
        self.partialHeadScan = Counter(label: "veeam_gateway_hot_path_partial_head_bytes_scanned_total", factory: factory)
        self.inFlightMeter = Meter(label: "veeam_gateway_http_requests_in_flight", factory: factory)
    }

    /// One served request; `hotPath` when the event-loop hot path wrote the answer itself (also
    /// counted by status in `veeam_gateway_hot_path_responses_total`).
    public func request(route: String, method rawMethod: String, status: Int, duration: Duration, cache: String? = nil, hotPath: Bool = false) {
        let method = MethodLabel.label(rawMethod)
        board.request(method: method, route: route, status: status, duration: duration, cache: cache)
        let key = RequestSeriesKey(route: route, method: method, status: status, hotPath: hotPath)
        let series = requestSeries.withCurrent { known in
            if let last = known.last, last.key == key { return last.series }
            let series = known.all[key] ?? RequestSeries(
                count: Counter(
                    label: "veeam_gateway_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
                duration: Timer(label: "veeam_gateway_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory),
                hotPath: hotPath ? Counter(label: "veeam_gateway_hot_path_responses_total", dimensions: [("status", String(status))], factory: factory) : nil
            )
            known.all[key] = series
            known.last = (key, series)
            return series
        }
        series.count.increment()
        series.duration.recordNanoseconds(duration.wholeNanoseconds)
        series.hotPath?.increment()
    }

    /// Bytes the hot path examined while looking for the end of heads that arrived in pieces
    /// (each byte once: the scan resumes where it stopped, so a trickled head costs linear work).
    public func hotPathPartialHeadScan(bytes: Int) {
        partialHeadScan.increment(by: bytes)
    }

    private let partialHeadScan: Counter

    private let inFlightMeter: Meter

    public func inFlight(_ delta: Int) {
        if delta > 0 { inFlightMeter.increment(by: Double(delta)) } else { inFlightMeter.decrement(by: Double(-delta)) }
    }

    /// One upstream call: `outcome` is `2xx`…`5xx` or a stable transport error code.
    public func upstreamCall(upstream: String, outcome: String, status: Int?, duration: Duration) {
        board.upstreamCall(upstream: upstream, outcome: outcome, status: status)
        let key = UpstreamSeriesKey(upstream: upstream, outcome: outcome)
        let series = upstreamSeries.withLock { known in
            if let found = known[key] { return found }
            let made = UpstreamSeries(
                count: Counter(label: "veeam_gateway_upstream_requests_total", dimensions: [("upstream", upstream), ("outcome", outcome)], factory: factory),
                duration: Timer(label: "veeam_gateway_upstream_request_duration_seconds", dimensions: [("upstream", upstream)], factory: factory))
            known[key] = made
            return made
        }
        series.count.increment()
        series.duration.recordNanoseconds(duration.wholeNanoseconds)
    }

    /// Brings a monotonically growing count (read from a component's statistics) into a counter.
    public func syncCounter(_ label: String, dimensions: [(String, String)] = [], to total: Int) {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = lastSeen.withLock { seen -> Int in
            let previous = seen[key] ?? 0
            seen[key] = max(previous, total)
            return max(0, total - previous)
        }
        // Constructing the counter registers it, so it is exported (at 0) from the first scrape.
        let counter = Counter(label: label, dimensions: dimensions, factory: factory)
        if delta > 0 { counter.increment(by: delta) }
    }

    public func gauge(_ label: String, dimensions: [(String, String)] = [], _ value: Int) {
        Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }

}
