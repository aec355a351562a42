import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing

@Suite("End to end: /metrics", .serialized)
struct MetricsTests {
    @Test("Prometheus text with requests, upstream calls, tokens and cache; no id, key, token or user name in it")
    func metrics() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                _ = try await gw.get(cloudTenantPath)
                _ = try await gw.get(cloudTenantPath)
                _ = try await gw.get("/v1/tenants")
                _ = try await gw.get("/v1/tenants", key: "wrong-key-000000000")
                let response = try await gw.get("/metrics", key: nil)
                #expect(response.status == 200)
                #expect(response.header("content-type")?.hasPrefix("text/plain") == true)
                let text = response.text
                #expect(text.contains(#"veeam_gateway_http_requests_total{route="/v1/tenants/{id}",method="GET",status="200"} 2"#), "\(text)")
                #expect(text.contains(#"veeam_gateway_http_requests_total{route="/v1/tenants",method="GET",status="401"} 1"#))
                #expect(text.contains("veeam_gateway_http_request_duration_seconds_bucket"))
                #expect(text.contains(#"veeam_gateway_upstream_requests_total{upstream="vspc-main",outcome="2xx"}"#))
                #expect(text.contains(#"veeam_gateway_token_logins_total{upstream="vspc-main"} 1"#))
                #expect(text.contains(#"veeam_gateway_token_logins_total{upstream="vb365-eu"} 3"#))
                #expect(text.contains("veeam_gateway_cache_hits_total 1"))
                #expect(text.contains("veeam_gateway_cache_bytes"))
                for forbidden in ["c386d34c", "cbc52c37", TestKeys.portalAdmin, "wrong-key", "gateway-svc", "backup-admin", "Gateway-Svc-Pass-1"] {
                    #expect(!text.contains(forbidden), "\(forbidden) in /metrics")
                }
            }
        }
    }
}
