import NIOCore
import NIOPosix
import ArgumentParser
import CurlHTTP
import HTTPTransport
import Foundation
import GatewayLogging
import Logging

/// The process entry. With `VEEAM_GATEWAY_NIO_EXECUTOR=1`, Swift concurrency runs on the NIO
/// event loops (the global executor is NIO's singleton event-loop group, the one the HTTP server
/// uses), so a request that awaits (a cache fill, an upstream call) resumes on an event loop
/// instead of hopping between the cooperative pool and the event loops: cache misses get faster
/// but cache hits slower at the same CPU per request (measured in docs/benchmarks.md, "Miss
/// path"), so it is off by default. Nothing the gateway runs in a task blocks a thread: libcurl
/// has its own thread, log lines their own writer, and locks are held for a few instructions.
@main
enum Main {
    static func main() {
        if ProcessInfo.processInfo.environment["VEEAM_GATEWAY_NIO_EXECUTOR"] == "1" {
            _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        Task {
            await VeeamGatewayCommand.main()
            LogSink.standardError.flush()
            exit(0)
        }
        dispatchMain()
    }
}

struct VeeamGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veeam-gateway",
        abstract: "One HTTP API in front of Veeam Backup for Microsoft 365 and Veeam Service Provider Console.",
        subcommands: [Serve.self, Demo.self, CheckConfig.self, HashKey.self, Probe.self, Version.self]
    )
}

/// `veeam-gateway probe URL`: one GET through the same libcurl client and TLS options the
/// gateway uses for upstreams, to check trust settings (CA file, pin) before writing a config.
struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "GET a URL through the gateway's upstream client and report status, TLS and timing.",
        discussion: "Use it to check an upstream's CA file or public-key pin before putting them in the config."
    )

    @Argument(help: "An https:// URL, e.g. https://vspc.example.internal:1280/api/v3/about") var url: String
    @Option(help: "PEM file of the CA to trust instead of the system store.") var caFile: String?
    @Option(help: "Public-key pin, sha256//BASE64 (libcurl's CURLOPT_PINNEDPUBLICKEY).") var pin: String?
    @Flag(help: "Turn TLS verification off (logs a warning).") var insecure = false
    @Option(help: "Connect timeout in seconds.") var connectTimeout: Double = 5
    @Option(help: "Total timeout in seconds.") var timeout: Double = 15

    func validate() throws {
        for (name, seconds) in [("--connect-timeout", connectTimeout), ("--timeout", timeout)] where !(seconds > 0 && seconds <= 3600) {
            throw ValidationError("\(name) must be a number of seconds between 0 and 3600")
        }
    }

    func run() async throws {
        let client = try CurlClient()
        let options = TransferOptions(
            tls: .init(caFile: caFile, pinnedPublicKey: pin, insecure: insecure),
            connectTimeout: .milliseconds(Int64(connectTimeout * 1000)),
            totalTimeout: .milliseconds(Int64(timeout * 1000)),
            maxResponseBytes: 1024 * 1024
        )
        do {
            let response = try await client.perform(UpstreamRequest(url: url), options: options)
            print("status \(response.status), HTTP/\(response.info.httpVersion), \(response.body.count) bytes in \(response.info.totalTime)")
            await client.shutdown()
            if response.status >= 400 { throw ExitCode(1) }  // so it can serve as a container HEALTHCHECK
        } catch let error as UpstreamError {
            await client.shutdown()
            print("failed: \(error.code) — \(error.message)")
            throw ExitCode(2)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version and the libcurl in use.")
    func run() {
        print("veeam-gateway 0.1.0")
        print(CurlClient.libcurlVersion)
    }
}
