import Foundation
import HTTPTypes
import Hummingbird

/// Veeam Backup for Microsoft 365, REST v5 (see ../shared/upstream-specs/API-NOTES.md and seed 000).
struct VB365Routes: Sendable {
    let state: SimulatorState
    let fixtures: SimulatorFixtures

    private static let product = SimulatedProduct.vb365
    private static let unauthorized = JSONValue.object(["message": .string("Authorization has been denied for this request.")])

    func register(on router: Router<SimulatorContext>) {
        router.post("/v5/Token") { request, _ in try await token(request) }
        router.post("/v5/token") { request, _ in try await token(request) }
        router.get("/v5/Organization") { request, _ in try await organization(request) }
        router.get("/v5/Organizations") { request, _ in try await organizations(request) }
        router.get("/v5/Organizations/:id") { request, context in
            try await organizationByID(request, id: context.parameters.get("id") ?? "")
        }
    }

    private func token(_ request: Request) async throws -> Response {
        var request = request
        _ = try await state.enter(Self.product, route: "POST /v5/Token", resource: false)
        let form = try await SimHTTP.form(&request)
        switch form["grant_type"] {
        case "password":
            let username = form["username"] ?? ""
            let password = form["password"] ?? ""
            let known = fixtures.vb365Administrators + fixtures.organizations.map(\.account)
            guard known.contains(where: { $0.username.caseInsensitiveCompare(username) == .orderedSame && $0.password == password }) else {
                state.count(Self.product) { $0.loginFailures += 1 }
                return oauthError("invalid_grant", "The user name or password is incorrect.")
            }
            state.count(Self.product) { $0.logins += 1 }
            return tokenResponse(username: canonical(username))
        case "refresh_token":
            guard let user = state.redeemRefreshToken(form["refresh_token"] ?? "", product: Self.product) else {
                state.count(Self.product) { $0.refreshFailures += 1 }
                return oauthError("invalid_grant", "The refresh token is invalid or has expired.")
            }
            state.count(Self.product) { $0.refreshes += 1 }
            return tokenResponse(username: user)
        case .none:
            return oauthError("invalid_request", "The grant_type parameter is missing.")
        case .some:
            return oauthError("unsupported_grant_type", "The grant type is not supported.")
        }
    }

    private func canonical(_ username: String) -> String {
        let known = fixtures.vb365Administrators + fixtures.organizations.map(\.account)
        return known.first { $0.username.caseInsensitiveCompare(username) == .orderedSame }?.username ?? username
    }

    private func tokenResponse(username: String) -> Response {
        let token = state.issueToken(product: Self.product, username: username)
        return SimHTTP.json(
            .ok,
            .object([
                "access_token": .string(token.accessToken),
                "token_type": .string("bearer"),
                "expires_in": .int(token.lifetime),
                "refresh_token": .string(token.refreshToken),
                "userName": .string(username),
                ".issued": .string(SimHTTP.httpDate(token.issued)),
                ".expires": .string(SimHTTP.httpDate(token.expires)),
            ])
        )
    }

    private func oauthError(_ error: String, _ description: String) -> Response {
        SimHTTP.json(.badRequest, .object(["error": .string(error), "error_description": .string(description)]))
    }

    private func message(_ status: HTTPResponse.Status, _ text: String) -> Response {
        SimHTTP.json(status, .object(["message": .string(text)]))
    }

    /// Authenticates, then applies a drawn fault; returns the user or a finished response.
    private func admit(_ request: Request, route: String) async throws -> Result<String, ResponseBox> {
        let fault = try await state.enter(Self.product, route: route, resource: true, request: request)
        guard let user = state.authenticate(bearer: SimHTTP.bearer(request), product: Self.product) else {
            state.count(Self.product) { $0.unauthorized += 1 }
            return .failure(ResponseBox(SimHTTP.json(.unauthorized, Self.unauthorized)))
        }
        switch fault {
        case .error: return .failure(ResponseBox(message(.internalServerError, "An unexpected error has occurred on the server.")))
        case .throttle: return .failure(ResponseBox(message(.tooManyRequests, "Too many requests. Try again later.")))
        case .malformed: return .failure(ResponseBox(SimHTTP.malformed(fixtures.organizations.first?.body ?? .null)))
        case .reset: return .failure(ResponseBox(SimHTTP.resetMidBody(fixtures.organizations.first?.body ?? .null)))
        case .async, .none: return .success(user)
        }
    }

    private func organization(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET /v5/Organization") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        // Seed 000: the organization whose credentials obtained the token; an administrator has none.
        guard let org = fixtures.organizations.first(where: { $0.account.username == user }) else {
            state.count(Self.product) { $0.forbidden += 1 }
            return message(
                .forbidden,
                "This resource is available to organization accounts only. Obtain a token with the credentials that were used to add the organization."
            )
        }
        return SimHTTP.json(.ok, org.body)
    }

    private func adminView(_ org: SimulatorFixtures.Organization) -> JSONValue {
        var merged = org.body
        if case .object(let extra) = org.adminView {
            for (key, value) in extra { merged[key] = value }
        }
        merged["_links"] = .object(["self": .object(["href": .string("/v5/Organizations/\(org.id)")])])
        return merged
    }

    private func isAdministrator(_ user: String) -> Bool {
        fixtures.vb365Administrators.contains { $0.username == user }
    }

    private func organizations(_ request: Request) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET /v5/Organizations") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        guard isAdministrator(user) else {
            state.count(Self.product) { $0.forbidden += 1 }
            return message(.forbidden, "Access is denied.")
        }
        return SimHTTP.json(.ok, .array(fixtures.organizations.map(adminView)))
    }

    private func organizationByID(_ request: Request, id: String) async throws -> Response {
        let user: String
        switch try await admit(request, route: "GET /v5/Organizations/{id}") {
        case .failure(let box): return box.response
        case .success(let value): user = value
        }
        guard let org = fixtures.organizations.first(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame }) else {
            return message(.notFound, "Organization with ID \(id.prefix(64)) was not found.")
        }
        guard isAdministrator(user) || org.account.username == user else {
            state.count(Self.product) { $0.forbidden += 1 }
            return message(.forbidden, "Access is denied.")
        }
        return SimHTTP.json(.ok, adminView(org))
    }
}

/// A finished response carried through a `Result` (Response is not an Error).
struct ResponseBox: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}
