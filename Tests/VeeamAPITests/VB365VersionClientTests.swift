import Foundation
import HTTPTransport
import Synchronization
import Testing
import VeeamAPI
import VeeamWire

/// An upstream that answers from a function of the request, and records what it was asked.
final class ScriptedUpstream: UpstreamTransport {
    let answer: @Sendable (UpstreamRequest) -> UpstreamResponse
    let seen = Mutex<[String]>([])
    init(_ answer: @escaping @Sendable (UpstreamRequest) -> UpstreamResponse) { self.answer = answer }
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        seen.withLock { $0.append(request.url) }
        return answer(request)
    }
    var urls: [String] { seen.withLock { $0 } }
}

func query(_ url: String, _ name: String) -> Int? {
    URLComponents(string: url)?.queryItems?.first { $0.name == name }?.value.flatMap { Int($0) }
}

func page(offset: Int, limit: Int, ids: [Int]) -> UpstreamResponse {
    let results = ids.map { #"{"id":"00000000-0000-4000-8000-\#(String(format: "%012d", $0))","name":"org-\#($0)"}"# }.joined(separator: ",")
    return UpstreamResponse(status: 200, body: Array(#"{"offset":\#(offset),"limit":\#(limit),"results":[\#(results)]}"#.utf8))
}

@Suite("VB365Client across versions")
struct VB365VersionClientTests {
    @Test("v8 pages are followed to the end (no total: a short page ends it)")
    func pages() async throws {
        let upstream = ScriptedUpstream { request in
            let offset = query(request.url, "offset") ?? 0
            let limit = query(request.url, "limit") ?? 30
            return page(offset: offset, limit: limit, ids: Array(offset..<min(7, offset + limit)))
        }
        let client = VB365Client(transport: upstream, baseURL: "https://vb:4443", version: .v8)
        let all = try await client.organizations(pageSize: 3)
        #expect(all.count == 7)
        #expect(Set(all.map(\.id)).count == 7)
        #expect(upstream.urls.count == 3)
        #expect(upstream.urls.allSatisfy { $0.hasPrefix("https://vb:4443/v8/Organizations?") })
    }

    @Test("a v8 server that ignores offset ends the walk with an error after two pages, never a loop", arguments: [true, false])
    func ignoredOffset(echoes: Bool) async throws {
        // Always the first page; `echoes` says whether it at least echoes the offset asked for.
        let upstream = ScriptedUpstream { request in
            page(offset: echoes ? (query(request.url, "offset") ?? 0) : 0, limit: 3, ids: [0, 1, 2])
        }
        let client = VB365Client(transport: upstream, baseURL: "https://vb:4443", version: .v8)
        let error = await #expect(throws: VeeamAPIError.self) { try await client.organizations(pageSize: 3) }
        #expect(error?.code == .badResponse)
        #expect(upstream.urls.count == 2)
    }

    @Test("up to v7 one array; v6 sends the extendedView it requires")
    func arrays() async throws {
        for version in [VB365APIVersion.v5, .v6, .v7] {
            let upstream = ScriptedUpstream { _ in UpstreamResponse(status: 200, body: Array(#"[{"id":"a"},{"id":"b"}]"#.utf8)) }
            let all = try await VB365Client(transport: upstream, baseURL: "https://vb:4443", version: version).organizations()
            #expect(all.map(\.id) == ["a", "b"])
            #expect(upstream.urls == ["https://vb:4443/\(version)/Organizations" + (version == .v6 ? "?extendedView=false" : "")])
        }
    }

    @Test("a 404 from /vN/Organization is the version not served, not a missing tenant")
    func notServed() async throws {
        let upstream = ScriptedUpstream { _ in UpstreamResponse(status: 404) }
        let error = await #expect(throws: VeeamAPIError.self) {
            try await VB365Client(transport: upstream, baseURL: "https://vb:4443", version: .v7).organization()
        }
        #expect(error?.code == .versionUnsupported)
    }

    @Test("discovery: newest first, the first answer that is not a 404 wins, a 5xx is an error, none is nil")
    func discovery() async throws {
        let v7 = ScriptedUpstream { request in
            UpstreamResponse(status: request.url.contains("/v8/") ? 404 : 401)
        }
        let found = try await VB365Client.discoverVersion(transport: v7, baseURL: "https://vb:4443")
        #expect(found.version == .v7)
        #expect(found.method == "GET /v8/Organization → 404, GET /v7/Organization → 401")
        #expect(v7.urls.allSatisfy { !$0.contains("token") })

        let none = try await VB365Client.discoverVersion(transport: ScriptedUpstream { _ in UpstreamResponse(status: 404) }, baseURL: "https://vb:4443")
        #expect(none.version == nil)
        #expect(none.probes.count == 4)

        let failing = ScriptedUpstream { _ in UpstreamResponse(status: 503) }
        await #expect(throws: VeeamAPIError.self) { try await VB365Client.discoverVersion(transport: failing, baseURL: "https://vb:4443") }
        #expect(failing.urls.count == 1)
    }
}
