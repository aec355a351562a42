/// Waits until `condition` holds: checked after each yield of the task (and a 1 ms pause every
/// hundred checks, so another thread can make progress), for at most `limit`. No fixed sleep
/// decides a test's outcome, and a condition that never holds returns false instead of hanging.
public func eventually(within limit: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    var checks = 0
    while !condition() {
        guard ContinuousClock.now < deadline else { return condition() }
        checks += 1
        if checks % 100 == 0 { try? await Task.sleep(for: .milliseconds(1)) } else { await Task.yield() }
    }
    return true
}
