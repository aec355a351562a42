public import GatewayClock
import Synchronization

/// Wakes the tasks of this replica waiting for another replica's fill or login: the shared
/// tier's `filled` channel names each key stored or released, and ``notify(_:)`` resumes its
/// waiters. A notification that arrives between a waiter's last look and its wait is kept for a
/// while (``recentLimit`` keys), so the wait returns at once instead of missing it.
public final class FillNotifier: Sendable {
    enum Slot {
        case pending(key: String)
        case waiting(key: String, CheckedContinuation<Void, Never>)
        case cancelled
    }

    struct State {
        var slots: [UInt64: Slot] = [:]
        var recent: [String: ContinuousClock.Instant] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())
    let clock: GatewayClock
    let recentLimit = 4_096

    public init(clock: GatewayClock) {
        self.clock = clock
    }

    /// `key` was stored or released: its waiters go on.
    public func notify(_ key: String) {
        let now = clock.now
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.recent.count >= recentLimit { state.recent.removeAll(keepingCapacity: true) }
            state.recent[key] = now
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, slot) in state.slots {
                if case .waiting(let waited, let continuation) = slot, waited == key {
                    woken.append(continuation)
                    state.slots[id] = nil
                }
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns once `key` is notified after `since`, after `timeout`, or when cancelled.
    public func wait(_ key: String, since: ContinuousClock.Instant, timeout: Duration) async {
        let clock = self.clock
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend(key, since: since) }
            group.addTask { try? await clock.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// How many tasks wait now (for tests).
    public var waiting: Int { state.withLock { $0.slots.count } }

    private func suspend(_ key: String, since: ContinuousClock.Instant) async {
        let id = state.withLock { state -> UInt64 in
            state.next &+= 1
            state.slots[state.next] = .pending(key: key)
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let goOn = state.withLock { state -> Bool in
                    if case .cancelled = state.slots[id] {
                        state.slots[id] = nil
                        return true
                    }
                    if let at = state.recent[key], at > since {
                        state.slots[id] = nil
                        return true
                    }
                    state.slots[id] = .waiting(key: key, continuation)
                    return false
                }
                if goOn { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                switch state.slots[id] {
                case .waiting(_, let continuation):
                    state.slots[id] = nil
                    return continuation
                case .pending:
                    state.slots[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume()
        }
    }
}
