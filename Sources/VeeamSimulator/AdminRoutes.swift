import Foundation
import HTTPTypes
import Hummingbird

/// `/_sim/…`: counters, faults, token revocation, the simulated clock and changes of the estate
/// (AdminRoutes+Estate.swift), for tests and benchmarks. Loopback callers only; everyone else
/// gets 403.
struct AdminRoutes: Sendable {
    let state: SimulatorState

    func register(on router: Router<SimulatorContext>) {
        let group = router.group("_sim").add(middleware: LoopbackOnly())
        group.get("counters") { _, _ in countersResponse() }
        group.post("counters/reset") { _, _ in
            state.resetCounters()
            return countersResponse()
        }
        group.get("faults") { _, _ in faultsResponse() }
        // The request ids and W3C trace parents each product received, newest last.
        group.get("received") { _, _ in
            var all: [String: JSONValue] = [:]
            for product in SimulatedProduct.allCases {
                all[product.rawValue] = .object([
                    "requestIDs": .array(state.receivedRequestIDs(product).map { .string($0) }),
                    "traceparents": .array(state.receivedTraceparents(product).map { .string($0) }),
                ])
            }
            return SimHTTP.json(.ok, .object(all))
        }
        group.get("tokens") { _, _ in
            SimHTTP.json(.ok, .object(["tokens": .array(state.issuedTokens.map { .string($0) })]))
        }
        group.put("faults/:product") { request, context in
            guard let product = SimulatedProduct(rawValue: context.parameters.get("product") ?? "") else {
                return SimHTTP.json(.notFound, .object(["message": .string("unknown product; use vb365 or vspc")]))
            }
            var request = request
            let body = try await request.collectBody(upTo: 64 * 1024)
            do {
                let faults = try JSONDecoder().decode(SimulatorFaults.self, from: Data(body.readableBytesView))
                state.setFaults(faults, for: product)
            } catch {
                return SimHTTP.json(.badRequest, .object(["message": .string("invalid faults: \(error)")]))
            }
            return faultsResponse()
        }
        group.post("revoke") { request, _ in
            let query = request.uri.queryParameters
            let products = query["product"].flatMap { SimulatedProduct(rawValue: String($0)) }.map { [$0] } ?? SimulatedProduct.allCases
            for product in products {
                state.revokeTokens(product: product, username: query["user"].map(String.init))
            }
            return SimHTTP.json(.ok, .object(["revoked": .bool(true)]))
        }
        group.post("clock/advance") { request, _ in
            guard let seconds = request.uri.queryParameters["seconds"].flatMap({ Double(String($0)) }), seconds >= 0, seconds <= 10 * 365 * 86400 else {
                return SimHTTP.json(.badRequest, .object(["message": .string("seconds=N (0 <= N <= ten years) is required")]))
            }
            state.advanceClock(by: seconds)
            return SimHTTP.json(.ok, .object(["now": .string(ISO8601DateFormatter().string(from: state.now))]))
        }
        group.put("refresh") { request, _ in
            state.rejectRefresh = request.uri.queryParameters["reject"] == "true"
            return SimHTTP.json(.ok, .object(["rejectRefresh": .bool(state.rejectRefresh)]))
        }
        group.put("token-lifetime") { request, _ in
            guard let seconds = request.uri.queryParameters["seconds"].flatMap({ Double(String($0)) }), seconds > 0, seconds <= 365 * 86400 else {
                return SimHTTP.json(.badRequest, .object(["message": .string("seconds=N (0 < N <= a year) is required")]))
            }
            state.tokenLifetime = seconds
            return SimHTTP.json(.ok, .object(["tokenLifetime": .double(seconds)]))
        }
        registerEstate(on: group)
    }

    private func countersResponse() -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var all: [String: SimulatorCounters] = [:]
        for product in SimulatedProduct.allCases { all[product.rawValue] = state.counters(product) }
        return SimHTTP.bytes(.ok, (try? encoder.encode(all)) ?? Data())
    }

    private func faultsResponse() -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var all: [String: SimulatorFaults] = [:]
        for product in SimulatedProduct.allCases { all[product.rawValue] = state.faults(product) }
        return SimHTTP.bytes(.ok, (try? encoder.encode(all)) ?? Data())
    }
}

struct LoopbackOnly: RouterMiddleware {
    typealias Context = SimulatorContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.isLoopback else {
            return SimHTTP.json(.forbidden, .object(["message": .string("the simulator's admin routes answer loopback callers only")]))
        }
        return try await next(request, context)
    }
}
