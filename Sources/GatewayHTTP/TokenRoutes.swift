import Foundation
import GatewayAccess
import GatewayCore
import Hummingbird
import NIOCore

/// `POST /v1/auth/token`: gateway tokens for configured callers.
enum TokenRoutes {
    static func register(on router: Router<GatewayRequestContext>) {
        router.post("/v1/auth/token") { request, context in
            try await issueToken(request, context: context, access: try GatewayApplication.snapshot(context).access)
        }
    }

    /// `POST /v1/auth/token`, OAuth2 `client_credentials`: client id and key in the form body or
    /// HTTP Basic; answers a short-lived signed JWT carrying the caller's roles and scopes.
    static func issueToken(_ request: Request, context: GatewayRequestContext, access: AccessControl) async throws -> Response {
        guard let tokens = access.tokens else { throw GatewayError.tokensDisabled }
        let address = Authenticate.client(request, context: context, access: access)
        if let wait = access.failedAuth.blocked(address) { throw GatewayError.tooManyFailures(wait) }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 16 * 1024)
        } catch {
            throw GatewayError.bodyTooLarge
        }
        var form: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            form[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        guard form["grant_type"] == "client_credentials" else { throw GatewayError.unsupportedGrant }
        var id = form["client_id"]
        var secret = form["client_secret"]
        if let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        {
            id = String(decoded[..<colon]).removingPercentEncoding
            secret = String(decoded[decoded.index(after: colon)...]).removingPercentEncoding
        }
        guard let id, let secret, let record = access.clientCredentials(id: id, secret: secret, address: address) else {
            throw GatewayError.authInvalid
        }
        let (token, expiresIn) = try await tokens.issue(for: record)
        var response = try JSON.response(IssuedToken(access_token: token, token_type: "Bearer", expires_in: expiresIn))
        response.headers[.cacheControl] = "no-store"
        return response
    }
}

struct IssuedToken: Encodable {
    var access_token: String
    var token_type: String
    var expires_in: Int
}
