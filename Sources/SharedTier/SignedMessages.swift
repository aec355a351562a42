import GatewaySecrets
import Crypto
public import Foundation
import Synchronization

/// Purge and reload messages between replicas, authenticated: anyone who can `PUBLISH` to the
/// shared Redis could otherwise empty every replica's cache or make them all reload at will.
///
/// A message on the wire is `v1.{unix ms}.{id}.{HMAC}.{payload}`: the HMAC-SHA256, under a key
/// derived from `shared.redis.encryptionKey` (another derivation than the sealing key's), covers
/// the channel, the time, the random id and the payload. A replica acts on a message only when
/// the HMAC holds, the time is within ``window`` of its own clock and the id was not seen in that
/// window; everything else is ignored and counted (``ignored``).
public final class SignedMessages: Sendable {
    /// Why a message was ignored.
    public enum Refusal: String, Sendable, CaseIterable {
        /// No envelope, or an HMAC that does not hold (another key, tampered).
        case unsigned
        /// Signed, but its time is outside the window (a replay of an old message, a bad clock).
        case stale
        /// Signed and recent, but its id was already acted on.
        case replayed
    }

    /// How far a message's time may be from this replica's clock.
    public let window: Duration
    private let key: SymmetricKey
    private let now: @Sendable () -> Date
    private struct State {
        /// Ids acted on, with their message times; bounded by ``maxRemembered``.
        var seen: [String: Date] = [:]
        var ignored: [Refusal: Int] = [:]
    }
    private let state = Mutex(State())
    static let maxRemembered = 4_096

    public init(secret: String, window: Duration = .seconds(30), now: @escaping @Sendable () -> Date = Date.init) {
        self.key = SymmetricKey(data: SHA256.hash(data: Data(("veeam-gateway replica messages\n" + secret).utf8)))
        self.window = window
        self.now = now
    }

    /// `payload` signed for `channel`.
    public func sign(_ payload: [UInt8], channel: String) -> [UInt8] {
        let millis = String(Int64((now().timeIntervalSince1970 * 1000).rounded(.down)))
        var generator = SystemRandomNumberGenerator()
        let id = String(generator.next() as UInt64, radix: 16) + String(generator.next() as UInt64, radix: 16)
        let mac = Hex.lowercase(mac(channel: channel, millis: millis, id: id, payload: payload))
        return Array("v1.\(millis).\(id).\(mac).".utf8) + payload
    }

    /// The payload of a message received on `channel`, or nil (counted) when it is not to be acted on.
    public func open(_ message: [UInt8], channel: String) -> [UInt8]? {
        // Four dots end the envelope; the payload is everything after them.
        var dots: [Int] = []
        for (index, byte) in message.enumerated() where byte == UInt8(ascii: ".") {
            dots.append(index)
            if dots.count == 4 { break }
        }
        guard dots.count == 4, message[..<dots[0]].elementsEqual("v1".utf8) else { return refuse(.unsigned) }
        let millis = String(decoding: message[(dots[0] + 1)..<dots[1]], as: UTF8.self)
        let id = String(decoding: message[(dots[1] + 1)..<dots[2]], as: UTF8.self)
        let presented = String(decoding: message[(dots[2] + 1)..<dots[3]], as: UTF8.self)
        let payload = Array(message[(dots[3] + 1)...])
        guard let sent = Int64(millis), (1...32).contains(id.utf8.count),
            presented.utf8.count == 64, let presentedBytes = Hex.bytes(presented),
            HMAC<SHA256>.isValidAuthenticationCode(presentedBytes, authenticating: Self.signed(channel: channel, millis: millis, id: id, payload: payload), using: key)
        else { return refuse(.unsigned) }
        let at = Date(timeIntervalSince1970: Double(sent) / 1000)
        let current = now()
        let limit = Double(window.components.seconds)
        guard abs(current.timeIntervalSince(at)) <= limit else { return refuse(.stale) }
        let fresh = state.withLock { state -> Bool in
            if state.seen[id] != nil { return false }
            if state.seen.count >= Self.maxRemembered {
                // Forget what is outside the window (a replay of it is refused as stale anyway).
                state.seen = state.seen.filter { abs(current.timeIntervalSince($0.value)) <= limit }
                if state.seen.count >= Self.maxRemembered { state.seen.removeAll() }
            }
            state.seen[id] = at
            return true
        }
        return fresh ? payload : refuse(.replayed)
    }

    /// Messages ignored so far, by reason.
    public var ignored: [Refusal: Int] { state.withLock { $0.ignored } }

    private func refuse(_ reason: Refusal) -> [UInt8]? {
        state.withLock { $0.ignored[reason, default: 0] += 1 }
        return nil
    }

    private func mac(channel: String, millis: String, id: String, payload: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.signed(channel: channel, millis: millis, id: id, payload: payload), using: key))
    }

    private static func signed(channel: String, millis: String, id: String, payload: [UInt8]) -> [UInt8] {
        Array("\(channel)\n\(millis)\n\(id)\n".utf8) + payload
    }
}
