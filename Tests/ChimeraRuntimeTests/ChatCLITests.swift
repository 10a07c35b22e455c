import ChimeraCore
import ChimeraSimulator
import ChimeraStore
import Testing
@testable import ChimeraRuntime

/// `chimera chat` in script mode (stdin is a pipe) against the simulator: answers in order,
/// memory across invocations, summarization, internal routing, the JSON shape, streaming.
@Suite("chimera chat", .serialized, .timeLimit(.minutes(4)))
struct ChatCLITests {
    let helpers = AskTests()

    /// Keys as in ``AskTests``, and the Python `uppercase` handler declared for kind `chat`.
    static var config: String {
        let keys = AskTests.config().dropFirst().dropLast()
        return """
        {\(keys), "handlers": [{"name": "uppercase", "command": "python3", "args": ["\(Paths.packageRoot)/examples/handlers/python/uppercase.py"],
                                "kinds": ["chat"], "capability": 0.5}]}
        """
    }

    func chat(_ box: KeysSandbox, _ sim: OpenRouterSimulator, _ arguments: [String], input: String) async throws -> FinishedRun {
        try await helpers.chimera(["chat", "--model", AskTests.free] + arguments, input: input, environment: helpers.environment(box, sim))
    }

    func requests(_ sim: OpenRouterSimulator) -> Int { sim.stats().accounts.values.map(\.requests).reduce(0, +) }

    func store(_ box: KeysSandbox) throws -> RunStore { try RunStore(path: box.home + "/" + RunStore.fileName) }

    /// A fresh simulator and sandbox (the config above) for `body`; the simulator stops after it.
    func withSimulator(_ body: (KeysSandbox, OpenRouterSimulator) async throws -> Void) async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config)
        do {
            try await body(box, sim)
        } catch {
            await sim.stop()
            throw error
        }
        await sim.stop()
    }

    @Test func threeLines_getThreeAnswers_inOrder_oneLineEach() async throws {
        try await withSimulator { box, sim in
            let run = try await chat(box, sim, ["--route", "external"], input: "First question\nSecond question\n\nThird question\n")
            #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
            #expect(run.stdoutText == "Simulated reply to: First question\nSimulated reply to: Second question\nSimulated reply to: Third question\n")
            #expect(requests(sim) == 3, "the blank line is no message")
            let session = try #require(try store(box).chatSession(named: "default"))
            let turns = try store(box).chatTurns(sessionId: session.id)
            #expect(turns.map(\.role) == ["user", "assistant", "user", "assistant", "user", "assistant"])
            #expect(turns[5].route == "external" && turns[5].target == AskTests.free && turns[5].taskId != nil)
            // Each answer is a routed task, stored and explainable like `chimera task`.
            let task = try #require(try store(box).task(turns[1].taskId ?? ""))
            #expect(task.kind == "chat" && task.prompt == "First question" && task.status == "ok")
        }
    }

    @Test func streamedAnswers_reachTheOutputAsTheyCome_andAFailureMidStreamIsReported() async throws {
        try await withSimulator { box, sim in
            // The simulator sends two words, then an error chunk: the two words were already printed.
            let run = try await chat(box, sim, ["--route", "external"], input: "[[sim:midstream-error]] tell me more\nand then\n")
            #expect(run.status == ChildExitStatus(code: 1, signal: 0), "one message got no answer")
            let lines = run.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines.count == 3 && lines[0] == "Simulated reply", "the streamed words, then the line ends: \(lines)")
            #expect(lines[1] == "Simulated reply to: and then", "the next message is answered on its own line")
            #expect(run.stderrText.contains("error: external (\(AskTests.free)): provider_error"), "\(run.stderrText)")
            #expect(run.stderrText.contains("chimera explain t_"))
            // The failed exchange is not remembered: only the second one is.
            let session = try #require(try store(box).chatSession(named: "default"))
            #expect(try store(box).chatTurns(sessionId: session.id).map(\.text) == ["and then", "Simulated reply to: and then"])
        }
    }

    @Test func aSession_isResumedByTheNextInvocation_withItsTurnsInThePrompt() async throws {
        try await withSimulator { box, sim in
            let first = try await chat(box, sim, ["--route", "external", "--system", "Be brief."], input: "My name is Ada.\n")
            #expect(first.status == ChildExitStatus(code: 0, signal: 0), "\(first.stderrText)")
            // The route was remembered with the session; echo-messages answers with what was sent.
            let second = try await chat(box, sim, ["--system", "Be brief."], input: "[[sim:echo-messages]] What is my name?\n")
            #expect(second.stdoutText == "system: Be brief. | user: My name is Ada. | assistant: Simulated reply to: My name is Ada. | user: What is my name?\n",
                    "\(second.stdoutText) \(second.stderrText)")
            // Another session knows nothing of it; --new starts this one afresh.
            let other = try await chat(box, sim, ["--session", "work", "--route", "external", "--system", "Be brief."], input: "[[sim:echo-messages]] Who am I?\n")
            #expect(other.stdoutText == "system: Be brief. | user: Who am I?\n")
            let fresh = try await chat(box, sim, ["--new", "--route", "external", "--system", "Be brief."], input: "[[sim:echo-messages]] Again?\n")
            #expect(fresh.stdoutText == "system: Be brief. | user: Again?\n")
        }
    }

    @Test func aTinyContext_foldsOlderTurnsIntoAStoredSummary_thatLaterPromptsCarry() async throws {
        try await withSimulator { box, sim in
            let messages = ["Tea is a drink made from the leaves of a shrub.", "Green tea is steamed soon after picking.",
                            "Black tea is fully oxidized before drying.", "Oolong tea sits between green and black tea."]
            let run = try await chat(box, sim, ["--route", "external", "--system", "", "--context-tokens", "100"],
                                     input: messages.joined(separator: "\n") + "\n[[sim:echo-messages]] What did we say?\n")
            #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
            let lines = run.stdoutText.split(separator: "\n").map(String.init)
            #expect(lines.count == 5)
            let session = try #require(try store(box).chatSession(named: "default"))
            #expect(session.summarizedThrough >= 2, "older turns were folded")
            #expect(session.summary.contains("Tea is a drink made from the leaves"), "the extractive summary keeps the central sentence: \(session.summary)")
            #expect(lines[4].hasPrefix("system: Summary of the earlier conversation: "), "the summary travels in the system message: \(lines[4])")
            #expect(!lines[4].contains("user: Tea is a drink"), "the folded turn itself is no longer sent")
            #expect(requests(sim) == 5, "summarizing is offline: no upstream request")
            // Every turn is still there for /history.
            #expect(try store(box).chatTurns(sessionId: session.id).count == 10)
        }
    }

    @Test func routeInternal_answersWithTheHandler_andSendsNothingUpstream_andCommandsAcknowledge() async throws {
        try await withSimulator { box, sim in
            let run = try await chat(box, sim, [], input: "/route internal\nhello there\n/stats\n/history 1\n/model auto\n/stast\n/exit\nnever read\n")
            let lines = run.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines.prefix(7) == [
                "route: internal",
                "HELLO THERE",
                "turns 1 · routes internal:uppercase 1 · tokens 0 · cost $0.000000 · mean score 1.00",
                "you: hello there\\nchimera: HELLO THERE",
                "model: auto (the fastest free catalog models)",
                "",
                "bye",
            ], "\(run.stdoutText) \(run.stderrText)")
            #expect(run.stderrText.contains("unknown command /stast (did you mean /stats?); commands: /agent NAME, /route auto|internal|external"))
            #expect(run.status == ChildExitStatus(code: 1, signal: 0), "an invalid command fails the script")
            #expect(requests(sim) == 0, "the handler answered; nothing went upstream")
        }
    }

    @Test func json_oneObjectPerLine_withTheDocumentedFields() async throws {
        try await withSimulator { box, sim in
            let run = try await chat(box, sim, ["--json", "--route", "external"], input: "Hi\n/route sideways\n[[sim:status=400]] bad\n")
            #expect(run.status == ChildExitStatus(code: 1, signal: 0))
            let lines = try helpers.lines(run.stdoutText)
            #expect(lines.count == 3)
            guard case .object(let members)? = lines.first else { Issue.record("not an object: \(run.stdoutText)"); return }
            #expect(members.map(\.key) == ["ok", "answer", "route", "target", "score", "task_id", "error"])
            #expect(lines[0]["ok"] == .bool(true) && lines[0]["answer"]?.stringValue == "Simulated reply to: Hi")
            #expect(lines[0]["route"]?.stringValue == "external" && lines[0]["target"]?.stringValue == AskTests.free)
            #expect(lines[0]["score"]?.numberValue == 1 && lines[0]["error"] == .null)
            #expect(try store(box).task(lines[0]["task_id"]?.stringValue ?? "") != nil)
            #expect(lines[1]["ok"] == .bool(false) && lines[1]["error"]?.stringValue == "/route takes auto, internal or external, found \"sideways\"")
            #expect(lines[2]["ok"] == .bool(false) && lines[2]["answer"] == .null && lines[2]["score"] == .null, "a failure has no score")
            #expect(lines[2]["error"]?.stringValue?.contains("bad_request") == true, "\(lines[2].serialized)")
        }
    }

    @Test func usageErrors_areClear() async throws {
        let box = KeysSandbox(config: Self.config)
        let bad = try await helpers.chimera(["chat", "--route", "sideways"], environment: box.environment())
        #expect(bad.status?.code == 2)
        #expect(bad.stderrText.contains("--route must be auto, internal or external"))
        let tiny = try await helpers.chimera(["chat", "--context-tokens", "10"], environment: box.environment())
        #expect(tiny.stderrText.contains("--context-tokens must be at least 64"))
    }
}
