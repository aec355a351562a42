import Foundation
import HTTPTypes
import Hummingbird

/// The reads of the gateway's default pass-through table (API-NOTES, "Pass-through"), in every
/// version: jobs, sessions, restore points, licensed users, the license, repositories, proxies,
/// and an organization's users, groups, sites, teams and licensing information. Bare arrays or
/// `{offset, limit, results}` pages as each version's spec says (docs/simulator.md, "Pass-through
/// collections"). An organization's own token sees that organization's objects only; an
/// administrator's sees every organization's.
extension VB365Routes {
    /// An organization's collections under `/vN/Organizations/{organizationId}/`.
    enum OrganizationCollection: String, CaseIterable, Sendable {
        case users = "Users"
        case groups = "Groups"
        case sites = "Sites"
        case teams = "Teams"
    }

    /// At most this many items in a bare array (v5–v7 `Jobs`, v5/v6 `RestorePoints`): a real
    /// server has no bound; the simulator bounds its work for a generated estate.
    static let maxArrayItems = 10_000

    /// Test aid, not product behaviour: the `Jobs` answers set a cookie, so that the gateway's
    /// tests can check that upstream cookies never reach its callers.
    static func withTestCookie(_ response: Response) -> Response {
        var response = response
        response.headers[.setCookie] = "sim-session=\(SimulatorState.randomToken()); Path=/; HttpOnly"
        return response
    }

    var estate: VB365Estate { VB365Estate(api: api) }

    func registerPassThroughReads(on router: Router<SimulatorContext>) {
        router.get("\(prefix)/Jobs") { request, _ in try await Self.withTestCookie(jobs(request)) }
        router.get("\(prefix)/Jobs/:jobId") { request, context in
            try await Self.withTestCookie(jobByID(request, id: context.parameters.get("jobId") ?? ""))
        }
        if api >= .v6 {
            // A write (v6-v8 specs: RESTStartJobOptions in, RESTJobSession out).
            router.post("\(prefix)/Jobs/:jobId/start") { request, context in try await startJob(request, id: context.parameters.get("jobId") ?? "") }
        }
        router.get("\(prefix)/JobSessions") { request, _ in try await jobSessions(request) }
        router.get("\(prefix)/RestorePoints") { request, _ in try await restorePoints(request) }
        router.get("\(prefix)/LicensedUsers") { request, _ in try await licensedUsers(request) }
        router.get("\(prefix)/License") { request, _ in try await license(request) }
        router.get("\(prefix)/BackupRepositories") { request, _ in try await repositories(request) }
        router.get("\(prefix)/Proxies") { request, _ in try await proxies(request) }
        // `:id`, as `/Organizations/:id` names it: one trie node for every route below it.
        for collection in OrganizationCollection.allCases {
            router.get("\(prefix)/Organizations/:id/\(collection.rawValue)") { request, context in
                try await organizationCollection(request, organizationID: context.parameters.get("id") ?? "", collection)
            }
        }
        router.get("\(prefix)/Organizations/:id/LicensingInformation") { request, context in
            try await licensingInformation(request, organizationID: context.parameters.get("id") ?? "")
        }
    }

    // MARK: Who sees what

    /// The organizations whose objects `user`'s token sees: every one for an administrator, its
    /// own for an organization's account.
    func visibleOrganizations(_ user: String) -> [SimulatorFixtures.Organization] {
        if isAdministrator(user) { return fixtures.vb365Organizations }
        return fixtures.vb365Organizations.first { $0.account.username == user }.map { [$0] } ?? []
    }

    /// `organizationId` (where the spec has it) narrows the organizations; one the token may not
    /// see gives nothing.
    private func narrowed(_ organizations: [SimulatorFixtures.Organization], _ request: Request) -> [SimulatorFixtures.Organization] {
        guard let raw = request.uri.queryParameters["organizationId"].map(String.init), !raw.isEmpty else { return organizations }
        return organizations.filter { $0.id.caseInsensitiveCompare(raw) == .orderedSame }
    }

    private struct PageRequest {
        var offset: Int
        var limit: Int
    }

    /// `limit` (1–10,000, default 30) and `offset` (from 0), as the v7/v8 specs describe them
    /// (v5/v6 alike: the v6 spec gives no bounds).
    private func pageRequest(_ request: Request) -> Result<PageRequest, ResponseBox> {
        let query = request.uri.queryParameters
        var page = PageRequest(offset: 0, limit: 30)
        if let raw = query["limit"] {
            guard let value = Int(String(raw)), (1...10_000).contains(value) else {
                return .failure(ResponseBox(message(.badRequest, "The limit parameter must be an integer from 1 to 10000.", code: "ParameterValidationFailure")))
            }
            page.limit = value
        }
        if let raw = query["offset"] {
            guard let value = Int(String(raw)), value >= 0 else {
                return .failure(ResponseBox(message(.badRequest, "The offset parameter must be a non-negative integer.", code: "ParameterValidationFailure")))
            }
            page.offset = value
        }
        return .success(page)
    }

    /// A page `{offset, limit, results, _links}`; up to v7 also `totalCount` (v8's pages have none).
    private func pageBody(_ results: [JSONValue], total: Int, page: PageRequest, path: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "offset": .int(page.offset), "limit": .int(page.limit), "results": .array(results),
            "_links": .object(["self": .object(["href": .string("\(path)?offset=\(page.offset)&limit=\(page.limit)")])]),
        ]
        if api < .v8 { body["totalCount"] = .int(total) }
        return .object(body)
    }

    /// The objects of `organizations` (each contributing the numbers `items` gives, built by
    /// `build`), as a bare array or as a page of `path`.
    private func collection(
        _ request: Request,
        path: String,
        paged: Bool,
        over organizations: [SimulatorFixtures.Organization],
        items: (SimulatorFixtures.Organization) -> Range<Int>,
        build: (SimulatorFixtures.Organization, Int) -> JSONValue
    ) -> Response {
        guard paged else {
            let all = SimPaging.slice(organizations, offset: 0, limit: Self.maxArrayItems, items: items, build: build)
            return SimHTTP.json(.ok, .array(all.page))
        }
        let page: PageRequest
        switch pageRequest(request) {
        case .failure(let box): return box.response
        case .success(let value): page = value
        }
        let slice = SimPaging.slice(organizations, offset: page.offset, limit: page.limit, items: items, build: build)
        return SimHTTP.json(.ok, pageBody(slice.page, total: slice.total, page: page, path: path))
    }

    /// A server-wide list (repositories, proxies), as a bare array or as a page of `path`.
    private func list(_ request: Request, path: String, paged: Bool, items: [JSONValue]) -> Response {
        guard paged else { return SimHTTP.json(.ok, .array(items)) }
        let page: PageRequest
        switch pageRequest(request) {
        case .failure(let box): return box.response
        case .success(let value): page = value
        }
        let results = SimPaging.indexed(count: items.count, offset: page.offset, limit: page.limit) { items[$0] }
        return SimHTTP.json(.ok, pageBody(results, total: items.count, page: page, path: path))
    }

    private func accessDenied() -> Response {
        state.count(Self.product) { $0.forbidden += 1 }
        return message(.forbidden, "Access is denied.", code: "ResourceAccessDenied")
    }

    // MARK: Jobs, sessions, restore points

    /// v5–v7: `RESTJob[]`; v8: `PageOfRESTJob` (with `organizationId`).
    private func jobs(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/Jobs") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        var organizations = visibleOrganizations(user)
        if api >= .v8 { organizations = narrowed(organizations, request) }
        let estate = self.estate
        return collection(
            request, path: "\(prefix)/Jobs", paged: api >= .v8, over: organizations,
            items: { _ in VB365Estate.jobNumbers }, build: { estate.job($0, $1) })
    }

    /// `RESTJob`: 404 when no organization has it, 403 when it is another organization's.
    private func jobByID(_ request: Request, id: String) async throws -> Response {
        switch try await ownJob(request, id: id, route: "GET \(prefix)/Jobs/{jobId}") {
        case .failure(let box): return box.response
        case .success(let job): return SimHTTP.json(.ok, estate.job(job.organization, job.number))
        }
    }

    /// `POST /vN/Jobs/{jobId}/start`: v8 the job's session (`RESTJobSession`), v6/v7 `204`, as the
    /// job's own organization or an administrator may start it; another organization's job is
    /// 403. Each start is counted under its route, so tests see how often a write arrived.
    private func startJob(_ request: Request, id: String) async throws -> Response {
        switch try await ownJob(request, id: id, route: "POST \(prefix)/Jobs/{jobId}/start") {
        case .failure(let box): return box.response
        case .success(let job):
            // v6/v7: `204 NoContent`; v8: `200` with the session.
            guard api >= .v8 else { return Response(status: .noContent) }
            return SimHTTP.json(.ok, estate.session(job.organization, job.number))
        }
    }

    /// A job the request's token may act on: admitted, found (404 otherwise), and its own
    /// organization's or an administrator's (403 otherwise).
    private func ownJob(_ request: Request, id: String, route: String) async throws -> Result<VB365Estate.Located, ResponseBox> {
        let user: String
        switch try await admit(request, route: route) {
        case .failure(let box): return .failure(box)
        case .success(let value): user = value
        }
        let numbers = VB365Estate.jobNumbers.lowerBound...(VB365Estate.jobNumbers.upperBound - 1)
        guard let found = VB365Estate.locate(.job, id: id, numbers: numbers, in: fixtures.vb365Organizations) else {
            return .failure(ResponseBox(message(.notFound, "Job with ID \(id.prefix(64)) was not found.", code: "ResourceNotFound")))
        }
        guard isAdministrator(user) || found.organization.account.username == user else { return .failure(ResponseBox(accessDenied())) }
        return .success(found)
    }

    /// The organizations and job numbers a `jobId` query leaves (all of them without one).
    private func byJob(_ organizations: [SimulatorFixtures.Organization], _ request: Request) -> (
        organizations: [SimulatorFixtures.Organization], jobs: Range<Int>
    ) {
        guard let raw = request.uri.queryParameters["jobId"].map(String.init), !raw.isEmpty else {
            return (organizations, VB365Estate.jobNumbers)
        }
        let numbers = VB365Estate.jobNumbers.lowerBound...(VB365Estate.jobNumbers.upperBound - 1)
        guard let found = VB365Estate.locate(.job, id: raw, numbers: numbers, in: organizations) else { return ([], 1..<1) }
        return ([found.organization], found.number..<(found.number + 1))
    }

    /// `PageOfRESTJobSession` in every version: the session of each job's most recent run (a `jobId` query narrows it where the spec has one: v7 and v8).
    private func jobSessions(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/JobSessions") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        var organizations = visibleOrganizations(user)
        var jobs = VB365Estate.jobNumbers
        if api >= .v7 {
            let found = byJob(organizations, request)
            organizations = found.organizations
            jobs = found.jobs
        }
        let estate = self.estate
        return collection(
            request, path: "\(prefix)/JobSessions", paged: true, over: organizations,
            items: { _ in jobs }, build: { estate.session($0, $1) })
    }

    /// v5/v6: `RESTRestorePoint[]`; v7+: `PageOfRESTRestorePoint`. `organizationId` and `jobId` narrow.
    private func restorePoints(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/RestorePoints") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        let (organizations, jobs) = byJob(narrowed(visibleOrganizations(user), request), request)
        let estate = self.estate
        return collection(
            request, path: "\(prefix)/RestorePoints", paged: api >= .v7, over: organizations,
            items: { org in
                let points = VB365Estate.restorePointNumbers(org)
                return points.clamped(to: jobs)
            },
            build: { estate.restorePoint($0, $1) })
    }

    // MARK: Licenses

    /// `PageOfRESTLicensedUser` in every version (`organizationId` narrows).
    private func licensedUsers(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/LicensedUsers") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        let estate = self.estate
        return collection(
            request, path: "\(prefix)/LicensedUsers", paged: true, over: narrowed(visibleOrganizations(user), request),
            items: { VB365Estate.licensedUserNumbers($0) }, build: { estate.licensedUser($0, $1) })
    }

    /// `RESTLicense`: the server's license, the same for every token (it names no organization).
    private func license(_ request: Request) async throws -> Response {
        switch try await admit(request, route: "GET \(prefix)/License") {
        case .failure(let box): return box.response
        case .success: break
        }
        return SimHTTP.json(.ok, estate.license(over: fixtures.vb365Organizations))
    }

    // MARK: Infrastructure

    /// v5–v7: `RESTBackupRepository[]`; v8: `PageOfRESTBackupRepository`. Server infrastructure:
    /// the same for every token.
    private func repositories(_ request: Request) async throws -> Response {
        switch try await admit(request, route: "GET \(prefix)/BackupRepositories") {
        case .failure(let box): return box.response
        case .success: break
        }
        return list(request, path: "\(prefix)/BackupRepositories", paged: api >= .v8, items: estate.repositories())
    }

    /// v5–v7: `RESTProxy[]`; v8: `PageOfRESTProxy`. Server infrastructure: the same for every token.
    private func proxies(_ request: Request) async throws -> Response {
        switch try await admit(request, route: "GET \(prefix)/Proxies") {
        case .failure(let box): return box.response
        case .success: break
        }
        return list(request, path: "\(prefix)/Proxies", paged: api >= .v8, items: estate.proxies())
    }

    // MARK: An organization's collections

    /// The organization `id` names, if `user`'s token may read it: 404 when there is none, 403
    /// when it is another organization (as `/Organizations/{id}` answers).
    private func readableOrganization(_ id: String, user: String) -> Result<SimulatorFixtures.Organization, ResponseBox> {
        guard let org = fixtures.vb365Organizations.first(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame }) else {
            return .failure(ResponseBox(message(.notFound, "Organization with ID \(id.prefix(64)) was not found.", code: "ResourceNotFound")))
        }
        guard isAdministrator(user) || org.account.username == user else { return .failure(ResponseBox(accessDenied())) }
        return .success(org)
    }

    /// `PageOfRESTUser`, `PageOfRESTGroup`, `PageOfRESTSite`, `PageOfRESTTeam` in every version.
    private func organizationCollection(_ request: Request, organizationID: String, _ collection: OrganizationCollection) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/Organizations/{organizationId}/\(collection.rawValue)") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        let org: SimulatorFixtures.Organization
        switch readableOrganization(organizationID, user: user) {
        case .failure(let box): return box.response
        case .success(let value): org = value
        }
        let estate = self.estate
        let path = "\(prefix)/Organizations/\(org.id)/\(collection.rawValue)"
        switch collection {
        case .users:
            return self.collection(request, path: path, paged: true, over: [org], items: { _ in VB365Estate.userNumbers }, build: { estate.user($0, $1) })
        case .groups:
            return self.collection(request, path: path, paged: true, over: [org], items: { _ in VB365Estate.groupNumbers }, build: { estate.group($0, $1) })
        case .sites:
            return self.collection(request, path: path, paged: true, over: [org], items: { _ in VB365Estate.siteNumbers }, build: { estate.site($0, $1) })
        case .teams:
            return self.collection(request, path: path, paged: true, over: [org], items: { VB365Estate.teamNumbers($0) }, build: { estate.team($0, $1) })
        }
    }

    /// `RESTOrganizationLicensingInformation`.
    private func licensingInformation(_ request: Request, organizationID: String) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/Organizations/{organizationId}/LicensingInformation") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        switch readableOrganization(organizationID, user: user) {
        case .failure(let box): return box.response
        case .success(let org): return SimHTTP.json(.ok, estate.licensingInformation(org))
        }
    }
}
