public import GatewayClock
public import Logging
import Synchronization

/// A clock that moves when told: tests advance it instead of sleeping. Frozen between advances
/// by default; `flowing` runs in real time besides (a whole gateway under test, whose rate
/// limits refill and tokens age as they would, with jumps on demand).
public final class ManualClock: Sendable {
    private let origin = ContinuousClock.now
    private let offset = Mutex(Duration.zero)
    private let flowing: Bool

    public init(flowing: Bool = false) {
        self.flowing = flowing
    }

    public var now: ContinuousClock.Instant { (flowing ? ContinuousClock.now : origin) + offset.withLock { $0 } }

    public func advance(by duration: Duration) {
        offset.withLock { $0 += duration }
    }

    /// This clock as the gateway's one injected clock. A sleep ends once the clock (moved or
    /// flowing) has reached its deadline.
    public var clock: GatewayClock {
        GatewayClock(now: { [self] in self.now }) { [self] deadline, _ in
            while self.now < deadline {
                try await Task.sleep(for: min(deadline - self.now, .milliseconds(10)))
            }
        }
    }
}

/// Collects every log line (message and metadata, as text) so tests can search them for secrets.
public final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    public init() {}

    public var all: [String] { lines.withLock { $0 } }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    /// A logger at trace level writing here.
    public func logger(label: String = "test") -> Logger {
        var logger = Logger(label: label) { [self] label in CapturingHandler(label: label, capture: self) }
        logger.logLevel = .trace
        return logger
    }

    /// Lines that contain any of `needles`.
    public func lines(containing needles: [String]) -> [String] {
        all.filter { line in needles.contains { !$0.isEmpty && line.contains($0) } }
    }
}

struct CapturingHandler: LogHandler {
    let label: String
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(label): \(event.message) \(rendered)")
    }
}
