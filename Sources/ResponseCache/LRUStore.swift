/// A byte-bounded LRU map. Not thread-safe by itself: ``ResponseCache`` keeps it in a `Mutex`.
/// Every operation is O(1) (a dictionary plus an intrusive doubly linked list).
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
        @usableFromInline var previous: Node?
        @usableFromInline var next: Node?
        /// The store's ``touches`` when the node last moved to the front.
        @usableFromInline var touched = 0
        init(key: String, entry: CacheEntry<Value>) {
            self.key = key
            self.entry = entry
        }
    }

    @usableFromInline var nodes: [String: Node] = [:]
    /// Counts reads and writes: a read moves its node to the front only when more than an
    /// eighth of the store's entries were touched since it last moved, so a hot entry is not
    /// relinked on every hit (each relink is several reference-count writes under the cache's
    /// lock). The order stays LRU to within that eighth: an entry still in the most recent
    /// eighth is never the least recently used one.
    @usableFromInline var touches = 0
    /// Most recently used.
    @usableFromInline var head: Node?
    /// Least recently used.
    @usableFromInline var tail: Node?
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

    /// The entry, marked most recently used.
    mutating func get(_ key: String) -> CacheEntry<Value>? {
        guard let node = nodes[key] else { return nil }
        touch(node)
        return node.entry
    }

    /// Runs `body` on the entry in place (no copy), marked most recently used.
    @inlinable
    mutating func withEntry<R>(_ key: String, _ body: (borrowing CacheEntry<Value>) -> R?) -> R? {
        guard let node = nodes[key] else { return nil }
        touch(node)
        return body(node.entry)
    }

    /// A read of `node`: to the front, unless it moved there recently (see ``touches``).
    @inlinable
    mutating func touch(_ node: Node) {
        touches &+= 1
        guard touches &- node.touched > nodes.count / 8 else { return }
        moveToFront(node)
    }

    /// Inserts or replaces; evicts least recently used entries until the bound holds.
    /// Returns how many entries were evicted.
    @discardableResult
    mutating func set(_ key: String, _ entry: CacheEntry<Value>) -> Int {
        if let existing = nodes[key] {
            bytes -= Self.charge(key, existing.entry)
            existing.entry = entry
            bytes += Self.charge(key, entry)
            moveToFront(existing)
        } else {
            let node = Node(key: key, entry: entry)
            nodes[key] = node
            bytes += Self.charge(key, entry)
            insertAtFront(node)
        }
        var evicted = 0
        while bytes > maxBytes, let last = tail, last.key != key || nodes.count > 1 {
            if last.key == key { break }
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

    @inlinable
    mutating func moveToFront(_ node: Node) {
        node.touched = touches
        guard head !== node else { return }
        unlink(node)
        insertAtFront(node)
    }

    @inlinable
    mutating func insertAtFront(_ node: Node) {
        touches &+= 1
        node.touched = touches
        node.previous = nil
        node.next = head
        head?.previous = node
        head = node
        if tail == nil { tail = node }
    }

    @inlinable
    mutating func unlink(_ node: Node) {
        if let previous = node.previous { previous.next = node.next } else { head = node.next }
        if let next = node.next { next.previous = node.previous } else { tail = node.previous }
        node.previous = nil
        node.next = nil
    }
}
