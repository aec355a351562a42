import Foundation
import GatewayAccess
import NIOCore
import Synchronization

/// Request ids for requests that bring none: random UUIDs (version 4) from a generator seeded
/// once from the system's, so that making one costs no system call (`UUID()` opens
/// `/dev/urandom` each time on Linux). They identify requests in logs; they are not secrets.
enum RequestIDs {
    private static let generator = Mutex(Xoshiro256StarStar())

    /// The caller's `X-Request-Id` when well-formed (1-128 of `[A-Za-z0-9._:-]`): both front
    /// ends echo it and log under it; nil when absent or not acceptable (then one is made).
    static func accepted(_ offered: String?) -> String? {
        guard let offered, (1...128).contains(offered.utf8.count) else { return nil }
        let acceptable = offered.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x3A || b == 0x2D
        }
        return acceptable ? offered : nil
    }

    static func make() -> String {
        let (random1, random2) = generator.withLock { ($0.next(), $0.next()) }
        return RequestID(random1, random2).text
    }

    /// The text of a UUID's 128 bits (`high`: its first eight bytes), lower-case hex in the
    /// 8-4-4-4-12 form: ``textLength`` bytes, written into `text` from its start.
    static func writeUUID(high: UInt64, low: UInt64, into text: UnsafeMutableRawBufferPointer) {
        var at = 0
        for index in 0..<16 {
            if index == 4 || index == 6 || index == 8 || index == 10 {
                text[at] = UInt8(ascii: "-")
                at += 1
            }
            let word = index < 8 ? high : low
            let byte = UInt8(truncatingIfNeeded: word >> UInt64(56 - (index % 8) * 8))
            text[at] = hexDigit(byte >> 4)
            text[at + 1] = hexDigit(byte & 0x0F)
            at += 2
        }
    }

    /// The length of a UUID's text.
    static let textLength = 36

    /// The lower-case hex digit of a nibble.
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
    }

}

/// A request's id, as `X-Request-Id` carries it: the caller's (``RequestIDs/accepted(_:)``), or a
/// version-4 UUID made here and kept as its 128 bits until its text is asked for. A hit writes
/// those digits straight into its answer (``AnswerWriter/field(_:requestID:)``) and makes no
/// string: only an access line, a problem or an upstream call needs one.
struct RequestID: Sendable {
    private enum Value: Sendable {
        case text(String)
        case uuid(high: UInt64, low: UInt64)
    }

    private let value: Value

    /// The id `text` (the caller's, or one made before).
    init(_ text: String) {
        value = .text(text)
    }

    /// A version-4 UUID of two random words: the version and the variant bits set, the other 122 bits theirs.
    init(_ random1: UInt64, _ random2: UInt64) {
        let high = (random1 & ~0xF000) | 0x4000  // version 4: byte 6's high nibble
        let low = (random2 & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant 10: byte 8's top bits
        value = .uuid(high: high, low: low)
    }

    /// A new version-4 UUID from the caller's generator (no lock).
    static func made(using random: inout Xoshiro256StarStar) -> RequestID {
        RequestID(random.next(), random.next())
    }

    /// The caller's acceptable `X-Request-Id`, else a new UUID from `random`.
    static func of(offered: String?, using random: inout Xoshiro256StarStar) -> RequestID {
        if let accepted = RequestIDs.accepted(offered) { return RequestID(accepted) }
        return made(using: &random)
    }

    var text: String {
        switch value {
        case .text(let text):
            return text
        case .uuid(let high, let low):
            return String(unsafeUninitializedCapacity: RequestIDs.textLength) { text in
                RequestIDs.writeUUID(high: high, low: low, into: UnsafeMutableRawBufferPointer(text))
                return RequestIDs.textLength
            }
        }
    }

    /// The UUID's bits when this id was made here (nil: the caller's text).
    var uuid: (high: UInt64, low: UInt64)? {
        if case .uuid(let high, let low) = value { return (high, low) }
        return nil
    }
}

/// xoshiro256** (Blackman and Vigna), seeded from `SystemRandomNumberGenerator`.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        state = (system.next(), system.next(), system.next(), system.next())
        if state == (0, 0, 0, 0) { state.0 = 1 }
    }

    mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// Per-connection state of the hot path that would otherwise need a lock shared by every
/// connection or an allocation per request: the `Date` value of the current second, a
/// request-id generator, and the storage answers are written into.
struct ConnectionScratch {
    var random = Xoshiro256StarStar()
    /// The last API key this connection presented, and its caller.
    var presentedKey = PresentedKeyMemo()
    /// The buffer the connection's last answer was written into, kept for the next one.
    private var lastAnswer: ByteBuffer?
    /// The largest answer buffer kept between requests: an idle connection holds at most this.
    static let keptAnswerCapacity = 4096
    /// What an answer buffer starts with: a hit's head and a tenant's body fit.
    static let answerCapacity = 2048
    private var dateText = ""
    /// Until when `dateText` is the current second's (nanoseconds on the clock ``date(at:)`` is given).
    private var dateValidUntil: UInt64?

    /// An empty buffer to write an answer into. Once the socket has taken the last answer's
    /// bytes the channel lets go of its buffer, and `clear()` then reuses that storage: a
    /// connection's answers cost no allocation each. While the channel still holds it (the
    /// socket was full, or answers to pipelined requests wait for the burst's flush), `clear()`
    /// allocates fresh storage and the pending bytes stay as they are.
    mutating func answerBuffer(_ allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var buffer = lastAnswer.take() else { return allocator.buffer(capacity: Self.answerCapacity) }
        buffer.clear()
        return buffer
    }

    /// Keeps `answer`'s storage for the next answer, unless it grew beyond ``keptAnswerCapacity``.
    mutating func keep(_ answer: ByteBuffer) {
        if answer.capacity <= Self.keptAnswerCapacity { lastAnswer = answer }
    }

    /// The `Date` header value (IMF-fixdate) at `now` (a reading the caller has already made of
    /// a monotonic clock, in nanoseconds: the connection's event loop's), formatted once per
    /// second: the wall clock is read only when a new second has begun.
    mutating func date(at now: UInt64) -> String {
        if let until = dateValidUntil, now < until { return dateText }
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        dateText = HTTPDate.format(wall.tv_sec)
        dateValidUntil = now + UInt64(max(1, 1_000_000_000 - wall.tv_nsec))
        return dateText
    }
}

enum HTTPDate {
    static func format(_ seconds: Int) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
