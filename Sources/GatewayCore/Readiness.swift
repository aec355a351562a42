import HTTPTransport
import TokenBroker
import VeeamWire

/// One upstream's readiness, as `/readyz` reports it.
public struct UpstreamReadiness: Sendable, Encodable, Equatable {
    public var upstream: String
    public var ready: Bool
    public var reachable: Bool
    public var tokenObtainable: Bool
    /// VSPC: the role of the gateway's account (users/me).
    public var accountRole: String?
    /// Why not ready; never holds a secret.
    public var reason: String?
}

extension TenantService {
    /// Checks every upstream: reachable, a token obtainable for every account, and (VSPC) the
    /// gateway's own account holding one of seed 004's three roles.
    public func readiness() async -> [UpstreamReadiness] {
        await fanOut(upstreams) { await self.readiness(of: $0) }
    }

    private func readiness(of upstream: Upstream) async -> UpstreamReadiness {
        let name = upstream.definition.name
        var result = UpstreamReadiness(upstream: name, ready: false, reachable: false, tokenObtainable: false)
        do {
            try await withTimeout(upstream.definition.options.totalTimeout, upstream: name) {
                switch upstream.runtime {
                case .vb365(let orgs):
                    for org in orgs { _ = try await org.broker.accessToken() }
                case .vspc(let broker, _):
                    _ = try await broker.accessToken()
                }
            }
            result.reachable = true
            result.tokenObtainable = true
        } catch let error as TokenError {
            result.reachable = error.code != .secretUnavailable
            result.reason = GatewayError.upstream(name, error).detail + " (" + error.code.rawValue + ")"
            return result
        } catch {
            let problem = GatewayError.upstream(name, error)
            result.reason = problem.detail
            return result
        }
        if case .vspc(_, let client) = upstream.runtime {
            do {
                let me = try await client.currentUser()
                result.accountRole = me.role
                let username = upstream.definition.account?.username ?? "?"
                guard Role.vspcAccountRolesAllowed.contains(me.role) else {
                    result.reason = "The gateway's account \(username) on \(name) has role \(me.role); reading tenants needs Portal Administrator, "
                        + "Service Provider Global Administrator or Service Provider Administrator (VSPC roles \(Role.vspcAccountRolesAllowed.sorted().joined(separator: ", ")))."
                    return result
                }
            } catch {
                result.reason = GatewayError.upstream(name, error).detail
                return result
            }
        }
        result.ready = true
        return result
    }
}
