public import GatewayObservability
public import HTTPTransport

/// Counts and times every upstream call (outcome by status class or error code).
public struct MetricsTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let upstream: String
    public let metrics: GatewayMetrics

    public init(base: any UpstreamTransport, upstream: String, metrics: GatewayMetrics) {
        self.base = base
        self.upstream = upstream
        self.metrics = metrics
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let started = ContinuousClock.now
        do {
            let response = try await base.send(request)
            metrics.upstreamCall(upstream: upstream, outcome: "\(response.status / 100)xx", status: response.status, duration: ContinuousClock.now - started)
            return response
        } catch let error as UpstreamError {
            metrics.upstreamCall(upstream: upstream, outcome: error.code.rawValue, status: nil, duration: ContinuousClock.now - started)
            throw error
        }
    }
}
