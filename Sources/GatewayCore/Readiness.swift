import GatewayClock
public import GatewayAccess
import HTTPTransport
import Synchronization
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
    /// The stable code of why not ready (`upstream.connect`, `token.login_refused`, …), for the
    /// status board; not part of `/readyz`'s answer.
    public var code: String?

    enum CodingKeys: String, CodingKey {
        case upstream, ready, reachable, tokenObtainable, accountRole, reason
    }
}

/// Every upstream's readiness at one moment.
public struct ReadinessReport: Sendable {
    public let upstreams: [UpstreamReadiness]
    /// When the probe that made it finished.
    public let checkedAt: ContinuousClock.Instant
    public var ready: Bool { upstreams.allSatisfy(\.ready) }
}

/// Runs readiness probes at most once per `interval`: while the last report is younger, it is
/// the answer; otherwise one probe runs and every asker waits for that one. So a flood of
/// anonymous `/readyz` costs the Veeam servers one round (and at most one login attempt per
/// account) per interval, not one per request.
final class ReadinessProbe: Sendable {
    private struct State {
        var last: ReadinessReport?
        var running: Task<ReadinessReport, Never>?
    }
    let interval: Duration
    private let state = Mutex(State())

    let clock: GatewayClock

    init(interval: Duration, clock: GatewayClock) {
        self.interval = interval
        self.clock = clock
    }

    /// The last report if it is younger than the interval, else the next probe's.
    func report(probe: @escaping @Sendable () async -> [UpstreamReadiness]) async -> ReadinessReport {
        let now = clock.now
        let task = state.withLock { state -> Task<ReadinessReport, Never>? in
            if let last = state.last, now - last.checkedAt < interval { return nil }
            if let running = state.running { return running }
            let running = Task { [clock] in ReadinessReport(upstreams: await probe(), checkedAt: clock.now) }
            state.running = running
            return running
        }
        guard let task else { return state.withLock { $0.last } ?? ReadinessReport(upstreams: [], checkedAt: now) }
        let report = await task.value
        state.withLock { state in
            if state.last.map({ $0.checkedAt < report.checkedAt }) ?? true { state.last = report }
            state.running = nil
        }
        return report
    }
}

extension UpstreamHealth {
    /// Every upstream's readiness: reachable, a token obtainable for every account, and (VSPC)
    /// the gateway's own account holding one of seed 004's three roles. From the last probe when
    /// it is younger than `health.probeInterval`; probes run outside the callers' queue.
    public func readiness() async -> ReadinessReport {
        await readinessProbe.report { [clients] in
            await fanOut(clients.all) { await self.readiness(of: $0) }
        }
    }

    private func readiness(of upstream: UpstreamClients.Upstream) async -> UpstreamReadiness {
        let name = upstream.definition.name
        var result = UpstreamReadiness(upstream: name, ready: false, reachable: false, tokenObtainable: false)
        /// A VB365 account that failed while others did not.
        var partial: (any Error)?
        do {
            try await UpstreamDeadline.within(upstream.definition.options.totalTimeout) {
                switch upstream.runtime {
                case .vb365(let orgs, let resolver):
                    // Every account, not up to the first failure: one failing organization makes
                    // the upstream not ready (degraded on the status page), not unreachable.
                    var failures: [any Error] = []
                    for org in orgs {
                        do {
                            _ = try await org.broker.accessToken()
                        } catch {
                            resolver.note(error)  // a server downgraded since discovery: find its version again
                            failures.append(error)
                        }
                    }
                    if failures.count == orgs.count, let first = failures.first { throw first }
                    partial = failures.first
                    // Tokens may all be cached: one anonymous request says the server answers at
                    // all (any HTTP status does; only a transport failure is unreachable).
                    let version = try await resolver.current()
                    _ = try await upstream.probes.send(
                        UpstreamRequest(url: URLBuilder.url(base: upstream.definition.baseURL, path: [version.rawValue, "Organization"])))
                case .vspc(let broker, _):
                    _ = try await broker.accessToken()
                }
            }
            result.reachable = true
            result.tokenObtainable = true
            if let partial {
                let problem = GatewayError.upstream(name, partial)
                result.reason = "Not every organization account can log in: " + problem.detail + " (" + problem.code.rawValue + ")"
                result.code = problem.code.rawValue
                return result
            }
        } catch let error as TokenError {
            result.reachable = error.code != .secretUnavailable
            result.reason = GatewayError.upstream(name, error).detail + " (" + error.code.rawValue + ")"
            result.code = error.code.rawValue
            return result
        } catch {
            let problem = GatewayError.upstream(name, error)
            result.reason = problem.detail + " (" + problem.code.rawValue + ")"
            result.code = problem.code.rawValue
            return result
        }
        if let client = upstream.probeClient {
            do {
                let me = try await client.currentUser()
                result.accountRole = me.role
                let username = upstream.definition.account?.username ?? "?"
                guard Role.vspcAccountRolesAllowed.contains(me.role) else {
                    result.reason = "The gateway's account \(username) on \(name) has role \(me.role); reading tenants needs Portal Administrator, "
                        + "Service Provider Global Administrator or Service Provider Administrator (VSPC roles \(Role.vspcAccountRolesAllowed.sorted().joined(separator: ", ")))."
                    result.code = GatewayError.Code.upstreamFailed.rawValue
                    return result
                }
            } catch {
                let problem = GatewayError.upstream(name, error)
                result.reachable = !((error as? UpstreamError)?.isUnreachable ?? false)
                result.reason = problem.detail + " (" + problem.code.rawValue + ")"
                result.code = problem.code.rawValue
                return result
            }
        }
        result.ready = true
        return result
    }
}
