import Foundation
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

/// Every VB365 REST version and every VSPC dialect, end to end, with the gateway as it
/// ships (`apiVersion: auto`, `clientVersion` 3.6).
@Suite("End to end: VB365 REST v5–v8 and VSPC dialects", .serialized)
struct VersionTests {
    static let combinations: [(SimulatorVB365API, SimulatorDialect)] = SimulatorVB365API.allCases.flatMap { api in
        SimulatorDialect.allCases.map { (api, $0) }
    }

    @Test("auto finds the version; both products read and normalize the same in every version and dialect", arguments: combinations)
    func endToEnd(api: SimulatorVB365API, dialect: SimulatorDialect) async throws {
        try await withSimulator(dialect: dialect, vb365API: api) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                // Discovery ran at start, was logged with its method, and found the served version.
                let found = gw.logs.all.first { $0.contains("VB365 API version discovered") }
                #expect(found?.contains("apiVersion=\(api.rawValue)") == true, "\(found ?? "no discovery line")")
                #expect(found?.contains("GET /\(api.rawValue)/Organization → 401") == true, "\(found ?? "")")
                let upstreams = try #require(try await gw.json("/v1/upstreams")["data"] as? [[String: Any]])
                #expect(upstreams.first { $0["name"] as? String == "vb365-eu" }?["apiVersion"] as? String == api.rawValue)
                #expect(upstreams.first { $0["name"] as? String == "vspc-main" }?["apiVersion"] as? String == "3.6")

                // VB365: each organization with its own account, canonical spellings, UTC times.
                let abc = try #require(try await gw.json(organizationPath)["data"] as? [String: Any])
                #expect(abc["name"] as? String == "abc.onmicrosoft.com")
                #expect(abc["type"] as? String == "Office365")
                #expect((abc["backup"] as? [String: Any])?["firstBackupAt"] as? String == "2020-05-29T10:29:05.5413083Z")
                let contoso = try #require(try await gw.json("/v1/tenants/vb365-eu.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11")["data"] as? [String: Any])
                #expect(contoso["type"] as? String == "OnPremises")
                #expect((contoso["backup"] as? [String: Any])?["lastBackupAt"] is NSNull)
                let fabrikam = try #require(try await gw.json("/v1/tenants/vb365-eu.9a7c1e40-2f6b-4d8e-b3a5-0c4d2e6f8a19")["data"] as? [String: Any])
                #expect((fabrikam["backup"] as? [String: Any])?["firstBackupAt"] as? String == "2017-04-05T08:04:55Z")

                // VSPC: the same tenant whatever the dialect; credentials and hashedPassword never pass.
                let bravoPath = "/v1/tenants/vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"
                let bravo = try await gw.get(bravoPath)
                #expect(bravo.status == 200)
                for secret in ["hashedPassword", "credentials", "a9d5f1e0c3b2a8f7e6d5c4b3a2f1e0d9", "Bravo-Tenant-Pass-7", "bravo-owner"] {
                    #expect(!bravo.text.contains(secret), "\(secret) passed through")
                }
                let data = try #require((try JSONSerialization.jsonObject(with: Data(bravo.body)) as? [String: Any])?["data"] as? [String: Any])
                #expect(data["type"] as? String == "General")
                #expect((data["details"] as? [String: Any])?["throttlingUnit"] as? String == "MbitPerSec")
                let charlie = try #require(try await gw.json("/v1/tenants/vspc-main.7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d")["data"] as? [String: Any])
                #expect(charlie["type"] as? String == "VCD")

                let list = try await gw.json("/v1/tenants")
                #expect((list["data"] as? [Any])?.count == 6)
                let sources = try #require((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])
                #expect(sources.map { $0["status"] as? String } == ["ok", "ok"])
                #expect(!gw.logs.all.joined(separator: "\n").contains("Bravo-Tenant-Pass-7"))

                // One login per organization account and one for VSPC; VSPC heard X-Client-Version 3.6 only.
                #expect(sim.state.counters(.vb365).logins == 3)
                #expect(sim.state.counters(.vb365).forbidden == 0)
                // abc's read learns which account reads which organization (3), contoso and
                // fabrikam then take their own account only (1 + 1), the list reads all three (3).
                #expect(sim.state.counters(.vb365).requests["GET /\(api.rawValue)/Organization"] == 8)
                #expect(sim.state.counters(.vspc).logins == 1)
                #expect(sim.state.counters(.vspc).clientVersions.keys.sorted() == ["3.6"])
            }
        }
    }

    @Test("a reload discovers again (a server may have been upgraded since the start)")
    func reloadDiscovers() async throws {
        try await withSimulator(vb365API: .v7) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let before = try await gw.get(organizationPath)
                #expect(before.status == 200)
                let reloaded = await gw.state.reload()
                #expect(reloaded)
                await gw.state.snapshot.service.clients.prepare()
                let lines = gw.logs.all.filter { $0.contains("VB365 API version discovered") }
                #expect(lines.count == 2)
                #expect(lines.allSatisfy { $0.contains("apiVersion=v7") })
                let after = try await gw.get(organizationPath)
                #expect(after.status == 200)
            }
        }
    }

    @Test("a fixed apiVersion the server does not serve is a 502 naming the upstream, and /readyz says why", arguments: [
        (SimulatorVB365API.v6, "v8"), (SimulatorVB365API.v8, "v5"),
    ])
    func versionNotServed(api: SimulatorVB365API, configured: String) async throws {
        try await withSimulator(vb365API: api) { sim in
            try await withGateway(vb365: sim, vspc: sim, vb365Extra: "    apiVersion: \(configured)\n") { gw in
                #expect(!gw.logs.all.joined(separator: "\n").contains("VB365 API version discovered"))
                let read = try await gw.get(organizationPath)
                #expect(read.status == 502)
                #expect(read.header("content-type") == "application/problem+json")
                let problem = try #require(try JSONSerialization.jsonObject(with: Data(read.body)) as? [String: Any])
                #expect(problem["code"] as? String == "upstream.version_unsupported", "\(read.text)")
                #expect((problem["detail"] as? String)?.contains("vb365-eu") == true)
                // The VSPC side is unaffected.
                #expect(try await gw.get(cloudTenantPath).status == 200)
                let ready = try await gw.json("/readyz")
                let upstreams = try #require(ready["upstreams"] as? [[String: Any]])
                let vb = try #require(upstreams.first { $0["upstream"] as? String == "vb365-eu" })
                #expect(vb["ready"] as? Bool == false)
                #expect((vb["reason"] as? String)?.contains("upstream.version_unsupported") == true, "\(vb)")
            }
        }
    }

    @Test("auto against a server that speaks no known version: 502 with the reason, four anonymous probes and no login")
    func noKnownVersion() async throws {
        // The VSPC listener serves no /vN/Organization at all: every probe is a 404.
        try await withSimulator { sim in
            let vb365OnVSPCPort = sim.withPorts([.vb365: sim.ports[.vspc] ?? 0])
            try await withGateway(vb365: vb365OnVSPCPort, vspc: sim) { gw in
                let line = gw.logs.all.first { $0.contains("none this gateway knows") }
                #expect(line?.contains("GET /v8/Organization → 404") == true, "\(line ?? "no line")")
                #expect(line?.contains("GET /v5/Organization → 404") == true)
                let read = try await gw.get(organizationPath)
                #expect(read.status == 502)
                #expect(read.text.contains("upstream.version_unsupported"))
                // What reached that server: the four probes of the start, nothing more (no login
                // against a server whose version is unknown; the failure is remembered for 5 s).
                let metrics = try await gw.get("/metrics").text
                let calls = metrics.split(separator: "\n")
                    .filter { $0.hasPrefix("veeam_gateway_upstream_requests_total{") && $0.contains(#"upstream="vb365-eu""#) }
                    .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                    .reduce(0, +)
                #expect(calls == 4, "\(metrics.split(separator: "\n").filter { $0.contains("vb365-eu") })")
            }
        }
    }
}
