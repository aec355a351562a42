import Foundation
import GatewayTestSupport
import TenantModel
import Testing
import VeeamWire

func encoded(_ tenant: Tenant) throws -> [String: Any] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return try #require(try JSONSerialization.jsonObject(with: encoder.encode(tenant)) as? [String: Any])
}

func decodeOrganization(_ json: String) throws -> VB365Organization {
    try JSONDecoder().decode(VB365Organization.self, from: Data(json.utf8))
}

func decodeTenant(_ json: String) throws -> VSPCCloudTenant {
    try JSONDecoder().decode(VSPCCloudTenant.self, from: Data(json.utf8))
}

@Suite("Normalize: VB365 Organization → Tenant")
struct OrganizationNormalizeTests {
    @Test("seed 000's example")
    func seed() throws {
        let tenant = Normalize.organization(try decodeOrganization(SeedExamples.organization), upstream: "vb365-eu")
        #expect(tenant.id == "vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127")
        #expect(tenant.kind == .organization)
        #expect(tenant.source == .init(product: .vb365, upstream: "vb365-eu", id: "cbc52c37-df7f-4b03-98f3-036e7d4b3127"))
        #expect(tenant.name == "abc.onmicrosoft.com")
        #expect(tenant.type == "Office365")
        #expect(tenant.enabled == nil)
        #expect(tenant.backup.protected == true)
        #expect(tenant.backup.firstBackupAt == "2020-05-29T10:29:05.5413083Z")
        #expect(tenant.backup.lastBackupAt == "2020-05-29T10:29:05.5413083Z")
        let json = try encoded(tenant)
        #expect(json["description"] is NSNull, "what the source lacks is null, never invented")
        #expect(json["enabled"] is NSNull)
        #expect((json["links"] as? [String: String])?["self"] == "/v1/tenants/vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127")
        #expect(json["_actions"] == nil)
    }

    @Test(
        "hostile and varied organizations",
        arguments: [
            // (json, expected type, expected name, expected firstBackupAt)
            (#"{"id":"5D0F3B52-7B58-4C3E-9D0A-3D2B1F6A9E11"}"#, nil as String?, nil as String?, nil as String?),
            (#"{"id":"5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11","name":null,"type":null,"isBackedup":null,"firstBackuptime":null}"#, nil, nil, nil),
            (#"{"id":"5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11","type":"onPremises","name":"Müller & Söhne 日本","firstBackuptime":"2017-04-05T08:04:55"}"#, "OnPremises", "Müller & Söhne 日本", "2017-04-05T08:04:55Z"),
            (#"{"id":"5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11","type":"HYBRID","firstBackuptime":"2020-05-29T12:29:05.54+02:00","newField":[1,2],"_links":{}}"#, "Hybrid", nil, "2020-05-29T10:29:05.54Z"),
            (#"{"id":"5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11","type":"Office365Dedicated"}"#, "Office365Dedicated", nil, nil),
        ]
    )
    func variants(json: String, type: String?, name: String?, firstBackupAt: String?) throws {
        let tenant = Normalize.organization(try decodeOrganization(json), upstream: "u1")
        #expect(tenant.id == "u1.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11", "ids are lower-cased, so they are stable")
        #expect(tenant.type == type)
        #expect(tenant.name == name)
        #expect(tenant.backup.firstBackupAt == firstBackupAt)
    }

    @Test("a timestamp that is not one fails the decode, it is not guessed")
    func badTimestamp() {
        #expect(throws: DecodingError.self) { try decodeOrganization(#"{"id":"x","firstBackuptime":"last tuesday"}"#) }
    }
}

@Suite("Normalize: VSPC CloudTenant → Tenant")
struct CloudTenantNormalizeTests {
    @Test("seed 004's example: old spellings become the current ones; hashedPassword never appears")
    func seed() throws {
        let envelope = try JSONDecoder().decode(VSPCEnvelope<VSPCCloudTenant>.self, from: Data(SeedExamples.tenant.utf8))
        let tenant = Normalize.cloudTenant(envelope.data, upstream: "vspc-main")
        #expect(tenant.id == "vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
        #expect(tenant.kind == .cloudTenant)
        #expect(tenant.name == "Alpha")
        #expect(tenant.description == "Alpha Tenant")
        #expect(tenant.type == "General")
        #expect(tenant.enabled == true)
        #expect(tenant.details["gatewaySelectionType"] == .string("GatewayPool"))
        #expect(tenant.details["throttlingUnit"] == .null)
        #expect(tenant.details["maxConcurrentTask"] == .int(1))
        #expect(tenant.details["gatewayPoolsUids"] == .strings(["e1135752-d497-43e0-8857-8a0c3a262e2e"]))
        #expect(tenant.backup == .init(protected: nil, firstBackupAt: nil, lastBackupAt: nil))
        let text = String(decoding: try JSONEncoder().encode(tenant), as: UTF8.self)
        #expect(!text.contains("hashedPassword"))
        #expect(!text.contains("assword"))
    }

    @Test(
        "3.6.1 and hostile variants",
        arguments: [
            (#"{"instanceUid":"0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19","type":"vCD","gatewaySelectionType":"standalonegateways","throttlingUnit":"kbytepersec","hashedPassword":"secret-hash","credentials":{"userName":"u","password":"p"}}"#,
             "VCD" as String?, "StandaloneGateways" as String?, "KbytePerSec" as String?, nil as String?),
            (#"{"instanceUid":"0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19","type":"Quantum","gatewaySelectionType":"Mesh","lastActive":"2026-11-20T07:45:12.1234567Z"}"#,
             "Quantum", "Mesh", nil, "2026-11-20T07:45:12.1234567Z"),
            (#"{"instanceUid":"0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19","lastActive":"2026-10-01T12:00:00+02:00","unknownThing":{"deep":[null]}}"#,
             nil, nil, nil, "2026-10-01T10:00:00Z"),
        ]
    )
    func variants(json: String, type: String?, gateway: String?, unit: String?, lastActive: String?) throws {
        let tenant = Normalize.cloudTenant(try decodeTenant(json), upstream: "v")
        #expect(tenant.type == type)
        #expect(tenant.details["gatewaySelectionType"] == (gateway.map { .string($0) } ?? .null))
        #expect(tenant.details["throttlingUnit"] == (unit.map { .string($0) } ?? .null))
        #expect(tenant.details["lastActiveAt"] == (lastActive.map { .string($0) } ?? .null))
        let text = String(decoding: try JSONEncoder().encode(tenant), as: UTF8.self)
        #expect(!text.contains("secret-hash"))
        #expect(!text.contains("credentials"))
        #expect(!text.contains("unknownThing"))
    }
}

@Suite("Tenant ids and order")
struct TenantIDTests {
    @Test(
        "parse accepts {upstream}.{uuid} only",
        arguments: [
            ("vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", true),
            ("vspc-main.C386D34C-0AB6-4E13-B30A-67FCB05B83E4", true),
            ("VSPC.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", false),
            ("vspc_main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", false),
            (".c386d34c-0ab6-4e13-b30a-67fcb05b83e4", false),
            ("vspc-main.c386d34c", false),
            ("vspc-main.../etc/passwd", false),
            ("vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4%00", false),
            ("vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e\n", false),
            (String(repeating: "a", count: 33) + ".c386d34c-0ab6-4e13-b30a-67fcb05b83e4", false),
            ("vspc-main", false),
        ]
    )
    func parse(value: String, valid: Bool) {
        #expect((TenantID.parse(value) != nil) == valid)
    }

    @Test("lists sort by name, case-insensitively, then id")
    func order() throws {
        let a = Normalize.organization(try decodeOrganization(#"{"id":"00000000-0000-4000-8000-000000000002","name":"beta"}"#), upstream: "x")
        let b = Normalize.organization(try decodeOrganization(#"{"id":"00000000-0000-4000-8000-000000000001","name":"Alpha"}"#), upstream: "x")
        let c = Normalize.organization(try decodeOrganization(#"{"id":"00000000-0000-4000-8000-000000000000","name":"alpha"}"#), upstream: "x")
        #expect(Normalize.sorted([a, b, c]).map(\.id) == [c.id, b.id, a.id])
    }
}

@Suite("Normalize: enum values")
struct EnumValueTests {
    @Test("Unknown (the 3.6.1 models' fallback) is null; a value no spec knows is kept; old spellings are made current")
    func unknown() throws {
        let json = #"{"instanceUid": "c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "type": "Unknown", "gatewaySelectionType": "unknown", "throttlingUnit": "GbitPerSec"}"#
        let tenant = Normalize.cloudTenant(try decodeTenant(json), upstream: "vspc-main")
        #expect(tenant.type == nil)
        #expect(tenant.details["gatewaySelectionType"] == .null)
        #expect(tenant.details["throttlingUnit"] == .string("GbitPerSec"))
        let old = Normalize.cloudTenant(try decodeTenant(#"{"instanceUid": "c386d34c-0ab6-4e13-b30a-67fcb05b83e4", "type": "vCD"}"#), upstream: "vspc-main")
        #expect(old.type == "VCD")
    }
}
