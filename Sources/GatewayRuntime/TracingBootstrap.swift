public import GatewayConfig
import GatewayTracing
public import Logging
import OTel
public import ServiceLifecycle
import Tracing

/// Starts OpenTelemetry tracing (swift-otel, OTLP/HTTP) when the configuration has `tracing`:
/// the process-wide tracer is bootstrapped once, span making is turned on
/// (``GatewayTracing/turnOn()``), and the exporter's service is returned, to run first in the
/// service group (so it stops last and flushes the spans of the drain). The standard `OTEL_*`
/// variables apply over the file's settings; `OTEL_SDK_DISABLED=true` leaves tracing off.
public enum TracingBootstrap {
    public static func start(_ settings: TracingConfiguration?, logger: Logger, environment: [String: String]) throws -> (any Service)? {
        guard let settings else { return nil }
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" {
            logger.notice("tracing is configured but OTEL_SDK_DISABLED=true: no spans are made")
            return nil
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = settings.tracesURL
        configuration.traces.otlpExporter.protocol = settings.wireFormat == .json ? .httpJSON : .httpProtobuf
        configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: settings.sampleRatio) ?? .parentBasedAlwaysOn
        configuration.propagators = [.traceContext]
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        GatewayTracing.turnOn()
        logger.info(
            "tracing on", metadata: ["endpoint": "\(settings.tracesURL)", "protocol": "\(settings.wireFormat.rawValue)", "sampleRatio": "\(settings.sampleRatio)"])
        return backend.service
    }
}
