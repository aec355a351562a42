import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where log lines go: a bounded buffer that a thread of its own writes out, so that logging
/// (one access line per request, on the event loop for hot-path answers) never waits on a
/// terminal, a pipe or a disk. Appending copies the line's bytes under a lock and returns; when
/// the buffer already holds `capacity` bytes the line is dropped and counted
/// (`veeam_gateway_log_lines_dropped_total`) rather than blocking the caller. Lines are written
/// whole and in order, in batches of whatever has gathered in the 5 ms after the first.
public final class LogSink: Sendable {
    /// The process's standard error (fd 2).
    public static let standardError = LogSink(fileDescriptor: 2)

    private struct State {
        var pending: [UInt8] = []
        /// What the writer thread is writing now (kept to reuse its storage).
        var spare: [UInt8] = []
        var writing = false
        var started = false
    }

    /// How long the writer lets lines gather after the first one arrives (5 ms: a line is on its
    /// way out at most that late, under any load).
    static let gatherMicroseconds = 5_000

    private let fileDescriptor: Int32
    /// The most bytes held waiting for the writer.
    public let capacity: Int
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let dropped = Atomic<Int>(0)
    private let written = Atomic<Int>(0)

    /// A sink writing to `fileDescriptor` (not closed by the sink), holding at most `capacity`
    /// bytes (default 4 MiB) while the writer catches up.
    public init(fileDescriptor: Int32, capacity: Int = 4 << 20) {
        self.fileDescriptor = fileDescriptor
        self.capacity = capacity
    }

    /// Lines dropped because the buffer was full.
    public var droppedLines: Int { dropped.load(ordering: .relaxed) }
    /// Lines written out.
    public var writtenLines: Int { written.load(ordering: .relaxed) }

    /// Queues `line` and a newline; false (and counted) when the buffer is full.
    @discardableResult
    public func append(_ line: String) -> Bool {
        var line = line
        let outcome = line.withUTF8 { bytes -> (accepted: Bool, wakeWriter: Bool, start: Bool) in
            state.withLock { state in
                guard state.pending.count + bytes.count + 1 <= capacity else { return (false, false, false) }
                let wasIdle = state.pending.isEmpty
                state.pending.append(contentsOf: bytes)
                state.pending.append(0x0A)
                let start = !state.started
                state.started = true
                return (true, wasIdle, start)
            }
        }
        guard outcome.accepted else {
            dropped.add(1, ordering: .relaxed)
            return false
        }
        if outcome.start {
            let thread = Thread { [self] in writeLoop() }
            thread.name = "log-writer"
            thread.start()
        }
        if outcome.wakeWriter { wake.signal() }
        return true
    }

    /// Waits (at most `timeout`) until everything appended so far is written: at shutdown, and
    /// for tests.
    public func flush(timeout: Duration = .seconds(2)) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let idle = state.withLock { $0.pending.isEmpty && !$0.writing }
            if idle { return }
            wake.signal()
            usleep(1000)
        }
    }

    private func writeLoop() {
        while true {
            wake.wait()
            // Let lines gather for a moment: one wake-up and one write(2) per batch, not per line
            // (each woken write would cost the event loops a futex call and a core's time).
            usleep(UInt32(Self.gatherMicroseconds))
            var batch = state.withLock { state -> [UInt8] in
                var taken = state.spare
                swap(&taken, &state.pending)
                state.writing = !taken.isEmpty
                return taken
            }
            guard !batch.isEmpty else { continue }
            let lines = batch.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            batch.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let count = write(fileDescriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                    if count > 0 {
                        offset += count
                    } else if count < 0, errno == EINTR {
                        continue
                    } else {
                        break  // nowhere to write (closed pipe, full disk): these lines are lost
                    }
                }
            }
            written.add(lines, ordering: .relaxed)
            batch.removeAll(keepingCapacity: true)
            state.withLock { state in
                state.writing = false
                if batch.capacity <= 1 << 20 { state.spare = batch }
            }
        }
    }
}
