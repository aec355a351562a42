import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// VSPC's async actions (the `async` fault): a read VSPC queues answers 202 with
/// `Location: …/api/v3/asyncActions/{id}`; `GET /asyncActions/{id}` tells its status (`running`,
/// then `succeed`) and `GET /asyncActions/{id}/result` answers what the read would have answered
/// (models `AsyncActionInfo`, `AsyncActionStatus`; docs/simulator.md says what is inferred).
///
/// The read's handler runs as usual under an ``AsyncDeferral``: when its admission draws the
/// `async` fault, the answer it makes is kept as the action's result and the caller gets the 202.
final class AsyncDeferral: Sendable {
    struct Kept: Sendable {
        var status: HTTPResponse.Status
        var body: Data
    }

    private struct State {
        var deferred = false
        var kept: Kept?
    }

    private let state = Mutex(State())

    /// The handler's admission drew the `async` fault: its answer becomes an action's result.
    func deferAnswer() { state.withLock { $0.deferred = true } }

    /// Called with every JSON answer made under this deferral (the last one is the handler's).
    func record(_ status: HTTPResponse.Status, _ body: Data) { state.withLock { $0.kept = Kept(status: status, body: body) } }

    /// The answer to keep, when the answer was deferred.
    var keptWhenDeferred: Kept? { state.withLock { $0.deferred ? $0.kept : nil } }
}

/// One queued action: who started it, what it was, its result, and how many status polls it
/// stays `running` for.
struct SimulatedAsyncAction: Sendable {
    var initiator: String
    var actionName: String
    var result: AsyncDeferral.Kept
    var runningPolls: Int
}

extension SimulatorState {
    /// At most this many actions are kept (the oldest go first).
    static let maxAsyncActions = 1000

    func storeAsyncAction(_ id: String, _ action: SimulatedAsyncAction) {
        asyncActions.withLock { actions in
            if actions.order.count >= Self.maxAsyncActions, let oldest = actions.order.first {
                actions.order.removeFirst()
                actions.byID[oldest] = nil
            }
            actions.byID[id] = action
            actions.order.append(id)
        }
    }

    /// The action's status now (`running` while it has polls left, then `succeed`), counting this poll.
    func pollAsyncAction(_ id: String) -> (action: SimulatedAsyncAction, running: Bool)? {
        asyncActions.withLock { actions in
            guard var action = actions.byID[id] else { return nil }
            let running = action.runningPolls > 0
            if running { action.runningPolls -= 1 }
            actions.byID[id] = action
            return (action, running)
        }
    }
}

/// Runs every VSPC read under an ``AsyncDeferral`` and turns a deferred answer into a queued
/// action and its 202.
struct VSPCAsyncActionsMiddleware: RouterMiddleware {
    typealias Context = SimulatorContext
    let state: SimulatorState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get, !request.uri.path.hasPrefix("/api/v3/asyncActions") else { return try await next(request, context) }
        let deferral = AsyncDeferral()
        let response = try await SimHTTP.$deferral.withValue(deferral) { try await next(request, context) }
        guard let kept = deferral.keptWhenDeferred else { return response }
        let id = UUID().uuidString.lowercased()
        let initiator = state.authenticate(bearer: SimHTTP.bearer(request), product: .vspc) ?? ""
        state.storeAsyncAction(id, SimulatedAsyncAction(initiator: initiator, actionName: "GET " + request.uri.path, result: kept, runningPolls: 1))
        let host = request.head.authority ?? "localhost:1280"
        return SimHTTP.json(.accepted, .object(["data": .null]), headers: [.location: "https://\(host)/api/v3/asyncActions/\(id)"])
    }
}

extension VSPCRoutes {
    func registerAsyncActions(on router: Router<SimulatorContext>) {
        router.get("/api/v3/asyncActions/:actionId") { request, context in
            try await asyncAction(request, id: context.parameters.get("actionId") ?? "", result: false)
        }
        router.get("/api/v3/asyncActions/:actionId/result") { request, context in
            try await asyncAction(request, id: context.parameters.get("actionId") ?? "", result: true)
        }
    }

    /// `GET /asyncActions/{id}` (`AsyncActionInfo` in the envelope) or `…/result` (the kept
    /// answer once the action succeeded; 400 while it runs). Only the initiator's token sees it;
    /// no faults are drawn here.
    private func asyncAction(_ request: Request, id: String, result: Bool) async throws -> Response {
        _ = try await state.enter(.vspc, route: result ? "GET /api/v3/asyncActions/{id}/result" : "GET /api/v3/asyncActions/{id}", resource: false, request: request)
        guard let user = state.authenticate(bearer: SimHTTP.bearer(request), product: .vspc) else {
            state.count(.vspc) { $0.unauthorized += 1 }
            return Self.errors(401, "Authentication failed: the access token is missing, invalid or expired.", type: "security")
        }
        guard let (action, running) = state.pollAsyncAction(id.lowercased()), action.initiator == user else {
            return Self.errors(404, "The async action \(id.prefix(64)) was not found.", type: "logical")
        }
        if result {
            guard !running else { return Self.errors(400, "The async action \(id.prefix(64)) has not finished yet.", type: "logical") }
            return SimHTTP.bytes(action.result.status, action.result.body)
        }
        let initiator = fixtures.vspcUsers.first { $0.account.username == action.initiator }?.instanceUid ?? ""
        let info: JSONValue = .object([
            "id": .string(id.lowercased()), "initiatorUid": .string(initiator), "actionName": .string(action.actionName),
            "status": .string(running ? "running" : "succeed"), "queryParameters": .object([:]), "requestBody": .null,
        ])
        return SimHTTP.json(.ok, .object(["data": info]))
    }
}
