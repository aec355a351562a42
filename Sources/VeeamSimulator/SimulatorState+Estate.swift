import Foundation
import Synchronization

/// What ``SimulatorState`` keeps of the estate: the fixtures both products serve now, a
/// generation that every change bumps (so that what is derived from the estate knows when it is
/// stale), VSPC's mapped organizations made from one generation, and VSPC's activity log.
struct EstateStore {
    var fixtures: SimulatorFixtures
    var generation = 0
    var mapped: MappedOrganizations?
    /// VSPC's activity log, oldest first (at most ``SimulatorState/maxActivities``).
    var activities: [VSPCActivity] = []
}

/// VSPC's view of every listed organization that has a mapping, as made from one generation of
/// the estate (`listed`: whether VSPC lists organizations at all, i.e. the simulator plays VB365).
struct MappedOrganizations: Sendable {
    var generation: Int
    var listed: Bool
    var views: [VSPCEstate.OrganizationView]
}

/// One consistent read of the estate and of the mapped organizations cached for it.
private struct EstateSnapshot: Sendable {
    var fixtures: SimulatorFixtures
    var generation: Int
    var mapped: MappedOrganizations?
}

extension SimulatorState {
    /// At most this many VSPC activity log records are kept (the oldest go first).
    static let maxActivities = 10_000

    /// The estate as it is now. A copy: its arrays are shared until either side changes them, so
    /// it is cheap, and a request that keeps it reads one consistent estate whatever changes
    /// meanwhile.
    public var fixtures: SimulatorFixtures {
        estateStore.withLock { $0.fixtures }
    }

    /// How many times the estate has changed since the simulator started.
    public var estateGeneration: Int {
        estateStore.withLock { $0.generation }
    }

    /// Changes the estate while the simulator runs: `body` works on a copy, which replaces the
    /// estate when `body` returns (an error thrown leaves the estate as it was). The generation
    /// is bumped and the played server's organizations are recomputed, so that everything derived
    /// from the estate follows the change.
    @discardableResult
    public func changeEstate<T: Sendable>(_ body: (inout SimulatorFixtures) throws -> T) rethrows -> T {
        try estateStore.withLock { store -> T in
            var changed = store.fixtures
            let result = try body(&changed)
            changed.reshard()
            store.fixtures = changed
            store.generation += 1
            return result
        }
    }

    /// VSPC's view of every listed organization that has a mapping, in list order: made by `make`
    /// from the current estate once per generation, then kept, so that a page of mappings costs
    /// its own items rather than a pass over every organization. `listed`: whether VSPC lists
    /// organizations at all (part of what `make` depends on besides the estate).
    func mappedOrganizations(
        listed: Bool, _ make: (SimulatorFixtures) -> [VSPCEstate.OrganizationView]
    ) -> [VSPCEstate.OrganizationView] {
        let snapshot = estateStore.withLock { store -> EstateSnapshot in
            EstateSnapshot(fixtures: store.fixtures, generation: store.generation, mapped: store.mapped)
        }
        if let cached = snapshot.mapped, cached.generation == snapshot.generation, cached.listed == listed {
            return cached.views
        }
        // Made outside the lock: requests keep reading the estate meanwhile. Kept only if the
        // estate has not changed since.
        let views = make(snapshot.fixtures)
        let made = MappedOrganizations(generation: snapshot.generation, listed: listed, views: views)
        estateStore.withLock { store in
            guard store.generation == made.generation else { return }
            store.mapped = made
        }
        return views
    }

    /// Appends a record to VSPC's activity log, dropping the oldest beyond ``maxActivities``.
    func recordActivity(_ activity: VSPCActivity) {
        estateStore.withLock { store in
            store.activities.append(activity)
            if store.activities.count > Self.maxActivities {
                store.activities.removeFirst(store.activities.count - Self.maxActivities)
            }
        }
    }

    /// VSPC's activity log, oldest first.
    func activities() -> [VSPCActivity] {
        estateStore.withLock { $0.activities }
    }
}
