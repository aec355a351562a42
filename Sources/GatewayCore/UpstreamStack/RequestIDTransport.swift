public import HTTPTransport
import TenantModel

/// The request id of the call being served, sent upstream as `X-Request-Id`.
public enum RequestScope {
    @TaskLocal public static var requestID: String?
}

/// Adds `X-Request-Id` (the caller's, or the gateway's) to upstream requests. VSPC treats the
/// header as an idempotency key and wants a UUID; a caller's id that is not one is not sent there.
public struct RequestIDTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let uuidOnly: Bool

    public init(base: any UpstreamTransport, uuidOnly: Bool) {
        self.base = base
        self.uuidOnly = uuidOnly
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        guard let id = RequestScope.requestID, !uuidOnly || TenantID.isValidUpstreamID(id) else {
            return try await base.send(request)
        }
        var copy = request
        copy.headers.append(("X-Request-Id", id))
        return try await base.send(copy)
    }
}
