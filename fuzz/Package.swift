// swift-tools-version:6.0
// libFuzzer targets for the gateway's hand-written parsers (scripts/fuzz-parsers.sh builds and
// runs them). Not part of the product: a separate package so that the main one keeps no
// sanitizer or unsafe flags. Built in debug, where the main package's modules are compiled with
// testing enabled, so `@testable import` reaches the internal `RawRequest`.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its directory, whatever the checkout is called.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

// `LLVMFuzzerTestOneInput` is the entry point: no top-level code. Each target's
// `<Target>_main` (what SwiftPM links as `main`) starts libFuzzer through FuzzerDriver.
// The harnesses themselves are optimized (their reference checks are most of an exec's work
// otherwise); the product's modules stay as the debug build compiles them.
let fuzzSettings: [SwiftSetting] = [.unsafeFlags(["-parse-as-library", "-O"])]

let package = Package(
    name: "VeeamGatewayFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // libFuzzer's driver, for the targets' `main` (see FuzzerDriver.h).
        .target(name: "FuzzerDriver"),
        // `RawRequest.headLength` and `RawRequest.init?(_:headLength:)`: the hot path's HTTP/1 framer.
        .executableTarget(
            name: "FuzzRawRequest",
            dependencies: [
                "FuzzerDriver",
                .product(name: "GatewayHTTP", package: mainPackage),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: fuzzSettings
        ),
        // `GatewayConfiguration.parse(yaml:file:environment:)`: what `load(path:)` runs on the file's text.
        .executableTarget(
            name: "FuzzConfig",
            dependencies: [
                "FuzzerDriver",
                .product(name: "GatewayConfig", package: mainPackage),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: fuzzSettings
        ),
        // The upstream wire models (JSONDecoder), `VeeamTimestamp`, the error mapping and the tenant JSON writer.
        .executableTarget(
            name: "FuzzUpstreamBodies",
            dependencies: [
                "FuzzerDriver",
                .product(name: "VeeamAPI", package: mainPackage),
                .product(name: "HTTPTransport", package: mainPackage),
                .product(name: "TenantModel", package: mainPackage),
                .product(name: "TokenBroker", package: mainPackage),
            ],
            swiftSettings: fuzzSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
