import GatewayTracing
public import GatewaySecrets
public import Foundation
public import GatewayClock
public import HTTPTransport
public import Logging


/// The token lifecycle of one credential set (upstream + account).
///
/// - logs in with the password grant when it has no token;
/// - refreshes with the refresh grant once the token is within `refreshSkew` of expiry (default
///   60 s; at most half the token's lifetime, so a short-lived token is not refreshed on every
///   call), and falls back to a fresh login when the refresh fails;
/// - however many callers wait, at most one login or refresh is in flight, and a caller that is
///   cancelled does not cancel it for the others;
/// - ``invalidate(_:)`` (after a 401) drops the session, so the next call logs in again.
///
/// VSPC warns that parallel sessions of one account interfere: one broker per account, shared by
/// every request, keeps one session. Tokens and passwords are ``Secret``s and are never logged.
public actor TokenBroker {
    /// What `/v1/upstreams` and `/readyz` show.
    public enum State: String, Sendable {
        case none, valid, expired, failed
    }

    /// Counters, for tests and metrics.
    public struct Statistics: Sendable, Equatable {
        public var logins = 0
        public var refreshes = 0
        public var refreshFailures = 0
        public var failures = 0
        /// Sessions taken from the shared tier instead of a login or refresh of this replica.
        public var shared = 0
        /// Waits for another replica's login (each woken by the tier, or after at most 1 s).
        public var sharedWaits = 0
        public init() {}
    }

    public nonisolated let upstream: String
    public nonisolated let credential: Credential
    private let grants: any TokenGrantClient
    private let refreshSkew: Duration
    private let clock: GatewayClock
    private let logger: Logger

    private struct Session {
        var access: Secret
        var refresh: Secret?
        var expiresAt: ContinuousClock.Instant
        var refreshAt: ContinuousClock.Instant
    }

    private var session: Session?
    private var inflight: Task<Session, any Error>?
    /// When the last login or refresh succeeded (wall clock, for the status page).
    private var lastObtained: Date?
    private var lastFailed = false
    public private(set) var statistics = Statistics()
    /// The replicas' shared sessions, when a shared tier is configured.
    private let shared: (any SharedSessions)?
    private var account: SharedAccount { SharedAccount(upstream: upstream, username: credential.username, server: sharedServer) }
    /// Which server `upstream` is, for the shared tier (``SharedAccount/server``).
    private let sharedServer: String

    public init(
        upstream: String,
        credential: Credential,
        grants: any TokenGrantClient,
        refreshSkew: Duration = .seconds(60),
        clock: GatewayClock = .continuous,
        logger: Logger = Logger(label: "veeam-gateway.token"),
        shared: (any SharedSessions)? = nil,
        sharedServer: String = ""
    ) {
        self.upstream = upstream
        self.sharedServer = sharedServer
        self.credential = credential
        self.grants = grants
        self.refreshSkew = refreshSkew
        self.clock = clock
        self.shared = shared
        var logger = logger
        logger[metadataKey: "upstream"] = "\(upstream)"
        logger[metadataKey: "account"] = "\(credential.username)"
        self.logger = logger
    }

    /// What the status page shows of this account: never a token or a password.
    public struct AccountStatus: Sendable, Encodable, Equatable {
        public var username: String
        /// `none`, `valid`, `expired` or `failed`.
        public var state: String
        /// Seconds until the access token expires (nil without one).
        public var expiresInSeconds: Int?
        /// A login or refresh is in flight.
        public var refreshing: Bool
        /// When the last login or refresh succeeded (RFC 3339, UTC).
        public var lastLogin: String?
        public var logins: Int
        public var refreshes: Int
        /// Logins that failed (refresh failures that fell back to a login not counted twice).
        public var failedLogins: Int
    }

    /// This account's status; `format` writes the wall-clock time.
    public func status(format: (Date) -> String) -> AccountStatus {
        let left = session.map { $0.expiresAt - clock.now }
        return AccountStatus(
            username: credential.username, state: state.rawValue,
            expiresInSeconds: left.map { max(0, Int($0.components.seconds)) }, refreshing: inflight != nil,
            lastLogin: lastObtained.map(format), logins: statistics.logins, refreshes: statistics.refreshes, failedLogins: statistics.failures)
    }

    public var state: State {
        if lastFailed { return .failed }
        guard let session else { return .none }
        return clock.now < session.expiresAt ? .valid : .expired
    }

    /// A valid access token, logging in or refreshing first when needed.
    /// - Throws: ``TokenError`` or ``UpstreamError``.
    public func accessToken() async throws -> Secret {
        if let session, clock.now < session.refreshAt {
            return session.access
        }
        if let inflight {
            return try await inflight.value.access
        }
        let previous = session
        let task = Task { try await self.obtain(previous: previous) }
        inflight = task
        defer { inflight = nil }
        do {
            let fresh = try await task.value
            session = fresh
            lastFailed = false
            lastObtained = Date()
            return fresh.access
        } catch {
            lastFailed = true
            statistics.failures += 1
            throw error
        }
    }

    /// Forgets the session if `token` is still its access token (it was refused with 401),
    /// so the next ``accessToken()`` logs in again. A newer token is left alone.
    public func invalidate(_ token: Secret) async {
        if session?.access == token {
            session = nil
            logger.info("upstream refused the access token; the next call logs in again")
        }
        await shared?.discard(account, refused: token)
    }

    /// A session from a grant: refreshed `refreshSkew` before expiry, or at half its lifetime when
    /// that comes first (a 60 s token with the default 60 s skew would otherwise be "due" at once).
    private func session(_ grant: TokenGrant, obtainedAt started: ContinuousClock.Instant) -> Session {
        let lead = min(refreshSkew, grant.lifetime / 2)
        return Session(access: grant.accessToken, refresh: grant.refreshToken, expiresAt: started + grant.lifetime, refreshAt: started + grant.lifetime - lead)
    }

    /// A session shared by another replica, as this process's clock sees it; nil when there is
    /// none, or it is due for refresh already.
    private func adopt(_ stored: SharedSession?) -> Session? {
        guard let stored else { return nil }
        let left = stored.expiresAt.timeIntervalSinceNow
        guard left > 1 else { return nil }
        // Another replica's record is read as an upstream's grant is: within the accepted lifetimes.
        let lifetime = Duration.clamped(seconds: left, to: TokenGrant.acceptedLifetimes)
        let candidate = session(TokenGrant(accessToken: stored.access, refreshToken: stored.refresh, lifetime: lifetime), obtainedAt: clock.now)
        return clock.now < candidate.refreshAt ? candidate : nil
    }

    /// With a shared tier: a session another replica obtained; else this replica logs in for all
    /// (under the account's lock) and shares the result; else, while another replica holds the
    /// lock, the session it stores: woken when it is stored or the lock is given up (then this
    /// replica tries the lock again), for as long as a lock may live (a dead holder's lapses).
    /// When the tier is down, or the wait runs out, as without one.
    private func obtain(previous: Session?) async throws -> Session {
        guard let shared else { return try await obtainHere(previous: previous) }
        // A little longer than a lock lives, so that a dead holder's lock lapses first.
        let deadline = clock.now + shared.lockLifetime + .seconds(2)
        var ranOut = false
        while true {
            let asked = clock.now
            if let adopted = adopt(await shared.load(account)) {
                statistics.shared += 1
                return adopted
            }
            let attempt = await shared.lock(account)
            if case .acquired(let lock) = attempt {
                // Another replica may have stored one between the look and the lock.
                if let adopted = adopt(await shared.load(account)) {
                    await shared.unlock(lock, loginRejected: false)
                    statistics.shared += 1
                    return adopted
                }
                do {
                    let fresh = try await obtainHere(previous: previous)
                    let expires = Date().addingTimeInterval(Double((fresh.expiresAt - clock.now).components.seconds))
                    await shared.store(SharedSession(access: fresh.access, refresh: fresh.refresh, expiresAt: expires), for: account)
                    await shared.unlock(lock, loginRejected: false)
                    return fresh
                } catch {
                    await shared.unlock(lock, loginRejected: (error as? TokenError)?.code == .rejected)
                    throw error
                }
            }
            if case .rejectedElsewhere = attempt {
                throw TokenError(.rejected, "\(account.upstream): login of \(account.username) was refused moments ago (by this replica or another); not tried again for a few seconds")
            }
            let left = deadline - clock.now
            guard case .heldElsewhere = attempt, shared.isAvailable else { break }
            guard left > .zero else {
                ranOut = true
                break
            }
            // Another replica is logging in: its session, as soon as it is stored.
            try Task.checkCancellation()
            statistics.sharedWaits += 1
            await shared.waitForChange(account, since: asked, timeout: min(left, .seconds(1)))
        }
        if ranOut { logger.warning("no session from the replica holding the login lock; logging in here") }
        return try await obtainHere(previous: previous)
    }

    private func obtainHere(previous: Session?) async throws -> Session {
        let started = clock.now
        if let refresh = previous?.refresh {
            do {
                let grant = try await grants.refresh(refresh)
                statistics.refreshes += 1
                logger.debug("token refreshed")
                return session(grant, obtainedAt: started)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                statistics.refreshFailures += 1
                logger.info("token refresh failed; logging in again", metadata: ["error": "\(error)"])
            }
        }
        let password: Secret
        do {
            password = try credential.password.resolve()
        } catch {
            throw TokenError(.secretUnavailable, "\(upstream): the password of \(credential.username) is unavailable: \(error)")
        }
        do {
            let grant = try await grants.login(username: credential.username, password: password)
            statistics.logins += 1
            logger.info("logged in")
            return session(grant, obtainedAt: started)
        } catch {
            logger.warning("login failed", metadata: ["error": "\(error)"])
            throw error
        }
    }
}

/// Adds the broker's bearer token to every request; on a 401 it invalidates that token, logs in
/// again and retries **once**. A second 401 is returned as it is: never a loop. A request that is
/// not ``UpstreamRequest/retryable`` (a caller's write) is never sent again: its 401 is returned,
/// and the next request logs in.
public struct AuthenticatedTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let broker: TokenBroker

    public init(base: any UpstreamTransport, broker: TokenBroker) {
        self.base = base
        self.broker = broker
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let token = try await broker.accessToken()
        let response = try await base.send(authorized(request, token))
        guard response.status == 401 else { return response }
        await broker.invalidate(token)
        guard request.retryable else { return response }
        UpstreamCallNotes.current?.noteRetry()
        let fresh = try await broker.accessToken()
        return try await base.send(authorized(request, fresh))
    }

    private func authorized(_ request: UpstreamRequest, _ token: Secret) -> UpstreamRequest {
        var copy = request
        copy.headers.removeAll { $0.name.lowercased() == "authorization" }
        copy.headers.append(("Authorization", "Bearer " + token.value))
        return copy
    }
}
