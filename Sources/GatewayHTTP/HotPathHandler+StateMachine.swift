/// Every state and transition of one front connection (``HotPathHandler``), free of channels,
/// buffers and timers: the handler feeds it events and carries out the actions it returns.
/// Times are uptime nanoseconds (`NIODeadline.uptimeNanoseconds`), durations nanoseconds.
///
/// Three parts, independent of each other:
/// - **framing**: waiting for a head (since when its first byte came, if one is partial), passing
///   a handed-on request's body through, or passing everything through for good (the stream held
///   something the handler does not frame; the codec is the authority from then on);
/// - **order**: how many requests went to the router and are not answered yet (while any are, a
///   later request is never answered ahead of them), and whether a request the handler answers
///   itself, later (a cache miss it fills), is still unanswered (while it is, nothing after it is
///   framed, answered or handed on, and socket reads are held);
/// - **flow**: reading, or paused because the peer does not read its answers (a read asked for
///   meanwhile is held, and issued on resume).
public struct HotPathConnectionStateMachine: Sendable, Equatable {
    public enum Framing: Sendable, Equatable {
        /// Between requests, or in a head whose first byte came at `partialSince` (nil: none yet).
        case awaitingHead(partialSince: UInt64?)
        /// Passing a handed-on request's body through; `remaining` bytes still to come.
        case body(remaining: Int)
        /// Everything goes to the codec, for the rest of the connection.
        case passThrough
    }

    public enum Flow: Sendable, Equatable {
        case reading
        /// Answers wait for the peer; `readHeld`: a socket read was asked for meanwhile.
        case paused(readHeld: Bool)
    }

    public private(set) var framing: Framing = .awaitingHead(partialSince: nil)
    public private(set) var flow: Flow = .reading
    /// Requests handed to the router and not answered yet.
    public private(set) var routedInFlight = 0
    /// A request this handler answers itself is being served (a miss it fills): everything after
    /// it waits.
    public private(set) var answering = false
    /// A socket read was asked for while answering (issued when the answer is written).
    public private(set) var readHeldForAnswer = false
    /// The last byte read or response completed.
    public private(set) var lastActivity: UInt64

    public let headTimeout: Int64
    public let idleTimeout: Int64
    /// The most of an unfinished head held before the connection goes to the codec.
    public let maxHead: Int

    public init(now: UInt64, headTimeout: Int64, idleTimeout: Int64, maxHead: Int) {
        self.lastActivity = now
        self.headTimeout = headTimeout
        self.idleTimeout = idleTimeout
        self.maxHead = maxHead
    }

    // MARK: Bytes and framing

    /// Bytes arrived. Returns whether they go straight to the codec (pass-through).
    public mutating func bytesArrived(now: UInt64) -> Bool {
        lastActivity = now
        return framing == .passThrough
    }

    /// Body bytes of a handed-on request went through; once all have, the next head may start.
    public mutating func bodyForwarded(_ count: Int) {
        guard case .body(let remaining) = framing else { return }
        framing = remaining - count > 0 ? .body(remaining: remaining - count) : .awaitingHead(partialSince: nil)
    }

    /// Body bytes still owed by the peer (0 unless a handed-on request's body is in transit).
    public var bodyRemaining: Int {
        if case .body(let remaining) = framing { return remaining }
        return 0
    }

    public enum PartialHeadAction: Sendable, Equatable {
        /// Wait for more bytes (the head deadline already runs).
        case wait
        /// The first bytes of a head: arm a check at the earlier of the head and idle deadlines.
        case armDeadline(in: Int64)
        /// More than `maxHead` without an end: hand everything to the codec, which refuses it.
        case handOver
    }

    /// The buffered bytes (`buffered` of them) hold no complete head yet.
    public mutating func headIncomplete(buffered: Int, now: UInt64) -> PartialHeadAction {
        if buffered > maxHead {
            framing = .passThrough
            return .handOver
        }
        guard case .awaitingHead(partialSince: nil) = framing else { return .wait }
        framing = .awaitingHead(partialSince: now)
        return .armDeadline(in: min(headTimeout, idleTimeout))
    }

    /// A whole head was framed: the head deadline stops.
    public mutating func headCompleted() {
        if case .awaitingHead = framing { framing = .awaitingHead(partialSince: nil) }
    }

    /// A head the handler does not frame (odd syntax, chunked bodies, upgrades): pass-through for good.
    public mutating func unframeable() {
        framing = .passThrough
    }

    /// Whether this request may be answered here: answering is on, it has no body and needs
    /// nothing only the router does, and no earlier request is still with the router.
    public func mayAnswer(answers: Bool, contentLength: Int, needsRouter: Bool) -> Bool {
        answers && routedInFlight == 0 && !answering && contentLength == 0 && !needsRouter
    }

    /// The handler serves the request just framed itself, later: nothing after it goes anywhere
    /// until ``answerWritten(now:)``.
    public mutating func answerStarted() {
        answering = true
    }

    /// That answer was written. Returns whether a read held meanwhile must be issued now (not when
    /// the connection is paused: then resuming issues it).
    public mutating func answerWritten(now: UInt64) -> Bool {
        answering = false
        lastActivity = now
        guard readHeldForAnswer else { return false }
        readHeldForAnswer = false
        if case .paused = flow {
            flow = .paused(readHeld: true)
            return false
        }
        return true
    }

    /// The request's head went to the router; its body (if any) follows as it arrives.
    public mutating func routed(contentLength: Int) {
        routedInFlight += 1
        framing = contentLength > 0 ? .body(remaining: contentLength) : .awaitingHead(partialSince: nil)
    }

    /// The router wrote a whole response.
    public mutating func routedResponseCompleted(now: UInt64) {
        routedInFlight = max(0, routedInFlight - 1)
        lastActivity = now
    }

    // MARK: Flow

    /// The channel is not writable even after a flush: stop answering and reading.
    public mutating func pause() {
        if case .reading = flow { flow = .paused(readHeld: false) }
    }

    public var isPaused: Bool { flow != .reading }

    /// The pipeline asks for a socket read. Returns whether to issue it now (else it is held).
    public mutating func readRequested() -> Bool {
        if case .paused = flow {
            flow = .paused(readHeld: true)
            return false
        }
        if answering {
            readHeldForAnswer = true
            return false
        }
        return true
    }

    /// Writable again. Returns whether a held read must be issued now (not while answering: then
    /// the answer's end issues it).
    public mutating func resume() -> Bool {
        defer { flow = .reading }
        guard case .paused(readHeld: true) = flow else { return false }
        if answering {
            readHeldForAnswer = true
            return false
        }
        return true
    }

    // MARK: Time

    public enum TimerAction: Sendable, Equatable {
        /// The head did not complete within its deadline: close, whatever else goes on.
        case closeHeadTimedOut
        /// Nothing is owed to the peer (or a promised body stopped) for the idle timeout: close.
        case closeIdle
        /// Check again after this many nanoseconds.
        case check(in: Int64)
    }

    /// The connection's timer fired. `pendingBytes`: bytes buffered and not yet framed.
    public func timerFired(now: UInt64, pendingBytes: Int) -> TimerAction {
        let idleFor = Int64(bitPattern: now &- lastActivity)
        var partialFor: Int64?
        if case .awaitingHead(partialSince: let since?) = framing {
            partialFor = Int64(bitPattern: now &- since)
            if let elapsed = partialFor, elapsed >= headTimeout { return .closeHeadTimedOut }
        }
        let quiet = routedInFlight == 0 && !answering && bodyRemaining == 0 && pendingBytes == 0
        let stalledBody = bodyRemaining > 0
        if quiet || stalledBody, idleFor >= idleTimeout { return .closeIdle }
        var next = quiet || stalledBody ? idleTimeout - idleFor : idleTimeout
        if let elapsed = partialFor { next = min(next, headTimeout - elapsed) }
        return .check(in: max(next, 10_000_000))
    }
}
