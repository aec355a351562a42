import DequeModule

extension ConcurrencyGate {
    /// Every state and transition of the gate, free of locks and continuations (the gate holds
    /// one in a `Mutex` and resumes what the transitions return). `Waiter` is what a queued
    /// acquirer leaves behind: a continuation in the gate, anything in tests.
    public struct StateMachine<Waiter> {
        /// Slots held now (at most `limit`).
        public private(set) var running = 0
        private var waiters = Deque<(id: UInt64, waiter: Waiter)>()
        public let limit: Int
        public let queue: Int

        public init(limit: Int, queue: Int) {
            self.limit = max(1, limit)
            self.queue = max(0, queue)
        }

        public var queued: Int { waiters.count }

        public enum AcquireAction: Equatable {
            /// A slot is taken: go on.
            case run
            /// Queued: the waiter is resumed by a `release` (or a `cancel`).
            case wait
            /// The queue is full: refuse (503).
            case refuse
            /// The acquirer was cancelled before it queued: it must not wait for a slot.
            case cancelled
        }

        /// An acquirer arrives. `isCancelled` is its task's state, read under the same lock as
        /// this transition, so a cancellation is either seen here or finds the waiter queued.
        public mutating func acquire(id: UInt64, waiter: Waiter, isCancelled: Bool) -> AcquireAction {
            if isCancelled { return .cancelled }
            if running < limit {
                running += 1
                return .run
            }
            guard waiters.count < queue else { return .refuse }
            waiters.append((id, waiter))
            return .wait
        }

        /// A queued acquirer's task was cancelled: its waiter, to resume with an error; nil when
        /// it is not queued (it holds a slot, or was never queued).
        public mutating func cancel(id: UInt64) -> Waiter? {
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index).waiter
        }

        /// A slot is given back: the next waiter takes it (returned, to resume), or it is freed.
        public mutating func release() -> Waiter? {
            if let next = waiters.popFirst() { return next.waiter }
            running = max(0, running - 1)
            return nil
        }
    }
}
