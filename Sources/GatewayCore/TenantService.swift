import GatewaySecrets
public import GatewayObservability
public import GatewayClock
public import HTTPTransport
import Foundation
public import Logging
public import TenantModel
public import TokenBroker
import Synchronization
public import ResponseCache
import VeeamAPI
import VeeamWire

/// Reads tenants from every configured upstream: aggregation with per-source timeouts and
/// partial results, single reads by `{upstream}.{id}`.
public final class TenantService: Sendable {
    /// One organization account of a VB365 upstream (seed 000), read in the upstream's version.
    struct VB365Org: Sendable {
        let credential: Credential
        let broker: TokenBroker
        /// The reads side of the upstream's stack, carrying this account's token.
        let transport: any UpstreamTransport
        let baseURL: String
        let version: VB365VersionResolver

        /// `GET /vN/Organization` with this account's token. A server that stopped serving the
        /// version in use (404 on the route or its token endpoint) has it forgotten, so the next
        /// read discovers again (`apiVersion: auto`).
        func organization() async throws -> VB365Organization {
            let current = try await version.current()
            do {
                return try await VB365Client(transport: transport, baseURL: baseURL, version: current).organization()
            } catch {
                version.note(error)
                throw error
            }
        }
    }

    enum Runtime: Sendable {
        case vb365([VB365Org], VB365VersionResolver)
        case vspc(TokenBroker, VSPCClient)
    }

    /// One configured upstream with its clients. A class: the hot path selects upstreams on every
    /// list hit, and copying a reference is one retain where copying the struct retained each of
    /// its many fields (contended between event-loop threads).
    final class Upstream: Sendable {
        let definition: UpstreamDefinition
        let runtime: Runtime
        /// VSPC: `users/me` for readiness probes, outside the callers' concurrency gate (a probe
        /// never takes a caller's place in the queue, nor waits behind callers).
        let probeClient: VSPCClient?
        /// The 429 quiet period of this upstream's stack (shown on the status page).
        let throttle: ThrottleState
        /// The stack's probe side (no gate, no caller's request id): VB365 reachability probes.
        let probes: any UpstreamTransport
        /// What names this upstream's entries on the shared level (``CacheKeys/fingerprint(_:)``).
        let fingerprint: String

        init(definition: UpstreamDefinition, runtime: Runtime, probeClient: VSPCClient? = nil, stack: UpstreamStack) {
            self.definition = definition
            self.runtime = runtime
            self.probeClient = probeClient
            self.throttle = stack.throttle
            self.probes = stack.probes
            self.fingerprint = CacheKeys.fingerprint(definition)
        }
    }

    let upstreams: [Upstream]
    let logger: Logger
    /// Where upstream failures are recorded for the status page.
    let board: StatusBoard?
    /// The shared cache level behind the local cache, when a shared tier is configured.
    let sharedFills: SharedFills<CachedPayload>?
    /// Publishes a purge to the other replicas, when a shared tier is configured.
    let purgeBroadcast: (@Sendable (_ upstream: String?, _ tenant: String?) async -> Bool)?
    /// The shared tier's state, when one is configured.
    public let sharedStatus: (@Sendable () -> SharedTierStatus)?
    /// The last readiness of every upstream, probed at most once per `health.probeInterval`.
    let readinessProbe: ReadinessProbe
    /// Normalized per-upstream results, when caching is on.
    let cache: ResponseCache<CachedPayload>
    /// Rendered list answers, reused while their sources are unchanged (a quarter of the cache's bound).
    let renderings: ResponseCache<RenderedList>
    /// What a caller may see of the lists, filtered and sorted, whatever the page: reused by every
    /// page of it while its sources are unchanged (another eighth of the cache's bound).
    let views: ResponseCache<ListView>
    let freshness: [String: FreshnessPolicy]
    let listFreshness: [String: FreshnessPolicy]
    /// Upstreams that answered 429: not called again before this instant.
    /// VB365 organization id → index of the account that reads it (learned from reads).
    private let organizationIndex = Mutex<[String: Int]>([:])
    private let reachability = Mutex<[String: Bool]>([:])
    /// Tenant ids already resolved by ``locate(_:)`` (valid ones only, at most 1,024 per thread
    /// shard): each thread its own memo, so hits on several event loops do not contend.
    let locations = ThreadShards { [String: TenantLocation]() }

    /// Builds brokers and clients for each upstream; `transport` makes an upstream's base transport
    /// from its options (the executable passes libcurl's, over one shared client).
    public init(
        upstreams: [UpstreamDefinition], transport: (TransferOptions) -> any UpstreamTransport, clock: GatewayClock = .continuous, logger: Logger,
        cache: ResponseCache<CachedPayload> = ResponseCache(maxBytes: 0),
        metrics: GatewayMetrics? = nil, probeInterval: Duration = .seconds(10),
        shared: (any SharedSessions)? = nil, sharedCache: SharedFills<CachedPayload>? = nil, sharedStatus: (@Sendable () -> SharedTierStatus)? = nil,
        purgeBroadcast: (@Sendable (_ upstream: String?, _ tenant: String?) async -> Bool)? = nil
    ) {
        self.sharedFills = sharedCache
        self.purgeBroadcast = purgeBroadcast
        self.sharedStatus = sharedStatus
        self.logger = logger
        self.board = metrics?.board
        self.readinessProbe = ReadinessProbe(interval: probeInterval, clock: clock)
        self.cache = cache
        self.renderings = ResponseCache(maxBytes: cache.maxBytes / 4, maxEntryShare: 0.5, clock: cache.clock)
        self.views = ResponseCache(maxBytes: cache.maxBytes / 8, maxEntryShare: 0.5, clock: cache.clock)
        self.freshness = Dictionary(uniqueKeysWithValues: upstreams.map { ($0.name, $0.freshness) })
        self.listFreshness = Dictionary(uniqueKeysWithValues: upstreams.map { ($0.name, $0.listFreshness) })
        self.upstreams = upstreams.map { definition in
            let stack = UpstreamStack(definition, transport: transport(definition.options), metrics: metrics, logger: logger)
            switch definition.product {
            case .vb365:
                // Discovery goes the logins' way: no caller's gate, no caller's request id.
                let resolver = VB365VersionResolver(
                    setting: definition.vb365APIVersion, upstream: definition.name, baseURL: definition.baseURL, transport: stack.logins,
                    timeout: definition.options.totalTimeout, logger: logger, clock: clock)
                let grants = OAuthTokenEndpoint.vb365(transport: stack.logins, baseURL: definition.baseURL, upstream: definition.name) {
                    try await resolver.current()
                }
                let orgs = definition.organizations.map { credential in
                    let broker = TokenBroker(
                        upstream: definition.name, credential: credential, grants: grants, refreshSkew: definition.refreshSkew, clock: clock, logger: logger,
                        shared: shared, sharedServer: CacheKeys.server(definition))
                    return VB365Org(
                        credential: credential, broker: broker, transport: stack.reads(as: broker),
                        baseURL: definition.baseURL, version: resolver)
                }
                return Upstream(definition: definition, runtime: .vb365(orgs, resolver), stack: stack)
            case .vspc:
                let grants = OAuthTokenEndpoint.vspc(
                    transport: stack.logins, baseURL: definition.baseURL, upstream: definition.name, clientVersion: definition.vspcClientVersion)
                let credential = definition.account ?? Credential(username: "", password: .env(""))
                let broker = TokenBroker(
                    upstream: definition.name, credential: credential, grants: grants, refreshSkew: definition.refreshSkew, clock: clock, logger: logger,
                    shared: shared, sharedServer: CacheKeys.server(definition))
                let vspc = VSPCClient(
                    transport: stack.reads(as: broker), baseURL: definition.baseURL, clientVersion: definition.vspcClientVersion)
                let probe = VSPCClient(
                    transport: stack.probes(as: broker), baseURL: definition.baseURL, clientVersion: definition.vspcClientVersion)
                return Upstream(definition: definition, runtime: .vspc(broker, vspc), probeClient: probe, stack: stack)
            }
        }
    }

    /// The shared cache level's fills over `level`, made once per process (its counters outlive
    /// reloads): what a replica writes there, and how another reads it, is ``SharedPayloads``'.
    public static func sharedFills(over level: any SharedCacheLevel, clock: GatewayClock) -> SharedFills<CachedPayload> {
        SharedFills(level: level, clock: clock, encode: SharedPayloads.encode, decode: SharedPayloads.decode)
    }

    /// The brokers of an upstream (for tests, readiness and `/v1/upstreams`).
    public func brokers(of upstream: String) -> [TokenBroker] {
        guard let found = upstreams.first(where: { $0.definition.name == upstream }) else { return [] }
        switch found.runtime {
        case .vb365(let orgs, _): return orgs.map(\.broker)
        case .vspc(let broker, _): return [broker]
        }
    }

    // MARK: Reads

    func read(_ upstream: Upstream, id: String) async throws -> Tenant? {
        let name = upstream.definition.name
        switch upstream.runtime {
        case .vspc(_, let client):
            do {
                return Normalize.cloudTenant(try await client.tenant(uid: id), upstream: name)
            } catch let error as VeeamAPIError where error.code == .notFound {
                return nil
            }
        case .vb365(let orgs, _):
            // Seed 000: each organization is readable only with its own account.
            if let index = organizationIndex.withLock({ $0[name + "." + id] }), index < orgs.count {
                let org = try await orgs[index].organization()
                if org.id.lowercased() == id { return Normalize.organization(org, upstream: name) }
            }
            let reads = await readOrganizations(name, orgs)
            if let match = reads.tenants.first(where: { $0.source.id == id }) { return match }
            if let failure = reads.failures.first { throw failure }
            return nil
        }
    }

    /// What one organization account's read produced, named by the account's position in the
    /// upstream's `organizations` (a struct, never a tuple: it crosses a task boundary).
    struct OrganizationRead: Sendable {
        let account: Int
        let outcome: Result<VB365Organization, any Error>
    }

    /// Every organization of a VB365 upstream, each read at once with its own account (seed 000).
    struct OrganizationReads: Sendable {
        var tenants: [Tenant] = []
        var failures: [any Error] = []
    }

    func readOrganizations(_ name: String, _ orgs: [VB365Org]) async -> OrganizationReads {
        let reads = await fanOut(Array(orgs.indices)) { account in
            do {
                return OrganizationRead(account: account, outcome: .success(try await orgs[account].organization()))
            } catch {
                return OrganizationRead(account: account, outcome: .failure(error))
            }
        }
        var result = OrganizationReads()
        for read in reads {
            guard orgs.indices.contains(read.account) else {
                // An invariant broke (a corrupted fan-out result, see ``Indexed``, would land here): say so, use nothing of it.
                logger.error("organization read arrived with an account out of range", metadata: ["upstream": "\(name)", "account": "\(read.account)"])
                result.failures.append(GatewayError.internalInvariant("organization fan-out of \(name)"))
                continue
            }
            switch read.outcome {
            case .success(let org):
                organizationIndex.withLock { $0[name + "." + org.id.lowercased()] = read.account }
                result.tenants.append(Normalize.organization(org, upstream: name))
            case .failure(let error):
                logger.warning("organization read failed", metadata: ["upstream": "\(name)", "account": "\(orgs[read.account].credential.username)", "error": "\(error)"])
                result.failures.append(error)
            }
        }
        return result
    }

    /// Which account reads each VB365 organization of `upstream`, as learned from reads:
    /// organization id (lower case) → index into the upstream's `organizations`.
    public func organizationAccounts(of upstream: String) -> [String: Int] {
        let prefix = upstream + "."
        return organizationIndex.withLock { index in
            var found: [String: Int] = [:]
            for (key, value) in index where key.hasPrefix(prefix) { found[String(key.dropFirst(prefix.count))] = value }
            return found
        }
    }

    // MARK: Upstream info

    public func upstreamInfo() async -> [UpstreamInfo] {
        var infos: [UpstreamInfo] = []
        for upstream in upstreams {
            let name = upstream.definition.name
            var states: [TokenBroker.State] = []
            for broker in brokers(of: name) { states.append(await broker.state) }
            let state: TokenState
            if states.isEmpty {
                state = .none
            } else if states.contains(.failed) {
                state = .failed
            } else if states.allSatisfy({ $0 == .valid }) {
                state = .valid
            } else if states.contains(.valid) {
                state = .partial
            } else {
                state = states[0] == .none ? .none : .expired
            }
            infos.append(
                UpstreamInfo(
                    name: name, product: upstream.definition.product, baseURL: upstream.definition.baseURL,
                    accounts: brokers(of: name).count, tokenState: state, reachable: reachability.withLock { $0[name] },
                    apiVersion: apiVersion(of: upstream)))
        }
        return infos
    }

    func apiVersion(of upstream: Upstream) -> String? {
        switch upstream.runtime {
        case .vb365(_, let resolver): resolver.known?.rawValue
        case .vspc: upstream.definition.vspcClientVersion
        }
    }

    /// Finds what each upstream needs found before its first read (VB365 `apiVersion: auto`), so
    /// the version is known and logged at start and after a reload rather than at the first
    /// caller's request. A failure is logged by the resolver and retried by the next read.
    public func prepare() async {
        await withTaskGroup(of: Void.self) { group in
            for upstream in upstreams {
                guard case .vb365(_, let resolver) = upstream.runtime, resolver.known == nil else { continue }
                group.addTask { _ = try? await resolver.current() }
            }
        }
    }

    func markReachable(_ name: String, _ value: Bool) {
        reachability.withLock { $0[name] = value }
    }

    func noteFailure(_ name: String, _ error: any Error) {
        if !(error is CancellationError) { board?.upstreamFailed(name, code: GatewayError.upstream(name, error).code.rawValue) }
        if let error = error as? UpstreamError {
            if error.isUnreachable { markReachable(name, false) }
        } else if !(error is CancellationError) {
            markReachable(name, true)
        }
    }

    /// Now, as `fetchedAt` shows it: RFC 3339 UTC with milliseconds (no formatter per fill).
    static func now() -> String {
        StatusBoard.timestamp(Date())
    }
}
