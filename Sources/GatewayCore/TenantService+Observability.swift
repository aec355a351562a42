public import GatewayObservability
import Foundation
import ResponseCache
import TokenBroker

// What the tenant service tells the observability parts: its counters for `/metrics`, its
// upstreams' state for `/v1/status`, and which problems the status board keeps.

extension StatusBoard {
    /// Whether a problem goes on the board: upstream failures and every refusal of an
    /// authenticated request (400, 403, 404 of a tenant, 5xx). Refusals anyone can cause without a
    /// key — 401, 429, unknown routes and methods, malformed HTTP — are counted in the route rates
    /// only, so anonymous traffic cannot push real failures off the list.
    public static func keeps(_ error: GatewayError) -> Bool {
        if error.upstream != nil || error.status >= 500 { return true }
        if case .httpProtocol = error.code.category { return false }
        switch error.code.category {
        case .unauthorized, .tooManyRequests, .methodNotAllowed, .payloadTooLarge, .cancelled: return false
        default: return error.code != .routeNotFound && error.code != .unsupportedGrant
        }
    }
}

extension TenantService {
    /// Copies cache and token counters into the metrics (called when `/metrics` is scraped).
    public func collectMetrics(into metrics: GatewayMetrics) async {
        let cache = reads.cacheStatistics
        metrics.syncCounter("veeam_gateway_cache_hits_total", to: cache.hits)
        metrics.syncCounter("veeam_gateway_cache_misses_total", to: cache.misses)
        metrics.syncCounter("veeam_gateway_cache_stale_answers_total", to: cache.staleAnswers)
        metrics.syncCounter("veeam_gateway_cache_refreshes_total", to: cache.refreshes)
        metrics.syncCounter("veeam_gateway_cache_evictions_total", to: cache.evictions)
        metrics.gauge("veeam_gateway_cache_bytes", cache.bytes)
        metrics.gauge("veeam_gateway_cache_entries", cache.entries)
        metrics.gauge("veeam_gateway_cache_max_bytes", reads.cache.maxBytes)
        // Kept list renderings: bounded by a quarter of cache.maxBytes, on top of it.
        metrics.gauge("veeam_gateway_list_renderings_bytes", lists.renderings.statistics.bytes)
        if let tier = sharedStatus?() {
            for state in ["closed", "open", "half-open"] {
                metrics.gauge("veeam_gateway_shared_tier_state", dimensions: [("state", state)], tier.state == state ? 1 : 0)
            }
            metrics.syncCounter("veeam_gateway_shared_tier_commands_total", to: tier.commands)
            metrics.syncCounter("veeam_gateway_shared_tier_failures_total", to: tier.failures)
            metrics.syncCounter("veeam_gateway_shared_tier_fallbacks_total", to: tier.fallbacks)
            metrics.syncCounter("veeam_gateway_shared_cache_hits_total", to: tier.cache.hits)
            metrics.syncCounter("veeam_gateway_shared_cache_misses_total", to: tier.cache.misses)
            metrics.syncCounter("veeam_gateway_shared_cache_lock_waits_total", to: tier.cache.lockWaits)
            metrics.syncCounter("veeam_gateway_shared_cache_fallbacks_total", to: tier.cache.fallbacks)
            metrics.syncCounter("veeam_gateway_shared_cache_stores_total", to: tier.cache.stores)
            for reason in ["unsigned", "stale", "replayed"] {
                metrics.syncCounter("veeam_gateway_shared_tier_messages_ignored_total", dimensions: [("reason", reason)], to: tier.ignoredMessages[reason] ?? 0)
            }
        }
        for upstream in clients.all {
            let name = upstream.definition.name
            var logins = 0
            var refreshes = 0
            var failures = 0
            for broker in upstream.brokers {
                let statistics = await broker.statistics
                logins += statistics.logins
                refreshes += statistics.refreshes
                failures += statistics.failures + statistics.refreshFailures
            }
            metrics.syncCounter("veeam_gateway_token_logins_total", dimensions: [("upstream", name)], to: logins)
            metrics.syncCounter("veeam_gateway_token_refreshes_total", dimensions: [("upstream", name)], to: refreshes)
            metrics.syncCounter("veeam_gateway_token_failures_total", dimensions: [("upstream", name)], to: failures)
            // 429s: the quiet periods the upstream started, and the seconds left of the one in
            // force (0: none). Reads refused in a quiet period never reach the upstream, so
            // veeam_gateway_upstream_requests_total does not show them.
            metrics.syncCounter("veeam_gateway_upstream_throttled_total", dimensions: [("upstream", name)], to: upstream.throttle.started)
            metrics.gauge("veeam_gateway_upstream_quiet_period_seconds", dimensions: [("upstream", name)], upstream.throttle.remaining() ?? 0)
        }
    }
}

extension TenantService {
    /// The operator's view (`GET /v1/status`).
    public func statusReport(board: StatusBoard) async -> StatusReport {
        let readiness = await health.readiness()
        var facts: [StatusBoard.UpstreamFacts] = []
        for upstream in clients.all {
            let name = upstream.definition.name
            var accounts: [TokenBroker.AccountStatus] = []
            for broker in upstream.brokers { accounts.append(await broker.status(format: StatusBoard.timestamp)) }
            let probe = readiness.upstreams.first { $0.upstream == name }
            facts.append(
                StatusBoard.UpstreamFacts(
                    name: name, product: upstream.definition.product.rawValue, apiVersion: upstream.apiVersion, baseURL: upstream.definition.baseURL,
                    reachable: probe?.reachable ?? false, tokenObtainable: probe?.tokenObtainable ?? false, ready: probe?.ready ?? false,
                    reason: probe?.reason,
                    code: probe.flatMap { $0.ready ? nil : $0.code ?? GatewayError.Code.upstreamFailed.rawValue }, throttledForSeconds: upstream.throttle.remaining(), accounts: accounts))
        }
        let shared = sharedStatus?()
        var report = board.report(
            upstreams: facts, cache: reads.cacheStatistics, maxBytes: reads.cache.maxBytes, sharedTier: shared?.line, sharedCache: shared?.cache)
        report.customerDrift = customers.driftCounts
        return report
    }
}
