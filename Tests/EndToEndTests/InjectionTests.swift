import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing

@Suite("End to end: hostile ids and query values never reach an upstream", .serialized)
struct InjectionTests {
    static let paths: [String] = [
        "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4%2F..%2F..%2Fusers%2Fme",
        "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4%00",
        "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4%0D%0AX-Evil:%201",
        "/v1/tenants/vspc-main.%FF%FE%FD",
        "/v1/tenants/vspc-main." + String(repeating: "a", count: 8000),
        "/v1/tenants/..%2F..%2Fetc%2Fpasswd",
        "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4;drop",
        "/v1/tenants?upstream=..%2Fvspc-main",
        "/v1/tenants?product=vspc%00",
        "/v1/tenants?q=%0D%0AX-Evil:%201",
        "/v1/tenants?q=%00",
        "/v1/tenants?q=" + String(repeating: "x", count: 5000),
        "/v1/tenants?limit=10%0D%0A",
        "/v1/tenants?offset=99999999999999999999999",
    ]

    @Test("each is refused with 400 (or 404 for a path that is not a route) and the simulators count zero requests")
    func refusedBeforeUpstream() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for path in Self.paths {
                    let response = try await gw.get(path)
                    #expect([400, 404].contains(response.status), "\(path.prefix(80)) → \(response.status)")
                    #expect(response.header("content-type") == "application/problem+json")
                    #expect(!response.text.contains("\r\n"))
                }
                #expect(sim.state.counters(.vb365).requests.isEmpty, "\(sim.state.counters(.vb365).requests)")
                #expect(sim.state.counters(.vspc).requests.isEmpty, "\(sim.state.counters(.vspc).requests)")
                #expect(sim.state.counters(.vspc).logins == 0)
            }
        }
    }
}
