import ArgumentParser
import CurlHTTP
import HTTPTransport
import Foundation
import Synchronization

/// Load driver for bench/client-vs-curl.sh: N GETs of one URL at a fixed concurrency through
/// CurlClient; prints one JSON line with requests/s and latency percentiles.
@main
struct CurlBench: AsyncParsableCommand {
    @Option(help: "URL to GET.") var url: String
    @Option(name: .customLong("header"), help: "Request header, 'Name: value' (repeatable).") var headers: [String] = []
    @Option(help: "CA file to trust.") var caFile: String?
    @Option(help: "Requests in flight at once.") var concurrency = 1
    @Option(help: "Total requests.") var requests = 1000
    @Option(help: "Connections per host.") var maxConnections = 64
    @Flag(help: "HTTP/1.1 only.") var http1 = false

    func run() async throws {
        let client = try CurlClient(configuration: .init(maxConnectionsPerHost: maxConnections, maxIdleConnections: maxConnections))
        let parsed: [(name: String, value: String)] = headers.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let options = TransferOptions(tls: .init(caFile: caFile), httpVersion: http1 ? .http1 : .http2Preferred)
        let request = UpstreamRequest(url: url, headers: parsed)
        // Warm up: open connections, as a long-running gateway would have them.
        _ = try await client.perform(request, options: options)

        let counter = Counter(total: requests)
        let clock = ContinuousClock()
        let started = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    while counter.take() {
                        let t0 = clock.now
                        let response = try await client.perform(request, options: options)
                        guard response.status == 200 else { throw ValidationError("status \(response.status)") }
                        let elapsed = clock.now - t0
                        mine.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        let wall = clock.now - started
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        let stats = client.statistics
        await client.shutdown()
        print(
            String(
                format: #"{"requests":%d,"concurrency":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"connections":%d}"#,
                sorted.count, concurrency, seconds, Double(sorted.count) / seconds, percentile(0.5), percentile(0.99), stats.connectionsOpened
            )
        )
    }
}

/// Hands out request slots to the workers.
final class Counter: Sendable {
    private let remaining: Mutex<Int>
    init(total: Int) { remaining = Mutex(total) }
    func take() -> Bool {
        remaining.withLock { remaining in
            guard remaining > 0 else { return false }
            remaining -= 1
            return true
        }
    }
}
