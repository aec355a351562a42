import GatewayHTTP
import Testing

/// The front connection's states and transitions, one at a time
/// (HotPathHandler+StateMachine.swift); HotPathTests drive the same machine through sockets.
@Suite("HotPathConnectionStateMachine transitions")
struct HotPathStateMachineTests {
    static let ms: Int64 = 1_000_000
    func machine(at now: UInt64 = 1_000 * UInt64(ms)) -> HotPathConnectionStateMachine {
        HotPathConnectionStateMachine(now: now, headTimeout: 1_000 * Self.ms, idleTimeout: 5_000 * Self.ms, maxHead: 40_960)
    }
    func at(_ milliseconds: Int64) -> UInt64 { UInt64(milliseconds * Self.ms) }

    @Test("the handler asks for the next read itself only while reading with nothing routed and still framing")
    func readsForItself() {
        var m = machine()
        #expect(m.readsForItself)
        m.routed(contentLength: 0)
        #expect(!m.readsForItself, "a request is with the router")
        m.routedResponseCompleted(now: at(1_100))
        #expect(m.readsForItself)
        m.pause()
        #expect(!m.readsForItself, "paused: reads are held")
        _ = m.resume()
        #expect(m.readsForItself)
        m.answerStarted()
        #expect(!m.readsForItself, "serving a miss: reads wait for its answer")
        _ = m.answerWritten(now: at(1_200))
        #expect(m.readsForItself)
        m.unframeable()
        #expect(!m.readsForItself, "the codec frames from here on")
        var closed = machine()
        closed.closed()
        #expect(!closed.readsForItself)
    }

    @Test("a partial head arms the earlier deadline once, completes, or is closed when its time is up")
    func partialHead() {
        var m = machine(at: at(1_000))
        #expect(m.headIncomplete(buffered: 10, now: at(1_000)) == .armDeadline(in: 1_000 * Self.ms))
        #expect(m.framing == .awaitingHead(partialSince: at(1_000)))
        #expect(m.headIncomplete(buffered: 20, now: at(1_500)) == .wait, "the deadline runs from the first byte, not the last")
        #expect(m.timerFired(now: at(1_900), pendingBytes: 20) == .check(in: 100 * Self.ms))
        #expect(m.timerFired(now: at(2_000), pendingBytes: 20) == .closeHeadTimedOut)
        m.headCompleted()
        #expect(m.framing == .awaitingHead(partialSince: nil))
        #expect(m.timerFired(now: at(2_000), pendingBytes: 0) == .check(in: 4_000 * Self.ms), "no head deadline once the head is whole")
    }

    @Test("a head past maxHead or over the limits is refused here and the connection closed; behind a routed request it goes to the codec")
    func oversizedHead() {
        var big = machine()
        #expect(big.headIncomplete(buffered: 40_961, now: at(1_000)) == .refuse)
        #expect(big.isClosed, "nothing is framed after a refused head")
        var complete = machine()
        let refused = complete.refuseHead()
        #expect(refused)
        #expect(complete.isClosed)
        #expect(!complete.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        // An earlier request is still with the router: its answer comes first, so the codec refuses this head.
        var behind = machine()
        behind.routed(contentLength: 0)
        #expect(behind.headIncomplete(buffered: 40_961, now: at(1_000)) == .handOver)
        #expect(behind.framing == .passThrough)
        let behindPasses = behind.bytesArrived(now: at(1_001))
        #expect(behindPasses)
        #expect(!behind.isClosed)
    }

    @Test("a head not framed passes everything through for good")
    func passThrough() {
        var odd = machine()
        odd.unframeable()
        let oddPasses = odd.bytesArrived(now: at(1_001))
        #expect(oddPasses)
    }

    @Test("answers keep request order: nothing is answered while a routed request is unanswered")
    func order() {
        var m = machine()
        #expect(m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        #expect(!m.mayAnswer(answers: false, contentLength: 0, needsRouter: false))
        #expect(!m.mayAnswer(answers: true, contentLength: 5, needsRouter: false))
        #expect(!m.mayAnswer(answers: true, contentLength: 0, needsRouter: true))
        m.routed(contentLength: 0)
        m.routed(contentLength: 0)
        #expect(!m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        m.routedResponseCompleted(now: at(1_100))
        #expect(!m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        m.routedResponseCompleted(now: at(1_200))
        #expect(m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        m.routedResponseCompleted(now: at(1_300))
        #expect(m.routedInFlight == 0, "never below zero")
        #expect(m.lastActivity == at(1_300))
    }

    @Test("a miss served by the handler: nothing after it is answered, reads are held once, idle never closes it")
    func answering() {
        var m = machine()
        let r1 = m.readRequested()
        #expect(r1)
        m.answerStarted()
        #expect(!m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        let r2 = m.readRequested()
        #expect(!r2, "a read waits for the answer")
        let r3 = m.readRequested()
        #expect(!r3)
        if case .closeIdle = m.timerFired(now: at(1_000_000), pendingBytes: 0) { Issue.record("closed a connection owed an answer") }
        #expect(m.activity == .answering(.init(paused: false, readHeld: true, quiesceHeld: false)))
        let r4 = m.answerWritten(now: at(2_000)).issueRead
        #expect(r4, "the held read is issued once the answer is written")
        #expect(m.lastActivity == at(2_000))
        #expect(m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
        let r5 = m.readRequested()
        #expect(r5)
        // No read asked for meanwhile: none to issue.
        m.answerStarted()
        let r6 = m.answerWritten(now: at(3_000)).issueRead
        #expect(!r6)
        // Paused by the peer while answering: the held read is the pause's to issue, once.
        m.answerStarted()
        let r7 = m.readRequested()
        #expect(!r7)
        m.pause()
        let r8 = m.answerWritten(now: at(4_000)).issueRead
        #expect(!r8)
        let r9 = m.resume()
        #expect(r9, "resuming issues the read held over the answer")
        let r10 = m.resume()
        #expect(!r10)
        // Paused, then answering, then writable: the answer's end issues it, not the resume.
        m.pause()
        let r11 = m.readRequested()
        #expect(!r11)
        m.answerStarted()
        let r12 = m.resume()
        #expect(!r12)
        let r13 = m.answerWritten(now: at(5_000)).issueRead
        #expect(r13)
    }

    @Test("a routed body passes through byte count by byte count, then the next head may start")
    func body() {
        var m = machine()
        m.routed(contentLength: 10)
        #expect(m.framing == .body(remaining: 10))
        m.bodyForwarded(4)
        #expect(m.bodyRemaining == 6)
        m.bodyForwarded(6)
        #expect(m.framing == .awaitingHead(partialSince: nil))
        m.bodyForwarded(3)
        #expect(m.framing == .awaitingHead(partialSince: nil), "body bytes outside a body change nothing")
    }

    @Test("idle: a quiet connection or a stalled body is closed after the idle timeout; a busy one is not")
    func idle() {
        var quiet = machine(at: at(1_000))
        #expect(quiet.timerFired(now: at(5_900), pendingBytes: 0) == .check(in: 100 * Self.ms))
        #expect(quiet.timerFired(now: at(5_999), pendingBytes: 0) == .check(in: 10 * Self.ms), "never sooner than 10 ms")
        #expect(quiet.timerFired(now: at(6_000), pendingBytes: 0) == .closeIdle)
        let passes = quiet.bytesArrived(now: at(5_000))
        #expect(!passes)
        #expect(quiet.timerFired(now: at(6_000), pendingBytes: 0) == .check(in: 4_000 * Self.ms))

        var busy = machine(at: at(1_000))
        busy.routed(contentLength: 0)
        #expect(busy.timerFired(now: at(60_000), pendingBytes: 0) == .check(in: 5_000 * Self.ms), "the router owes an answer: not idle")

        var stalled = machine(at: at(1_000))
        stalled.routed(contentLength: 100)
        #expect(stalled.timerFired(now: at(6_000), pendingBytes: 0) == .closeIdle, "a promised body that stops is idle")
    }

    @Test("flow: a pause holds reads, and resuming issues the held one exactly once")
    func flow() {
        var m = machine()
        let first = m.readRequested()
        #expect(first, "reading: issue it")
        m.pause()
        #expect(m.isPaused)
        let held = m.readRequested()
        #expect(!held)
        #expect(m.activity == .paused(readHeld: true))
        let issued = m.resume()
        #expect(issued)
        #expect(m.activity == .reading)
        let again = m.resume()
        #expect(!again, "nothing held: nothing to issue")
        m.pause()
        let none = m.resume()
        #expect(!none, "paused without a read asked for")
    }

    @Test("a graceful close while answering waits for the answer; a closed connection drops a late answer and asks for nothing")
    func quiesceAndClose() {
        var m = machine()
        let atOnce = m.quiesceArrived()
        #expect(atOnce, "nothing owed: pass it on at once")
        m.answerStarted()
        let held = m.quiesceArrived()
        #expect(!held, "held while an answer is served")
        let after = m.answerWritten(now: at(2_000))
        #expect(after == .init(issueRead: false, passQuiesce: true))
        #expect(m.activity == .reading)
        m.answerStarted()
        m.closed()
        #expect(m.isClosed)
        let late = m.answerWritten(now: at(3_000))
        #expect(late == .init(), "closed: no read, no quiesce")
        let read = m.readRequested()
        #expect(!read)
        #expect(!m.mayAnswer(answers: true, contentLength: 0, needsRouter: false))
    }
}
