import ArgumentParser
import ChimeraRuntime

/// Runs jobs `0..<count` on the coordinator's loop, at most `window` at once, printing each
/// job's line in input order as soon as every earlier line is printed (an empty line prints
/// nothing); after the last, the coordinator shuts down. `ask` and `task` share it.
///
/// `onShutdown` runs once when shutdown starts, however it starts (all done, or SIGINT/SIGTERM),
/// to end what would keep the loop alive (backoff timers, key wake-up timers). Returns when the
/// loop has ended; throws the exit code: 3 after a signal that did not drain cleanly (0 if it
/// did), 1 when a job failed, 2 when the coordinator cannot start.
func runOrderedBatch(count: Int, window: Int, loop: EventLoop, coordinator: Coordinator, finishedReason: String,
                     onShutdown: @escaping () -> Void,
                     start: @escaping (_ index: Int, _ finish: @escaping (_ line: String, _ failed: Bool) -> Void) -> Void) throws {
    var lines: [Int: String] = [:]
    var nextToPrint = 0, nextToStart = 0, inFlight = 0, failures = 0

    func startMore() {
        while inFlight < window, nextToStart < count {
            let index = nextToStart
            nextToStart += 1
            inFlight += 1
            start(index) { line, failed in
                inFlight -= 1
                if failed { failures += 1 }
                lines[index] = line
                while let next = lines.removeValue(forKey: nextToPrint) {
                    if !next.isEmpty { printLine(next) }
                    nextToPrint += 1
                }
                if nextToPrint == count {
                    coordinator.shutdown(reason: finishedReason)
                } else {
                    startMore()
                }
            }
        }
    }

    var summary: ShutdownSummary?
    coordinator.onStopped = { summary = $0 }
    var released = false
    coordinator.observer = { event in
        guard case .shutdownStarted = event, !released else { return }
        released = true
        onShutdown()
    }
    do {
        try coordinator.start(handleSignals: true)
    } catch {
        printError("\(error)")
        throw ExitCode(ExitCodes.usage)
    }
    if count == 0 { coordinator.shutdown(reason: "nothing to do") } else { startMore() }
    loop.run()
    try loop.close()
    if let summary, summary.signal != nil { throw ExitCode(summary.isClean ? 0 : ExitCodes.interrupted) }
    if failures > 0 { throw ExitCode(ExitCodes.taskFailed) }
}
