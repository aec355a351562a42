import GatewaySecrets
import Crypto
import Foundation
public import GatewayClock
import Synchronization

/// Short-lived sessions of the status page: `POST /v1/auth/session` exchanges an administrator's
/// API key (sent once, in a header) for a random token carried by an `HttpOnly` cookie that only
/// `GET /v1/status` accepts. The store keeps the SHA-256 of each token, never the token; a token
/// is worthless after `lifetime`, after a restart, or once its caller is no longer configured.
public final class StatusSessions: Sendable {
    /// The cookie's name.
    public static let cookieName = "vgw_status"

    struct Session {
        var callerID: String
        /// The caller's key hash when the session opened: a rotated key ends the session.
        var keyHash: String
        var expires: ContinuousClock.Instant
    }

    public let lifetime: Duration
    /// The most sessions held; beyond, the one expiring first goes.
    public let capacity: Int
    private let clock: GatewayClock
    private let sessions = Mutex<[String: Session]>([:])

    public init(lifetime: Duration = .seconds(900), capacity: Int = 1_000, clock: GatewayClock = .continuous) {
        self.lifetime = lifetime
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    static func digest(_ token: String) -> String {
        Hex.lowercase(SHA256.hash(data: Data(token.utf8)))
    }

    /// A new session for `callerID`, whose key's hash is `keyHash`: the token to put in the cookie.
    public func open(for callerID: String, keyHash: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let now = clock.now
        let session = Session(callerID: callerID, keyHash: keyHash, expires: now + lifetime)
        sessions.withLock { sessions in
            if sessions.count >= capacity {
                sessions = sessions.filter { $0.value.expires > now }
                if sessions.count >= capacity, let first = sessions.min(by: { $0.value.expires < $1.value.expires }) {
                    sessions[first.key] = nil
                }
            }
            sessions[Self.digest(token)] = session
        }
        return token
    }

    /// The caller of a live session, as the current configuration has it; nil when the token is
    /// unknown or expired, or the caller is gone or has another key since.
    public func caller(for token: String, in directory: CallerDirectory) -> CallerRecord? {
        guard let (id, keyHash) = session(for: token), let record = directory.record(id: id), record.keyHash == keyHash else { return nil }
        return record
    }

    func session(for token: String) -> (String, String)? {
        guard (20...100).contains(token.utf8.count) else { return nil }
        let key = Self.digest(token)
        let now = clock.now
        return sessions.withLock { sessions in
            guard let session = sessions[key] else { return nil }
            guard session.expires > now else {
                sessions[key] = nil
                return nil
            }
            return (session.callerID, session.keyHash)
        }
    }

    /// The session token in a `Cookie` header value, if any.
    public static func token(inCookieHeader header: String) -> String? {
        for pair in header.split(separator: ";") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == cookieName { return String(parts[1]) }
        }
        return nil
    }
}
