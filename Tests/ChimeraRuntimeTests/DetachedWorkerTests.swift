import ChimeraCore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `Coordinator.detachesWorkers`: workers lead sessions of their own, out of the terminal's
/// foreground process group, so a Ctrl-C typed there reaches the coordinator only.
@Suite struct DetachedWorkerTests {
    /// The session id of the worker that ran one echo task.
    func workerSession(detached: Bool) throws -> (pid: Int32, sid: Int32, answered: Bool) {
        let h = try Harness(config: Harness.config(size: 1))
        h.coordinator.detachesWorkers = detached
        var pid: Int32 = 0, sid: Int32 = -1
        var answered = false
        h.onEvent = { event in
            if case .taskDispatched(_, _, let p, _) = event {
                pid = p
                sid = getsid(p)
            }
        }
        try h.run {
            h.submit("echo", .string("hi")) { outcome in
                answered = outcome.output == .string("hi")
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(h.summary?.isClean == true)
        return (pid, sid, answered)
    }

    @Test func detachedWorkers_leadTheirOwnSession_andStillServeAndStopCleanly() throws {
        let detached = try workerSession(detached: true)
        #expect(detached.answered)
        #expect(detached.pid > 0 && detached.sid == detached.pid, "a session leader: setsid ran")
        let attached = try workerSession(detached: false)
        #expect(attached.answered)
        #expect(attached.sid == getsid(0), "by default a worker shares the coordinator's session")
    }
}
