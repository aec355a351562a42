// libFuzzer target: the configuration loader. The input is a config file's bytes, read as
// `GatewayConfiguration.load(path:)` reads them (lossy UTF-8) and handed to
// `GatewayConfiguration.parse(yaml:file:environment:)`, what `load` runs after the file read.
//
// Invariants:
// - It returns a configuration or throws a `ConfigError`; any other error, a trap or a sanitizer
//   report is a finding.
// - The error names the file it was given, and a key: the key is empty only for the
//   whole-document refusals (not YAML, nested too deep, not a mapping); otherwise its first component is a
//   top-level key the loader knows, or the unknown/repeated top-level key it reports.
// - No error text holds a secret: the environment's secret values (canaries) never appear in it.
// - The same text gives the same answer twice (an equal configuration, or an equal error).
// - A configuration it accepts keeps its own rules: at least one upstream, unique valid names,
//   a base URL with a scheme and no trailing slash, vb365 upstreams with organizations and no
//   account, vspc ones with an account and no organizations, ports and shares within range,
//   idle and head timeouts at their floors, and no secret anywhere in its description.

import Foundation
import GatewayConfig
import Yams
import FuzzerDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Secret values behind the `{env: NAME}` references of the seeds and tests. The long ones are
/// canaries that must never show in an error or a configuration's description; `P` and `SHORT`
/// are short on purpose (the "at least 32 bytes" refusals), as in ConfigTests.
let canary = "fuzz-canary-0a1b2c3d4e5f-secret-value"
let environment: [String: String] = {
    var environment = ["P": "x", "SHORT": "too-short"]
    for name in [
        "VB365_ABC_PASSWORD", "GATEWAY_TOKEN_KEY", "E2E_VSPC_PASSWORD", "E2E_ABC_PASSWORD", "E2E_SIGNING_KEY", "VGW_TEST_SHARED_KEY",
        "REDIS_PASSWORD", "NAME", "DEMO_VSPC_PASSWORD", "DEMO_VB365_ABC_PASSWORD", "DEMO_VB365_CONTOSO_PASSWORD",
        "DEMO_VB365_FABRIKAM_PASSWORD", "DEMO_TOKEN_KEY",
    ] {
        environment[name] = "\(canary)-\(name.lowercased())"
    }
    return environment
}()
let secrets = environment.values.filter { $0.hasPrefix(canary) }

/// Readable files for `caFile`, `{file: …}` and the TLS keys of the seeds (they name this directory).
let fixtureDirectory = "/tmp/veeam-gateway-fuzz"
let fixtures: Void = {
    try? FileManager.default.createDirectory(atPath: fixtureDirectory, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: fixtureDirectory + "/secret", contents: Data("\(canary)-file\n".utf8))
    _ = FileManager.default.createFile(atPath: fixtureDirectory + "/short-secret", contents: Data("pw\n".utf8))
    _ = FileManager.default.createFile(atPath: fixtureDirectory + "/ca.pem", contents: Data("-----BEGIN CERTIFICATE-----\n".utf8))
}()

let topLevelKeys: Set<String> = ["listen", "log", "upstreams", "callers", "cache", "policy", "auth", "limits", "health", "metrics", "shared"]
let file = "fuzz.yaml"

/// The process's `main` (SwiftPM links `main` to `FuzzConfig_main`): libFuzzer's driver.
@_cdecl("FuzzConfig_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    fuzzer_driver_run(argc, argv) { data, size in data.map { fuzzOne($0, size) } ?? 0 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = fixtures
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    // The loader reads every file a config names ({file: …}, caFile, the TLS files): /dev/zero or a
    // FIFO would hang this process, which is not the loader's fault (an operator wrote the path).
    if namesSpecialFile(text) { return -1 }  // -1: libFuzzer keeps it out of the corpus

    let first = outcome(text)
    let second = outcome(text)
    switch (first, second) {
    case (.success(let a), .success(let b)):
        check(a == b, "the same text parsed to two different configurations", text)
        checkAccepted(a, text)
    case (.failure(let a), .failure(let b)):
        check(a == b, "the same text failed twice differently: \(a) / \(b)", text)
        checkRefusal(a, text)
    default:
        fail("the same text succeeded once and failed once", text)
    }
    return 0
}

enum Outcome {
    case success(GatewayConfiguration)
    case failure(ConfigError)
}

func outcome(_ text: String) -> Outcome {
    do {
        return .success(try GatewayConfiguration.parse(yaml: text, file: file, environment: environment))
    } catch let error as ConfigError {
        return .failure(error)
    } catch {
        fail("threw \(type(of: error)), not a ConfigError: \(error)", text)
    }
}

func checkRefusal(_ error: ConfigError, _ text: String) {
    check(error.file == file, "the error names file \(error.file), not \(file)", text)
    check(!error.message.isEmpty, "an error without a message (key \(error.key))", text)
    for secret in secrets {
        check(!error.description.contains(secret), "the error shows a secret value: \(error.description)", text)
    }
    // The key is a path under a top-level key the loader knows, or (an unknown or repeated
    // key) the path of the key refused, which at the top is that key's own name, dots and all
    // (even an empty one, `"": 1`).
    let refusingKey = error.message.hasPrefix("unknown key") || error.message == "appears twice"
    if error.key.isEmpty {
        check(
            error.message.hasPrefix("not valid YAML") || error.message.hasPrefix("must be a mapping")
                || error.message.hasPrefix("nesting deeper than") || refusingKey,
            "an error without a key that is not a whole-document refusal: \(error.message)", text)
        return
    }
    check(error.description.hasPrefix("\(file): \(error.key): "), "the description does not lead with file and key: \(error.description)", text)
    let first = String(error.key.prefix { $0 != "." && $0 != "[" })
    check(topLevelKeys.contains(first) || refusingKey, "the error's key \(error.key) is not a path of a known key (\(error.message))", text)
}

func checkAccepted(_ configuration: GatewayConfiguration, _ text: String) {
    check(configuration.file == file, "the configuration names file \(configuration.file)", text)
    check(!configuration.upstreams.isEmpty, "accepted without an upstream", text)
    check(Set(configuration.upstreams.map(\.name)).count == configuration.upstreams.count, "accepted two upstreams of one name", text)
    for upstream in configuration.upstreams {
        let name = upstream.name
        check((1...32).contains(name.utf8.count) && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }, "accepted upstream name \(name)", text)
        check(upstream.baseURL.hasPrefix("https://") || upstream.baseURL.hasPrefix("http://"), "accepted baseURL \(upstream.baseURL)", text)
        check(!upstream.baseURL.hasSuffix("/"), "kept a trailing slash on \(upstream.baseURL)", text)
        switch upstream.product {
        case .vb365: check(!upstream.organizations.isEmpty && upstream.account == nil, "a vb365 upstream without organizations or with an account", text)
        case .vspc: check(upstream.account != nil && upstream.organizations.isEmpty, "a vspc upstream without an account or with organizations", text)
        }
        check(upstream.options.totalTimeout >= upstream.options.connectTimeout && upstream.options.connectTimeout > .zero, "accepted timeouts out of order", text)
        check(upstream.options.maxResponseBytes > 0, "accepted maxResponseBytes \(upstream.options.maxResponseBytes)", text)
    }
    check((0...65535).contains(configuration.port), "accepted port \(configuration.port)", text)
    check((0.0...1.0).contains(configuration.cacheMaxEntryShare), "accepted maxEntryShare \(configuration.cacheMaxEntryShare)", text)
    check(configuration.cacheMaxBytes >= 0, "accepted cache.maxBytes \(configuration.cacheMaxBytes)", text)
    check(configuration.idleTimeout >= .seconds(1), "accepted idleTimeout \(configuration.idleTimeout)", text)
    check(configuration.requestHeadTimeout >= .milliseconds(100), "accepted requestHeadTimeout \(configuration.requestHeadTimeout)", text)
    check(configuration.probeInterval >= .seconds(1), "accepted probeInterval \(configuration.probeInterval)", text)
    check(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(configuration.logLevel), "accepted log level \(configuration.logLevel)", text)
    check(["text", "json"].contains(configuration.logFormat), "accepted log format \(configuration.logFormat)", text)
    let described = String(describing: configuration)
    for secret in secrets {
        check(!described.contains(secret), "the configuration's description shows a secret value", text)
    }
}

/// Whether any scalar of the document could name a device, `/proc` or `/sys` file. A cheap byte
/// test first; the document is composed only when it might (escapes can spell a path).
func namesSpecialFile(_ text: String) -> Bool {
    let suspicious = ["dev", "proc", "sys", "\\", "fd"]
    guard suspicious.contains(where: { text.contains($0) }) else { return false }
    // The harness composes the document itself only within the bound the product applies
    // before its own parse (deeper ones the product refuses unparsed; Yams recurses per level).
    guard YAMLNesting.lineDeeperThan(YAMLNesting.limit, in: text) == nil, let node = try? Yams.compose(yaml: text) else { return false }
    return containsSpecialPath(node, depth: 0)
}

func containsSpecialPath(_ node: Node, depth: Int) -> Bool {
    if depth > 200 { return true }  // not worth walking: skip the input
    if let scalar = node.scalar { return ["dev", "proc", "sys", "fd"].contains { scalar.string.contains($0) } }
    if let mapping = node.mapping {
        return mapping.contains { containsSpecialPath($0.key, depth: depth + 1) || containsSpecialPath($0.value, depth: depth + 1) }
    }
    if let sequence = node.sequence { return sequence.contains { containsSpecialPath($0, depth: depth + 1) } }
    return false
}

// MARK: - Failing

func check(_ condition: Bool, _ message: @autoclosure () -> String, _ text: String) {
    if !condition { fail(message(), text) }
}

func fail(_ message: String, _ text: String) -> Never {
    let report = "FuzzConfig invariant violated: \(message)\n  input (\(text.utf8.count) bytes): \(text.prefix(1000).debugDescription)\n"
    _ = report.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    abort()
}
