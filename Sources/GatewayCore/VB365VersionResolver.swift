public import HTTPTransport
public import Logging
import Synchronization
import VeeamAPI
public import VeeamWire

/// The VB365 REST version an upstream is spoken to in: the configured one, or (`apiVersion: auto`)
/// the newest the server serves, found by ``VB365Client/discoverVersion(transport:baseURL:)``.
///
/// Discovery runs once however many callers wait for it (they share one task), its result is kept
/// for the life of the configuration (a reload builds a new resolver and discovers again), and a
/// failed discovery is not kept: the next caller tries again. When a server stops serving the
/// version found (it was downgraded), ``forget(_:)`` drops it so the next call discovers anew.
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
    }

    public let setting: Setting
    private let upstream: String
    private let baseURL: String
    private let transport: any UpstreamTransport
    private let logger: Logger
    private let state: Mutex<State>

    /// `transport` should be an upstream's probe side: no caller's gate, no caller's request id.
    public init(setting: Setting, upstream: String, baseURL: String, transport: any UpstreamTransport, logger: Logger) {
        self.setting = setting
        self.upstream = upstream
        self.baseURL = baseURL
        self.transport = transport
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
        let task: Task<VB365APIVersion, any Error>? = state.withLock { state in
            switch state {
            case .known:
                return nil
            case .discovering(let task):
                return task
            case .unknown:
                let task = Task { try await self.discover() }
                state = .discovering(task)
                return task
            }
        }
        guard let task else {
            if let known { return known }
            return try await current()
        }
        return try await task.value
    }

    /// Drops a discovered `version` the server no longer serves (auto only; a fixed version stays).
    public func forget(_ version: VB365APIVersion) {
        guard setting == .auto else { return }
        state.withLock { state in
            if case .known(let known) = state, known == version {
                state = .unknown
                logger.warning("VB365 API version no longer served; discovering again", metadata: ["upstream": "\(upstream)", "apiVersion": "\(version)"])
            }
        }
    }

    private func discover() async throws -> VB365APIVersion {
        do {
            let found = try await VB365Client.discoverVersion(transport: transport, baseURL: baseURL)
            guard let version = found.version else {
                let error = VeeamAPIError(
                    code: .versionUnsupported, status: 404,
                    upstreamMessage: "the server serves none of VB365 REST v5–\(VB365APIVersion.newest) (\(found.method))")
                logger.error(
                    "VB365 API version: none this gateway knows", metadata: ["upstream": "\(upstream)", "method": "\(found.method)"])
                throw error
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
            state.withLock { state in
                if case .discovering = state { state = .unknown }
            }
            throw error
        }
    }
}
