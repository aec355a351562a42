import ChangeFeed
import Foundation
import TenantModel
import Testing

@Suite("Change feed: the event log and list changes")
struct EventLogTests {
    static func draft(_ n: Int, kind: Tenant.Kind = .cloudTenant) -> FeedEventDraft {
        FeedEventDraft(
            kind: .tenantCreated, upstream: "vspc-main", audience: .tenant(kind: kind, id: "vspc-main.\(n)", customers: []),
            data: FeedPayload(["n": n]))
    }

    @Test("cursors: events after a cursor in order, past what a reader may not see; from now; gone when older than what is kept or of another start; malformed is nil")
    func cursors() throws {
        let log = EventLog(capacity: 5, epoch: "abc123")
        #expect(log.head == FeedCursor(epoch: "abc123", sequence: 0))
        log.append((1...3).map { Self.draft($0) })
        guard case .events(let all, let next) = log.read(after: FeedCursor(epoch: "abc123", sequence: 0), limit: 10, visible: { _ in true }) else {
            Issue.record("gone")
            return
        }
        #expect(all.map(\.id) == ["abc123.1", "abc123.2", "abc123.3"] && next.sequence == 3)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(all[0].bytes)) as? [String: Any])
        #expect(json["id"] as? String == "abc123.1" && json["type"] as? String == "tenant.created" && json["upstream"] as? String == "vspc-main")
        #expect((json["time"] as? String)?.hasSuffix("Z") == true && (json["data"] as? [String: Int])?["n"] == 1)
        // What a reader may not see is skipped, and its cursor moves past it.
        guard case .events(let some, let after) = log.read(after: FeedCursor(epoch: "abc123", sequence: 0), limit: 10, visible: { $0.sequence != 2 }) else { return }
        #expect(some.map(\.sequence) == [1, 3] && after.sequence == 3)
        guard case .events(let limited, let partway) = log.read(after: FeedCursor(epoch: "abc123", sequence: 0), limit: 2, visible: { _ in true }) else { return }
        #expect(limited.count == 2 && partway.sequence == 2)
        // No cursor: from now on.
        guard case .events(let none, let now) = log.read(after: nil, limit: 10, visible: { _ in true }) else { return }
        #expect(none.isEmpty && now.sequence == 3)
        // Six more: the first four are gone (capacity 5).
        log.append((4...9).map { Self.draft($0) })
        if case .events = log.read(after: FeedCursor(epoch: "abc123", sequence: 3), limit: 10, visible: { _ in true }) { Issue.record("a cursor older than the kept events must be gone") }
        guard case .events(let kept, _) = log.read(after: FeedCursor(epoch: "abc123", sequence: 4), limit: 10, visible: { _ in true }) else {
            Issue.record("the cursor just before the oldest kept event is still good")
            return
        }
        #expect(kept.map(\.sequence) == [5, 6, 7, 8, 9])
        if case .events = log.read(after: FeedCursor(epoch: "fff", sequence: 5), limit: 10, visible: { _ in true }) { Issue.record("another start's cursor must be gone") }
        if case .events = log.read(after: FeedCursor(epoch: "abc123", sequence: 99), limit: 10, visible: { _ in true }) { Issue.record("a cursor from the future must be gone") }
        #expect(FeedCursor("abc123.7") == FeedCursor(epoch: "abc123", sequence: 7))
        for bad in ["", "abc123", ".7", "abc123.", "ABC.1", "abc.-1", "abc.1x", String(repeating: "a", count: 70) + ".1", "zz.1"] {
            #expect(FeedCursor(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test("a waiting reader wakes when an event is logged, at its deadline, and when the log closes; places are bounded")
    func waiting() async throws {
        let log = EventLog(capacity: 10, maxWaiters: 1, epoch: "e")
        let started = ContinuousClock.now
        #expect(await log.wait(after: 0, until: .now + .milliseconds(50)))
        #expect(ContinuousClock.now - started >= .milliseconds(50))
        async let woke = log.wait(after: 0, until: .now + .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        log.append([Self.draft(1)])
        #expect(await woke)
        // An event already there: no wait at all.
        #expect(await log.wait(after: 0, until: .now + .seconds(30)))
        // One place: the second reader is refused while the first holds it.
        try await log.withPlace {
            await #expect(throws: EventLog.WaitRefusal.self) { try await log.withPlace {} }
        }
        try await log.withPlace {}
        async let closing = log.wait(after: 1, until: .now + .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        log.close()
        #expect(await closing == false)
        #expect(await log.wait(after: 1, until: .now + .seconds(30)) == false)
    }

    @Test("a cancelled wait returns at once")
    func cancelled() async {
        let log = EventLog(epoch: "e")
        let task = Task { await log.wait(after: 0, until: .now + .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(30))
        let started = ContinuousClock.now
        task.cancel()
        _ = await task.value
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    static func tenant(_ id: String, name: String, enabled: Bool = true, detail: String = "x") throws -> Tenant {
        let json = #"{"id":"\#(id)","kind":"cloudTenant","source":{"product":"vspc","upstream":"u","id":"1"},"name":"\#(name)","enabled":\#(enabled),"backup":{},"details":{"a":"\#(detail)","b":1}}"#
        return try JSONDecoder().decode(Tenant.self, from: Data(json.utf8))
    }

    @Test("list changes: created, changed with the members that changed, removed; none removed from a partial read")
    func changes() throws {
        let before = [try Self.tenant("u.1", name: "One"), try Self.tenant("u.2", name: "Two"), try Self.tenant("u.3", name: "Three")]
        let previous = Dictionary(uniqueKeysWithValues: before.map { ($0.id, $0) })
        let after = [try Self.tenant("u.1", name: "One"), try Self.tenant("u.2", name: "Zwei", enabled: false, detail: "y"), try Self.tenant("u.4", name: "Four")]
        let changes = ListChanges.between(previous, after)
        #expect(changes.created.map(\.id) == ["u.4"])
        #expect(changes.changed.map(\.tenant.id) == ["u.2"])
        #expect(changes.changed.first?.members == ["details.a", "enabled", "name"])
        #expect(changes.removed.map(\.id) == ["u.3"])
        #expect(ListChanges.between(previous, after, complete: false).removed.isEmpty)
        #expect(ListChanges.between(previous, before).isEmpty)
    }
}
