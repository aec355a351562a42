#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Synchronization

/// State split into shards by the calling thread, each behind its own lock: what every request
/// writes (counters, memos, the snapshot it reads) is kept once per shard, so event-loop threads
/// recording at once do not contend for one lock and one cache line. A thread always lands on
/// the same shard (the shard is a function of its id); two threads may share one, which costs
/// what a single lock costs, never correctness. Readers that need the whole combine every shard.
public final class ThreadShards<Value: Sendable>: Sendable {
    /// One shard: a lock and its value.
    @usableFromInline
    final class Shard: Sendable {
        @usableFromInline let value: Mutex<Value>
        init(_ value: sending Value) { self.value = Mutex(value) }
    }

    // Visible to inlined callers: the shard is chosen where it is used, specialized for its
    // value, not through generic metadata on every call.
    @usableFromInline let shards: [Shard]
    @usableFromInline let mask: UInt

    /// `count` shards (rounded up to a power of two), each starting as `make()`.
    public init(count: Int = 16, _ make: () -> Value) {
        var size = 1
        while size < count { size <<= 1 }
        self.shards = (0..<size).map { _ in Shard(make()) }
        self.mask = UInt(size - 1)
    }

    /// Runs `body` on the calling thread's shard.
    @inlinable
    public func withCurrent<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        try shards[Self.index(mask)].value.withLock(body)
    }

    /// Runs `body` on each shard in turn (each under its own lock).
    public func forEach(_ body: (inout sending Value) -> Void) {
        for shard in shards { shard.value.withLock { body(&$0) } }
    }

    /// The calling thread's shard: its id (an address, so its low bits are alignment) mixed by a
    /// multiplicative hash.
    @usableFromInline
    static func index(_ mask: UInt) -> Int {
        #if canImport(Glibc)
        let id = UInt64(pthread_self())
        #else
        let id = UInt64(UInt(bitPattern: pthread_self()))
        #endif
        return Int(UInt((id &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask)
    }
}
