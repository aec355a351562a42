import Foundation
import HTTPTypes
import Hummingbird

/// Veeam Backup for Microsoft 365 REST, in the version ``SimulatorVB365API`` names: v5 as the
/// archived docs and seed 000 show it; v6, v7 and v8 as `specs/upstream/vb365_rest_vN.json`
/// describe them. Where a spec is silent, the choice is written down in docs/simulator.md.
struct VB365Routes: Sendable {
    let state: SimulatorState
    let api: SimulatorVB365API

    /// The estate as it is now (it may change while the simulator runs: ``SimulatorState/changeEstate(_:)``).
    var fixtures: SimulatorFixtures { state.fixtures }

    static let product = SimulatedProduct.vb365
    /// The antiforgery cookie of a v7+ login that did not disable it (the spec: "stored in web
    /// browser cookies"; the name is ASP.NET Core's default pattern, an inference).
    static let antiforgeryCookie = ".AspNetCore.Antiforgery.VBO365"

    var prefix: String { "/" + api.rawValue }

    func register(on router: Router<SimulatorContext>) {
        if api == .v5 {
            // OWIN's routing ignores case: v5 clients write both.
            router.post("/v5/Token") { request, _ in try await token(request) }
        }
        router.post("\(prefix)/token") { request, _ in try await token(request) }
        router.get("\(prefix)/Organization") { request, _ in try await organization(request) }
        router.get("\(prefix)/Organizations") { request, _ in try await organizations(request) }
        router.get("\(prefix)/Organizations/:id") { request, context in
            try await organizationByID(request, id: context.parameters.get("id") ?? "")
        }
        if api >= .v6 {
            router.get("\(prefix)/ServiceInstance") { request, _ in try await serviceInstance(request) }
        }
        if api >= .v8 {
            router.get("/v8/Health") { request, _ in try await health(request) }
        }
        registerPassThroughReads(on: router)
    }

    // MARK: Token

    private func token(_ request: Request) async throws -> Response {
        var request = request
        _ = try await state.enter(Self.product, route: "POST \(prefix)/\(api == .v5 ? "Token" : "token")", resource: false)
        let form = try await SimHTTP.form(&request)
        switch form["grant_type"] {
        case "password":
            let username = form["username"] ?? ""
            let password = form["password"] ?? ""
            let known = fixtures.vb365Administrators + fixtures.vb365Organizations.map(\.account)
            guard known.contains(where: { $0.username.caseInsensitiveCompare(username) == .orderedSame && $0.password == password }) else {
                state.count(Self.product) { $0.loginFailures += 1 }
                return grantError("invalid_grant", "The user name or password is incorrect.")
            }
            state.count(Self.product) { $0.logins += 1 }
            // v7+: unless the login disables it, the tokens are bound to an antiforgery cookie.
            let disabled = form["disable_antiforgery_token"]?.lowercased() == "true"
            let antiforgery = api >= .v7 && !disabled ? SimulatorState.randomToken() : nil
            return tokenResponse(username: canonical(username), antiforgery: antiforgery)
        case "refresh_token":
            let cookie = api >= .v7 ? SimHTTP.cookie(request, named: Self.antiforgeryCookie) : nil
            switch state.redeemRefreshToken(form["refresh_token"] ?? "", product: Self.product, antiforgery: cookie) {
            case .user(let user):
                state.count(Self.product) { $0.refreshes += 1 }
                return tokenResponse(username: user, antiforgery: cookie)
            case .antiforgeryMissing:
                state.count(Self.product) { $0.refreshFailures += 1 }
                return message(.badRequest, "The antiforgery token is missing or invalid.", code: "ParameterValidationFailure")
            case .invalid:
                state.count(Self.product) { $0.refreshFailures += 1 }
                return grantError("invalid_grant", "The refresh token is invalid or has expired.")
            }
        case .none:
            return grantError("invalid_request", "The grant_type parameter is missing.")
        case .some:
            return grantError("unsupported_grant_type", "The grant type is not supported.")
        }
    }

    private func canonical(_ username: String) -> String {
        let known = fixtures.vb365Administrators + fixtures.vb365Organizations.map(\.account)
        return known.first { $0.username.caseInsensitiveCompare(username) == .orderedSame }?.username ?? username
    }

    /// v5 (OWIN): `.issued`/`.expires` as HTTP-dates; v6+ (`OAuthTokenResponse`): ISO-8601 date-times.
    private func tokenResponse(username: String, antiforgery: String?) -> Response {
        let token = state.issueToken(product: Self.product, username: username, antiforgery: antiforgery)
        func stamp(_ date: Date) -> String { api == .v5 ? SimHTTP.httpDate(date) : SimHTTP.dotNetDateTime(date) }
        var headers: HTTPFields = [:]
        if let antiforgery { headers[.setCookie] = "\(Self.antiforgeryCookie)=\(antiforgery); path=/; secure; samesite=strict; httponly" }
        return SimHTTP.json(
            .ok,
            .object([
                "access_token": .string(token.accessToken),
                "token_type": .string("bearer"),
                "expires_in": state.faults(Self.product).expiresInValue(lifetime: token.lifetime),
                "refresh_token": .string(token.refreshToken),
                "userName": .string(username),
                ".issued": .string(stamp(token.issued)),
                ".expires": .string(stamp(token.expires)),
            ]),
            headers: headers
        )
    }

    /// A refused grant: v5's OWIN server answers OAuth's `{error, error_description}`; v6+ the
    /// operation's `default` response, `RESTExceptionInfo`.
    private func grantError(_ error: String, _ description: String) -> Response {
        guard api >= .v6 else {
            return SimHTTP.json(.badRequest, .object(["error": .string(error), "error_description": .string(description)]))
        }
        return message(.badRequest, description, code: nil)
    }

    /// `RESTExceptionInfo`: `{message}` (v5, v6), `errorCode` from v7 (v7 knows only
    /// `ProxyOffline`, so other errors carry none), v8's codes and `stackTrace` (never sent:
    /// a production server does not send its stack). No `null` members: generated clients
    /// break on them.
    func message(_ status: HTTPResponse.Status, _ text: String, code: String?) -> Response {
        var body: [String: JSONValue] = ["message": .string(text)]
        if api >= .v8, let code { body["errorCode"] = .string(code) }
        return SimHTTP.json(status, .object(body))
    }

    /// A missing, expired or revoked bearer: v5/v6 (ASP.NET Web API) answer with a message;
    /// v7+ (ASP.NET Core's bearer handler) with an empty body and `WWW-Authenticate: Bearer`.
    private func unauthorized() -> Response {
        state.count(Self.product) { $0.unauthorized += 1 }
        guard api >= .v7 else { return message(.unauthorized, "Authorization has been denied for this request.", code: nil) }
        return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer"], body: .init())
    }

    /// Authenticates, then applies a drawn fault; returns the user or a finished response.
    func admit(_ request: Request, route: String) async throws -> Result<String, ResponseBox> {
        let fault = try await state.enter(Self.product, route: route, resource: true, request: request)
        guard let user = state.authenticate(bearer: SimHTTP.bearer(request), product: Self.product) else {
            return .failure(ResponseBox(unauthorized()))
        }
        let sample = fixtures.vb365Organizations.first.map(render) ?? .null
        switch fault {
        case .error: return .failure(ResponseBox(message(.internalServerError, "An unexpected error has occurred on the server.", code: nil)))
        case .throttle: return .failure(ResponseBox(message(.tooManyRequests, "Too many requests. Try again later.", code: nil)))
        case .malformed: return .failure(ResponseBox(SimHTTP.malformed(sample)))
        case .reset: return .failure(ResponseBox(SimHTTP.resetMidBody(sample)))
        case .async, .none: return .success(user)
        }
    }

    // MARK: Rendering per version

    /// `RESTLoggedInOrganization` as this version sends it. v5: the fixture as written (the
    /// seed's spellings, zone-less timestamps). v6+: the canonical enum spelling, date-times with
    /// a zone, `_actions` under `/vN/`, and (v7+) `description`.
    func render(_ org: SimulatorFixtures.Organization) -> JSONValue {
        guard api >= .v6 else { return org.body }
        var out = org.body
        if let type = org.body["type"]?.stringValue { out["type"] = .string(Self.organizationType(type)) }
        for key in ["firstBackuptime", "lastBackuptime"] {
            if let stamp = org.body[key]?.stringValue { out[key] = .string(Self.zoned(stamp)) }
        }
        if api >= .v7 {
            out["description"] = org.body["description"] ?? .null
        } else if case .object(var members) = out {
            members["description"] = nil
            out = .object(members)
        }
        out["_actions"] = Self.versioned(org.body["_actions"] ?? .object([:]), api)
        return out
    }

    /// `RestOrganizationComposed` (the administrator's view). v7+ without `extendedView` leave
    /// the backup fields out (the spec's default is false); v6+ send no `null` for members the
    /// spec does not mark nullable, nor for `type`/`region`.
    func adminView(_ org: SimulatorFixtures.Organization, extended: Bool) -> JSONValue {
        var merged = api >= .v6 ? render(org) : org.body
        if case .object(let extra) = org.adminView {
            for (key, value) in extra { merged[key] = value }
        }
        merged["_links"] = .object(["self": .object(["href": .string("\(prefix)/Organizations/\(org.id)")])])
        guard api >= .v6, case .object(var members) = merged else { return merged }
        let nullable: Set<String> = ["description", "firstBackuptime", "lastBackuptime", "isBackedup"]
        members = members.filter { key, value in value != .null || nullable.contains(key) }
        if !extended {
            for key in ["isBackedup", "firstBackuptime", "lastBackuptime"] { members[key] = nil }
        }
        return .object(members)
    }

    static func organizationType(_ value: String) -> String {
        ["office365": "Office365", "onpremises": "OnPremises", "hybrid": "Hybrid"][value.lowercased()] ?? value
    }

    /// A date-time with no zone gets `Z` (the spec's `format: date-time` needs one; the gateway
    /// reads a zone-less time as UTC, so the value is the same).
    static func zoned(_ stamp: String) -> String {
        let time = stamp.split(separator: "T", maxSplits: 1).last ?? ""
        return time.contains("Z") || time.contains("+") || time.contains("-") ? stamp : stamp + "Z"
    }

    /// Rewrites `/v5/` in every `uri`/`href` below `value` to this version's prefix.
    static func versioned(_ value: JSONValue, _ api: SimulatorVB365API) -> JSONValue {
        switch value {
        case .string(let text): return .string(text.replacingOccurrences(of: "/v5/", with: "/\(api.rawValue)/"))
        case .object(let members): return .object(members.mapValues { versioned($0, api) })
        case .array(let items): return .array(items.map { versioned($0, api) })
        default: return value
        }
    }

    // MARK: Resources

    private func organization(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/Organization") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        // Seed 000: the organization whose credentials obtained the token; an administrator has none.
        guard let org = fixtures.vb365Organizations.first(where: { $0.account.username == user }) else {
            state.count(Self.product) { $0.forbidden += 1 }
            return message(
                .forbidden,
                "This resource is available to organization accounts only. Obtain a token with the credentials that were used to add the organization.",
                code: "ResourceAccessDenied")
        }
        return SimHTTP.json(.ok, render(org))
    }

    func isAdministrator(_ user: String) -> Bool {
        fixtures.vb365Administrators.contains { $0.username == user }
    }

    private func extendedView(_ request: Request) -> Result<Bool, ResponseBox> {
        let raw = request.uri.queryParameters["extendedView"].map(String.init)
        switch raw?.lowercased() {
        case nil:
            // v6 marks the parameter as required; v7+ default it to false; v5 always extends.
            if api == .v6 {
                return .failure(ResponseBox(message(.badRequest, "The extendedView parameter is required.", code: nil)))
            }
            return .success(api == .v5)
        case "true": return .success(true)
        case "false": return .success(false)
        default: return .failure(ResponseBox(message(.badRequest, "The extendedView parameter must be true or false.", code: "ParameterValidationFailure")))
        }
    }

    private func organizations(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/Organizations") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        guard isAdministrator(user) else {
            state.count(Self.product) { $0.forbidden += 1 }
            return message(.forbidden, "Access is denied.", code: "ResourceAccessDenied")
        }
        let extended: Bool
        switch extendedView(request) {
        case .failure(let box): return box.response
        case .success(let value): extended = value
        }
        let all = fixtures.vb365Organizations.map { adminView($0, extended: extended) }
        guard api >= .v8 else { return SimHTTP.json(.ok, .array(all)) }
        // v8: PageOfRestOrganizationComposed, limit 30 by default and at most 10,000, no total.
        let query = request.uri.queryParameters
        var limit = 30
        var offset = 0
        if let raw = query["limit"] {
            guard let value = Int(String(raw)), (1...10_000).contains(value) else {
                return message(.badRequest, "The limit parameter must be an integer from 1 to 10000.", code: "ParameterValidationFailure")
            }
            limit = value
        }
        if let raw = query["offset"] {
            guard let value = Int(String(raw)), value >= 0 else {
                return message(.badRequest, "The offset parameter must be a non-negative integer.", code: "ParameterValidationFailure")
            }
            offset = value
        }
        let page = offset < all.count ? Array(all[offset..<min(all.count, offset + limit)]) : []
        return SimHTTP.json(
            .ok,
            .object([
                "offset": .int(offset), "limit": .int(limit), "results": .array(page),
                "_links": .object(["self": .object(["href": .string("/v8/Organizations?offset=\(offset)&limit=\(limit)")])]),
            ]))
    }

    private func organizationByID(_ request: Request, id: String) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET \(prefix)/Organizations/{id}") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        guard let org = fixtures.vb365Organizations.first(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame }) else {
            return message(.notFound, "Organization with ID \(id.prefix(64)) was not found.", code: "ResourceNotFound")
        }
        guard isAdministrator(user) || org.account.username == user else {
            state.count(Self.product) { $0.forbidden += 1 }
            return message(.forbidden, "Access is denied.", code: "ResourceAccessDenied")
        }
        let extended: Bool
        switch extendedView(request) {
        case .failure(let box): return box.response
        case .success(let value): extended = value
        }
        return SimHTTP.json(.ok, adminView(org, extended: extended))
    }

    /// `RESTServiceInstance`: the installation id and the build (the builds are the simulator's
    /// choice: a release of the major version whose API it serves).
    private func serviceInstance(_ request: Request) async throws -> Response {
        switch try await admit(request, route: "GET \(prefix)/ServiceInstance") {
        case .failure(let box): return box.response
        case .success: break
        }
        return SimHTTP.json(.ok, .object(["installationId": .string(Self.installationID), "version": .string(Self.build(api))]))
    }

    /// The server's installation id (VSPC's `Vb365Server.installationUid` names the same).
    static let installationID = "7e3f2b9a-1c4d-4e5f-8a6b-9c0d1e2f3a4b"

    /// The VB365 build a server of this REST version runs (the simulator's choice: a release of
    /// the major version whose API it serves).
    static func build(_ api: SimulatorVB365API) -> String {
        ["v6": "6.1.0.222", "v7": "7.1.0.1301", "v8": "8.1.0.305"][api.rawValue] ?? "5.0.3.1063"
    }

    /// v8's anonymous `RESTHealthReport`.
    private func health(_ request: Request) async throws -> Response {
        _ = try await state.enter(Self.product, route: "GET /v8/Health", resource: false)
        return SimHTTP.json(
            .ok,
            .object([
                "status": .string("Healthy"),
                "entries": .object([
                    "database": .object(["status": .string("Healthy"), "description": .null]),
                    "service": .object(["status": .string("Healthy"), "description": .null]),
                ]),
            ]))
    }
}

/// A finished response carried through a `Result` (Response is not an Error).
struct ResponseBox: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}
