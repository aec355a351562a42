/// Where the change feed's events are kept and read: this process's ``EventLog``, or a log the
/// replicas share (the shared tier's). Readers and writers use only this.
public protocol FeedLog: Sendable {
    /// The cursor after the newest event.
    func currentHead() async -> FeedCursor
    /// Logs `drafts` in order; the events as logged.
    @discardableResult
    func log(_ drafts: [FeedEventDraft]) async -> [FeedEvent]
    /// The events after `after` (nil: from now) that `visible` lets through, at most `limit`.
    func events(after: FeedCursor?, limit: Int, visible: (FeedEvent) -> Bool) async -> EventLog.Read
    /// Waits until an event after `cursor` may exist, the log closes, or `deadline`; whether it is open.
    func waitForEvents(after cursor: FeedCursor, until deadline: ContinuousClock.Instant) async -> Bool
    /// Holds a place among this replica's waiting readers while `body` runs.
    func withPlace<T>(_ body: () async throws -> T) async throws -> T
    /// How many readers may wait at once on this replica.
    var maxWaiters: Int { get }
    /// Ends every wait (the gateway is stopping).
    func close()
    /// Where the events are now, for `/readyz` and `/v1/status`.
    var mode: String { get }
}

extension EventLog: FeedLog {
    public var mode: String { "this replica's own log" }

    public func currentHead() async -> FeedCursor { head }

    @discardableResult
    public func log(_ drafts: [FeedEventDraft]) async -> [FeedEvent] {
        append(drafts, at: .now)
    }

    public func events(after: FeedCursor?, limit: Int, visible: (FeedEvent) -> Bool) async -> Read {
        read(after: after, limit: limit, visible: visible)
    }

    public func waitForEvents(after cursor: FeedCursor, until deadline: ContinuousClock.Instant) async -> Bool {
        await wait(after: cursor.sequence, until: deadline)
    }
}
