// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "VeeamGateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "veeam-gateway", targets: ["veeam-gateway"]),
        .executable(name: "veeam-sim", targets: ["veeam-sim"]),
        .library(name: "HTTPTransport", targets: ["HTTPTransport"]),
        .library(name: "CurlHTTP", targets: ["CurlHTTP"]),
        .library(name: "VeeamAPI", targets: ["VeeamAPI", "VeeamWire"]),
        .library(name: "VeeamSimulator", targets: ["VeeamSimulator"]),
        // For the fuzz package (fuzz/Package.swift): the modules whose parsers it drives.
        .library(name: "GatewayHTTP", targets: ["GatewayHTTP"]),
        .library(name: "GatewayConfig", targets: ["GatewayConfig"]),
        .library(name: "TenantModel", targets: ["TenantModel"]),
        .library(name: "TokenBroker", targets: ["TokenBroker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter (and its dependencies) is left out.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // libcurl, found through pkg-config (Debian: libcurl4-openssl-dev).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // hiredis, for the shared tier (Debian: libhiredis-dev).
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // The shared tier: Redis through hiredis on dedicated threads, a circuit breaker, and
        // the shared, encrypted upstream sessions.
        .target(
            name: "SharedTier",
            dependencies: [
                "ChangeFeed",
                "GatewaySecrets",
                "CHiredis",
                "GatewayClock",
                "ResponseCache",
                "TokenBroker",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // zlib, for the simulator's gzip answers (Debian: zlib1g-dev).
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The upstream-call protocol and its request, response, options and error types: no libcurl.
        .target(
            name: "HTTPTransport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CurlHTTP",
            dependencies: [
                "GatewayClock",
                "HTTPTransport",
                "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Veeam wire models exactly as the upstreams send them (no I/O).
        .target(
            name: "VeeamWire",
            swiftSettings: swiftSettings
        ),
        // Typed clients of both products over any UpstreamTransport.
        .target(
            name: "VeeamAPI",
            dependencies: ["VeeamWire", "HTTPTransport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TenantModel",
            dependencies: ["VeeamWire"],
            swiftSettings: swiftSettings
        ),
        // Generic response cache (no Veeam knowledge).
        // The one injected clock (a Swift Clock of ContinuousClock instants).
        .target(
            name: "GatewayClock",
            swiftSettings: swiftSettings
        ),
        // Spans: whether this process traces, server spans, W3C trace context in and out.
        .target(
            name: "GatewayTracing",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ResponseCache",
            dependencies: ["GatewayClock", "GatewayTracing"],
            swiftSettings: swiftSettings
        ),
        // Secret values that never print, references to them (env, file), credentials, hex.
        .target(
            name: "GatewaySecrets",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TokenBroker",
            dependencies: [
                "GatewayTracing",
                "GatewaySecrets",
                "GatewayClock",
                "HTTPTransport",
                "VeeamWire",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Who may call and what they may read: callers and API keys, gateway tokens, the
        // identity provider, client addresses, limiters, the role policy. No tenant service.
        .target(
            name: "GatewayAccess",
            dependencies: [
                "GatewaySecrets",
                "GatewayClock",
                "TenantModel",
                "HTTPTransport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the gateway tells operators: metrics (swift-metrics), the status board of the last
        // 15 minutes and the status report's shape, method labels, and the thread-sharded state
        // they record into. No tenant service, no HTTP.
        .target(
            name: "GatewayObservability",
            dependencies: [
                "GatewayClock",
                "ResponseCache",
                "TokenBroker",
                "VeeamWire",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The tenant service: upstream reads, the cache, lists, readiness, errors.
        .target(
            name: "GatewayCore",
            dependencies: [
                "GatewayTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "GatewaySecrets",
                "GatewayClock",
                "GatewayAccess",
                "GatewayObservability",
                "ResponseCache",
                "TenantModel",
                "TokenBroker",
                "VeeamAPI",
                "VeeamWire",
                "HTTPTransport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayConfig",
            dependencies: [
                "ChangeFeed",
                "GatewaySecrets",
                "GatewayAccess",
                "GatewayCore",
                "HTTPTransport",
                "ResponseCache",
                "TenantModel",
                "TokenBroker",
                "SharedTier",
                "VeeamWire",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Log lines: the text/JSON handler and the buffered writer behind it.
        .target(
            name: "GatewayLogging",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The change feed: events and their bounded log (cursors of one process start), and
        // what changed between two reads of a list. No upstream, no HTTP.
        .target(
            name: "ChangeFeed",
            dependencies: [
                "TenantModel",
                "GatewayAccess",
                "GatewayObservability",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The composition root: builds snapshots from a configuration, reloads them on SIGHUP,
        // and runs the change feed's watchers.
        .target(
            name: "GatewayRuntime",
            dependencies: [
                "GatewayTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                "ChangeFeed",
                "HTTPTransport",
                "TenantModel",
                "GatewaySecrets",
                "GatewayObservability",
                "GatewayClock",
                "SharedTier",
                "GatewayAccess",
                "GatewayConfig",
                "GatewayCore",
                "GatewayHTTP",
                "CurlHTTP",
                "ResponseCache",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayHTTP",
            dependencies: [
                "GatewayClock",
                "GatewayTracing",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ChangeFeed",
                "GatewayObservability",
                "GatewayLogging",
                "GatewayAccess",
                "ResponseCache",
                "TenantModel",
                "GatewayCore",
                "GatewayConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/status")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VeeamSimulator",
            dependencies: [
                "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The estate the simulator plays unless told otherwise, compiled in: the simulator
            // and the demo run from any directory (config/simulator links to these files).
            resources: [.embedInCode("Fixtures/vb365.json"), .embedInCode("Fixtures/vspc.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "veeam-sim",
            dependencies: [
                "VeeamSimulator",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "veeam-gateway",
            dependencies: [
                "GatewayRuntime",
                "GatewayLogging",
                "GatewayAccess",
                "CurlHTTP",
                "HTTPTransport",
                "GatewayHTTP",
                "GatewayConfig",
                "GatewayCore",
                "VeeamSimulator",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // The demo's configuration, compiled in (config/demo.yaml links to it).
            resources: [.embedInCode("Resources/demo.yaml")],
            swiftSettings: swiftSettings
        ),
        // Benchmark driver (not shipped): see bench/README.md.
        .executableTarget(
            name: "curl-bench",
            dependencies: [
                "CurlHTTP",
                "HTTPTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/curl-bench",
            swiftSettings: swiftSettings
        ),
        // Test helpers (not shipped): certificates, an in-process simulator, raw TCP listeners.
        .target(
            name: "GatewayTestSupport",
            dependencies: [
                "GatewaySecrets",
                "GatewayClock",
                "VeeamSimulator",
                "HTTPTransport",
                "TokenBroker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CurlHTTPTests",
            dependencies: ["CurlHTTP", "HTTPTransport", "GatewayTestSupport", "VeeamSimulator"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VeeamAPITests",
            dependencies: ["VeeamAPI", "VeeamWire", "HTTPTransport", "GatewayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TenantModelTests",
            dependencies: ["TenantModel", "VeeamWire", "GatewayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResponseCacheTests",
            dependencies: ["ResponseCache", "GatewayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TokenBrokerTests",
            dependencies: ["GatewaySecrets", "TokenBroker", "VeeamAPI", "VeeamWire", "CurlHTTP", "HTTPTransport", "GatewayTestSupport", "VeeamSimulator"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayCoreTests",
            dependencies: ["GatewaySecrets", 
                "GatewayClock", "GatewayAccess", "GatewayCore", "GatewayObservability", "GatewayTestSupport", "HTTPTransport", "ResponseCache", "TenantModel", "TokenBroker", "VeeamAPI",
                "VeeamWire", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChangeFeedTests",
            dependencies: ["ChangeFeed", "TenantModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayConfigTests",
            dependencies: ["GatewayAccess", "GatewayConfig", "GatewayCore", "TokenBroker", "GatewayHTTP", "GatewayLogging", "GatewayTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["GatewaySecrets", "ChangeFeed",
                "GatewayRuntime",
                "GatewayAccess",
                "GatewayHTTP", "GatewayConfig", "GatewayCore", "GatewayTestSupport", "CurlHTTP", "HTTPTransport", "VeeamSimulator", "TokenBroker", "ResponseCache",
                "SharedTier",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VeeamSimulatorTests",
            dependencies: ["VeeamSimulator", "GatewayTestSupport", "CurlHTTP", "HTTPTransport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
