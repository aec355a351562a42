import Foundation
import GatewayCore
import Hummingbird
import NIOCore

/// `POST /v1/auth/token`'s body as the pipeline takes it (OAuth2 `client_credentials`, RFC 6749
/// section 4.4): the `grant_type`, and the client id and key from the form or from HTTP Basic
/// (which wins when both are sent, as the RFC prefers it).
struct TokenRequestForm: Sendable {
    /// The largest form read.
    static let maxBody = 16 * 1024

    var grantType: String?
    var credentials: Admission.ClientCredentials?

    /// Reads the form (413 beyond ``maxBody``) and the `Authorization: Basic` header.
    static func read(_ request: Request) async throws -> TokenRequestForm {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBody)
        } catch {
            throw GatewayError.bodyTooLarge
        }
        return parse(form: String(buffer: body), authorization: request.headers[.authorization])
    }

    /// The form's fields (`application/x-www-form-urlencoded`) and Basic's id and key.
    static func parse(form: String, authorization: String?) -> TokenRequestForm {
        var fields: [String: String] = [:]
        for pair in form.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        var id = fields["client_id"]
        var secret = fields["client_secret"]
        if let authorization, authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        {
            id = String(decoded[..<colon]).removingPercentEncoding
            secret = String(decoded[decoded.index(after: colon)...]).removingPercentEncoding
        }
        let credentials = id.flatMap { id in secret.map { Admission.ClientCredentials(id: id, secret: $0) } }
        return TokenRequestForm(grantType: fields["grant_type"], credentials: credentials)
    }
}
