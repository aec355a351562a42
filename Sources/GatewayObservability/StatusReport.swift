public import Foundation
public import ResponseCache
public import TokenBroker

/// `GET /v1/status`: is it working, and if not, which Veeam server, which account, since when.
/// Built from the readiness probe (at most one per `health.probeInterval`), the brokers, the
/// cache and the ``StatusBoard``; holds no secret (no token, password, key or upstream body).
public struct StatusReport: Sendable, Encodable {
    public struct Rate: Sendable, Encodable, Equatable {
        public var requests: StatusBoard.Windows<Int>
        public var errors: StatusBoard.Windows<Int>
        /// Requests per second over each window.
        public var perSecond: StatusBoard.Windows<Double>
        /// errors / requests over each window (0 without requests).
        public var errorRatio: StatusBoard.Windows<Double>
    }

    public struct Upstream: Sendable, Encodable {
        public var name: String
        public var product: String
        public var apiVersion: String?
        public var baseURL: String
        /// What the last probe found, now: `down` (unreachable, or no token obtainable), `degraded`
        /// (answers, but the probe is not ready — the account's role, say — or a 429 quiet period
        /// is in force, or an account's login failed) or `ok`. Past errors are in `calls`.
        public var mark: String
        /// Since when `mark` holds (as this process saw it).
        public var since: String
        public var reachable: Bool
        /// Why not ok (from the readiness probe), never a secret.
        public var reason: String?
        public var lastError: StatusBoard.LastError?
        /// Seconds left of a 429 quiet period in force, or nil.
        public var throttledForSeconds: Int?
        public var accounts: [TokenBroker.AccountStatus]
        public var calls: Rate
        /// Per 10 s bucket over 15 minutes, oldest first.
        public var series: Series
    }

    public struct Route: Sendable, Encodable {
        public var route: String
        public var calls: Rate
        /// The 99th percentile latency in ms (the upper bound of its histogram bucket), nil without requests.
        public var p99Ms: StatusBoard.Windows<Double?>
    }

    public struct Cache: Sendable, Encodable {
        public var entries: Int
        public var bytes: Int
        public var maxBytes: Int
        public var hitRatio: StatusBoard.Windows<Double?>
        public var staleServed: StatusBoard.Windows<Int>
        public var evictions: Int
    }

    public struct Series: Sendable, Encodable {
        public var intervalSeconds: Int
        public var requests: [Int]
        public var errors: [Int]
        /// Hits / (hits + misses) per bucket; nil where there were neither.
        public var cacheHitRatio: [Double?]?
    }

    public struct Gateway: Sendable, Encodable {
        public var startedAt: String
        public var uptimeSeconds: Int
        public var calls: Rate
        public var p99Ms: StatusBoard.Windows<Double?>
        public var routes: [Route]
        public var series: Series
    }

    public var generatedAt: String
    /// `ok` when every upstream is, `down` when every one is, else `degraded`.
    public var mark: String
    public var gateway: Gateway
    public var upstreams: [Upstream]
    public var cache: Cache
    /// The shared tier (Redis) and its circuit's state, when one is configured.
    public var sharedTier: String?
    /// The shared cache level's counters since start, when a shared tier is configured.
    public var sharedCache: SharedLevelStatistics?
    /// The last 50 problems answered, newest first.
    public var problems: [StatusBoard.Problem]
    /// Each VSPC upstream's customer drift as last joined (none before a customer read).
    public var customerDrift: [CustomerDriftCount] = []
    /// Each change feed webhook's deliveries.
    public var webhooks: [Webhook] = []
    /// Where the change feed's events are, when it is configured.
    public var feed: String?

    /// One webhook endpoint's deliveries since start (`events.webhooks[]`).
    public struct Webhook: Sendable, Encodable, Equatable {
        public var id: String
        /// The receiver's scheme, host and path (no user, no query).
        public var target: String
        /// Events delivered (a 2xx answer).
        public var delivered = 0
        /// Events given up on after `retryFor`.
        public var failed = 0
        /// Attempts that did not get a 2xx answer.
        public var failedAttempts = 0
        /// Events the endpoint has not had yet (its lag).
        public var pending = 0
        /// Events that left the log before the endpoint had them (it fell too far behind).
        public var missed = 0
        /// `ok`, `retrying` (the oldest pending event is being retried) or `idle` (nothing sent yet).
        public var state = "idle"
        public var lastDeliveredAt: String?
        /// The last failed attempt: an HTTP status or a transport code, and when.
        public var lastError: String?
        public var lastErrorAt: String?

        public init(id: String, target: String) {
            self.id = id
            self.target = target
        }
    }


    /// How much drift the customers of one VSPC upstream showed, by kind (`/v1/customers/drift`
    /// has the records).
    public struct CustomerDriftCount: Sendable, Encodable, Equatable {
        public var upstream: String
        public var count: Int
        public var byKind: [String: Int]
        /// When the join was made.
        public var joinedAt: String
        public var report: String

        public init(upstream: String, count: Int, byKind: [String: Int], joinedAt: String) {
            self.upstream = upstream
            self.count = count
            self.byKind = byKind
            self.joinedAt = joinedAt
            self.report = "/v1/customers/drift"
        }
    }
}

extension StatusBoard {
    func rate(_ buckets: [Bucket], requests: (Bucket) -> Int, errors: (Bucket) -> Int) -> StatusReport.Rate {
        let r = Self.windows(buckets) { $0.reduce(0) { $0 + requests($1) } }
        let e = Self.windows(buckets) { $0.reduce(0) { $0 + errors($1) } }
        // Per second over what the window covers: its length, or the uptime when shorter.
        let uptime = uptimeSeconds
        func per(_ n: Int, _ minutes: Int) -> Double { (Double(n) / Double(min(minutes * 60, uptime)) * 100).rounded() / 100 }
        func ratio(_ e: Int, _ r: Int) -> Double { r == 0 ? 0 : (Double(e) / Double(r) * 10_000).rounded() / 10_000 }
        return StatusReport.Rate(
            requests: r, errors: e, perSecond: .init(m1: per(r.m1, 1), m5: per(r.m5, 5), m15: per(r.m15, 15)),
            errorRatio: .init(m1: ratio(e.m1, r.m1), m5: ratio(e.m5, r.m5), m15: ratio(e.m15, r.m15)))
    }

    func p99(_ buckets: [Bucket], route: RouteKey?) -> Windows<Double?> {
        Self.windows(buckets) { slice -> Double? in
            var histogram = [Int](repeating: 0, count: Self.latencyBounds.count + 1)
            for bucket in slice {
                for (name, counts) in bucket.routes where route == nil || name == route {
                    for index in histogram.indices { histogram[index] += counts.latency[index] }
                }
            }
            return Self.p99(histogram)
        }
    }

    static func hitRatio(hits: Int, misses: Int) -> Double? {
        hits + misses == 0 ? nil : (Double(hits) / Double(hits + misses) * 10_000).rounded() / 10_000
    }
}

extension StatusBoard {
    /// What the service knows of one upstream when a report is made: its probe and its accounts.
    public struct UpstreamFacts: Sendable {
        public var name: String
        public var product: String
        public var apiVersion: String?
        public var baseURL: String
        public var reachable: Bool
        public var tokenObtainable: Bool
        public var ready: Bool
        /// Why not ready, and its stable code (set whenever a probe found it not ready).
        public var reason: String?
        public var code: String?
        public var throttledForSeconds: Int?
        public var accounts: [TokenBroker.AccountStatus]

        public init(
            name: String, product: String, apiVersion: String?, baseURL: String, reachable: Bool, tokenObtainable: Bool, ready: Bool, reason: String?,
            code: String?, throttledForSeconds: Int?, accounts: [TokenBroker.AccountStatus]
        ) {
            self.name = name
            self.product = product
            self.apiVersion = apiVersion
            self.baseURL = baseURL
            self.reachable = reachable
            self.tokenObtainable = tokenObtainable
            self.ready = ready
            self.reason = reason
            self.code = code
            self.throttledForSeconds = throttledForSeconds
            self.accounts = accounts
        }
    }

    /// `GET /v1/status` from this board's last 15 minutes and what the service knows now: each
    /// upstream's mark (`down` when unreachable or no token can be had, `degraded` when not
    /// ready, throttled or an account failed, else `ok`) and since when it holds, the routes'
    /// rates and latency, the cache and the shared tier.
    public func report(
        upstreams: [UpstreamFacts], cache statistics: CacheStatistics, maxBytes: Int, sharedTier: String?, sharedCache: SharedLevelStatistics?
    ) -> StatusReport {
        let buckets = recent()
        var upstreamRows: [StatusReport.Upstream] = []
        for facts in upstreams {
            let name = facts.name
            let calls = rate(buckets, requests: { $0.upstreams[name]?.requests ?? 0 }, errors: { $0.upstreams[name]?.errors ?? 0 })
            let mark: String
            if !facts.reachable || !facts.tokenObtainable {
                mark = "down"
            } else if !facts.ready || facts.throttledForSeconds != nil || facts.accounts.contains(where: { $0.state == "failed" }) {
                mark = "degraded"
            } else {
                mark = "ok"
            }
            if !facts.ready, let code = facts.code { upstreamFailed(name, code: code) }
            upstreamRows.append(
                StatusReport.Upstream(
                    name: name, product: facts.product, apiVersion: facts.apiVersion, baseURL: facts.baseURL,
                    mark: mark, since: self.mark(name, mark), reachable: facts.reachable, reason: facts.reason, lastError: lastError(name),
                    throttledForSeconds: facts.throttledForSeconds, accounts: facts.accounts, calls: calls,
                    series: StatusReport.Series(
                        intervalSeconds: Self.bucketSeconds, requests: buckets.map { $0.upstreams[name]?.requests ?? 0 },
                        errors: buckets.map { $0.upstreams[name]?.errors ?? 0 }, cacheHitRatio: nil)))
        }
        let routeKeys = Set(buckets.flatMap { $0.routes.keys }).sorted { $0.name < $1.name }
        let routes = routeKeys.map { route in
            StatusReport.Route(
                route: route.name,
                calls: rate(buckets, requests: { $0.routes[route]?.requests ?? 0 }, errors: { $0.routes[route]?.errors ?? 0 }),
                p99Ms: p99(buckets, route: route))
        }
        let hits = StatusBoard.windows(buckets) { $0.reduce(0) { $0 + $1.cacheHits } }
        let misses = StatusBoard.windows(buckets) { $0.reduce(0) { $0 + $1.cacheMisses } }
        let marks = upstreamRows.map(\.mark)
        let overall = marks.allSatisfy { $0 == "ok" } ? "ok" : (marks.allSatisfy { $0 == "down" } ? "down" : "degraded")
        return StatusReport(
            generatedAt: StatusBoard.timestamp(Date()), mark: overall,
            gateway: StatusReport.Gateway(
                startedAt: StatusBoard.timestamp(startedAt), uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
                calls: rate(
                    buckets, requests: { $0.routes.values.reduce(0) { $0 + $1.requests } }, errors: { $0.routes.values.reduce(0) { $0 + $1.errors } }),
                p99Ms: p99(buckets, route: nil), routes: routes,
                series: StatusReport.Series(
                    intervalSeconds: StatusBoard.bucketSeconds, requests: buckets.map { $0.routes.values.reduce(0) { $0 + $1.requests } },
                    errors: buckets.map { $0.routes.values.reduce(0) { $0 + $1.errors } },
                    cacheHitRatio: buckets.map { StatusBoard.hitRatio(hits: $0.cacheHits, misses: $0.cacheMisses) })),
            upstreams: upstreamRows,
            cache: StatusReport.Cache(
                entries: statistics.entries, bytes: statistics.bytes, maxBytes: maxBytes,
                hitRatio: .init(
                    m1: StatusBoard.hitRatio(hits: hits.m1, misses: misses.m1), m5: StatusBoard.hitRatio(hits: hits.m5, misses: misses.m5),
                    m15: StatusBoard.hitRatio(hits: hits.m15, misses: misses.m15)),
                staleServed: StatusBoard.windows(buckets) { $0.reduce(0) { $0 + $1.staleServed } }, evictions: statistics.evictions),
            sharedTier: sharedTier, sharedCache: sharedCache, problems: problems)
    }
}
