public import ChangeFeed
import Foundation
import GatewayAccess
import GatewayCore
public import GatewayHTTP
public import Logging
public import ServiceLifecycle
import Synchronization
import TenantModel

/// The change feed's watcher: every `events.pollInterval` it reads each upstream's whole list
/// again (through the same gate, throttle and token broker as every read; the read refreshes the
/// list's cache entry), joins the customers again, and logs what changed since the last poll:
/// tenants created, changed (with the members that changed) and removed, upstreams whose state
/// changed, customers created, changed and removed, and changes of the drift counts.
///
/// The first read of an upstream is its baseline (no events: `/v1/tenants` is the starting
/// state). An upstream that fails keeps its baseline and reports no change until it answers; one
/// read in part (an organization account failed) reports what it read and removes nothing.
/// Without an `events` section it reads nothing.
///
/// With replicas sharing a feed (`coordination`), one replica polls each upstream at a time (a
/// lease kept for three poll intervals, at least 15 s: a replica that dies is replaced), and
/// compares with the tenants the last poll stored, whichever replica made it; three replicas poll
/// each upstream as often as one. When the shared tier cannot say, each replica polls alone.
public final class FeedWatcher: Service, Sendable {
    let source: SnapshotSource
    let log: any FeedLog
    let coordination: (any FeedCoordination)?
    let logger: Logger

    /// What the last poll saw, per upstream (keyed by what the upstream is: a reload that points
    /// it elsewhere starts a new baseline).
    private struct Seen {
        var lists: [String: SeenList] = [:]
        var customers: [String: [String: Customer]] = [:]
        var drift: [String: DriftCounts] = [:]
    }

    private struct SeenList {
        var identity: String
        var tenants: [String: Tenant]?
        var state: UpstreamStateChange.State = .ok
        /// Whether this replica polled it last time (else its baseline is another replica's).
        var leading = false
    }

    /// `drift.changed`'s data.
    struct DriftCounts: Sendable, Codable, Equatable {
        var upstream: String
        var count: Int
        var byKind: [String: Int]
        var report = "/v1/customers/drift"
    }

    /// One upstream's list as this poll read it (a named struct: it crosses a task boundary).
    struct Polled: Sendable {
        var name: String
        var identity: String
        var list: TenantLists.WatchedList?
    }

    private let seen = Mutex(Seen())
    /// Polls run one at a time: two interleaved would compare a read with a newer baseline.
    private let turn = PollTurn()

    public init(source: SnapshotSource, log: any FeedLog, coordination: (any FeedCoordination)? = nil, logger: Logger) {
        self.source = source
        self.log = log
        self.coordination = coordination
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.pollEvery() }
                group.addTask { await self.followActivity() }
            }
        }
        // Stopping: streams end and long polls answer now, so the front end can drain.
        log.close()
    }

    /// Polls every `events.pollInterval` until cancelled.
    func pollEvery() async {
        while !Task.isCancelled {
            let snapshot = source.snapshot
            guard let events = snapshot.configuration.events else {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            await poll(snapshot)
            try? await Task.sleep(for: events.pollInterval)
        }
    }

    /// Reads each VSPC upstream's activity log every `events.activityInterval`; when its newest
    /// record about tenants, companies or VB365 organizations is not the one seen last, polls at
    /// once (the first reading is the baseline).
    func followActivity() async {
        var seen: [String: String] = [:]
        while !Task.isCancelled {
            let snapshot = source.snapshot
            guard let events = snapshot.configuration.events, events.activityInterval > .zero else {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            if await checkActivity(snapshot, seen: &seen) { await poll(snapshot) }
            try? await Task.sleep(for: events.activityInterval)
        }
    }

    /// Whether an activity log shows a change since `seen` (which it updates).
    func checkActivity(_ snapshot: GatewaySnapshot, seen: inout [String: String]) async -> Bool {
        let marks = await snapshot.service.activityMarks()
        var changed = false
        for (upstream, mark) in marks {
            if let before = seen[upstream], before != mark {
                changed = true
                logger.info("change feed: VSPC's activity log records a change; polling now", metadata: ["upstream": "\(upstream)"])
            }
            seen[upstream] = mark
        }
        return changed
    }

    /// One poll of every configured upstream; returns the events it logged.
    @discardableResult
    public func poll(_ snapshot: GatewaySnapshot) async -> [FeedEvent] {
        await turn.take()
        defer { turn.give() }
        let service = snapshot.service
        let pollInterval = snapshot.configuration.events?.pollInterval ?? .seconds(60)
        var definitions: [UpstreamDefinition] = []
        for definition in snapshot.configuration.upstreams where await leads(definition.name, pollInterval: pollInterval) {
            definitions.append(definition)
        }
        let polled = await fanOut(definitions) { definition in
            Polled(
                name: definition.name, identity: "\(definition.product.rawValue) \(definition.baseURL)",
                list: await service.lists.watch(definition.name))
        }
        // Customers are joined after every list was read (the join reads the lists' fresh entries),
        // and tenants linked to their customers as that join found them.
        let joins = definitions.contains { $0.product == .vspc } ? await service.customers.rejoin() : [:]
        let customersOf = service.reads.membership.table()
        var drafts: [FeedEventDraft] = []
        for read in polled {
            guard let list = read.list, let kind = definitions.first(where: { $0.name == read.name })?.product.tenantKind else { continue }
            var tenants = list.tenants
            CustomerMembership.link(&tenants, using: customersOf)
            await adoptBaseline(of: read)
            let change = seen.withLock { seen in
                Self.changes(of: read, tenants: tenants, outcome: list.outcome, kind: kind, customersOf: customersOf, seen: &seen.lists)
            }
            drafts += change.drafts
            if let coordination, !change.stored.isEmpty || !change.removed.isEmpty {
                await coordination.store(records: Self.records(change.stored, id: \.id), removed: change.removed, in: "tenants:" + read.name)
            }
        }
        for (upstream, join) in joins.sorted(by: { $0.key < $1.key }) {
            await adoptCustomers(of: upstream)
            let before = seen.withLock { $0.customers[upstream] ?? [:] }
            drafts += seen.withLock { seen in Self.customerChanges(upstream, join, seen: &seen) }
            await storeCustomers(of: upstream, before: before)
        }
        // With replicas, a VSPC upstream this replica did not join now is taken from what the
        // joining replica stored when it joins it again.
        if coordination != nil {
            seen.withLock { seen in
                seen.customers = seen.customers.filter { joins[$0.key] != nil }
                seen.drift = seen.drift.filter { joins[$0.key] != nil }
            }
        }
        let logged = await log.log(drafts)
        if !logged.isEmpty {
            logger.info("change feed: events logged", metadata: ["count": "\(logged.count)", "newest": "\(logged.last?.id ?? "-")"])
        }
        return logged
    }

    /// Whether this replica polls `upstream` now: always alone; with replicas, when it holds the
    /// upstream's lease (or the shared tier cannot say). Losing the lease forgets the baseline:
    /// taking it again starts from the one the last poller stored.
    func leads(_ upstream: String, pollInterval: Duration) async -> Bool {
        guard let coordination else { return true }
        let ttl = max(pollInterval * 3, .seconds(15))
        let held = await coordination.leads("watch:" + upstream, for: ttl)
        if held == false { seen.withLock { $0.lists[upstream]?.leading = false } }
        return held ?? true
    }

    /// With replicas: a replica that did not poll an upstream last time compares with what the
    /// last poll stored, whichever replica made it.
    func adoptBaseline(of read: Polled) async {
        guard let coordination, seen.withLock({ $0.lists[read.name]?.leading != true }) else { return }
        let records = await coordination.records(of: "tenants:" + read.name)
        let stored = records.map { records in
            Dictionary(records.compactMap { id, json in (try? JSONDecoder().decode(Tenant.self, from: Data(json))).map { (id, $0) } }, uniquingKeysWith: { a, _ in a })
        }
        seen.withLock { seen in
            var entry = seen.lists[read.name].flatMap { $0.identity == read.identity ? $0 : nil } ?? SeenList(identity: read.identity)
            entry.tenants = stored
            entry.leading = true
            seen.lists[read.name] = entry
        }
    }

    /// With replicas: the customers and drift counts the last join stored, when this replica has
    /// none of its own for `upstream` (it takes over, or starts).
    func adoptCustomers(of upstream: String) async {
        guard let coordination, seen.withLock({ $0.customers[upstream] == nil }) else { return }
        guard let records = await coordination.records(of: "customers:" + upstream) else { return }
        let decoder = JSONDecoder()
        var customers: [String: Customer] = [:]
        var drift: DriftCounts?
        for (id, json) in records {
            if id == Self.driftRecord {
                drift = try? decoder.decode(DriftCounts.self, from: Data(json))
            } else if let customer = try? decoder.decode(Customer.self, from: Data(json)) {
                customers[id] = customer
            }
        }
        seen.withLock { seen in
            seen.customers[upstream] = customers
            if let drift { seen.drift[upstream] = drift }
        }
    }

    /// With replicas: stores what changed in `upstream`'s customers since `before`, and its drift counts.
    func storeCustomers(of upstream: String, before: [String: Customer]) async {
        guard let coordination else { return }
        let (now, drift) = seen.withLock { ($0.customers[upstream] ?? [:], $0.drift[upstream]) }
        var changed = Self.records(now.values.filter { before[$0.id] != $0 }, id: \.id)
        if let drift, let json = try? JSONEncoder().encode(drift) { changed[Self.driftRecord] = Array(json) }
        let removed = before.keys.filter { now[$0] == nil }
        await coordination.store(records: changed, removed: Array(removed), in: "customers:" + upstream)
    }

    /// The id of the drift counts among a VSPC upstream's stored customers.
    static let driftRecord = "~drift"

    /// Values as stored records: JSON by id.
    static func records<Value: Encodable>(_ values: some Sequence<Value>, id: (Value) -> String) -> [String: [UInt8]] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var records: [String: [UInt8]] = [:]
        for value in values {
            if let json = try? encoder.encode(value) { records[id(value)] = Array(json) }
        }
        return records
    }

    /// One upstream's events, and what changed in its baseline (to store for the other replicas).
    struct UpstreamChange {
        var drafts: [FeedEventDraft] = []
        var stored: [Tenant] = []
        var removed: [String] = []
    }

    /// The events of one upstream's read against what was seen before; updates what was seen.
    private static func changes(
        of read: Polled, tenants: [Tenant], outcome: TenantLists.WatchedList.Outcome, kind: Tenant.Kind, customersOf: [String: [String]],
        seen lists: inout [String: SeenList]
    ) -> UpstreamChange {
        var entry = lists[read.name].flatMap { $0.identity == read.identity ? $0 : nil } ?? SeenList(identity: read.identity)
        entry.leading = true
        defer { lists[read.name] = entry }
        var result = UpstreamChange()
        let state: UpstreamStateChange.State
        let reason: String?
        switch outcome {
        case .complete: (state, reason) = (.ok, nil)
        case .partial(let detail): (state, reason) = (.degraded, detail)
        case .failed(let detail): (state, reason) = (.down, detail)
        }
        if state != entry.state {
            result.drafts.append(
                FeedEventDraft(
                    kind: .upstreamState, upstream: read.name, audience: .upstream(kind: kind),
                    data: FeedPayload(UpstreamStateChange(state: state, previous: entry.state, reason: reason))))
            entry.state = state
        }
        guard state != .down else { return result }
        let current = Dictionary(tenants.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        guard let previous = entry.tenants else {
            entry.tenants = current
            result.stored = tenants
            return result
        }
        let complete = state == .ok
        let changes = ListChanges.between(previous, tenants, complete: complete)
        func audience(_ tenant: Tenant) -> FeedEvent.Audience {
            .tenant(kind: kind, id: tenant.id, customers: customersOf[tenant.id] ?? [])
        }
        for tenant in changes.created {
            result.drafts.append(FeedEventDraft(kind: .tenantCreated, upstream: read.name, audience: audience(tenant), data: FeedPayload(tenant)))
        }
        for change in changes.changed {
            result.drafts.append(
                FeedEventDraft(
                    kind: .tenantChanged, upstream: read.name, audience: audience(change.tenant), data: FeedPayload(change.tenant), changed: change.members))
        }
        for tenant in changes.removed {
            result.drafts.append(FeedEventDraft(kind: .tenantRemoved, upstream: read.name, audience: audience(tenant), data: FeedPayload(tenant)))
        }
        // A partial read keeps what it did not read as it was.
        entry.tenants = complete ? current : previous.merging(current) { _, new in new }
        result.stored = changes.created + changes.changed.map(\.tenant)
        result.removed = changes.removed.map(\.id)
        return result
    }

    /// The customer and drift events of one VSPC upstream's join against what was seen before.
    private static func customerChanges(_ upstream: String, _ join: CustomerJoin, seen: inout Seen) -> [FeedEventDraft] {
        var drafts: [FeedEventDraft] = []
        let current = Dictionary(join.customers.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let drift = DriftCounts(upstream: upstream, count: join.drift.count, byKind: join.drift.countsByKind)
        defer {
            seen.customers[upstream] = current
            seen.drift[upstream] = drift
        }
        guard let previous = seen.customers[upstream] else { return [] }
        for customer in join.customers {
            guard let before = previous[customer.id] else {
                drafts.append(FeedEventDraft(kind: .customerCreated, upstream: upstream, audience: .customer(id: customer.id), data: FeedPayload(customer)))
                continue
            }
            let members = before.changedMembers(to: customer)
            if !members.isEmpty {
                drafts.append(
                    FeedEventDraft(
                        kind: .customerChanged, upstream: upstream, audience: .customer(id: customer.id), data: FeedPayload(customer), changed: members))
            }
        }
        for (id, customer) in previous.sorted(by: { $0.key < $1.key }) where current[id] == nil {
            drafts.append(FeedEventDraft(kind: .customerRemoved, upstream: upstream, audience: .customer(id: id), data: FeedPayload(customer)))
        }
        if let before = seen.drift[upstream], before != drift {
            drafts.append(FeedEventDraft(kind: .driftChanged, upstream: upstream, audience: .drift, data: FeedPayload(drift)))
        }
        return drafts
    }
}

/// One poll at a time, in the order they asked (a FIFO of waiters behind a flag).
final class PollTurn: Sendable {
    private let state = Mutex((busy: false, waiting: [CheckedContinuation<Void, Never>]()))

    func take() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.busy else {
                    state.busy = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func give() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
