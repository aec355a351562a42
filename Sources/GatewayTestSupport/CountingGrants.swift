public import GatewaySecrets
public import Synchronization
public import TokenBroker

/// A token endpoint double that logs in with a new token each time (`token-1`, `token-2`, …) and
/// counts the logins; it refuses refreshes.
public final class CountingGrants: TokenGrantClient {
    public let logins = Mutex(0)

    public init() {}

    public func login(username: String, password: Secret) async throws -> TokenGrant {
        let n = logins.withLock { $0 += 1; return $0 }
        return TokenGrant(accessToken: Secret("token-\(n)"), refreshToken: nil, lifetime: .seconds(3600))
    }

    public func refresh(_ refreshToken: Secret) async throws -> TokenGrant { throw CancellationError() }
}
