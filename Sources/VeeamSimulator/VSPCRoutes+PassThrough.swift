import Foundation
import HTTPTypes
import Hummingbird

/// The VSPC reads of the gateway's default pass-through table (API-NOTES, "Pass-through"):
/// companies, backup server jobs, active alarms, license usage by organization, the VB365
/// servers, their organizations and the organizations' mappings to companies; and the activity
/// log (VSPCActivityLog.swift). Each is the envelope `{data, meta: {pagingInfo}}` with `limit`
/// (1–500, default 100) and `offset`, and needs one of seed 004's roles (``VSPCRoutes/tenantReaderRoles``). Any other path under
/// `/api/v3/` answers 404 with `ErrorResponse` (``VSPCNotFound``).
extension VSPCRoutes {
    var estate: VSPCEstate { VSPCEstate(fixtures: fixtures, vb365Host: vb365Host, vb365API: vb365API) }

    /// Test aid, not product behaviour: the companies answers set a cookie, so that the
    /// gateway's tests can check that upstream cookies never reach its callers.
    static func withTestCookie(_ response: Response) -> Response {
        var response = response
        response.headers[.setCookie] = "sim-session=\(SimulatorState.randomToken()); Path=/; HttpOnly"
        return response
    }

    func registerPassThroughReads(on router: Router<SimulatorContext>) {
        router.get("/api/v3/organizations/companies") { request, _ in try await Self.withTestCookie(companies(request)) }
        router.get("/api/v3/organizations/companies/:companyUid") { request, context in
            try await Self.withTestCookie(company(request, uid: context.parameters.get("companyUid") ?? ""))
        }
        router.get("/api/v3/infrastructure/backupServers/jobs") { request, _ in
            try await read(request, route: "GET /api/v3/infrastructure/backupServers/jobs") { page in
                let all = fixtures.backupServerJobs
                return (SimPaging.indexed(count: all.count, offset: page.offset, limit: page.limit) { all[$0] }, all.count)
            }
        }
        router.get("/api/v3/alarms/active") { request, _ in
            try await read(request, route: "GET /api/v3/alarms/active") { page in
                let all = estate.activeAlarms()
                return (SimPaging.indexed(count: all.count, offset: page.offset, limit: page.limit) { all[$0] }, all.count)
            }
        }
        router.get("/api/v3/licensing/usage/organizations") { request, _ in
            try await read(request, route: "GET /api/v3/licensing/usage/organizations") { page in
                estate.licenseUsage(offset: page.offset, limit: page.limit)
            }
        }
        router.get("/api/v3/infrastructure/vb365Servers") { request, _ in
            try await read(request, route: "GET /api/v3/infrastructure/vb365Servers") { page in
                let all = estate.vb365Servers() + fixtures.otherVb365Servers
                return (SimPaging.indexed(count: all.count, offset: page.offset, limit: page.limit) { all[$0] }, all.count)
            }
        }
        router.get("/api/v3/infrastructure/vb365Servers/organizations") { request, _ in
            try await read(request, route: "GET /api/v3/infrastructure/vb365Servers/organizations") { page in
                let estate = self.estate
                let table = estate.viewTable()
                let all = estate.listedOrganizations
                let items = SimPaging.indexed(count: all.count, offset: page.offset, limit: page.limit) {
                    estate.organizationBody(estate.view(all[$0], table: table))
                }
                let listed = SimPaging.appending(fixtures.otherVb365Organizations, to: (items, all.count), offset: page.offset, limit: page.limit)
                return (listed.page, listed.total)
            }
        }
        router.get("/api/v3/infrastructure/vb365Servers/organizations/companyMappings") { request, _ in
            try await read(request, route: "GET /api/v3/infrastructure/vb365Servers/organizations/companyMappings") { page in
                let estate = self.estate
                let mapped = mappedOrganizations
                let items = SimPaging.indexed(count: mapped.count, offset: page.offset, limit: page.limit) { estate.mappingBody(mapped[$0]) }
                let slice = (page: items, total: mapped.count)
                let listed = SimPaging.appending(fixtures.otherCompanyMappings, to: slice, offset: page.offset, limit: page.limit)
                return (listed.page, listed.total)
            }
        }
        registerActivityLogs(on: router)
        // Last: it wraps the routes registered after it and the router's not-found answer.
        router.add(middleware: VSPCNotFound(state: state))
    }

    struct PageRequest {
        var offset: Int
        var limit: Int
    }

    /// `limit` (1–500, default 100) and `offset` (from 0); a breach is 400 naming the parameter.
    func pageRequest(_ request: Request) -> Result<PageRequest, ResponseBox> {
        let query = request.uri.queryParameters
        var page = PageRequest(offset: 0, limit: 100)
        if let raw = query["limit"] {
            guard let value = Int(String(raw)), (1...Self.maxPageSize).contains(value) else {
                return .failure(
                    ResponseBox(
                        Self.errors(
                            400, "The limit parameter must be an integer from 1 to \(Self.maxPageSize).", type: "logical",
                            extra: ["parameterName": .string("limit")])))
            }
            page.limit = value
        }
        if let raw = query["offset"] {
            guard let value = Int(String(raw)), value >= 0 else {
                return .failure(
                    ResponseBox(
                        Self.errors(400, "The offset parameter must be a non-negative integer.", type: "logical", extra: ["parameterName": .string("offset")])))
            }
            page.offset = value
        }
        return .success(page)
    }

    /// A paged read: the request entry (counting, latency, faults, the token), seed 004's roles,
    /// the paging parameters, then `build`'s page and total in the envelope.
    func read(
        _ request: Request, route: String, build: (PageRequest) -> (items: [JSONValue], total: Int)
    ) async throws -> Response {
        try await read(request, route: route, query: { _ in Result<Void, ResponseBox>.success(()) }, build: { page, _ in build(page) })
    }

    /// A paged read whose query has more than the paging parameters: as above, and after the
    /// paging parameters `query` reads the rest (a failure it returns is the answer), which
    /// `build` gets beside the page asked for.
    func read<Query>(
        _ request: Request, route: String, query: (Request) -> Result<Query, ResponseBox>,
        build: (PageRequest, Query) -> (items: [JSONValue], total: Int)
    ) async throws -> Response {
        let user: SimulatorFixtures.VSPCUser
        switch try await admit(request, route: route, sample: .object(["data": .array([]), "meta": .null])) {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        if let refused = requireTenantReader(user) { return refused }
        let page: PageRequest
        switch pageRequest(request) {
        case .failure(let box): return box.response
        case .success(let value): page = value
        }
        let parsed: Query
        switch query(request) {
        case .failure(let box): return box.response
        case .success(let value): parsed = value
        }
        let (items, total) = build(page, parsed)
        let meta = JSONValue.object(["pagingInfo": .object(["total": .int(total), "count": .int(items.count), "offset": .int(page.offset)])])
        return SimHTTP.json(.ok, .object(["data": .array(items), "meta": meta]))
    }

    /// `Company[]`: the fixture's companies, then one per generated organization.
    private func companies(_ request: Request) async throws -> Response {
        try await read(request, route: "GET /api/v3/organizations/companies") { page in
            let estate = self.estate
            return (SimPaging.indexed(count: estate.companyCount, offset: page.offset, limit: page.limit) { estate.company(at: $0) }, estate.companyCount)
        }
    }

    /// `{data: Company}` (no `meta`, as single reads): 400 for a uid that is not a UUID, 404 for
    /// an unknown one.
    private func company(_ request: Request, uid: String) async throws -> Response {
        let user: SimulatorFixtures.VSPCUser
        switch try await admit(request, route: "GET /api/v3/organizations/companies/{companyUid}", sample: .object(["data": fixtures.companies.first ?? .null])) {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        if let refused = requireTenantReader(user) { return refused }
        guard UUID(uuidString: uid) != nil else {
            return Self.errors(400, "The companyUid parameter is not a valid UUID.", type: "logical", extra: ["parameterName": .string("companyUid")])
        }
        guard let company = estate.company(uid: uid) else {
            return Self.errors(404, "Company with UID \(uid) was not found.", type: "logical")
        }
        return SimHTTP.json(.ok, .object(["data": company]))
    }
}

/// Any path under `/api/v3/` no route serves (or a method a route does not take): 404 with
/// VSPC's `ErrorResponse` instead of Hummingbird's empty answer. Counted like any request
/// (route `METHOD /api/v3/{unknown}`), latency applied, no fault drawn, no token needed.
struct VSPCNotFound: RouterMiddleware {
    typealias Context = SimulatorContext
    let state: SimulatorState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && request.uri.path.hasPrefix("/api/v3/") {
            _ = try await state.enter(.vspc, route: "\(request.method.rawValue) /api/v3/{unknown}", resource: false, request: request)
            return VSPCRoutes.errors(404, "The requested resource was not found.", type: "logical")
        }
    }
}
