import DequeModule
public import Foundation
import Synchronization
import GatewayObservability

/// Where a reader of the feed is: after the event with this sequence number, in the log of one
/// process start (`epoch`). Written `{epoch}.{sequence}`; a cursor of another epoch (another
/// process, before a restart) is never taken for one of this one.
public struct FeedCursor: Sendable, Equatable, CustomStringConvertible {
    public let epoch: String
    public let sequence: UInt64

    public init(epoch: String, sequence: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
    }

    /// A cursor as written; nil for anything else (a caller's input: at most 64 bytes read).
    public init?(_ text: Substring) {
        guard text.utf8.count <= 64, let dot = text.firstIndex(of: ".") else { return nil }
        let epoch = text[..<dot]
        guard (1...32).contains(epoch.utf8.count), epoch.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
            let sequence = UInt64(text[text.index(after: dot)...])
        else { return nil }
        self.init(epoch: String(epoch), sequence: sequence)
    }

    public var description: String { "\(epoch).\(sequence)" }
}

/// The feed's log in this process: the last `capacity` events, in order, each with its JSON made
/// once. Readers ask for what follows their cursor and may wait for more; a cursor older than
/// what is kept, or of another process start, is *gone* (the caller resyncs), never a silent gap.
public final class EventLog: Sendable {
    /// Of this process start: 16 hex digits, random.
    public let epoch: String
    public let capacity: Int
    /// How many readers may wait at once (long polls and streams); beyond, a reader is refused.
    public let maxWaiters: Int

    private struct State {
        var events = Deque<FeedEvent>()
        /// The sequence number the next event gets (the first is 1; 0 is "before everything").
        var next: UInt64 = 1
        var closed = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
        /// Readers waiting now or holding a place (``reserve()``).
        var places = 0
    }

    private let state = Mutex(State())
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public init(capacity: Int = 10_000, maxWaiters: Int = 1_000, epoch: String? = nil) {
        self.capacity = max(1, capacity)
        self.maxWaiters = max(0, maxWaiters)
        self.epoch = epoch ?? String((0..<16).map { _ in "0123456789abcdef".randomElement() ?? "0" })
    }

    /// The cursor after the newest event (where a reader starting now begins).
    public var head: FeedCursor {
        state.withLock { FeedCursor(epoch: epoch, sequence: $0.next - 1) }
    }

    /// Logs `drafts` in order, now; wakes every waiting reader. Returns the events as logged.
    @discardableResult
    public func append(_ drafts: [FeedEventDraft], at time: Date = Date()) -> [FeedEvent] {
        guard !drafts.isEmpty else { return [] }
        let stamp = Self.timestamp(time)
        let (logged, woken) = state.withLock { state -> ([FeedEvent], [CheckedContinuation<Void, Never>]) in
            var logged: [FeedEvent] = []
            for draft in drafts {
                let sequence = state.next
                state.next += 1
                let event = FeedEvent(epoch: epoch, sequence: sequence, kind: draft.kind, upstream: draft.upstream, audience: draft.audience, tail: Self.tail(draft, time: stamp))
                state.events.append(event)
                if state.events.count > capacity { state.events.removeFirst() }
                logged.append(event)
            }
            let woken = Array(state.waiters.values)
            state.waiters.removeAll()
            return (logged, woken)
        }
        for waiter in woken { waiter.resume() }
        return logged
    }

    /// What follows `after`.
    public enum Read: Sendable {
        /// Up to `limit` events the reader may see, and the cursor to ask from next (past the
        /// events it may not see, too).
        case events([FeedEvent], next: FeedCursor)
        /// The cursor is of another process start, or older than the oldest kept event.
        case gone
    }

    /// The events after `after` (nil: from now) that `visible` lets through, at most `limit`.
    public func read(after: FeedCursor?, limit: Int, visible: (FeedEvent) -> Bool) -> Read {
        state.withLock { state in
            let newest = state.next - 1
            guard let after else { return .events([], next: FeedCursor(epoch: epoch, sequence: newest)) }
            let oldest = state.events.first?.sequence ?? state.next
            guard after.epoch == epoch, after.sequence <= newest, after.sequence + 1 >= oldest else { return .gone }
            var found: [FeedEvent] = []
            var position = after.sequence
            var index = Int(after.sequence + 1 - oldest)
            while index < state.events.count, found.count < limit {
                let event = state.events[index]
                if visible(event) { found.append(event) }
                position = event.sequence
                index += 1
            }
            return .events(found, next: FeedCursor(epoch: epoch, sequence: position))
        }
    }

    /// Why a reader could not wait.
    public enum WaitRefusal: Error, Sendable {
        /// ``maxWaiters`` readers wait already.
        case tooManyReaders
    }

    /// Holds a place among the waiting readers for as long as `body` runs (a long poll or a
    /// stream): refused when ``maxWaiters`` are held.
    public func withPlace<T>(_ body: () async throws -> T) async throws -> T {
        let taken = state.withLock { state -> Bool in
            guard state.places < maxWaiters else { return false }
            state.places += 1
            return true
        }
        guard taken else { throw WaitRefusal.tooManyReaders }
        defer { state.withLock { $0.places -= 1 } }
        return try await body()
    }

    /// Waits until an event after `sequence` is logged, the log closes, `deadline` passes or the
    /// task is cancelled. Returns whether the log is still open.
    public func wait(after sequence: UInt64, until deadline: ContinuousClock.Instant) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.signal(after: sequence) }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
        return state.withLock { !$0.closed }
    }

    /// Returns once an event after `sequence` exists, the log is closed, or the task is cancelled.
    private func signal(after sequence: UInt64) async {
        let ticket = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.closed || state.next - 1 > sequence || Task.isCancelled { return true }
                    state.waiters[ticket] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: ticket) }?.resume()
        }
    }

    /// Ends every wait now and from now on (the gateway is stopping: streams end, long polls answer).
    public func close() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// An event's JSON without its id (`{"changed":…,"data":…,"time":…,"type":…,"upstream":…}`):
    /// what a log stores; ``FeedEvent`` puts the id in front when it is read.
    public static func tail(_ draft: FeedEventDraft, time: String) -> [UInt8] {
        (try? encoder.encode(Encoded(type: draft.kind, time: time, upstream: draft.upstream, data: draft.data, changed: draft.changed))).map(Array.init) ?? Array("{}".utf8)
    }

    private struct Encoded: Encodable {
        var type: FeedEvent.Kind
        var time: String
        var upstream: String
        var data: FeedPayload
        var changed: [String]?
    }

    /// RFC 3339 UTC with milliseconds, as the status board writes times.
    public static func timestamp(_ date: Date) -> String {
        StatusBoard.timestamp(date)
    }
}
