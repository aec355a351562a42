import Foundation

/// `tracing`: OpenTelemetry traces over OTLP/HTTP. Absent, nothing is traced and no span is
/// made. The standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
/// `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, `OTEL_SDK_DISABLED`…) refine or override it.
public struct TracingConfiguration: Sendable, Equatable {
    /// How spans are encoded on the wire.
    public enum WireFormat: String, Sendable, Equatable {
        case protobuf = "http/protobuf"
        case json = "http/json"
    }

    /// `otlp.endpoint`: the collector's OTLP/HTTP base URL; spans are sent to `{endpoint}/v1/traces`.
    public var endpoint: String
    /// `otlp.protocol`: `http/protobuf` (default) or `http/json`.
    public var wireFormat: WireFormat = .protobuf
    /// `sampleRatio` (0 to 1, default 1): the share of traces begun here that are kept; a
    /// caller's `traceparent` decides for its own trace.
    public var sampleRatio: Double = 1
    /// `serviceName` (default `veeam-gateway`): `service.name` of every span.
    public var serviceName = "veeam-gateway"

    /// Where spans are posted.
    public var tracesURL: String { endpoint.hasSuffix("/") ? endpoint + "v1/traces" : endpoint + "/v1/traces" }
}

extension GatewayConfiguration {
    static func tracing(_ node: ConfigNode) throws -> TracingConfiguration? {
        guard !node.isMissing else { return nil }
        node.requireMapping()
        node.requireKeys(["otlp", "sampleRatio", "serviceName"])
        let otlp = node.child("otlp")
        otlp.requireKeys(["endpoint", "protocol"])
        let endpoint = otlp.child("endpoint").string()
        guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.user == nil, url.password == nil,
            url.query == nil
        else {
            throw otlp.child("endpoint").error("must be the collector's http(s) URL, e.g. http://otel-collector:4318 (spans go to /v1/traces)")
        }
        var tracing = TracingConfiguration(endpoint: endpoint)
        let format = otlp.child("protocol").string(default: TracingConfiguration.WireFormat.protobuf.rawValue)
        if let known = TracingConfiguration.WireFormat(rawValue: format) {
            tracing.wireFormat = known
        } else {
            otlp.child("protocol").note("must be http/protobuf or http/json (this build exports over OTLP/HTTP)")
        }
        let ratio = node.child("sampleRatio")
        if !ratio.isMissing {
            if let value = Double(ratio.string()), (0...1).contains(value) {
                tracing.sampleRatio = value
            } else {
                ratio.note("must be a number from 0 to 1")
            }
        }
        tracing.serviceName = node.child("serviceName").string(default: tracing.serviceName)
        if tracing.serviceName.isEmpty { node.child("serviceName").note("must not be empty") }
        return tracing
    }
}
