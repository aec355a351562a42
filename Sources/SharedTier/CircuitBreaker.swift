public import GatewayClock
import Synchronization

/// Keeps a failing Redis from costing every request its timeout: after `threshold` failures in a
/// row the circuit opens and commands fail at once for `openFor`; then one command at a time is
/// let through (half open) until one succeeds, which closes it.
public final class CircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable {
        case closed, open, halfOpen = "half-open"
    }

    struct Inner {
        var failures = 0
        var openUntil: ContinuousClock.Instant?
        var trialInFlight = false
        var opened = 0
    }

    public let threshold: Int
    public let openFor: Duration
    private let clock: GatewayClock
    private let inner = Mutex(Inner())

    public init(threshold: Int = 3, openFor: Duration = .seconds(2), clock: GatewayClock = .continuous) {
        self.threshold = max(1, threshold)
        self.openFor = openFor
        self.clock = clock
    }

    public var state: State {
        let now = clock.now
        return inner.withLock { inner in
            guard let until = inner.openUntil else { return .closed }
            return now < until ? .open : .halfOpen
        }
    }

    /// How often the circuit opened.
    public var timesOpened: Int { inner.withLock { $0.opened } }

    /// Whether a command may be tried now.
    public func allows() -> Bool {
        let now = clock.now
        return inner.withLock { inner in
            guard let until = inner.openUntil else { return true }
            if now < until { return false }
            if inner.trialInFlight { return false }
            inner.trialInFlight = true
            return true
        }
    }

    public func succeeded() {
        inner.withLock { inner in
            inner.failures = 0
            inner.openUntil = nil
            inner.trialInFlight = false
        }
    }

    public func failed() {
        let now = clock.now
        inner.withLock { inner in
            inner.failures += 1
            inner.trialInFlight = false
            if inner.openUntil != nil || inner.failures >= threshold {
                if inner.openUntil == nil || now >= (inner.openUntil ?? now) { inner.opened += 1 }
                inner.openUntil = now + openFor
            }
        }
    }
}
