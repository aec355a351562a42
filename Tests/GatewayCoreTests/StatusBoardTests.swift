import GatewayObservability
import GatewayCore
import ResponseCache
import Testing

@Suite("StatusBoard's problem list")
struct StatusBoardProblemTests {
    func add(_ board: StatusBoard, route: String = "GET /v1/tenants/{id}", code: String = "auth.forbidden", caller: String?, request: Int) {
        board.problem(route: route, status: 403, code: code, upstream: nil, requestID: "r\(request)", tenant: nil, caller: caller)
    }

    @Test("repeats are grouped: 10,000 of one kind are one entry with its count and last request id")
    func repeatsGrouped() {
        let board = StatusBoard()
        add(board, caller: "ops", request: 0)
        for index in 1...10_000 { add(board, caller: "noisy", request: index) }
        let problems = board.problems
        #expect(problems.count == 2)
        #expect(problems.first?.caller == "noisy" && problems.first?.count == 10_000 && problems.first?.requestId == "r10000")
        #expect(problems.last?.caller == "ops" && problems.last?.count == 1)
    }

    @Test("one caller making many kinds holds at most 10 entries; the others' problems stay listed")
    func perCallerShare() {
        let board = StatusBoard()
        for caller in ["a", "b", "c"] { add(board, code: "tenant.not_found", caller: caller, request: 0) }
        for index in 0..<500 {
            add(board, route: "GET /route-\(index % 40)", code: "request.invalid_parameter", caller: "noisy", request: index)
        }
        let problems = board.problems
        #expect(problems.filter { $0.caller == "noisy" }.count == StatusBoard.problemsPerCaller)
        #expect(Set(problems.compactMap(\.caller)).isSuperset(of: ["a", "b", "c"]), "one caller cannot flush the list")
        #expect(problems.count <= StatusBoard.problemLimit)
    }

    @Test("the whole list stays within 50 entries however many callers")
    func bounded() {
        let board = StatusBoard()
        for index in 0..<2_000 { add(board, caller: "caller-\(index)", request: index) }
        #expect(board.problems.count == StatusBoard.problemLimit)
        #expect(board.problems.first?.caller == "caller-1999", "most recent first")
    }
}

@Suite("StatusBoard's route counts")
struct StatusBoardRouteTests {
    @Test("routes recorded in turn, with new routes arriving between repeats, are each counted exactly")
    func alternatingRoutes() {
        let board = StatusBoard()
        // The board remembers where the route recorded last sits; a route added in between
        // moves its storage, so repeats, alternations and insertions are mixed here.
        let routes = ["/v1/tenants/{id}", "/v1/tenants", "/v1/customers", "/v1/tenants/{id}", "/v1/upstreams"]
        var expected: [String: (requests: Int, errors: Int)] = [:]
        for index in 0..<2_000 {
            let route = index < 100 ? routes[index % 2] : routes[(index / 3) % routes.count]
            let status = index % 7 == 0 ? 502 : 200
            board.request(method: "GET", route: route, status: status, duration: .milliseconds(1), cache: nil)
            expected["GET " + route, default: (0, 0)].requests += 1
            if status >= 500 { expected["GET " + route, default: (0, 0)].errors += 1 }
        }
        let report = board.report(upstreams: [], cache: CacheStatistics(), maxBytes: 0, sharedTier: nil, sharedCache: nil)
        let counted = Dictionary(uniqueKeysWithValues: report.gateway.routes.map { ($0.route, ($0.calls.requests.m1, $0.calls.errors.m1)) })
        #expect(counted.count == expected.count)
        for (route, want) in expected {
            #expect(counted[route]?.0 == want.requests, "\(route) requests")
            #expect(counted[route]?.1 == want.errors, "\(route) errors")
        }
        #expect(report.gateway.calls.requests.m1 == 2_000)
    }
}
