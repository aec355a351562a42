import GatewaySecrets
public import GatewayObservability
public import GatewayClock
public import HTTPTransport
public import Logging
public import TenantModel
public import TokenBroker
import Synchronization
import VeeamAPI
import VeeamWire

/// The configured upstreams with what reads them: each upstream's stack, token brokers and
/// clients (one broker per VB365 organization account, seed 000). Reads one tenant or one
/// upstream's organizations; knows nothing of caching, lists or health.
public final class UpstreamClients: Sendable {
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

    /// The account that reads an upstream's pass-through form, with its side of the stack:
    /// VSPC's own account, or a VB365 upstream's `passThrough.account`.
    struct AccountReads: Sendable {
        let broker: TokenBroker
        let transport: any UpstreamTransport
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
        /// The pass-through form's account; nil for a VB365 upstream without `passThrough.account`.
        let accountReads: AccountReads?

        var name: String { definition.name }
        /// What kind of tenant this upstream's objects are.
        var kind: Tenant.Kind { definition.product.tenantKind }

        init(definition: UpstreamDefinition, runtime: Runtime, probeClient: VSPCClient? = nil, accountReads: AccountReads?, stack: UpstreamStack) {
            self.definition = definition
            self.runtime = runtime
            self.probeClient = probeClient
            self.accountReads = accountReads
            self.throttle = stack.throttle
            self.probes = stack.probes
            self.fingerprint = CacheKeys.fingerprint(definition)
        }

        /// The token brokers of this upstream: one per VB365 organization account, VSPC's one.
        var brokers: [TokenBroker] {
            switch runtime {
            case .vb365(let orgs, _): orgs.map(\.broker) + (accountReads.map { [$0.broker] } ?? [])
            case .vspc(let broker, _): [broker]
            }
        }

        /// The API version in use: VB365's discovered one, VSPC's configured client version.
        var apiVersion: String? {
            switch runtime {
            case .vb365(_, let resolver): resolver.known?.rawValue
            case .vspc: definition.vspcClientVersion
            }
        }
    }

    /// Every configured upstream, in configuration order.
    let all: [Upstream]
    let logger: Logger
    /// VB365 organization id → index of the account that reads it (learned from reads).
    private let organizationIndex = Mutex<[String: Int]>([:])

    /// Builds each upstream's stack over `transport(options)`, its brokers and its clients.
    init(
        _ definitions: [UpstreamDefinition], transport: (TransferOptions) -> any UpstreamTransport, clock: GatewayClock, logger: Logger,
        metrics: GatewayMetrics?, shared: (any SharedSessions)?
    ) {
        self.logger = logger
        self.all = definitions.map { definition in
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
                // Pass-through's administrative account: its own broker, never an organization's.
                let account = definition.passThroughAccount.map { credential in
                    let broker = TokenBroker(
                        upstream: definition.name, credential: credential, grants: grants, refreshSkew: definition.refreshSkew, clock: clock, logger: logger,
                        shared: shared, sharedServer: CacheKeys.server(definition))
                    return AccountReads(broker: broker, transport: stack.reads(as: broker))
                }
                return Upstream(definition: definition, runtime: .vb365(orgs, resolver), accountReads: account, stack: stack)
            case .vspc:
                let grants = OAuthTokenEndpoint.vspc(
                    transport: stack.logins, baseURL: definition.baseURL, upstream: definition.name, clientVersion: definition.vspcClientVersion)
                let credential = definition.account ?? Credential(username: "", password: .env(""))
                let broker = TokenBroker(
                    upstream: definition.name, credential: credential, grants: grants, refreshSkew: definition.refreshSkew, clock: clock, logger: logger,
                    shared: shared, sharedServer: CacheKeys.server(definition))
                let reads = stack.reads(as: broker)
                let vspc = VSPCClient(transport: reads, baseURL: definition.baseURL, clientVersion: definition.vspcClientVersion)
                let probe = VSPCClient(
                    transport: stack.probes(as: broker), baseURL: definition.baseURL, clientVersion: definition.vspcClientVersion)
                return Upstream(
                    definition: definition, runtime: .vspc(broker, vspc), probeClient: probe, accountReads: AccountReads(broker: broker, transport: reads),
                    stack: stack)
            }
        }
    }

    /// The upstream configured as `name`.
    func named(_ name: String) -> Upstream? {
        all.first { $0.definition.name == name }
    }

    /// The token brokers of an upstream (for tests, readiness and `/v1/upstreams`).
    public func brokers(of upstream: String) -> [TokenBroker] {
        named(upstream)?.brokers ?? []
    }

    /// Finds what each upstream needs found before its first read (VB365 `apiVersion: auto`), so
    /// the version is known and logged at start and after a reload rather than at the first
    /// caller's request. A failure is logged by the resolver and retried by the next read.
    public func prepare() async {
        await withTaskGroup(of: Void.self) { group in
            for upstream in all {
                guard case .vb365(_, let resolver) = upstream.runtime, resolver.known == nil else { continue }
                group.addTask { _ = try? await resolver.current() }
            }
        }
    }

    // MARK: Reads

    /// One tenant of `upstream` by its id there, nil when the upstream has no such object. A
    /// VB365 organization is read with its own account: the one that read it last, else every
    /// account's organization is read and the match taken.
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

    /// One upstream's whole list: VSPC's cloud tenants, or every VB365 organization each read
    /// with its own account (a failing account makes the list partial, all failing an error).
    func readAll(_ upstream: Upstream) async throws -> FetchedList {
        let name = upstream.definition.name
        switch upstream.runtime {
        case .vspc(_, let client):
            return FetchedList(tenants: try await client.tenants().map { Normalize.cloudTenant($0, upstream: name) })
        case .vb365(let orgs, _):
            let reads = await readOrganizations(name, orgs)
            if reads.tenants.isEmpty, let first = reads.failures.first { throw first }
            return FetchedList(tenants: reads.tenants, partialFailure: reads.failures.first)
        }
    }

    /// One upstream's list as fetched: every tenant read, and the first failure of a partial read.
    struct FetchedList: Sendable {
        var tenants: [Tenant]
        var partialFailure: (any Error)? = nil
    }

    /// What one organization account's read produced, named by the account's position in the
    /// upstream's `organizations` (a struct, never a tuple: it crosses a task boundary).
    struct OrganizationRead: Sendable {
        let account: Int
        let outcome: Result<VB365Organization, any Error>
    }

    /// Every organization of a VB365 upstream, each read with its own account (seed 000).
    struct OrganizationReads: Sendable {
        var tenants: [Tenant] = []
        var failures: [any Error] = []
    }

    /// As many at once as the upstream's gate lets through (`maxConcurrentRequests`): a list of
    /// thousands of accounts waits its turn in the fan-out rather than filling the gate's queue,
    /// which is there for callers.
    func readOrganizations(_ name: String, _ orgs: [VB365Org]) async -> OrganizationReads {
        let width = named(name)?.definition.maxConcurrentRequests ?? 4
        let reads = await fanOut(Array(orgs.indices), width: width) { account in
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

    /// The account of a VB365 upstream that reads organization `id` (lower case): the one learned
    /// from reads, else every account's organization is read once to learn it. Nil when no
    /// account reads it (or the upstream is not VB365); a failure of every account is thrown.
    func organizationAccount(_ upstream: Upstream, id: String) async throws -> VB365Org? {
        guard case .vb365(let orgs, _) = upstream.runtime else { return nil }
        let key = upstream.definition.name + "." + id
        if let index = organizationIndex.withLock({ $0[key] }), index < orgs.count { return orgs[index] }
        let reads = await readOrganizations(upstream.definition.name, orgs)
        if let index = organizationIndex.withLock({ $0[key] }), index < orgs.count { return orgs[index] }
        if reads.tenants.isEmpty, let failure = reads.failures.first { throw failure }
        return nil
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
}
