public import GatewaySecrets
public import Foundation

/// Upstream sessions shared by every replica of the gateway (the shared tier), so that N
/// replicas make one login per account. A broker asks it before logging in; the tier holds the
/// session encrypted, and one replica at a time (a lock with an expiry) logs in for everyone.
/// Every method degrades to "nothing shared" when the tier is down: a broker then logs in
/// itself, as a single gateway does. Implemented by SharedTier (Redis).
public protocol SharedSessions: Sendable {
    /// A session another replica (or this one) obtained for `account`, if still there.
    func load(_ account: SharedAccount) async -> SharedSession?
    /// Stores a fresh session for every replica (until it expires).
    func store(_ session: SharedSession, for account: SharedAccount) async
    /// Drops the stored session if its access token is `refused` (an upstream answered 401).
    func discard(_ account: SharedAccount, refused: Secret) async
    /// Takes the account's login lock: held, held by another replica, or not known (the tier
    /// did not answer: log in here).
    func lock(_ account: SharedAccount) async -> SharedLockAttempt
    /// Gives the lock up and wakes the replicas waiting for it. `loginRejected`: the upstream
    /// refused the account's credentials just now, so the others answer at once (``SharedLockAttempt/rejectedElsewhere``)
    /// instead of each sending the same wrong password again (accounts get locked out that way).
    func unlock(_ lock: SharedLock, loginRejected: Bool) async
    /// Returns when another replica stored a session for `account` or gave its lock up after
    /// `since` (woken by the tier), or after `timeout`.
    func waitForChange(_ account: SharedAccount, since: ContinuousClock.Instant, timeout: Duration) async
    /// How long a login lock lives when its holder never gives it up (a broker waits a little
    /// longer for another replica's session before logging in itself).
    var lockLifetime: Duration { get }
    /// Whether the tier answers now (when not, waiting for another replica is pointless).
    var isAvailable: Bool { get }
}

/// An account as the shared tier names it.
public struct SharedAccount: Sendable, Hashable {
    public var upstream: String
    public var username: String
    /// Which server the upstream's name stands for (a digest of its product and base URL): two
    /// replicas whose `vspc-main` are different servers never adopt each other's sessions.
    public var server: String
    public init(upstream: String, username: String, server: String = "") {
        self.upstream = upstream
        self.username = username
        self.server = server
    }
}

/// A session as replicas share it: expiry in wall-clock time (instants of one process mean
/// nothing to another).
public struct SharedSession: Sendable {
    public var access: Secret
    public var refresh: Secret?
    public var expiresAt: Date
    public init(access: Secret, refresh: Secret?, expiresAt: Date) {
        self.access = access
        self.refresh = refresh
        self.expiresAt = expiresAt
    }
}

/// What taking a login lock came to.
public enum SharedLockAttempt: Sendable {
    case acquired(SharedLock)
    /// Another replica holds it: its session is coming.
    case heldElsewhere
    /// Another replica's login of this account was refused by the upstream moments ago.
    case rejectedElsewhere
    /// The tier did not answer.
    case unavailable
}

/// A held login lock: the account and the fencing token that proves who holds it.
public struct SharedLock: Sendable {
    public var account: SharedAccount
    public var fence: String
    public init(account: SharedAccount, fence: String) {
        self.account = account
        self.fence = fence
    }
}
