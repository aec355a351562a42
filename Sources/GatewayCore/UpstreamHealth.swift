public import GatewayObservability
public import GatewayClock
import HTTPTransport
import Synchronization
import TokenBroker

/// What the gateway knows of each upstream's health: whether it was reachable at its last call,
/// its readiness (probed at most once per interval), its tokens' state for `/v1/upstreams`, and
/// the failures it reports to the status board. Reads and lists tell it what their calls found.
public final class UpstreamHealth: Sendable {
    let clients: UpstreamClients
    /// Where upstream failures are recorded for the status page.
    let board: StatusBoard?
    /// The last readiness of every upstream, probed at most once per `health.probeInterval`.
    let readinessProbe: ReadinessProbe
    /// Upstream name → whether its last call reached it (absent: not called yet).
    private let reachability = Mutex<[String: Bool]>([:])

    init(clients: UpstreamClients, board: StatusBoard?, probeInterval: Duration, clock: GatewayClock) {
        self.clients = clients
        self.board = board
        self.readinessProbe = ReadinessProbe(interval: probeInterval, clock: clock)
    }

    /// A call to `name` reached it (`true`) or did not.
    func markReachable(_ name: String, _ value: Bool) {
        reachability.withLock { $0[name] = value }
    }

    /// A call to `name` failed with `error`: the board hears of it (a cancelled caller is not the
    /// upstream's failure), and reachability follows what the failure says.
    func noteFailure(_ name: String, _ error: any Error) {
        if !(error is CancellationError) { board?.upstreamFailed(name, code: GatewayError.upstream(name, error).code.rawValue) }
        if let error = error as? UpstreamError {
            if error.isUnreachable { markReachable(name, false) }
        } else if !(error is CancellationError) {
            markReachable(name, true)
        }
    }

    /// `GET /v1/upstreams`: each upstream's product, address, accounts, tokens' state,
    /// reachability and API version; no secrets.
    public func upstreamInfo() async -> [UpstreamInfo] {
        var infos: [UpstreamInfo] = []
        for upstream in clients.all {
            let name = upstream.definition.name
            let brokers = upstream.brokers
            var states: [TokenBroker.State] = []
            for broker in brokers { states.append(await broker.state) }
            infos.append(
                UpstreamInfo(
                    name: name, product: upstream.definition.product, baseURL: upstream.definition.baseURL,
                    accounts: brokers.count, tokenState: Self.tokenState(states), reachable: reachability.withLock { $0[name] },
                    apiVersion: upstream.apiVersion))
        }
        return infos
    }

    /// The state of an upstream's tokens from its brokers' states.
    static func tokenState(_ states: [TokenBroker.State]) -> TokenState {
        if states.isEmpty { return .none }
        if states.contains(.failed) { return .failed }
        if states.allSatisfy({ $0 == .valid }) { return .valid }
        if states.contains(.valid) { return .partial }
        return states[0] == .none ? .none : .expired
    }
}
