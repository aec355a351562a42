import GatewayTracing
public import HTTPTransport
import Synchronization

/// A bounded queue in front of one upstream: at most `limit` requests in flight, at most
/// `queue` waiting; beyond that, 503 with `Retry-After` instead of piling onto a Veeam server.
public final class ConcurrencyGate: Sendable {
    public let upstream: String
    public var limit: Int { machine.withLock { $0.limit } }
    public var queue: Int { machine.withLock { $0.queue } }
    private let machine: Mutex<StateMachine<CheckedContinuation<Void, any Error>>>
    private let ids = Atomic<UInt64>(0)
    /// Timers of queued acquirers that have a deadline, by id.
    private let timers = Mutex<[UInt64: Task<Void, Never>]>([:])

    public init(upstream: String, limit: Int, queue: Int) {
        self.upstream = upstream
        self.machine = Mutex(StateMachine(limit: limit, queue: queue))
    }

    /// Takes a slot, waiting in the queue for one; throws ``UpstreamError/Code/overloaded`` when the queue
    /// is full, `CancellationError` when the task is cancelled before it has a slot, and
    /// `upstream.timeout` when `deadline` (the read's ``UpstreamDeadline``) passes first.
    public func acquire(until deadline: ContinuousClock.Instant? = nil) async throws {
        if let deadline, deadline <= .now {
            throw UpstreamError(.timeout, "no slot to \(upstream) before the total timeout")
        }
        let id = ids.add(1, ordering: .relaxed).newValue
        defer { timers.withLock { $0.removeValue(forKey: id) }?.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let action = machine.withLock { $0.acquire(id: id, waiter: continuation, isCancelled: Task.isCancelled) }
                switch action {
                case .run: continuation.resume()
                case .wait:
                    guard let deadline else { break }
                    // Waiting is bounded by the read's deadline, as the transfer itself is.
                    let timer = Task { [self] in
                        try? await Task.sleep(until: deadline, clock: .continuous)
                        guard !Task.isCancelled else { return }
                        machine.withLock { $0.cancel(id: id) }?
                            .resume(throwing: UpstreamError(.timeout, "no slot to \(upstream) before the total timeout"))
                    }
                    timers.withLock { $0[id] = timer }
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .refuse:
                    continuation.resume(throwing: UpstreamError(.overloaded, "the queue for \(upstream) is full", retryAfter: 1))
                }
            }
        } onCancel: {
            machine.withLock { $0.cancel(id: id) }?.resume(throwing: CancellationError())
        }
    }

    /// Gives a slot back (to the next waiter, if any).
    public func release() {
        machine.withLock { $0.release() }?.resume()
    }

    public var inFlight: Int { machine.withLock { $0.running } }
    /// Acquirers waiting for a slot.
    public var queued: Int { machine.withLock { $0.queued } }
}

/// Passes every request through a ``ConcurrencyGate``.
public struct GatedTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let gate: ConcurrencyGate

    public init(base: any UpstreamTransport, gate: ConcurrencyGate) {
        self.base = base
        self.gate = gate
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        if let notes = UpstreamCallNotes.current {
            // A traced call: its span reports the wait.
            let asked = ContinuousClock.now
            try await gate.acquire(until: UpstreamDeadline.current)
            notes.noteGateWait(ContinuousClock.now - asked)
        } else {
            try await gate.acquire(until: UpstreamDeadline.current)
        }
        defer { gate.release() }
        return try await base.send(request)
    }
}
