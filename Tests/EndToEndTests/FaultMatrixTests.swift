import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

@Suite("End to end: upstream fault matrix (cache off)", .serialized)
struct FaultMatrixTests {
    /// Each fault on the VSPC simulator → the status and code the caller gets for a single read.
    static let faults: [(name: String, faults: SimulatorFaults, status: Int, code: String)] = [
        ("520", SimulatorFaults(errorRate: 1), 502, "upstream.server_error"),
        ("malformed JSON", SimulatorFaults(malformedRate: 1), 502, "upstream.bad_response"),
        ("reset mid-body", SimulatorFaults(resetRate: 1), 502, "upstream.io"),
        ("429 retryAfter", SimulatorFaults(throttleRate: 1, retryAfterSeconds: 9), 503, "upstream.throttled"),
        ("202 async action", SimulatorFaults(asyncRate: 1), 503, "upstream.async_pending"),
        ("slow beyond the timeout", SimulatorFaults(latencyMs: 4000), 504, "upstream.timeout"),
    ]

    @Test("each fault gives a problem+json naming the upstream, within its timeout; the list stays partial, never failed")
    func matrix() async throws {
        for fault in Self.faults {
            try await withSimulator { sim in
                try await withGateway(vb365: sim, vspc: sim, total: "1s", cache: "{ maxBytes: 0 }") { gw in
                    _ = try await gw.get("/readyz", key: nil)  // sessions first, so faults hit the resource calls
                    sim.state.setFaults(fault.faults, for: .vspc)
                    let started = ContinuousClock.now
                    let response = try await gw.get(cloudTenantPath)
                    #expect(ContinuousClock.now - started < .seconds(3), "\(fault.name): bounded by the 1 s timeout")
                    #expect(response.status == fault.status, "\(fault.name)")
                    #expect(response.header("content-type") == "application/problem+json")
                    let problem = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                    #expect(problem?["code"] as? String == fault.code, "\(fault.name): \(response.text)")
                    #expect(problem?["upstream"] as? String == "vspc-main")
                    if fault.status == 503 { #expect(response.header("retry-after") != nil) }
                    let list = try await gw.json("/v1/tenants")
                    #expect((list["data"] as? [Any])?.count == 3, "\(fault.name): the VB365 tenants still come back")
                }
            }
        }
    }

    @Test("a certificate that fails the pin is upstream.tls; a refused connection is upstream.connect")
    func tlsAndRefused() async throws {
        let other = try TLSMaterial.generate()
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, vspcTLS: "{ pinnedPublicKey: \"\(other.serverPublicKeyPin)\" }") { gw in
                let response = try await gw.get(cloudTenantPath)
                #expect(response.status == 502)
                #expect(response.text.contains("\"code\":\"upstream.tls\""))
                #expect(response.text.contains("vspc-main"))
            }
            try await withGateway(vb365: sim, vspc: sim, vspcTLS: "{ pinnedPublicKey: \"\(sim.tls.serverPublicKeyPin)\" }") { gw in
                let pinned = try await gw.get(cloudTenantPath)
                #expect(pinned.status == 200, "the right pin alone is trusted")
            }
        }
        try await withSimulator(products: [.vb365]) { vb in
            try await withSimulator(products: [.vspc]) { vspc in
                try await withGateway(vb365: vb, vspc: vspc) { gw in
                    await vspc.stop()
                    let response = try await gw.get(cloudTenantPath)
                    #expect(response.status == 502)
                    #expect(response.text.contains("\"code\":\"upstream.connect\""))
                }
            }
        }
    }
}
