import Foundation
import GatewayCore
import GatewayTestSupport
import ResponseCache
import TenantModel
import Testing
import VeeamWire

/// What one replica writes to the shared cache level, another reads back as the same entry: the
/// same bytes (so the same ETag), the same tenant, the same tags (so purges find it).
@Suite("Shared cache payloads")
struct SharedPayloadsTests {
    func tenants() throws -> [Tenant] {
        let org = try JSONDecoder().decode(VB365Organization.self, from: Data(SeedExamples.organization.utf8))
        let envelope = try JSONDecoder().decode(VSPCEnvelope<VSPCCloudTenant>.self, from: Data(SeedExamples.tenant.utf8))
        return [Normalize.organization(org, upstream: "vb365-eu"), Normalize.cloudTenant(envelope.data, upstream: "vspc-main")]
    }

    @Test("a tenant reads back as the same body, ETag, tags and value; a list as the same tenants in order")
    func roundTrip() throws {
        let all = try tenants()
        // The seed's cloud tenant has every kind of detail: null, bool, int, string, strings.
        let kinds = Set(all[1].details.values.map { value -> String in
            switch value {
            case .null: return "null"
            case .bool: return "bool"
            case .int: return "int"
            case .string: return "string"
            case .strings: return "strings"
            }
        })
        #expect(kinds == ["null", "bool", "int", "string", "strings"])
        for tenant in all {
            let body = CachedPayload.tenantBody(tenant)
            let fill = CachedPayload.tenantFill(tenant, body: body, fetchedAt: "2026-12-01T10:00:00.1234567Z")
            let written = try #require(SharedPayloads.encode(fill))
            let back = try #require(SharedPayloads.decode(written))
            guard case .tenant(let entry) = back.value else {
                Issue.record("not a tenant")
                continue
            }
            #expect(entry.tenant == tenant)
            #expect(entry.body == body)
            #expect(CachedPayload.tenantBody(entry.tenant) == body, "re-encoding what was read gives the same bytes")
            #expect(entry.fetchedAt == "2026-12-01T10:00:00.1234567Z")
            #expect(back.etag == fill.etag)
            #expect(back.tags == fill.tags)
            #expect(back.bytes == fill.bytes)
            #expect(back.cacheable)
        }
        let list = CachedPayload.listFill(all, upstream: "vspc-main", fetchedAt: "2026-12-01T10:00:00Z", partialFailure: nil)
        let written = try #require(SharedPayloads.encode(list))
        let back = try #require(SharedPayloads.decode(written))
        guard case .list(let read, let fetchedAt, let partial) = back.value else {
            Issue.record("not a list")
            return
        }
        #expect(read == all)
        #expect(fetchedAt == "2026-12-01T10:00:00Z")
        #expect(partial == nil)
        #expect(back.tags == list.tags)
    }

    @Test("a pass-through answer reads back as the same body, ETag and purge tags; garbled bytes read as nothing")
    func passThrough() throws {
        let body = Array(#"{"data":[{"instanceUid":"a","name":"Ünïcode"}],"meta":{"pagingInfo":{"count":1,"offset":0,"total":1}}}"#.utf8)
        let fill = CachedPayload.passThroughFill(body: body, tags: ["upstream:vb365-eu", "tenant:vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"])
        let written = try #require(SharedPayloads.encode(fill))
        let back = try #require(SharedPayloads.decode(written))
        guard case .passThrough(let read) = back.value else {
            Issue.record("not a pass-through entry")
            return
        }
        #expect(read == body)
        #expect(back.etag == fill.etag)
        #expect(back.tags == fill.tags)
        #expect(SharedPayloads.decode(Array(written.prefix(8))) == nil)
        #expect(SharedPayloads.decode(Array(written.dropLast(3))) == nil, "a truncated body is not JSON")
        #expect(SharedPayloads.decode([3, 0, 5] + Array("bogus".utf8) + body) == nil, "tags that are not purge tags")
    }

    @Test("a partial list is never written; another layout, truncated or garbled bytes read as nothing")
    func refusals() throws {
        let all = try tenants()
        let summary = ProblemSummary(GatewayError.upstream("vb365-eu", GatewayError.notFound("gone")))
        #expect(SharedPayloads.encode(CachedPayload.listFill(all, upstream: "vb365-eu", fetchedAt: "x", partialFailure: summary)) == nil)
        let body = CachedPayload.tenantBody(all[0])
        let bytes = try #require(SharedPayloads.encode(CachedPayload.tenantFill(all[0], body: body, fetchedAt: "2026-12-01T10:00:00Z")))
        #expect(SharedPayloads.decode([]) == nil)
        #expect(SharedPayloads.decode([9] + bytes.dropFirst()) == nil, "a layout this build does not know")
        #expect(SharedPayloads.decode(Array(bytes.prefix(10))) == nil)
        #expect(SharedPayloads.decode(Array(bytes.dropLast(5))) == nil)
        #expect(SharedPayloads.decode([2] + Array("not json".utf8)) == nil)
    }
}
