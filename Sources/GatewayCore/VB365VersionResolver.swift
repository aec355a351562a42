public import GatewayClock
public import HTTPTransport
public import Logging
import Synchronization
import TokenBroker
import VeeamAPI
public import VeeamWire

/// The VB365 REST version an upstream is spoken to in: the configured one, or (`apiVersion: auto`)
/// the newest the server serves, found by ``VB365Client/discoverVersion(transport:baseURL:)``.
///
/// - Discovery runs once however many callers wait for it: they share one detached task, so it
///   carries none of the first caller's task-locals (its deadline, its request id) and runs under
///   the upstream's own `timeouts.total`.
/// - The result is kept for the life of the configuration (a reload builds a new resolver and
///   discovers again).
/// - A failed discovery is remembered for `retryAfter` (the same error is answered meanwhile, so
///   an unreachable server costs at most four anonymous probes per period, not per read), then
///   tried again.
/// - When the server stops serving the version found (it was downgraded), ``forget(_:)`` drops it
///   so the next call discovers anew.
public final class VB365VersionResolver: Sendable {
    /// What the configuration asks for.
    public enum Setting: Sendable, Equatable {
        case fixed(VB365APIVersion)
        case auto
    }

    private enum State: Sendable {
        case unknown
        case discovering(Task<VB365APIVersion, any Error>)
        case known(VB365APIVersion)
        case failed(any Error, until: ContinuousClock.Instant)
    }

    /// What one call finds under the lock.
    private enum Next {
        case known(VB365APIVersion)
        case wait(Task<VB365APIVersion, any Error>)
        case fail(any Error)
    }

    public let setting: Setting
    private let upstream: String
    private let baseURL: String
    private let transport: any UpstreamTransport
    private let timeout: Duration
    private let retryAfter: Duration
    private let clock: GatewayClock
    private let logger: Logger
    private let state: Mutex<State>

    /// `transport` should be an upstream's login side: no caller's gate, no caller's request id.
    public init(
        setting: Setting, upstream: String, baseURL: String, transport: any UpstreamTransport, timeout: Duration, logger: Logger,
        retryAfter: Duration = .seconds(5), clock: GatewayClock = .continuous
    ) {
        self.setting = setting
        self.upstream = upstream
        self.baseURL = baseURL
        self.transport = transport
        self.timeout = timeout
        self.retryAfter = retryAfter
        self.clock = clock
        self.logger = logger
        if case .fixed(let version) = setting {
            state = Mutex(.known(version))
        } else {
            state = Mutex(.unknown)
        }
    }

    /// The version, if known without asking the server.
    public var known: VB365APIVersion? {
        state.withLock { state in
            if case .known(let version) = state { return version }
            return nil
        }
    }

    /// The version to speak, discovering it first if need be.
    public func current() async throws -> VB365APIVersion {
        let instant = clock.now
        let next: Next = state.withLock { state in
            switch state {
            case .known(let version):
                return .known(version)
            case .discovering(let task):
                return .wait(task)
            case .failed(let error, let until) where instant < until:
                return .fail(error)
            case .unknown, .failed:
                let task = Task.detached { [self] in try await discover() }
                state = .discovering(task)
                return .wait(task)
            }
        }
        switch next {
        case .known(let version): return version
        case .fail(let error): throw error
        case .wait(let task): return try await task.value
        }
    }

    /// Drops a discovered `version` the server no longer serves (auto only; a fixed version stays).
    public func forget(_ version: VB365APIVersion) {
        guard setting == .auto else { return }
        let forgotten = state.withLock { state -> Bool in
            guard case .known(let known) = state, known == version else { return false }
            state = .unknown
            return true
        }
        if forgotten {
            logger.warning("VB365 API version no longer served; discovering again", metadata: ["upstream": "\(upstream)", "apiVersion": "\(version)"])
        }
    }

    /// Forgets the version in use when `error` says the server does not serve it (a 404 from a
    /// route every version has, or from the token endpoint).
    public func note(_ error: any Error) {
        guard let version = known else { return }
        switch error {
        case let error as VeeamAPIError where error.code == .versionUnsupported: forget(version)
        case let error as TokenError where error.code == .versionUnsupported: forget(version)
        default: break
        }
    }

    private func discover() async throws -> VB365APIVersion {
        do {
            let found = try await UpstreamDeadline.within(timeout) {
                try await VB365Client.discoverVersion(transport: transport, baseURL: baseURL)
            }
            guard let version = found.version else {
                logger.error("VB365 API version: none this gateway knows", metadata: ["upstream": "\(upstream)", "method": "\(found.method)"])
                throw VeeamAPIError(
                    code: .versionUnsupported, status: 404,
                    upstreamMessage: "the server serves none of VB365 REST v5–\(VB365APIVersion.newest) (\(found.method))")
            }
            state.withLock { $0 = .known(version) }
            logger.notice(
                "VB365 API version discovered",
                metadata: [
                    "upstream": "\(upstream)", "apiVersion": "\(version)", "method": "\(found.method)",
                    "newestKnown": "\(version == VB365APIVersion.newest)",
                ])
            return version
        } catch {
            let until = clock.now + retryAfter
            state.withLock { $0 = .failed(error, until: until) }
            if !(error is VeeamAPIError) {
                logger.warning("VB365 API version discovery failed", metadata: ["upstream": "\(upstream)", "error": "\(error)"])
            }
            throw error
        }
    }
}
