public import ChangeFeed
import Foundation
import Synchronization

/// The change feed shared by the replicas through Redis: one stream of events every replica
/// reads (`{prefix}feed:events`, trimmed to about `keep` entries), each event's sequence number
/// from one counter in the same script that appends it, cursors `{epoch}.{sequence}` with the
/// epoch of the stream (made once, kept in `{prefix}feed:epoch`: a Redis that lost its data makes
/// a new one, and old cursors are gone, never misread). An append is announced on the tier's
/// `filled` channel (`feed`) so that waiting readers on every replica look again; they also look
/// at least every second.
///
/// When Redis does not answer, the feed is this replica's own log (``local``): events logged
/// meanwhile stay here, and a cursor of the shared stream is gone there (the reader resyncs).
/// ``isShared`` says which it is now, for `/readyz` and `/v1/status`.
///
/// It also coordinates the replicas (``FeedCoordination``): a lease per upstream decides which
/// one polls it, the last poll's tenants are kept per upstream so that a replica taking over
/// compares with them, and a lease and a stored position per webhook endpoint decide who
/// delivers to it and from where.
public final class RedisFeed: FeedLog, FeedCoordination {
    let client: RedisClient
    let notifier: FillNotifier
    /// This replica's log: used while Redis does not answer; its places bound this replica's readers.
    public let local: EventLog
    let keep: Int
    let replica: String
    private let epochCache = Mutex<String?>(nil)
    private let shared = Atomic<Bool>(true)

    public init(client: RedisClient, notifier: FillNotifier, local: EventLog, replica: String) {
        self.client = client
        self.notifier = notifier
        self.local = local
        self.keep = local.capacity
        self.replica = replica
    }

    /// Whether the last command reached Redis (false: the feed is this replica's own for now).
    public var isShared: Bool { shared.load(ordering: .relaxed) }

    public var mode: String {
        isShared ? "shared by the replicas (Redis stream)" : "this replica's own log: the shared tier does not answer, so each replica polls and logs alone"
    }

    var prefix: String { client.settings.keyPrefix + "feed:" }
    var streamKey: String { prefix + "events" }
    var sequenceKey: String { prefix + "seq" }
    var epochKey: String { prefix + "epoch" }
    public var maxWaiters: Int { local.maxWaiters }

    /// Runs a command; nil (and not shared) when Redis does not answer.
    func run(_ arguments: [String]) async -> RedisReply? {
        do {
            let reply = try await client.command(arguments)
            shared.store(true, ordering: .relaxed)
            return reply
        } catch {
            shared.store(false, ordering: .relaxed)
            return nil
        }
    }

    /// The stream's epoch, made when there is none.
    func epoch() async -> String? {
        if let known = epochCache.withLock({ $0 }) {
            // Redis may have lost its data since: the epoch is checked with every read's answer.
            return known
        }
        let made = String((0..<16).map { _ in "0123456789abcdef".randomElement() ?? "0" })
        _ = await run(["SET", epochKey, made, "NX"])
        guard let reply = await run(["GET", epochKey]), let bytes = reply.bytes else { return nil }
        let epoch = String(decoding: bytes, as: UTF8.self)
        epochCache.withLock { $0 = epoch }
        return epoch
    }

    /// Forgets the cached epoch (Redis answered with none: it lost its data).
    func forgetEpoch() { epochCache.withLock { $0 = nil } }

    public func currentHead() async -> FeedCursor {
        guard let epoch = await epoch(), let reply = await run(["GET", sequenceKey]) else { return local.head }
        let sequence = reply.bytes.flatMap { UInt64(String(decoding: $0, as: UTF8.self)) } ?? 0
        return FeedCursor(epoch: epoch, sequence: sequence)
    }

    /// Appends in one script: each event gets the next number of the counter and the stream id
    /// `{number}-0`, so that ids and cursors agree whichever replica appends.
    static let appendScript = """
        local numbers = {}
        for i = 2, #ARGV, 4 do
          local n = redis.call('INCR', KEYS[2])
          redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], n .. '-0', 'k', ARGV[i], 'u', ARGV[i + 1], 'a', ARGV[i + 2], 'b', ARGV[i + 3])
          numbers[#numbers + 1] = n
        end
        return numbers
        """

    @discardableResult
    public func log(_ drafts: [FeedEventDraft]) async -> [FeedEvent] {
        guard !drafts.isEmpty else { return [] }
        guard let epoch = await epoch() else { return local.append(drafts) }
        let stamp = EventLog.timestamp(Date())
        var arguments = ["EVAL", Self.appendScript, "2", streamKey, sequenceKey, String(keep)]
        var tails: [[UInt8]] = []
        for draft in drafts {
            let tail = EventLog.tail(draft, time: stamp)
            tails.append(tail)
            arguments += [draft.kind.rawValue, draft.upstream, draft.audience.stored, String(decoding: tail, as: UTF8.self)]
        }
        guard let reply = await run(arguments), case .array(let numbers) = reply, numbers.count == drafts.count else {
            return local.append(drafts)
        }
        var logged: [FeedEvent] = []
        for (index, number) in numbers.enumerated() {
            guard case .integer(let sequence) = number, sequence > 0 else { continue }
            let draft = drafts[index]
            logged.append(
                FeedEvent(epoch: epoch, sequence: UInt64(sequence), kind: draft.kind, upstream: draft.upstream, audience: draft.audience, tail: tails[index]))
        }
        _ = await run(["PUBLISH", RedisSharedTier.filledChannel(client.settings), "feed"])
        return logged
    }

    public func events(after: FeedCursor?, limit: Int, visible: (FeedEvent) -> Bool) async -> EventLog.Read {
        guard let epoch = await epoch() else { return local.read(after: after, limit: limit, visible: visible) }
        guard let after else { return .events([], next: await currentHead()) }
        guard after.epoch == epoch else {
            // A cursor of this replica's own log, made while Redis was away, is read there.
            return after.epoch == local.epoch ? local.read(after: after, limit: limit, visible: visible) : .gone
        }
        guard let first = await run(["XRANGE", streamKey, "-", "+", "COUNT", "1"]), let newest = await run(["GET", sequenceKey]) else {
            return .gone
        }
        let newestNumber = newest.bytes.flatMap { UInt64(String(decoding: $0, as: UTF8.self)) } ?? 0
        let oldest = Self.entries(first).first?.sequence ?? newestNumber + 1
        guard after.sequence <= newestNumber, after.sequence + 1 >= oldest else {
            if newest.bytes == nil { forgetEpoch() }
            return .gone
        }
        var found: [FeedEvent] = []
        var position = after.sequence
        // In batches until `limit` visible events or the end: a caller may see few of many.
        while found.count < limit, position < newestNumber {
            guard let reply = await run(["XRANGE", streamKey, "(\(position)-0", "+", "COUNT", String(max(limit, 100))]) else { break }
            let batch = Self.entries(reply)
            guard !batch.isEmpty else { break }
            for entry in batch {
                guard let kind = FeedEvent.Kind(rawValue: entry.kind), let audience = FeedEvent.Audience(stored: entry.audience) else {
                    position = entry.sequence
                    continue
                }
                let event = FeedEvent(epoch: epoch, sequence: entry.sequence, kind: kind, upstream: entry.upstream, audience: audience, tail: entry.tail)
                position = entry.sequence
                if visible(event) {
                    found.append(event)
                    if found.count == limit { break }
                }
            }
        }
        return .events(found, next: FeedCursor(epoch: epoch, sequence: position))
    }

    /// One stream entry as stored.
    struct Entry {
        var sequence: UInt64
        var kind: String
        var upstream: String
        var audience: String
        var tail: [UInt8]
    }

    /// The entries of an `XRANGE` reply.
    static func entries(_ reply: RedisReply) -> [Entry] {
        guard case .array(let items) = reply else { return [] }
        return items.compactMap { item -> Entry? in
            guard case .array(let pair) = item, pair.count == 2, let id = pair[0].bytes, case .array(let fields) = pair[1] else { return nil }
            let idText = String(decoding: id, as: UTF8.self)
            guard let sequence = UInt64(idText.prefix { $0 != "-" }) else { return nil }
            var values: [String: [UInt8]] = [:]
            var index = 0
            while index + 1 < fields.count {
                if let name = fields[index].bytes, let value = fields[index + 1].bytes { values[String(decoding: name, as: UTF8.self)] = value }
                index += 2
            }
            guard let kind = values["k"], let upstream = values["u"], let audience = values["a"], let tail = values["b"] else { return nil }
            return Entry(
                sequence: sequence, kind: String(decoding: kind, as: UTF8.self), upstream: String(decoding: upstream, as: UTF8.self),
                audience: String(decoding: audience, as: UTF8.self), tail: tail)
        }
    }

    public func waitForEvents(after cursor: FeedCursor, until deadline: ContinuousClock.Instant) async -> Bool {
        guard cursor.epoch != local.epoch else { return await local.wait(after: cursor.sequence, until: deadline) }
        while !Task.isCancelled, !local.isClosed {
            if let newest = await run(["GET", sequenceKey]), let number = newest.bytes.flatMap({ UInt64(String(decoding: $0, as: UTF8.self)) }),
                number > cursor.sequence
            {
                return true
            }
            let now = ContinuousClock.now
            guard now < deadline else { return true }
            // Woken by an append on any replica, or after a second at most.
            await notifier.wait("feed", since: now, timeout: min(deadline - now, .seconds(1)))
        }
        return !local.isClosed
    }

    public func withPlace<T>(_ body: () async throws -> T) async throws -> T {
        try await local.withPlace(body)
    }

    public func close() { local.close() }

    // MARK: Coordination

    /// Takes or keeps a lease for `ttl`: 1 when this replica holds it now.
    static let leaseScript = """
        local holder = redis.call('GET', KEYS[1])
        if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
        if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
        return 0
        """

    public func leads(_ role: String, for ttl: Duration) async -> Bool? {
        let milliseconds = max(1, Int(ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000))
        guard let reply = await run(["EVAL", Self.leaseScript, "1", prefix + "lease:" + role, replica, String(milliseconds)]),
            case .integer(let held) = reply
        else { return nil }
        return held == 1
    }

    public func records(of set: String) async -> [String: [UInt8]]? {
        guard let reply = await run(["HGETALL", prefix + "seen:" + set]), case .array(let items) = reply, !items.isEmpty else { return nil }
        var records: [String: [UInt8]] = [:]
        var index = 0
        while index + 1 < items.count {
            if let id = items[index].bytes, let json = items[index + 1].bytes { records[String(decoding: id, as: UTF8.self)] = json }
            index += 2
        }
        return records
    }

    public func store(records changed: [String: [UInt8]], removed: [String], in set: String) async {
        let key = prefix + "seen:" + set
        let entries = Array(changed)
        // In slices: one command stays small whatever the list's size.
        for start in stride(from: 0, to: entries.count, by: 500) {
            var arguments: [[UInt8]] = [Array("HSET".utf8), Array(key.utf8)]
            for (id, json) in entries[start..<min(start + 500, entries.count)] { arguments += [Array(id.utf8), json] }
            do {
                _ = try await client.command(arguments)
            } catch {
                return
            }
        }
        for start in stride(from: 0, to: removed.count, by: 500) {
            guard await run(["HDEL", key] + removed[start..<min(start + 500, removed.count)]) != nil else { return }
        }
    }

    /// Webhooks whose consumer group this replica made sure of.
    private let groups = Mutex<Set<String>>([])

    /// Makes sure webhook `hook`'s group exists (new groups start at the stream's end).
    func ensureGroup(_ hook: String) async -> Bool {
        if groups.withLock({ $0.contains(hook) }) { return true }
        do {
            _ = try await client.command(["XGROUP", "CREATE", streamKey, "hook:" + hook, "$", "MKSTREAM"])
        } catch where error.code == .refused && error.message.contains("BUSYGROUP") {
            // It exists: another replica (or an earlier start) made it.
        } catch {
            shared.store(false, ordering: .relaxed)
            return false
        }
        groups.withLock { _ = $0.insert(hook) }
        return true
    }

    public func nextDelivery(for hook: String) async -> GroupDelivery {
        guard let epoch = await epoch(), await ensureGroup(hook) else { return .unavailable }
        let group = "hook:" + hook
        // What the group holds pending, whoever read it last (one deliverer at a time holds the
        // endpoint's lease: a pending entry is one its last holder did not finish), oldest first.
        guard let claimed = await run(["XAUTOCLAIM", streamKey, group, replica, "0", "0-0", "COUNT", "1"]) else { return .unavailable }
        if case .array(let parts) = claimed, parts.count >= 2 {
            if let entry = Self.entries(parts[1]).first { return delivery(entry, epoch: epoch) }
            if parts.count >= 3, case .array(let deleted) = parts[2], let id = deleted.first?.bytes,
                let sequence = UInt64(String(decoding: id, as: UTF8.self).prefix { $0 != "-" })
            {
                return .missing(sequence)
            }
        }
        guard let read = await run(["XREADGROUP", "GROUP", group, replica, "COUNT", "1", "STREAMS", streamKey, ">"]) else { return .unavailable }
        guard case .array(let streams) = read, case .array(let stream)? = streams.first, stream.count == 2, let entry = Self.entries(stream[1]).first else {
            return .none
        }
        return delivery(entry, epoch: epoch)
    }

    private func delivery(_ entry: Entry, epoch: String) -> GroupDelivery {
        guard let kind = FeedEvent.Kind(rawValue: entry.kind), let audience = FeedEvent.Audience(stored: entry.audience) else {
            return .missing(entry.sequence)
        }
        return .event(FeedEvent(epoch: epoch, sequence: entry.sequence, kind: kind, upstream: entry.upstream, audience: audience, tail: entry.tail))
    }

    public func acknowledge(_ sequence: UInt64, for hook: String) async {
        _ = await run(["XACK", streamKey, "hook:" + hook, "\(sequence)-0"])
    }
}
