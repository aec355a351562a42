/// Every state and transition of one front connection (``HotPathHandler``), free of channels,
/// buffers and timers: the handler feeds it events and carries out the actions it returns.
/// Times are uptime nanoseconds (`NIODeadline.uptimeNanoseconds`), durations nanoseconds.
///
/// Two parts, independent of each other, each one exhaustive enum:
/// - ``Framing``: waiting for a head (since when its first byte came, if one is partial), passing
///   a handed-on request's body through, or passing everything through for good (the stream held
///   something the handler does not frame; the codec is the authority from then on);
/// - ``Activity``: reading; paused because the peer does not read its answers; answering a
///   request the handler serves itself, later (a miss it fills: nothing after it is framed,
///   answered or handed on, socket reads and a graceful close wait for it); or closed (the
///   handler left the pipeline or the channel closed: an answer finishing now is dropped).
///
/// Beside them: how many requests went to the router and are not answered yet (while any are, a
/// later request is never answered ahead of them), and what the current read burst owes the
/// channel (a flush for answers written, a read-complete for bytes handed on).
public struct HotPathConnectionStateMachine: Sendable, Equatable {
    public enum Framing: Sendable, Equatable {
        /// Between requests, or in a head whose first byte came at `partialSince` (nil: none yet).
        case awaitingHead(partialSince: UInt64?)
        /// Passing a handed-on request's body through; `remaining` bytes still to come.
        case body(remaining: Int)
        /// Everything goes to the codec, for the rest of the connection.
        case passThrough
    }

    public enum Activity: Sendable, Equatable {
        /// Reading, framing, answering.
        case reading
        /// Answers wait for the peer: nothing is answered and nothing read; `readHeld`: a socket
        /// read was asked for meanwhile (issued on resume).
        case paused(readHeld: Bool)
        /// A request the handler answers itself is being served.
        case answering(Answering)
        /// The handler is off the pipeline or its channel closed.
        case closed
    }

    /// While a request the handler serves itself is unanswered.
    public struct Answering: Sendable, Equatable {
        /// The peer stopped reading meanwhile (the answer's end leaves the connection paused).
        public var paused = false
        /// A socket read was asked for meanwhile (issued when the answer is written, or on resume).
        public var readHeld = false
        /// A graceful close (quiesce) came meanwhile: passed on once the answer is out, so the
        /// connection is not closed under it.
        public var quiesceHeld = false

        public init(paused: Bool = false, readHeld: Bool = false, quiesceHeld: Bool = false) {
            self.paused = paused
            self.readHeld = readHeld
            self.quiesceHeld = quiesceHeld
        }
    }

    /// What the current read burst owes the channel.
    public struct Owed: OptionSet, Sendable, Equatable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Answers were written since the last flush.
        public static let flush = Owed(rawValue: 1)
        /// Bytes went on to the codec since the last read-complete passed on: the router's
        /// inbound stream delivers what it was given at a read-complete, so one must follow.
        public static let readComplete = Owed(rawValue: 2)
    }

    public private(set) var framing: Framing = .awaitingHead(partialSince: nil)
    public private(set) var activity: Activity = .reading
    /// Requests handed to the router and not answered yet.
    public private(set) var routedInFlight = 0
    /// What this read burst owes the channel (``Owed``).
    public var owed: Owed = []
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

    /// The connection's clock starts again at `now` (the handler's event loop is known).
    public mutating func restartClock(now: UInt64) {
        lastActivity = now
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
        /// More than `maxHead` without an end, while an earlier request is still with the router:
        /// hand everything to the codec, which refuses it (a bare 400) after that request's answer.
        case handOver
        /// More than `maxHead` without an end, nothing unanswered: refuse it here (431) and close.
        case refuse
    }

    /// The buffered bytes (`buffered` of them) hold no complete head yet.
    public mutating func headIncomplete(buffered: Int, now: UInt64) -> PartialHeadAction {
        if buffered > maxHead { return refuseHead() ? .refuse : .handOver }
        guard case .awaitingHead(partialSince: nil) = framing else { return .wait }
        framing = .awaitingHead(partialSince: now)
        return .armDeadline(in: min(headTimeout, idleTimeout))
    }

    /// A whole head was framed: the head deadline stops.
    public mutating func headCompleted() {
        if case .awaitingHead = framing { framing = .awaitingHead(partialSince: nil) }
    }

    /// A head beyond the bounds (``RequestHeadLimits``, or no end within `maxHead`). Returns
    /// whether to refuse it here, answering 431 and closing (nothing is framed after it); else an
    /// earlier request is still with the router, whose answer must come first, and everything
    /// goes to the codec for good, which refuses the head behind it.
    public mutating func refuseHead() -> Bool {
        guard routedInFlight == 0, !answering else {
            framing = .passThrough
            return false
        }
        activity = .closed
        return true
    }

    /// A head the handler does not frame (odd syntax, chunked bodies, upgrades): pass-through for good.
    public mutating func unframeable() {
        framing = .passThrough
    }

    /// Whether this request may be answered here: answering is on, it has no body and needs
    /// nothing only the router does, and no earlier request is still with the router.
    public func mayAnswer(answers: Bool, contentLength: Int, needsRouter: Bool) -> Bool {
        answers && routedInFlight == 0 && activity == .reading && contentLength == 0 && !needsRouter
    }

    /// Whether a request the handler serves itself is unanswered.
    public var answering: Bool {
        if case .answering = activity { return true }
        return false
    }

    /// The handler serves the request just framed itself, later: nothing after it goes anywhere
    /// until ``answerWritten(now:)``.
    public mutating func answerStarted() {
        switch activity {
        case .reading: activity = .answering(Answering())
        case .paused(let readHeld): activity = .answering(Answering(paused: true, readHeld: readHeld))
        case .answering, .closed: break
        }
    }

    /// What to do once an answer the handler served itself is written.
    public struct AfterAnswer: Sendable, Equatable {
        /// Issue the socket read held meanwhile (not when the connection is paused: then resuming issues it).
        public var issueRead = false
        /// Pass on the graceful close held meanwhile.
        public var passQuiesce = false

        public init(issueRead: Bool = false, passQuiesce: Bool = false) {
            self.issueRead = issueRead
            self.passQuiesce = passQuiesce
        }
    }

    /// That answer was written.
    public mutating func answerWritten(now: UInt64) -> AfterAnswer {
        lastActivity = now
        guard case .answering(let answering) = activity else { return AfterAnswer() }
        if answering.paused {
            activity = .paused(readHeld: answering.readHeld)
            return AfterAnswer(issueRead: false, passQuiesce: answering.quiesceHeld)
        }
        activity = .reading
        return AfterAnswer(issueRead: answering.readHeld, passQuiesce: answering.quiesceHeld)
    }

    /// A graceful close (quiesce) arrived. Returns whether to pass it on now (else it is held
    /// until the answer being served is written).
    public mutating func quiesceArrived() -> Bool {
        guard case .answering(var answering) = activity else { return true }
        answering.quiesceHeld = true
        activity = .answering(answering)
        return false
    }

    /// The handler left the pipeline or the channel closed.
    public mutating func closed() {
        activity = .closed
    }

    public var isClosed: Bool { activity == .closed }

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
        switch activity {
        case .reading: activity = .paused(readHeld: false)
        case .answering(var answering):
            answering.paused = true
            activity = .answering(answering)
        case .paused, .closed: break
        }
    }

    public var isPaused: Bool {
        switch activity {
        case .paused: true
        case .answering(let answering): answering.paused
        case .reading, .closed: false
        }
    }

    /// Whether the handler asks for the next socket read itself at the end of a read burst
    /// that handed nothing on: it is reading (not paused, not serving a request itself), no
    /// request of this connection is with the router, and it still frames the bytes. The
    /// handlers behind it hold reads back only for bytes they were given, and a burst that
    /// gives them any leaves its read to the pipeline, so a read asked for here is one they
    /// would have passed.
    public var readsForItself: Bool {
        guard activity == .reading, routedInFlight == 0 else { return false }
        if case .passThrough = framing { return false }
        return true
    }

    /// The pipeline asks for a socket read. Returns whether to issue it now (else it is held).
    public mutating func readRequested() -> Bool {
        switch activity {
        case .reading: return true
        case .paused: activity = .paused(readHeld: true)
        case .answering(var answering):
            answering.readHeld = true
            activity = .answering(answering)
        case .closed: break
        }
        return false
    }

    /// Writable again. Returns whether a held read must be issued now (not while answering: then
    /// the answer's end issues it).
    public mutating func resume() -> Bool {
        switch activity {
        case .paused(let readHeld):
            activity = .reading
            return readHeld
        case .answering(var answering):
            answering.paused = false
            activity = .answering(answering)
            return false
        case .reading, .closed:
            return false
        }
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
