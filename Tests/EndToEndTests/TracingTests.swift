import CurlHTTP
import Foundation
import GatewayAccess
import GatewayTestSupport
import HTTPTransport
import Testing

/// A span as `scripts/otlp-receiver.py` returns it (decoded by the published OTLP package).
struct ReceivedSpan: Decodable {
    var name: String
    var traceId: String
    var spanId: String
    var parentSpanId: String
    var kind: String
    var status: String
    var encoding: String
    var attributes: [String: AttributeValue]
    var resource: [String: AttributeValue]

    enum AttributeValue: Decodable, Equatable {
        case string(String), number(Double), bool(Bool), other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else {
                self = .other
            }
        }
    }

    func string(_ key: String) -> String? { if case .string(let value)? = attributes[key] { value } else { nil } }
    func number(_ key: String) -> Double? { if case .number(let value)? = attributes[key] { value } else { nil } }
}

@Suite("End to end: OpenTelemetry traces to a real OTLP receiver", .serialized)
struct TracingTests {
    static let key = "e2e-tracing-admin-key-0123456789"
    static let organization = "vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"
    static let cloudTenant = "vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"

    /// A W3C trace id and parent span id a caller sends (`traceparent: 00-{trace}-{parent}-01`).
    static func caller(_ n: Int) -> (trace: String, parent: String) {
        (String(format: "4bf92f3577b34da6a3ce929d0e0e%04x", n), String(format: "00f067aa0ba9%04x", n))
    }

    @Test(
        "a miss, a hit and a routed read: server, cache fill, upstream read and login spans, linked to the caller's traceparent and sent upstream, with no secret anywhere",
        arguments: ["http/protobuf", "http/json"])
    func spans(wireFormat: String) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let receiver = try Child("/usr/bin/env", ["python3", repositoryRoot + "/scripts/otlp-receiver.py", "--port-file", directory + "/otlp.port"])
        defer { _ = receiver.stop() }
        try await waitForFile(directory + "/otlp.port")
        let otlpPort = try String(contentsOfFile: directory + "/otlp.port", encoding: .utf8)
        let sim = try await SimulatorProcess.start(in: directory)
        defer { _ = sim.child.stop() }
        let gatewayPort = try refusedPort()
        let yaml = """
            listen: { host: 127.0.0.1, port: \(gatewayPort) }
            log: { level: info }
            tracing: { otlp: { endpoint: "http://127.0.0.1:\(otlpPort)", protocol: \(wireFormat) }, sampleRatio: 1.0 }
            callers:
              - { id: tracing-admin, keyHash: "\(APIKey.hash(Self.key))", roles: [PortalAdministrator] }
            \(sim.upstreamsYAML(caDirectory: directory))
            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        let gateway = try Child(
            try executable("veeam-gateway"), ["serve", "--config", directory + "/gateway.yaml"],
            environment: ["E2E_ABC_PASSWORD": "Abc-Org-Pass-1", "E2E_VSPC_PASSWORD": "Gateway-Svc-Pass-1", "OTEL_BSP_SCHEDULE_DELAY": "100"])
        defer { _ = gateway.stop() }
        let client = try CurlClient()
        let base = "http://127.0.0.1:\(gatewayPort)"
        try await waitForHealth(client, base)
        func get(_ path: String, caller n: Int, extra: [(name: String, value: String)] = []) async throws -> UpstreamResponse {
            let (trace, parent) = Self.caller(n)
            let headers: [(name: String, value: String)] = [("X-API-Key", Self.key), ("traceparent", "00-\(trace)-\(parent)-01"), ("tracestate", "e2e=\(n)")]
            return try await client.perform(UpstreamRequest(url: base + path, headers: headers + extra), options: TransferOptions())
        }
        // 1: a miss on the hot path; 2: the same tenant, a hit; 3: a cloud tenant the router serves
        // (`Connection: close` is the router's); 4: no traceparent, a trace of its own; 5: a
        // refresh after the simulator revoked the account's token: 401, a login, the retry.
        #expect(try await get("/v1/tenants/" + Self.organization, caller: 1).header("X-Cache") == "MISS")
        #expect(try await get("/v1/tenants/" + Self.organization, caller: 2).header("X-Cache") == "HIT")
        #expect(try await get("/v1/tenants/" + Self.cloudTenant, caller: 3, extra: [("Connection", "close")]).status == 200)
        #expect(try await client.perform(
            UpstreamRequest(url: base + "/v1/tenants/vb365-eu.00000000-0000-4000-8000-000000000000", headers: [("X-API-Key", Self.key)]),
            options: TransferOptions()).status == 404)
        let simTLS = TransferOptions(tls: .init(caFile: directory + "/ca.pem"))
        #expect(try await client.perform(UpstreamRequest(method: .post, url: "https://127.0.0.1:\(sim.vb365Port)/_sim/revoke?product=vb365"), options: simTLS).status == 200)
        #expect(try await get("/v1/tenants/" + Self.organization, caller: 5, extra: [("Cache-Control", "no-cache")]).status == 200)

        // What the receiver got, once every trace is in.
        var spans: [ReceivedSpan] = []
        let traces = [1, 2, 3, 5].map { Self.caller($0).trace }
        for _ in 0..<150 {
            let body = try await client.perform(UpstreamRequest(url: "http://127.0.0.1:\(otlpPort)/spans"), options: TransferOptions()).body
            spans = try JSONDecoder().decode([ReceivedSpan].self, from: Data(body))
            let servers = spans.filter { $0.kind == "SPAN_KIND_SERVER" }
            if traces.allSatisfy({ trace in servers.contains { $0.traceId == trace } }), servers.count >= 5 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(spans.allSatisfy { $0.encoding == (wireFormat == "http/json" ? "json" : "protobuf") })
        #expect(spans.allSatisfy { $0.resource["service.name"] == .string("veeam-gateway") })

        // 1, the miss: server ← caller; cache fill ← server; read ← fill; login ← read.
        let (trace1, parent1) = Self.caller(1)
        let server1 = try #require(spans.first { $0.traceId == trace1 && $0.kind == "SPAN_KIND_SERVER" }, "\(spans.map(\.name))")
        #expect(server1.name == "GET /v1/tenants/{id}")
        #expect(server1.parentSpanId == parent1)
        #expect(server1.number("http.response.status_code") == 200)
        #expect(server1.string("http.route") == "/v1/tenants/{id}")
        #expect(server1.string("veeam_gateway.caller") == "tracing-admin")
        #expect(server1.string("veeam_gateway.cache") == "MISS")
        let fill = try #require(spans.first { $0.traceId == trace1 && $0.name == "cache fill" })
        #expect(fill.parentSpanId == server1.spanId)
        #expect(fill.string("veeam_gateway.cache.entry") == "tenant")
        let reads = spans.filter { $0.traceId == trace1 && $0.string("veeam_gateway.upstream.operation") == "read" }
        let read = try #require(reads.first)
        #expect(reads.allSatisfy { $0.parentSpanId == fill.spanId && $0.kind == "SPAN_KIND_CLIENT" })
        #expect(read.string("veeam_gateway.upstream") == "vb365-eu")
        #expect(read.number("http.response.status_code") == 200)
        #expect(read.name.hasPrefix("GET /v") && read.name == "GET " + (read.string("url.template") ?? ""), "\(read.name)")
        #expect(read.attributes["veeam_gateway.upstream.retried"] == .bool(false))
        #expect(read.number("veeam_gateway.gate.wait_ms") != nil)

        // The read carried its own span as the parent upstream.
        let received = try await client.perform(UpstreamRequest(url: "https://127.0.0.1:\(sim.vb365Port)/_sim/received"), options: simTLS)
        let parents = try #require(try JSONSerialization.jsonObject(with: Data(received.body)) as? [String: [String: [String]]])
        #expect(parents["vb365"]?["traceparents"]?.contains { $0.hasPrefix("00-\(trace1)-\(read.spanId)-") } == true, "\(parents)")

        // 2, the hit: a server span and nothing below it.
        let (trace2, parent2) = Self.caller(2)
        let server2 = try #require(spans.first { $0.traceId == trace2 && $0.kind == "SPAN_KIND_SERVER" })
        #expect(server2.parentSpanId == parent2 && server2.string("veeam_gateway.cache") == "HIT")
        #expect(spans.filter { $0.traceId == trace2 }.count == 1)

        // 3, through the router: the same shape for VSPC.
        let (trace3, parent3) = Self.caller(3)
        let server3 = try #require(spans.first { $0.traceId == trace3 && $0.kind == "SPAN_KIND_SERVER" })
        #expect(server3.parentSpanId == parent3 && server3.name == "GET /v1/tenants/{id}")
        #expect(spans.contains { $0.traceId == trace3 && $0.string("veeam_gateway.upstream") == "vspc-main" && $0.string("veeam_gateway.upstream.operation") == "read" })

        // 5, the revoked token: the read was retried, and the login it needed is its child.
        let trace5 = Self.caller(5).trace
        let retried = try #require(spans.first { $0.traceId == trace5 && $0.string("veeam_gateway.upstream.operation") == "read" })
        #expect(retried.attributes["veeam_gateway.upstream.retried"] == .bool(true))
        #expect(retried.number("http.response.status_code") == 200)
        let login = try #require(spans.first { $0.traceId == trace5 && $0.string("veeam_gateway.upstream.operation") == "login" })
        #expect(login.parentSpanId == retried.spanId && login.kind == "SPAN_KIND_CLIENT" && login.string("veeam_gateway.upstream") == "vb365-eu")
        #expect(login.name.hasPrefix("POST /") && login.number("http.response.status_code") == 200, "\(login.name)")

        // 4, no traceparent: a trace of its own (a root span), its 404 recorded.
        let own = try #require(spans.first { !traces.contains($0.traceId) && $0.kind == "SPAN_KIND_SERVER" && $0.name == "GET /v1/tenants/{id}" })
        #expect(own.parentSpanId.isEmpty && own.number("http.response.status_code") == 404 && own.string("veeam_gateway.problem") == "tenant.not_found")

        // No secret in any span: passwords, the API key, tokens the simulator issued.
        let tokens = try await client.perform(UpstreamRequest(url: "https://127.0.0.1:\(sim.vb365Port)/_sim/tokens"), options: simTLS)
        let issued = (try JSONSerialization.jsonObject(with: Data(tokens.body)) as? [String: [String]])?["tokens"] ?? []
        let everything = String(decoding: try await client.perform(UpstreamRequest(url: "http://127.0.0.1:\(otlpPort)/spans"), options: TransferOptions()).body, as: UTF8.self)
        for secret in ["Abc-Org-Pass-1", "Gateway-Svc-Pass-1", Self.key, "Bearer"] + issued {
            #expect(!everything.contains(secret), "a span holds a secret")
        }
        #expect(!issued.isEmpty)

        // The access line names the trace.
        #expect(await gateway.waitForOutput("trace_id=\(trace1)"), "\(gateway.text.suffix(1500))")
        await client.shutdown()
    }
}
