import ChimeraCore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

@Suite("Supervision with real worker processes", .timeLimit(.minutes(1)))
struct SupervisionTests {
    @Test func echoAndTextStats_runThroughRealWorkers() throws {
        let h = try Harness(config: Harness.config())
        var outputs: [String: JSONValue] = [:]
        try h.run {
            h.submit("echo", .object([JSONMember("a", .array([.number(1), .string("x\ny")]))])) { outputs["echo"] = $0.output; done() }
            h.submit("text.stats", .string("One two three. Four five!\n\nSix")) { outputs["stats"] = $0.output; done() }
            func done() { if outputs.count == 2 { h.coordinator.shutdown(reason: "done") } }
        }
        #expect(outputs["echo"] == .object([JSONMember("a", .array([.number(1), .string("x\ny")]))]))
        #expect(outputs["stats"]?["words"] == .number(6))
        #expect(outputs["stats"]?["sentences"] == .number(3))
        #expect(outputs["stats"]?["paragraphs"] == .number(2))
        #expect(h.summary?.isClean == true)
    }

    @Test func workerKilledMidTask_isRetriedOnce_andResultDeliveredOnce() throws {
        let h = try Harness(config: Harness.config())
        var outcomes: [TaskOutcome] = []
        var killedPid: Int32 = 0
        h.onEvent = { event in
            if case .taskDispatched(_, _, let pid, 1) = event, killedPid == 0 {
                killedPid = pid
                kill(pid, SIGKILL)
            }
        }
        try h.run {
            h.submit("sleep", .object([JSONMember("ms", .number(200)), JSONMember("output", .string("done"))])) { outcome in
                outcomes.append(outcome)
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(outcomes.count == 1)
        let outcome = try #require(outcomes.first)
        #expect(outcome.output == .string("done"))
        #expect(outcome.attempts == 2)
        #expect(h.events.contains { if case .taskRequeued = $0 { true } else { false } })
        #expect(h.events.contains { if case .workerExited(_, _, let reason) = $0 { reason.contains("signal 9") } else { false } })
        // The dead worker was replaced: three starts for two slots.
        #expect(h.events.filter { if case .workerStarted = $0 { true } else { false } }.count == 3)
    }

    @Test func hungWorker_isKilledAndReplaced_andItsTaskRetried() throws {
        let h = try Harness(config: Harness.config { settings in
            settings.heartbeatIntervalMs = 50
            settings.heartbeatTimeoutMs = 300
        })
        var outcome: TaskOutcome?
        var stopped: Int32 = 0
        h.onEvent = { event in
            if case .taskDispatched(_, _, let pid, 1) = event, stopped == 0 {
                stopped = pid
                kill(pid, SIGSTOP)  // Alive but silent: the only sign is the missing heartbeat.
            }
        }
        try h.run {
            h.submit("sleep", .object([JSONMember("ms", .number(50)), JSONMember("output", .string("ok"))])) {
                outcome = $0
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(outcome?.output == .string("ok"))
        #expect(outcome?.attempts == 2)
        #expect(h.logs.contains("hung: silent for"))
        #expect(kill(stopped, 0) == -1 && errno == ESRCH, "the hung worker must be gone")
    }

    struct MalformedCase: CustomTestStringConvertible, Sendable {
        let name: String
        let input: JSONValue
        let logFragment: String
        var testDescription: String { name }
    }

    static let malformedCases: [MalformedCase] = [
        MalformedCase(name: "garbage", input: .object([JSONMember("text", .string("hello, I am not JSON\n"))]),
                      logFragment: "wrote a malformed line: not a JSON object"),
        MalformedCase(name: "truncated line", input: .object([JSONMember("text", .string("{\"jsonrpc\":\"2.0\",\"id\":\n"))]),
                      logFragment: "wrote a malformed line: invalid JSON"),
        MalformedCase(name: "over-long line", input: .object([JSONMember("text", .string("x")), JSONMember("repeat", .number(5_000))]),
                      logFragment: "wrote a line longer than max_line_bytes (2048 bytes)"),
        MalformedCase(name: "invalid UTF-8", input: .object([JSONMember("hex", .string("7b226a736f6e727063223a22322e30222c226d6574686f64223a22ff227d0a"))]),
                      logFragment: "invalid UTF-8"),
    ]

    @Test(arguments: malformedCases)
    func workerWritingMalformedOutput_isLoggedAndRestarted_coordinatorKeepsServing(_ testCase: MalformedCase) throws {
        let h = try Harness(config: Harness.config(size: 1) { $0.maxLineBytes = 2048 })
        var bad: TaskOutcome?
        var good: TaskOutcome?
        try h.run {
            h.submit("garbage", testCase.input) { outcome in
                bad = outcome
                h.submit("echo", .string("still here")) {
                    good = $0
                    h.coordinator.shutdown(reason: "done")
                }
            }
        }
        #expect(h.logs.contains(testCase.logFragment), "log was:\n\(h.logs.lines.joined(separator: "\n"))")
        // The task made its worker misbehave every time it ran: quarantined, not retried forever.
        #expect(bad?.result.failure?.kind == .quarantined)
        #expect(bad?.attempts == 2)
        #expect(good?.output == .string("still here"))
    }

    @Test func lspStyleWorker_getsExplicitError_notAHang() throws {
        var lsp = PoolConfig(name: "lsp", command: "/bin/sh", handlers: ["lsp"])
        lsp.arguments = ["-c", "printf 'Content-Length: 52\\r\\n\\r\\n'; exec sleep 30"]
        lsp.restart = RestartPolicy(maxRestarts: 1, windowMs: 10_000, backoffInitialMs: 10, backoffMaxMs: 10)
        let h = try Harness(config: Harness.config(size: 1, extraPools: [lsp]))
        var outcome: TaskOutcome?
        try h.run {
            h.submit("lsp", .string("x")) {
                outcome = $0
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(h.logs.contains("LSP-style 'Content-Length:' header"))
        #expect(outcome?.result.failure?.kind == .poolFailed)
    }

    @Test func crashLoopingPool_tripsRestartIntensity_otherPoolsKeepServing() throws {
        var broken = PoolConfig(name: "broken", command: "/bin/sh", handlers: ["broken"])
        broken.arguments = ["-c", "echo 'cannot start: missing model file' >&2; exit 3"]
        broken.restart = RestartPolicy(maxRestarts: 3, windowMs: 10_000, backoffInitialMs: 5, backoffMaxMs: 40)
        let h = try Harness(config: Harness.config(size: 1, extraPools: [broken]))
        var brokenOutcome: TaskOutcome?
        var echoOutcome: TaskOutcome?
        h.onEvent = { event in
            guard case .poolFailed("broken", _) = event else { return }
            h.submit("echo", .string("fine")) {
                echoOutcome = $0
                h.coordinator.shutdown(reason: "done")
            }
        }
        try h.run {
            h.submit("broken", .string("x")) { brokenOutcome = $0 }
        }
        let failure = try #require(brokenOutcome?.result.failure)
        #expect(failure.kind == .poolFailed)
        #expect(failure.message.contains("restart intensity exceeded: 3 restarts within 10000 ms"))
        #expect(failure.message.contains("exited with status 3"))
        #expect(h.logs.contains("[broken#1] cannot start: missing model file"), "stderr is forwarded with the worker's name")
        #expect(echoOutcome?.output == .string("fine"))
        #expect(h.coordinator.poolSummaries.first { $0.name == "broken" }?.failure != nil)
    }

    @Test func missingExecutable_failsPoolAtOnce_withTheReason() throws {
        let missing = PoolConfig(name: "ghost", command: "/nonexistent/handler", handlers: ["ghost"])
        let h = try Harness(config: Harness.config(size: 1, extraPools: [missing]))
        var outcome: TaskOutcome?
        try h.run {
            h.submit("ghost", .null) {
                outcome = $0
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(outcome?.result.failure?.kind == .poolFailed)
        #expect(outcome?.result.failure?.message.contains("no such file or directory") == true)
    }

    @Test func slowTask_timesOut_cooperativeWorkerIsKept() throws {
        let h = try Harness(config: Harness.config(size: 1))
        var outcome: TaskOutcome?
        var after: TaskOutcome?
        try h.run {
            h.submit("sleep", .number(10_000), timeoutMs: 100) { result in
                outcome = result
                h.submit("echo", .string("next")) {
                    after = $0
                    h.coordinator.shutdown(reason: "done")
                }
            }
        }
        #expect(outcome?.result.failure?.kind == .timeout)
        #expect(after?.output == .string("next"))
        // The worker acknowledged the cancel, so it was kept: one start, no kill, a clean stop.
        #expect(h.events.filter { if case .workerStarted = $0 { true } else { false } }.count == 1)
        #expect(!h.logs.contains("killing worker"))
        #expect(h.summary?.isClean == true)
    }

    @Test func taskThatIgnoresCancel_isTimedOut_andItsWorkerKilled() throws {
        let h = try Harness(config: Harness.config(size: 1) { $0.cancelGraceMs = 100; $0.maxAttempts = 1 })
        var outcome: TaskOutcome?
        h.onEvent = { event in
            if case .workerStarted(_, _, _) = event, h.events.filter({ if case .workerStarted = $0 { true } else { false } }).count == 2 {
                h.coordinator.shutdown(reason: "replacement started")
            }
        }
        try h.run {
            h.submit("hang", .null, timeoutMs: 100) { outcome = $0 }
        }
        #expect(outcome?.result.failure?.kind == .timeout)
        #expect(h.logs.contains("did not acknowledge the cancel"))
    }

    @Test func streamedDeltas_arriveBeforeTheResult() throws {
        let h = try Harness(config: Harness.config(size: 1))
        var deltas: [String] = []
        var output: JSONValue?
        try h.run {
            h.coordinator.submit(TaskRequest(handler: "stream", value: .string("a b c")), onDelta: { deltas.append($0) }) {
                output = $0.output
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(deltas == ["a ", "b ", "c "])
        #expect(output == .string("a b c"))
    }

    @Test func fullQueue_refusesWithQueueFull_andPriorityOrderHolds() throws {
        let h = try Harness(config: Harness.config(size: 1, maxConcurrency: 1) { $0.queueCapacity = 2 })
        var order: [String] = []
        var refused: TaskFailure?
        var finished = 0
        func record(_ outcome: TaskOutcome) {
            order.append(outcome.output?.stringValue ?? "?")
            finished += 1
            if finished == 3 { h.coordinator.shutdown(reason: "done") }
        }
        h.onEvent = { event in
            guard case .workerReady = event else { return }
            // One worker slot: "first" runs, the next two wait in a queue of capacity 2.
            h.submit("sleep", .object([JSONMember("ms", .number(50)), JSONMember("output", .string("first"))]), then: record)
            h.submit("echo", .string("low"), priority: .low, then: record)
            h.submit("echo", .string("high"), priority: .high, then: record)
            h.submit("echo", .string("one too many")) { refused = $0.result.failure }
        }
        try h.run {}
        #expect(refused?.kind == .queueFull)
        #expect(order == ["first", "high", "low"])
    }

    @Test func childrenInheritOnlyStdio_noLeakedDescriptors() throws {
        let h = try Harness(config: Harness.config(size: 1))
        var fds: JSONValue?
        try h.run {
            h.submit("fds", .null) {
                fds = $0.output
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(fds == .array([.number(0), .number(1), .number(2)]))
    }

    @Test func pythonExampleHandler_servesThroughTheCoordinator() throws {
        var python = PoolConfig(name: "uppercase", command: "python3", handlers: ["uppercase"])
        python.arguments = ["examples/handlers/python/uppercase.py"]
        python.workingDirectory = Paths.packageRoot
        let h = try Harness(config: Harness.config(size: 1, extraPools: [python]))
        var results: [JSONValue?] = []
        try h.run {
            h.submit("uppercase", .string("quiet words")) { results.append($0.output) }
            h.submit("uppercase", .object([JSONMember("text", .string("ünïcode"))])) { results.append($0.output) }
            h.submit("uppercase", .number(3)) {
                results.append(.string($0.result.failure?.kind.rawValue ?? "no failure"))
                h.coordinator.shutdown(reason: "done")
            }
        }
        #expect(results == [.string("QUIET WORDS"), .string("ÜNÏCODE"), .string("invalid_input")])
        #expect(h.summary?.isClean == true, "the Python worker exits on end of input")
    }
}
