public import ChangeFeed
import Foundation
import GatewayAccess
import GatewayConfig
public import GatewayHTTP
public import HTTPTransport
public import Logging
public import ServiceLifecycle

/// Delivers the change feed to each `events.webhooks[]` endpoint: the events its caller may see
/// and it asked for, one at a time and in order, each POSTed through libcurl and signed as
/// Standard Webhooks say, retried with exponential backoff and jitter until it gets a 2xx answer
/// or `retryFor` has passed (then it is given up on, counted and logged, and the next goes).
/// At least once: an answer lost after the receiver acted makes it deliver again.
///
/// Each endpoint starts at the newest event when the gateway starts; what the log no longer
/// keeps when the endpoint gets to it is counted as missed. Endpoints are those of the first
/// configuration; a reload changes their settings, not which there are.
///
/// With replicas sharing the feed (`coordination`), each endpoint has a Redis Streams consumer
/// group, and one replica delivers to it at a time (a lease renewed before each attempt, so the
/// order holds): it takes first what the group holds pending (read by a replica that died before
/// it was acknowledged), then the next new event, and acknowledges each when it is delivered or
/// given up on. A replica that dies mid-delivery is replaced when its lease lapses, and the next
/// holder claims its pending event and sends it again. While Redis does not answer, the holder
/// reads this replica's own log.
public final class WebhookDeliveries: Service, Sendable {
    let source: SnapshotSource
    let log: any FeedLog
    let coordination: (any FeedCoordination)?
    let board: WebhookBoard
    let transport: @Sendable (TransferOptions) -> any UpstreamTransport
    let logger: Logger
    /// How long an endpoint with nothing to send waits before it looks at its configuration again.
    let idleCheck: Duration

    /// How long a replica's hold on an endpoint lasts without renewal.
    let leaseTTL: Duration

    public init(
        source: SnapshotSource, log: any FeedLog, coordination: (any FeedCoordination)? = nil, board: WebhookBoard, logger: Logger,
        idleCheck: Duration = .seconds(5), leaseTTL: Duration = .seconds(15),
        transport: @escaping @Sendable (TransferOptions) -> any UpstreamTransport
    ) {
        self.source = source
        self.log = log
        self.coordination = coordination
        self.leaseTTL = leaseTTL
        self.board = board
        self.logger = logger
        self.idleCheck = idleCheck
        self.transport = transport
    }

    public func run() async throws {
        let ids = source.snapshot.configuration.events?.webhooks.map(\.id) ?? []
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for id in ids { group.addTask { await self.deliver(id) } }
                // With no endpoint, this service still runs until the gateway stops.
                if ids.isEmpty { group.addTask { try? await Task.sleep(for: .seconds(86_400 * 365)) } }
            }
        }
    }

    /// What became of one event.
    enum Outcome {
        case delivered
        case gaveUp
        case stopped
        /// Another replica holds the endpoint now (this one was too slow to renew): it goes on.
        case lost
    }

    /// Endpoint `id`'s loop: from the newest event on, until the gateway stops.
    func deliver(_ id: String) async {
        var cursor = await log.currentHead()
        while !Task.isCancelled {
            if let coordination {
                // Only the holder delivers.
                guard await coordination.leads("hook:" + id, for: leaseTTL) ?? true else {
                    try? await Task.sleep(for: min(idleCheck, leaseTTL / 3))
                    continue
                }
            }
            let snapshot = source.snapshot
            guard let hook = snapshot.configuration.events?.webhooks.first(where: { $0.id == id }),
                let record = snapshot.configuration.callers.first(where: { $0.id == hook.caller }),
                let key = (try? hook.secret.resolve()).flatMap({ WebhookSigning.key(fromSecret: $0.value) })
            else {
                // Removed by a reload, or its secret cannot be read now: look again later.
                try? await Task.sleep(for: idleCheck)
                continue
            }
            let target = Self.target(hook.url)
            let caller = Caller(id: record.id, roles: record.roles, scopes: record.scopes)
            let visible = FeedAccess.visible(caller, policy: snapshot.access.policy)
            let wanted: @Sendable (FeedEvent) -> Bool = { visible($0) && hook.wants($0.kind.rawValue) }
            if let coordination {
                switch await coordination.nextDelivery(for: id) {
                case .event(let event):
                    guard wanted(event) else {
                        await coordination.acknowledge(event.sequence, for: id)
                        continue
                    }
                    switch await send(event, hook: hook, key: key, target: target) {
                    case .delivered, .gaveUp: await coordination.acknowledge(event.sequence, for: id)
                    case .stopped: return
                    case .lost: continue  // left pending: the holder now claims it
                    }
                    continue
                case .missing(let sequence):
                    board.update(id, target: target) { $0.missed += 1 }
                    logger.error("webhook: an event its group held is no longer kept", metadata: ["webhook": "\(id)", "sequence": "\(sequence)"])
                    await coordination.acknowledge(sequence, for: id)
                    continue
                case .none:
                    board.update(id, target: target) { $0.pending = 0 }
                    let head = await log.currentHead()
                    guard await log.waitForEvents(after: head, until: .now + idleCheck) else { return }
                    continue
                case .unavailable:
                    break  // this replica's own log, below
                }
            }
            let head = await log.currentHead()
            board.update(id, target: target) { $0.pending = head.epoch == cursor.epoch ? Int(clamping: head.sequence &- cursor.sequence) : 0 }
            switch await log.events(after: cursor, limit: 1, visible: wanted) {
            case .gone:
                // What the log no longer keeps (or a log that started again) cannot be sent: go on from now.
                board.update(id, target: target) { $0.missed += head.epoch == cursor.epoch ? Int(clamping: head.sequence &- cursor.sequence) : 1 }
                logger.error("webhook fell behind the change feed's log: events missed", metadata: ["webhook": "\(id)", "from": "\(cursor)"])
                cursor = head
            case .events(let events, let next):
                guard let event = events.first else {
                    cursor = next
                    guard await log.waitForEvents(after: next, until: .now + idleCheck) else { return }
                    continue
                }
                switch await send(event, hook: hook, key: key, target: target) {
                case .delivered, .gaveUp: cursor = next
                case .stopped: return
                case .lost: continue
                }
            }
        }
    }

    /// Sends one event until a 2xx answer, `retryFor`, or the gateway stops.
    func send(_ event: FeedEvent, hook: WebhookConfiguration, key: [UInt8], target: String) async -> Outcome {
        let started = ContinuousClock.now
        let upstream = transport(hook.options)
        var wait = hook.backoffInitial
        while !Task.isCancelled {
            // Each attempt renews the hold: retries may outlast one lease.
            if let coordination, await coordination.leads("hook:" + hook.id, for: leaseTTL) == false { return .lost }
            var headers = WebhookSigning.headers(key: key, id: event.id, timestamp: Int(Date().timeIntervalSince1970), body: event.bytes)
            headers.append(("User-Agent", "veeam-gateway"))
            let failure: String
            do {
                let response = try await upstream.send(
                    UpstreamRequest(method: .post, url: hook.url, headers: headers, body: .json(event.bytes), timeout: hook.options.totalTimeout, retryable: false))
                if (200..<300).contains(response.status) {
                    board.update(hook.id, target: target) { entry in
                        entry.delivered += 1
                        entry.state = "ok"
                        entry.lastDeliveredAt = Self.timestamp()
                    }
                    return .delivered
                }
                failure = "HTTP \(response.status)"
            } catch let error as UpstreamError {
                failure = error.code.rawValue
            } catch {
                failure = "error"
            }
            board.update(hook.id, target: target) { entry in
                entry.failedAttempts += 1
                entry.state = "retrying"
                entry.lastError = failure
                entry.lastErrorAt = Self.timestamp()
            }
            if ContinuousClock.now - started >= hook.retryFor {
                board.update(hook.id, target: target) { $0.failed += 1 }
                logger.error("webhook delivery given up after retryFor", metadata: ["webhook": "\(hook.id)", "event": "\(event.id)", "last": "\(failure)"])
                return .gaveUp
            }
            logger.warning("webhook delivery failed; retrying", metadata: ["webhook": "\(hook.id)", "event": "\(event.id)", "error": "\(failure)"])
            // Between half and all of the doubled wait: receivers that come back are not hit in step.
            let jittered = wait * Double.random(in: 0.5...1.0)
            do { try await Task.sleep(for: jittered) } catch { return .stopped }
            wait = min(wait * 2, hook.backoffMax)
        }
        return .stopped
    }

    /// A URL without its user, password and query (which may carry a token): what the status page shows.
    static func target(_ url: String) -> String {
        guard var parts = URLComponents(string: url) else { return "-" }
        parts.user = nil
        parts.password = nil
        parts.query = nil
        parts.fragment = nil
        return parts.string ?? "-"
    }

    static func timestamp() -> String {
        EventLog.timestamp(Date())
    }
}
