import Foundation
import GatewayCore
import Testing
import TenantModel
import VeeamWire

@Suite("Customers: the join of companies, mappings, organizations and cloud tenants, and its drift")
struct CustomerJoinTests {
    static let s1 = "b3650000-0000-4000-8000-000000000001"
    static let s2 = "b3650000-0000-4000-8000-000000000002"
    static let s3 = "b3650000-0000-4000-8000-000000000003"
    static let abc = "cbc52c37-df7f-4b03-98f3-036e7d4b3127"
    static let contoso = "5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11"
    static let contosoInVSPC = "e5c0d1a2-7b3f-4c9e-8a61-2f4d6b8c0e13"

    /// A normalized tenant, as the gateway's JSON writes it (Tenant's initializer is the decoder's).
    static func tenant(kind: String, product: String, upstream: String, id: String, name: String, company: String?) -> Tenant {
        let details = company.map { #"{"assignedForCompany":"\#($0)"}"# } ?? #"{"assignedForCompany":null}"#
        let json = """
            {"id":"\(upstream).\(id)","kind":"\(kind)","source":{"product":"\(product)","upstream":"\(upstream)","id":"\(id)"},
             "name":"\(name)","backup":{},"details":\(details)}
            """
        do {
            return try JSONDecoder().decode(Tenant.self, from: Data(json.utf8))
        } catch {
            fatalError("test tenant: \(error)")
        }
    }

    static func organization(_ id: String, _ name: String) -> Tenant {
        tenant(kind: "organization", product: "vb365", upstream: "vb365-eu", id: id, name: name, company: nil)
    }

    static func cloudTenant(_ id: String, company: String?) -> Tenant {
        tenant(kind: "cloudTenant", product: "vspc", upstream: "vspc-main", id: id, name: "tenant " + id.prefix(4), company: company)
    }

    /// Every kind of drift planted once, beside records that join cleanly.
    static var sources: CustomerSources {
        CustomerSources(
            vspcUpstream: "vspc-main",
            companies: [
                VSPCCompany(instanceUid: "AAAAAAAA-0000-4000-8000-000000000001", name: "ABC Tech", status: "Active", resellerUid: nil),
                VSPCCompany(instanceUid: "bbbbbbbb-0000-4000-8000-000000000002", name: "Contoso Ltd", status: "Active", resellerUid: "r1"),
                VSPCCompany(instanceUid: "cccccccc-0000-4000-8000-000000000003", name: "Dormant", status: "Disabled", resellerUid: nil),
            ],
            tenants: [
                cloudTenant("11111111-0000-4000-8000-000000000001", company: "aaaaaaaa-0000-4000-8000-000000000001"),
                cloudTenant("22222222-0000-4000-8000-000000000002", company: nil),
                cloudTenant("33333333-0000-4000-8000-000000000003", company: "deadc0de-0000-4000-8000-000000000000"),
            ],
            servers: [VSPCVb365Server(instanceUid: s1, name: "127.0.0.1"), VSPCVb365Server(instanceUid: s2, name: "vb365-far"), VSPCVb365Server(instanceUid: s3, name: "vb365-down")],
            organizations: [
                VSPCVb365Organization(instanceUid: abc, name: "abc.onmicrosoft.com", vb365ServerUid: s1, isBackedUp: true),
                VSPCVb365Organization(instanceUid: contosoInVSPC, name: "contoso.local", vb365ServerUid: s1, isBackedUp: true),
                VSPCVb365Organization(instanceUid: "99999999-0000-4000-8000-000000000009", name: "unmapped.example", vb365ServerUid: s1, isBackedUp: true),
                VSPCVb365Organization(instanceUid: "88888888-0000-4000-8000-000000000008", name: "not backed up", vb365ServerUid: s1, isBackedUp: false),
                VSPCVb365Organization(instanceUid: "77777777-0000-4000-8000-000000000007", name: "far.example", vb365ServerUid: s2, isBackedUp: true),
                VSPCVb365Organization(instanceUid: "66666666-0000-4000-8000-000000000006", name: "down.example", vb365ServerUid: s3, isBackedUp: true),
                VSPCVb365Organization(instanceUid: "55555555-0000-4000-8000-000000000005", name: "billed nowhere", vb365ServerUid: s1, isBackedUp: true),
            ],
            mappings: [
                VSPCCompanyMapping(instanceUid: "m1", vb365OrganizationUid: abc, companyUid: "aaaaaaaa-0000-4000-8000-000000000001", vb365ServerUid: s1),
                VSPCCompanyMapping(instanceUid: "m2", vb365OrganizationUid: contosoInVSPC, companyUid: "bbbbbbbb-0000-4000-8000-000000000002", vb365ServerUid: s1),
                VSPCCompanyMapping(instanceUid: "m3", vb365OrganizationUid: "44444444-0000-4000-8000-000000000004", companyUid: "aaaaaaaa-0000-4000-8000-000000000001", vb365ServerUid: s1),
                VSPCCompanyMapping(instanceUid: "m4", vb365OrganizationUid: "55555555-0000-4000-8000-000000000005", companyUid: "deadc0de-0000-4000-8000-000000000000", vb365ServerUid: s1),
                VSPCCompanyMapping(instanceUid: "m5", vb365OrganizationUid: "77777777-0000-4000-8000-000000000007", companyUid: "aaaaaaaa-0000-4000-8000-000000000001", vb365ServerUid: s2),
                VSPCCompanyMapping(instanceUid: "m6", vb365OrganizationUid: "66666666-0000-4000-8000-000000000006", companyUid: "bbbbbbbb-0000-4000-8000-000000000002", vb365ServerUid: s3),
            ],
            vb365: [
                JoinedVB365Upstream(name: "vb365-eu", serverUid: s1, organizations: [organization(abc, "abc.onmicrosoft.com"), organization(contoso, "contoso.local")]),
                JoinedVB365Upstream(name: "vb365-down", serverUid: s3, organizations: nil),
            ])
    }

    @Test("each customer has its cloud tenants and its organizations, each matched by id, by name or known by the mapping only")
    func customers() throws {
        let join = CustomerJoin(Self.sources)
        #expect(join.customers.map(\.id) == [
            "vspc-main.aaaaaaaa-0000-4000-8000-000000000001", "vspc-main.bbbbbbbb-0000-4000-8000-000000000002", "vspc-main.cccccccc-0000-4000-8000-000000000003",
        ])
        let abcTech = join.customers[0]
        #expect(abcTech.cloudTenants.map(\.id) == ["vspc-main.11111111-0000-4000-8000-000000000001"])
        #expect(abcTech.cloudTenants.first?.links.tenant == "/v1/tenants/vspc-main.11111111-0000-4000-8000-000000000001")
        #expect(abcTech.organizations.map(\.match) == [.id, .mappingOnly])
        #expect(abcTech.organizations[0].tenant == "vb365-eu." + Self.abc)
        #expect(abcTech.organizations[0].links.tenant == "/v1/tenants/vb365-eu." + Self.abc)
        #expect(abcTech.organizations[0].server?.uid == Self.s1)
        #expect(abcTech.organizations[0].server?.name == "127.0.0.1" && abcTech.organizations[0].server?.upstream == "vb365-eu")
        #expect(abcTech.organizations[1].tenant == nil && abcTech.organizations[1].server?.upstream == nil)
        let contosoLtd = join.customers[1]
        #expect(contosoLtd.resellerUid == "r1")
        #expect(contosoLtd.organizations.map(\.match) == [.name, .mappingOnly])
        #expect(contosoLtd.organizations[0].tenant == "vb365-eu." + Self.contoso, "found by (server, name): VSPC's uid is not the server's id")
        #expect(join.customers[2].organizations.isEmpty && join.customers[2].cloudTenants.isEmpty)
    }

    @Test("the drift report finds every planted drift and nothing else")
    func drift() {
        let drift = CustomerJoin(Self.sources).drift
        #expect(drift.unbilledOrganizations.map(\.vspcUid).sorted() == ["55555555-0000-4000-8000-000000000005", "99999999-0000-4000-8000-000000000009"])
        #expect(drift.danglingMappings.map(\.mappingUid) == ["m3", "m4"])
        #expect(drift.danglingMappings.map(\.reason) == [.organizationGone, .companyGone])
        #expect(drift.nameOnlyMatches.map { [$0.customer, $0.vspcUid, $0.tenant, $0.name ?? ""] } == [
            ["vspc-main.bbbbbbbb-0000-4000-8000-000000000002", Self.contosoInVSPC, "vb365-eu." + Self.contoso, "contoso.local"]
        ])
        #expect(drift.unassignedTenants.map(\.id) == ["vspc-main.22222222-0000-4000-8000-000000000002", "vspc-main.33333333-0000-4000-8000-000000000003"])
        #expect(drift.unreachableServers.map { [$0.uid, $0.name ?? "", $0.upstream ?? "-", $0.reason.rawValue] + $0.customers } == [
            [Self.s2, "vb365-far", "-", "notConfigured", "vspc-main.aaaaaaaa-0000-4000-8000-000000000001"],
            [Self.s3, "vb365-down", "vb365-down", "unreadable", "vspc-main.bbbbbbbb-0000-4000-8000-000000000002"],
        ])
        #expect(drift.count == 2 + 2 + 1 + 2 + 2)
    }

    @Test("a clean estate has no drift; a name two organizations share on a server matches neither")
    func clean() {
        var sources = Self.sources
        sources.organizations = [sources.organizations[0]]
        sources.mappings = [sources.mappings[0]]
        sources.tenants = [sources.tenants[0]]
        #expect(CustomerJoin(sources).drift.count == 0)
        var twins = Self.sources
        twins.vb365[0].organizations = [Self.organization(Self.abc, "abc.onmicrosoft.com"), Self.organization(Self.contoso, "contoso.local"),
            Self.organization("12121212-0000-4000-8000-000000000012", "contoso.local")]
        let contosoLtd = CustomerJoin(twins).customers[1]
        #expect(contosoLtd.organizations[0].match == .mappingOnly)
        #expect(CustomerJoin(twins).drift.nameOnlyMatches.isEmpty)
    }
}
