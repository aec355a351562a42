import Foundation
import HTTPTypes
import Hummingbird

/// Veeam Service Provider Console, REST v3 (see ../shared/upstream-specs/API-NOTES.md and seed 004).
struct VSPCRoutes: Sendable {
    let state: SimulatorState
    let dialect: SimulatorDialect
    /// The VB365 version the simulator's VB365 server speaks (VSPC reports its build).
    let vb365API: SimulatorVB365API
    /// The name VSPC knows the simulated VB365 server by; nil when none is simulated.
    let vb365Host: String?

    init(state: SimulatorState, dialect: SimulatorDialect, vb365API: SimulatorVB365API, vb365Host: String?) {
        self.state = state
        self.dialect = dialect
        self.vb365API = vb365API
        self.vb365Host = vb365Host
    }

    /// The estate as it is now (it may change while the simulator runs: ``SimulatorState/changeEstate(_:)``).
    var fixtures: SimulatorFixtures { state.fixtures }

    /// VSPC's view of every listed organization that has a mapping, in list order: made once per
    /// change of the estate and kept in the state, so that a page of mappings costs its own
    /// items, not a pass over every organization.
    var mappedOrganizations: [VSPCEstate.OrganizationView] {
        state.mappedOrganizations(listed: vb365Host != nil) { fixtures in
            let estate = VSPCEstate(fixtures: fixtures, vb365Host: vb365Host, vb365API: vb365API)
            let table = estate.viewTable()
            return estate.listedOrganizations.map { estate.view($0, table: table) }.filter { $0.companyUid != nil }
        }
    }

    static let product = SimulatedProduct.vspc
    /// Seed 004: Portal Administrator, Service Provider Global Administrator (ResellerOwner),
    /// Service Provider Administrator (ResellerAdministrator).
    static let tenantReaderRoles: Set<String> = ["PortalAdministrator", "ResellerOwner", "ResellerAdministrator"]
    static let maxPageSize = 500

    func register(on router: Router<SimulatorContext>) {
        router.post("/api/v3/token") { request, _ in try await token(request) }
        router.get("/api/v3/users/me") { request, _ in try await me(request) }
        router.get("/api/v3/about") { request, _ in try await about(request) }
        router.get("/api/v3/infrastructure/sites/tenants") { request, _ in try await tenants(request) }
        router.get("/api/v3/infrastructure/sites/tenants/:tenantUid") { request, context in
            try await tenant(request, uid: context.parameters.get("tenantUid") ?? "")
        }
        registerPassThroughReads(on: router)
        registerAsyncActions(on: router)
    }

    // MARK: Token

    private func token(_ request: Request) async throws -> Response {
        var request = request
        _ = try await state.enter(Self.product, route: "POST /api/v3/token", resource: false, request: request)
        let form = try await SimHTTP.form(&request)
        switch form["grant_type"] {
        case "password":
            let username = form["username"] ?? ""
            let password = form["password"] ?? ""
            guard let user = fixtures.vspcUsers.first(where: { $0.account.username.caseInsensitiveCompare(username) == .orderedSame && $0.account.password == password }) else {
                state.count(Self.product) { $0.loginFailures += 1 }
                return oauthError("invalid_grant", "Cannot complete login due to incorrect username or password, or no sufficient rights.")
            }
            state.count(Self.product) { $0.logins += 1 }
            return tokenResponse(username: user.account.username)
        case "refresh_token":
            guard let user = state.redeemRefreshToken(form["refresh_token"] ?? "", product: Self.product) else {
                state.count(Self.product) { $0.refreshFailures += 1 }
                return oauthError("invalid_grant", "The refresh token is invalid or expired.")
            }
            state.count(Self.product) { $0.refreshes += 1 }
            return tokenResponse(username: user)
        case .none:
            return oauthError("invalid_request", "The grant_type parameter is required.")
        case .some:
            return oauthError("unsupported_grant_type", "The grant type is not supported.")
        }
    }

    private func tokenResponse(username: String) -> Response {
        let token = state.issueToken(product: Self.product, username: username)
        return SimHTTP.json(
            .ok,
            .object([
                "access_token": .string(token.accessToken),
                "token_type": .string("bearer"),
                "refresh_token": .string(token.refreshToken),
                "expires_in": state.faults(Self.product).expiresInValue(lifetime: token.lifetime),
                "mfa_token": .null,
                "encrypted_code": .null,
            ])
        )
    }

    private func oauthError(_ error: String, _ description: String) -> Response {
        SimHTTP.json(.badRequest, .object(["error": .string(error), "error_description": .string(description), "error_uri": .null]))
    }

    // MARK: Errors

    /// `{"errors":[{"message","type","code"}]}`; server errors are sent as 520 (see API-NOTES).
    static func errors(_ status: Int, _ message: String, type: String, extra: [String: JSONValue] = [:]) -> Response {
        var error: [String: JSONValue] = ["message": .string(message), "type": .string(type), "code": .int(status)]
        for (key, value) in extra { error[key] = value }
        let wire = status >= 500 ? 520 : status
        return SimHTTP.json(HTTPResponse.Status(code: wire), .object(["errors": .array([.object(error)])]))
    }

    func admit(_ request: Request, route: String, sample: JSONValue) async throws -> Result<SimulatorFixtures.VSPCUser, ResponseBox> {
        let fault = try await state.enter(Self.product, route: route, resource: true, request: request)
        guard let username = state.authenticate(bearer: SimHTTP.bearer(request), product: Self.product),
            let user = fixtures.vspcUsers.first(where: { $0.account.username == username })
        else {
            state.count(Self.product) { $0.unauthorized += 1 }
            return .failure(ResponseBox(Self.errors(401, "Authentication failed: the access token is missing, invalid or expired.", type: "security")))
        }
        switch fault {
        case .error:
            return .failure(ResponseBox(Self.errors(500, "An internal server error has occurred.", type: "unspecified")))
        case .throttle:
            let after = state.faults(Self.product).retryAfterSeconds
            return .failure(ResponseBox(Self.errors(429, "Too many requests.", type: "retryableLogical", extra: ["retryAfter": .int(after)])))
        case .malformed:
            return .failure(ResponseBox(SimHTTP.malformed(sample)))
        case .reset:
            return .failure(ResponseBox(SimHTTP.resetMidBody(sample)))
        case .async:
            // Under the async actions' middleware, the handler answers as usual and the
            // middleware makes its answer an action's result; elsewhere, a bare 202.
            if let deferral = SimHTTP.deferral {
                deferral.deferAnswer()
                return .success(user)
            }
            let id = UUID().uuidString.lowercased()
            let host = request.head.authority ?? "localhost:1280"
            return .failure(ResponseBox(SimHTTP.json(.accepted, .object(["data": .null]), headers: [.location: "https://\(host)/api/v3/asyncActions/\(id)"])))
        case .none:
            return .success(user)
        }
    }

    func requireTenantReader(_ user: SimulatorFixtures.VSPCUser) -> Response? {
        guard Self.tenantReaderRoles.contains(user.role) else {
            state.count(Self.product) { $0.forbidden += 1 }
            return Self.errors(403, "Access denied. The operation requires one of the following roles: Portal Administrator, Service Provider Global Administrator, Service Provider Administrator.", type: "security")
        }
        return nil
    }

    // MARK: Resources

    private func me(_ request: Request) async throws -> Response {
        let user: SimulatorFixtures.VSPCUser
        switch try await admit(request, route: "GET /api/v3/users/me", sample: .object([:])) {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        let data = JSONValue.object([
            "instanceUid": .string(user.instanceUid),
            "organizationUid": .string(user.organizationUid),
            "userName": .string(user.account.username),
            "role": .string(user.role),
            "status": .string(dialect == .seed ? "enabled" : "Enabled"),
            "profile": .object(["firstName": .null, "lastName": .null, "title": .null, "email": .null]),
        ])
        return SimHTTP.json(.ok, .object(["data": data]))
    }

    private func about(_ request: Request) async throws -> Response {
        switch try await admit(request, route: "GET /api/v3/about", sample: .object([:])) {
        case .failure(let box): return box.response
        case .success: break
        }
        let version = dialect == .seed ? "8.1.0.21377" : "9.1.0.29919"
        return SimHTTP.json(.ok, .object(["data": .object(["serverVersion": .string(version), "installationId": .string("d0c5a3e1-8f7b-4c6d-9e2a-1b0c3d4e5f60")])]))
    }

    private func tenants(_ request: Request) async throws -> Response {
        let user: SimulatorFixtures.VSPCUser
        switch try await admit(request, route: "GET /api/v3/infrastructure/sites/tenants", sample: .object(["data": .array(fixtures.tenants)])) {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        if let refused = requireTenantReader(user) { return refused }
        let query = request.uri.queryParameters
        var limit = 100
        var offset = 0
        if let raw = query["limit"] {
            guard let value = Int(String(raw)), (1...Self.maxPageSize).contains(value) else {
                return Self.errors(400, "The limit parameter must be an integer from 1 to \(Self.maxPageSize).", type: "logical", extra: ["parameterName": .string("limit")])
            }
            limit = value
        }
        if let raw = query["offset"] {
            guard let value = Int(String(raw)), value >= 0 else {
                return Self.errors(400, "The offset parameter must be a non-negative integer.", type: "logical", extra: ["parameterName": .string("offset")])
            }
            offset = value
        }
        let all = fixtures.tenants
        let page = offset < all.count ? Array(all[offset..<min(all.count, offset + limit)]) : []
        let meta = JSONValue.object(["pagingInfo": .object(["total": .int(all.count), "count": .int(page.count), "offset": .int(offset)])])
        return SimHTTP.json(.ok, .object(["data": .array(page.map(render)), "meta": meta]))
    }

    private func tenant(_ request: Request, uid: String) async throws -> Response {
        let user: SimulatorFixtures.VSPCUser
        switch try await admit(request, route: "GET /api/v3/infrastructure/sites/tenants/{tenantUid}", sample: .object(["data": fixtures.tenants.first ?? .null])) {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        if let refused = requireTenantReader(user) { return refused }
        guard UUID(uuidString: uid) != nil else {
            return Self.errors(400, "The tenantUid parameter is not a valid UUID.", type: "logical", extra: ["parameterName": .string("tenantUid")])
        }
        guard let tenant = fixtures.tenants.first(where: { $0["instanceUid"]?.stringValue?.caseInsensitiveCompare(uid) == .orderedSame }) else {
            return Self.errors(404, "Tenant with UID \(uid) was not found.", type: "logical")
        }
        return SimHTTP.json(.ok, .object(["data": render(tenant)]))
    }

    // MARK: Dialect

    /// The tenant as this dialect's server sends it. `seed`: as written (older servers). `3.6.1`:
    /// complete against the 3.6.1 `CloudTenant` model for every member sent — PascalCase enums,
    /// `throttlingUnit` always set, the required `credentials` (`{userName, password: null}`; the
    /// fixture's user name, else the tenant's login name), no `null` where the model has
    /// no `nullable` (`hashedPassword`), and nothing the model lacks (`backupServerUid`).
    func render(_ tenant: JSONValue) -> JSONValue {
        guard dialect == .v3_6_1 else { return tenant }
        var out = tenant
        let types = ["general": "General", "vcd": "VCD", "unknown": "Unknown"]
        let gateways = ["gatewaypool": "GatewayPool", "standalonegateways": "StandaloneGateways", "unknown": "Unknown"]
        let units = ["mbitpersec": "MbitPerSec", "kbytepersec": "KbytePerSec", "mbytepersec": "MbytePerSec"]
        if let value = tenant["type"]?.stringValue { out["type"] = .string(types[value.lowercased()] ?? value) }
        if let value = tenant["gatewaySelectionType"]?.stringValue {
            out["gatewaySelectionType"] = .string(gateways[value.lowercased()] ?? value)
        }
        if let value = tenant["throttlingUnit"]?.stringValue {
            out["throttlingUnit"] = .string(units[value.lowercased()] ?? value)
        } else {
            out["throttlingUnit"] = .string("MbitPerSec")
        }
        // `OwnerCredentials.password` is write-only: a read carries null (the seed dialect, as an
        // older server that is not so careful, sends the fixture's value — the gateway drops both).
        let login = (tenant["name"]?.stringValue ?? "tenant").lowercased().replacingOccurrences(of: " ", with: "-")
        out["credentials"] = .object(["userName": tenant["credentials"]?["userName"] ?? .string(login), "password": .null])
        guard case .object(var members) = out else { return out }
        if members["hashedPassword"] == .null { members["hashedPassword"] = nil }
        members["backupServerUid"] = nil
        return .object(members)
    }
}
