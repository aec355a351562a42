/// A byte-bounded map that evicts least recently used entries first, by the second-chance
/// (CLOCK) approximation of LRU. Not thread-safe by itself: ``ResponseCache`` keeps it in a
/// `Mutex`. Every operation is O(1), eviction amortized (a dictionary plus an intrusive doubly
/// linked list).
///
/// A read only marks its entry referenced: one store, no relinking (a relink is several
/// reference-count writes under the cache's lock, on every hit). Entries are linked in the order
/// they were stored or last given a second chance; eviction takes the oldest, but one marked
/// referenced since it was linked is moved to the front unmarked instead and the next is tried.
/// So an entry read since it was linked is evicted only after every entry not read since, and
/// each entry is moved at most once per read, however long the scan.
///
/// What a cache hit runs (``withEntry(_:_:)`` and the touch) is `@usableFromInline`, so that
/// ``ResponseCache/withFreshEntry(_:_:)`` is specialized in its caller's module for the cached
/// value's type rather than run as generic code (a dictionary of a generic class, each call
/// through witness tables and metadata lookups).
@usableFromInline
struct LRUStore<Value: Sendable> {
    @usableFromInline
    final class Node {
        @usableFromInline let key: String
        @usableFromInline var entry: CacheEntry<Value>
        var previous: Node?
        var next: Node?
        /// Read since it was linked at the front (its second chance, taken at eviction).
        @usableFromInline var referenced = false
        init(key: String, entry: CacheEntry<Value>) {
            self.key = key
            self.entry = entry
        }
    }

    @usableFromInline var nodes: [String: Node] = [:]
    /// Most recently linked.
    var head: Node?
    /// Least recently linked: the next candidate for eviction.
    var tail: Node?
    /// What every entry is charged: its own bytes, its key's and its ETag's UTF-8 and
    /// ``entryOverhead``. So many small entries under long keys (a list page per `q` and offset)
    /// fill the bound as the memory they hold does, not as their bodies alone would.
    private(set) var bytes = 0
    let maxBytes: Int
    /// The node object, the dictionary slot and the entry's fixed fields, rounded up.
    static var entryOverhead: Int { 256 }

    static func charge(_ key: String, _ entry: CacheEntry<Value>) -> Int {
        entry.bytes + key.utf8.count + entry.etag.utf8.count + entryOverhead
    }

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    var count: Int { nodes.count }

    /// The entry, marked as read.
    mutating func get(_ key: String) -> CacheEntry<Value>? {
        guard let node = nodes[key] else { return nil }
        touch(node)
        return node.entry
    }

    /// Runs `body` on the entry in place (no copy), marked as read.
    @inlinable
    mutating func withEntry<R>(_ key: String, _ body: (borrowing CacheEntry<Value>) -> R?) -> R? {
        guard let node = nodes[key] else { return nil }
        touch(node)
        return body(node.entry)
    }

    /// A read of `node`: marked for a second chance (written only when it changes).
    @inlinable
    mutating func touch(_ node: Node) {
        if !node.referenced { node.referenced = true }
    }

    /// Inserts or replaces; evicts least recently used entries until the bound holds.
    /// Returns how many entries were evicted.
    @discardableResult
    mutating func set(_ key: String, _ entry: CacheEntry<Value>) -> Int {
        let stored: Node
        if let existing = nodes[key] {
            bytes -= Self.charge(key, existing.entry)
            existing.entry = entry
            bytes += Self.charge(key, entry)
            moveToFront(existing)
            stored = existing
        } else {
            stored = Node(key: key, entry: entry)
            nodes[key] = stored
            bytes += Self.charge(key, entry)
            insertAtFront(stored)
        }
        var evicted = 0
        // Ends: each pass either evicts, or moves an entry to the front unmarked (at most once
        // per entry before an unmarked one reaches the tail). The entry just stored is not
        // evicted for its own sake, only passed over, and never when it is alone.
        while bytes > maxBytes, let last = tail, nodes.count > 1 {
            if last.referenced || last === stored {
                moveToFront(last)
                continue
            }
            remove(last.key)
            evicted += 1
        }
        return evicted
    }

    @discardableResult
    mutating func remove(_ key: String) -> CacheEntry<Value>? {
        guard let node = nodes.removeValue(forKey: key) else { return nil }
        unlink(node)
        bytes -= Self.charge(key, node.entry)
        return node.entry
    }

    mutating func removeAll(where predicate: (String, CacheEntry<Value>) -> Bool) -> Int {
        let doomed = nodes.filter { predicate($0.key, $0.value.entry) }.map(\.key)
        for key in doomed { remove(key) }
        return doomed.count
    }

    /// To the front, unmarked: stored again, or given its second chance.
    mutating func moveToFront(_ node: Node) {
        node.referenced = false
        guard head !== node else { return }
        unlink(node)
        insertAtFront(node)
    }

    mutating func insertAtFront(_ node: Node) {
        node.previous = nil
        node.next = head
        head?.previous = node
        head = node
        if tail == nil { tail = node }
    }

    mutating func unlink(_ node: Node) {
        if let previous = node.previous { previous.next = node.next } else { head = node.next }
        if let next = node.next { next.previous = node.previous } else { tail = node.previous }
        node.previous = nil
        node.next = nil
    }
}
