import GatewayClock
import GatewayTracing
public import HTTPTransport
import Tracing

/// A client span per upstream call (tracing on only): named by the method and the path's
/// template, with the upstream, the status, whether the token layer retried after a 401 and the
/// wait at the gate; the call carries the span's `traceparent` upstream. The URL's query, the
/// headers and the body (a login's password) are never recorded.
public struct TracingTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let upstream: String
    /// `read` (a caller's read through the gate) or `login` (a token request).
    public let operation: String

    public init(base: any UpstreamTransport, upstream: String, operation: String) {
        self.base = base
        self.upstream = upstream
        self.operation = operation
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        guard GatewayTracing.isOn else { return try await base.send(request) }
        let template = UpstreamPathTemplate.of(url: request.url)
        let notes = UpstreamCallNotes()
        return try await GatewayTracing.span("\(request.method.rawValue) \(template)", ofKind: .client) { span in
            span?.attributes["http.request.method"] = request.method.rawValue
            span?.attributes["url.template"] = template
            span?.attributes["veeam_gateway.upstream"] = upstream
            span?.attributes["veeam_gateway.upstream.operation"] = operation
            var traced = request
            GatewayTracing.inject(into: &traced.headers)
            defer {
                span?.attributes["veeam_gateway.upstream.retried"] = notes.retried
                span?.attributes["veeam_gateway.gate.wait_ms"] = notes.gateWait.inSeconds * 1000
            }
            do {
                let response = try await UpstreamCallNotes.$current.withValue(notes) { try await base.send(traced) }
                span?.attributes["http.response.status_code"] = response.status
                if response.status >= 500 { span?.setStatus(SpanStatus(code: .error)) }
                return response
            } catch let error as UpstreamError {
                span?.attributes["error.type"] = error.code.rawValue
                span?.setStatus(SpanStatus(code: .error, message: error.code.rawValue))
                throw error
            }
        }
    }
}
