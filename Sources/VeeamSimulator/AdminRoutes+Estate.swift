import Foundation
import HTTPTypes
import Hummingbird

/// Changing the estate while the simulator runs, so that tests can watch what follows a change
/// (the gateway's change feed): VB365 organizations (`/_sim/vb365/organizations`) and VSPC
/// tenants (`/_sim/vspc/tenants`) are created, edited and removed. JSON in and out; 400
/// `{"message"}` for bad input, 404 for an unknown id; ids match case-insensitively. Each change
/// VSPC would see is recorded in its activity log (``VSPCActivity``). docs/simulator.md,
/// "Changing the estate while running".
extension AdminRoutes {
    /// Why a change was refused: 400 (bad input) or 404 (unknown id), and what to tell the caller.
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var message: String

        static func badRequest(_ message: String) -> Refusal { Refusal(status: .badRequest, message: message) }
        static func notFound(_ message: String) -> Refusal { Refusal(status: .notFound, message: message) }

        var response: Response { SimHTTP.json(status, .object(["message": .string(message)])) }
    }

    /// The organization types VB365 knows, lower-cased (any spelling case is taken, as the
    /// fixtures have both; v6+ send them canonical).
    static let organizationTypes: Set<String> = ["office365", "onpremises", "hybrid"]

    func registerEstate(on group: RouterGroup<SimulatorContext>) {
        group.post("vb365/organizations") { request, _ in try await createOrganization(request) }
        group.patch("vb365/organizations/:id") { request, context in
            try await patchOrganization(request, id: context.parameters.get("id") ?? "")
        }
        group.delete("vb365/organizations/:id") { _, context in
            try deleteOrganization(id: context.parameters.get("id") ?? "")
        }
        group.post("vspc/tenants") { request, _ in try await createTenant(request) }
        group.patch("vspc/tenants/:uid") { request, context in
            try await patchTenant(request, uid: context.parameters.get("uid") ?? "")
        }
        group.delete("vspc/tenants/:uid") { _, context in
            try deleteTenant(uid: context.parameters.get("uid") ?? "")
        }
    }

    // MARK: VB365 organizations

    /// `POST /_sim/vb365/organizations` `{name, username, password, type?, isBackedup?,
    /// companyUid?}`: a new organization of the played VB365 server (server 0 of a generated
    /// estate), shaped as a generated one; its account logs in to VB365 and reads it. Not backed
    /// up unless `isBackedup` (then both backup times are now). With `companyUid`, VSPC maps it to
    /// that company. 201 `{"id"}`; 400 when the username is an account already.
    private func createOrganization(_ request: Request) async throws -> Response {
        do {
            let body = try await Self.jsonObject(request)
            let name = try Self.string(body, "name")
            let username = try Self.string(body, "username")
            let password = try Self.string(body, "password")
            let type = try Self.organizationType(body["type"]) ?? "Office365"
            let backedUp = try Self.flag(body, "isBackedup") ?? false
            let companyUid = try Self.uuid(body, "companyUid")?.lowercased()
            let id = UUID().uuidString.lowercased()
            let stamp: JSONValue = backedUp ? .string(SimHTTP.dotNetDateTime(state.now)) : .null
            let organization = SimulatorFixtures.Organization(
                account: SimulatorFixtures.Account(username: username, password: password),
                body: .object([
                    "id": .string(id),
                    "name": .string(name),
                    "type": .string(type),
                    "isBackedup": .bool(backedUp),
                    "firstBackuptime": stamp,
                    "lastBackuptime": stamp,
                    "_actions": .object([
                        "explore": .object([
                            "uri": .string("https://vb365.sim.local:4443/v5/organization/action"), "method": .string("POST"),
                        ])
                    ]),
                ]),
                adminView: .object(["region": .string("Worldwide"), "officeName": .string(VB365Estate.label(name))])
            )
            try state.changeEstate { fixtures -> Void in
                let accounts = fixtures.vb365Administrators + fixtures.organizations.map(\.account)
                guard !accounts.contains(where: { $0.username.caseInsensitiveCompare(username) == .orderedSame }) else {
                    throw Refusal.badRequest("\(username) is an account of the VB365 server already")
                }
                fixtures.organizations.append(organization)
                if let companyUid {
                    let view = SimulatorFixtures.VSPCOrganizationView(organizationId: id, companyUid: companyUid)
                    fixtures.vspcOrganizationViews.append(view)
                }
            }
            state.recordActivity(
                VSPCActivity(
                    .vb365OrganizationCreated, kind: .externalActivity,
                    message: "Organization \"\(name)\" (\(id)) was added to Veeam Backup for Microsoft 365.", at: state.now,
                    organizationUid: Self.owner(companyUid, in: state.fixtures)))
            return SimHTTP.json(.created, .object(["id": .string(id)]))
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    /// `PATCH /_sim/vb365/organizations/{id}` with any of `name`, `isBackedup` and `type`: the
    /// organization changed, in VB365 and in VSPC alike. `isBackedup: false` clears the backup
    /// times; `true` sets them to now when the organization has none. 200 with its new body.
    private func patchOrganization(_ request: Request, id: String) async throws -> Response {
        do {
            let body = try await Self.jsonObject(request)
            let allowed: Set<String> = ["name", "isBackedup", "type"]
            guard !body.isEmpty, body.keys.allSatisfy({ allowed.contains($0) }) else {
                throw Refusal.badRequest("the body holds one or more of name, isBackedup and type, and nothing else")
            }
            let name = try Self.optionalString(body, "name")
            let backedUp = try Self.flag(body, "isBackedup")
            let type = try Self.organizationType(body["type"])
            let now = SimHTTP.dotNetDateTime(state.now)
            let changed = try state.changeEstate { fixtures -> SimulatorFixtures.Organization in
                guard let index = fixtures.organizations.firstIndex(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame }) else {
                    throw Refusal.notFound("No VB365 organization has the id \(id.prefix(64)).")
                }
                var organization = fixtures.organizations[index]
                if let name { organization.body["name"] = .string(name) }
                if let type { organization.body["type"] = .string(type) }
                if let backedUp {
                    organization.body["isBackedup"] = .bool(backedUp)
                    if !backedUp {
                        organization.body["firstBackuptime"] = JSONValue.null
                        organization.body["lastBackuptime"] = JSONValue.null
                    } else if organization.body["lastBackuptime"]?.stringValue == nil {
                        organization.body["firstBackuptime"] = .string(now)
                        organization.body["lastBackuptime"] = .string(now)
                    }
                }
                fixtures.organizations[index] = organization
                return organization
            }
            return SimHTTP.json(.ok, changed.body)
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    /// `DELETE /_sim/vb365/organizations/{id}`: the organization leaves VB365 (its account no
    /// longer logs in, its tokens are revoked) and VSPC's list of organizations; a VSPC mapping
    /// view for it may stay behind in the fixtures (it maps nothing VSPC lists). 204.
    private func deleteOrganization(id: String) throws -> Response {
        do {
            let removed = try state.changeEstate { fixtures -> RemovedOrganization in
                guard let index = fixtures.organizations.firstIndex(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame }) else {
                    throw Refusal.notFound("No VB365 organization has the id \(id.prefix(64)).")
                }
                let organization = fixtures.organizations[index]
                let estate = VSPCEstate(fixtures: fixtures, vb365Host: nil, vb365API: .v5)
                let owner = Self.owner(estate.view(organization, table: estate.viewTable()).companyUid, in: fixtures)
                fixtures.organizations.remove(at: index)
                return RemovedOrganization(organization: organization, owner: owner)
            }
            state.revokeTokens(product: .vb365, username: removed.organization.account.username)
            let name = VB365Estate.name(removed.organization)
            state.recordActivity(
                VSPCActivity(
                    .vb365OrganizationDeleted, kind: .externalActivity,
                    message: "Organization \"\(name)\" (\(removed.organization.id)) was removed from Veeam Backup for Microsoft 365.",
                    at: state.now, organizationUid: removed.owner))
            return Response(status: .noContent)
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    // MARK: VSPC tenants

    /// `POST /_sim/vspc/tenants` with a partial `CloudTenant` (`name` required): a new tenant,
    /// listed last; `instanceUid` is generated (lower case) when absent; every member a generated
    /// tenant has and the body does not takes its default (``newTenant(uid:name:)``); other
    /// members are kept as written. 201 `{"instanceUid"}`; 400 when the uid is taken.
    private func createTenant(_ request: Request) async throws -> Response {
        do {
            let body = try await Self.jsonObject(request)
            let name = try Self.string(body, "name")
            try Self.checkTenant(body)
            let uid = try Self.uuid(body, "instanceUid") ?? UUID().uuidString.lowercased()
            var members = Self.newTenant(uid: uid, name: name)
            for (key, value) in body { members[key] = value }
            members["instanceUid"] = .string(uid)
            let tenant = JSONValue.object(members)
            try state.changeEstate { fixtures -> Void in
                guard !fixtures.tenants.contains(where: { Self.isTenant($0, uid) }) else {
                    throw Refusal.badRequest("A tenant has the instanceUid \(uid) already.")
                }
                fixtures.tenants.append(tenant)
            }
            recordTenant(.tenantCreated, tenant, uid: uid, done: "created")
            return SimHTTP.json(.created, .object(["instanceUid": .string(uid)]))
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    /// `PATCH /_sim/vspc/tenants/{uid}`: the body's top-level members replace the tenant's (a
    /// `null` sets null; `instanceUid` never changes). 200 with the tenant as stored.
    private func patchTenant(_ request: Request, uid: String) async throws -> Response {
        do {
            let body = try await Self.jsonObject(request)
            try Self.checkTenant(body)
            let changed = try state.changeEstate { fixtures -> JSONValue in
                guard let index = fixtures.tenants.firstIndex(where: { Self.isTenant($0, uid) }) else {
                    throw Refusal.notFound("No tenant has the instanceUid \(uid.prefix(64)).")
                }
                var tenant = fixtures.tenants[index]
                for (key, value) in body where key != "instanceUid" { tenant[key] = value }
                fixtures.tenants[index] = tenant
                return tenant
            }
            recordTenant(.tenantModified, changed, uid: changed["instanceUid"]?.stringValue ?? uid, done: "modified")
            return SimHTTP.json(.ok, changed)
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    /// `DELETE /_sim/vspc/tenants/{uid}`: the tenant leaves VSPC. 204.
    private func deleteTenant(uid: String) throws -> Response {
        do {
            let removed = try state.changeEstate { fixtures -> JSONValue in
                guard let index = fixtures.tenants.firstIndex(where: { Self.isTenant($0, uid) }) else {
                    throw Refusal.notFound("No tenant has the instanceUid \(uid.prefix(64)).")
                }
                return fixtures.tenants.remove(at: index)
            }
            recordTenant(.tenantRemoved, removed, uid: removed["instanceUid"]?.stringValue ?? uid, done: "removed")
            return Response(status: .noContent)
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    /// Logs a tenant's change, done in VSPC itself (`Internal`), under the tenant's company when
    /// it exists, else the provider.
    private func recordTenant(_ type: VSPCActivity.LogType, _ tenant: JSONValue, uid: String, done: String) {
        let name = tenant["name"]?.stringValue ?? uid
        let company = tenant["assignedForCompany"]?.stringValue
        state.recordActivity(
            VSPCActivity(
                type, kind: .internalActivity, message: "Tenant \"\(name)\" (\(uid)) was \(done).", at: state.now,
                organizationUid: Self.owner(company, in: state.fixtures)))
    }

    /// A created tenant's members where its body names none: the members of a generated tenant
    /// (``SimulatorFixtures/generatedTenant(_:)``) with the values a generated one takes, where
    /// those vary: the 3.6.1 spellings, no description, never active, enabled, one concurrent
    /// task, assigned to no company.
    static func newTenant(uid: String, name: String) -> [String: JSONValue] {
        SimulatorFixtures.tenantMembers(
            uid: uid, name: name, description: nil, hashedPassword: "sim-hash-" + uid.prefix(8).lowercased(), type: "General", lastActive: nil,
            gatewaySelectionType: "GatewayPool", isEnabled: true, maxConcurrentTask: 1, company: nil)
    }

    private static func isTenant(_ tenant: JSONValue, _ uid: String) -> Bool {
        tenant["instanceUid"]?.stringValue?.caseInsensitiveCompare(uid) == .orderedSame
    }

    /// The members of a tenant body the simulator itself reads: `name` a non-empty string and
    /// `assignedForCompany` a UUID or null, when present.
    private static func checkTenant(_ body: [String: JSONValue]) throws {
        _ = try optionalString(body, "name")
        _ = try uuid(body, "assignedForCompany")
    }

    // MARK: Reading bodies

    /// The VSPC organization a changed object belongs to, for the activity log: the company named
    /// when it exists, else the provider.
    private static func owner(_ companyUid: String?, in fixtures: SimulatorFixtures) -> String {
        let estate = VSPCEstate(fixtures: fixtures, vb365Host: nil, vb365API: .v5)
        guard let companyUid, let company = estate.company(uid: companyUid) else { return VSPCEstate.providerUid }
        return company["instanceUid"]?.stringValue ?? companyUid
    }

    /// The request's body: a JSON object (at most 1 MiB), else 400.
    private static func jsonObject(_ request: Request) async throws -> [String: JSONValue] {
        var request = request
        let buffer = try await request.collectBody(upTo: 1024 * 1024)
        guard let value = try? JSONValue.parse(Data(buffer.readableBytesView)), case .object(let members) = value else {
            throw Refusal.badRequest("The body must be a JSON object.")
        }
        return members
    }

    /// A required member: a non-empty string.
    private static func string(_ body: [String: JSONValue], _ key: String) throws -> String {
        guard let text = try optionalString(body, key) else { throw Refusal.badRequest("\(key) (a non-empty string) is required.") }
        return text
    }

    /// A member that is a non-empty string when present (null is refused).
    private static func optionalString(_ body: [String: JSONValue], _ key: String) throws -> String? {
        guard let value = body[key] else { return nil }
        guard let text = value.stringValue, !text.isEmpty else { throw Refusal.badRequest("\(key) must be a non-empty string.") }
        return text
    }

    /// A member that is true or false when present.
    private static func flag(_ body: [String: JSONValue], _ key: String) throws -> Bool? {
        guard let value = body[key] else { return nil }
        guard case .bool(let on) = value else { throw Refusal.badRequest("\(key) must be true or false.") }
        return on
    }

    /// A member that is a UUID when present and not null.
    private static func uuid(_ body: [String: JSONValue], _ key: String) throws -> String? {
        guard let value = body[key], value != .null else { return nil }
        guard let text = value.stringValue, UUID(uuidString: text) != nil else { throw Refusal.badRequest("\(key) must be a UUID.") }
        return text
    }

    /// `type`: Office365, OnPremises or Hybrid (any case) when present and not null.
    private static func organizationType(_ value: JSONValue?) throws -> String? {
        guard let value, value != .null else { return nil }
        guard let text = value.stringValue, organizationTypes.contains(text.lowercased()) else {
            throw Refusal.badRequest("type must be Office365, OnPremises or Hybrid.")
        }
        return text
    }
}

/// What removing an organization leaves for the activity log: the organization and the VSPC
/// organization (company or provider) it belonged to.
private struct RemovedOrganization: Sendable {
    var organization: SimulatorFixtures.Organization
    var owner: String
}
