import ChimeraCore
import ChimeraSimulator
import ChimeraStore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera task` and `chimera explain` through the whole path: JHADE's decision, a real
/// Python handler process or an agent worker calling the simulator, the mediator's scores, and
/// `runs.sqlite`.
@Suite("chimera task and explain", .serialized, .timeLimit(.minutes(4)))
struct TaskCLITests {
    let helpers = AskTests()

    /// OpenRouter keys as in ``AskTests`` (optionally with no requests left), plus the Python
    /// `lead_summary` handler for kind `summarize` — the only internal handler (no built-in pool,
    /// whose `text.summarize` would be a second arm for the kind).
    static func config(perDay: Int = 50, onExhausted: String = "wait", capability: Double = 0.8) -> String {
        let keys = AskTests.config(perDay: perDay, onExhausted: onExhausted).dropFirst().dropLast()
        return """
        {\(keys), "pools": [],
         "handlers": [{"name": "lead_summary", "command": "python3", "args": ["\(Paths.packageRoot)/examples/handlers/python/lead_summary.py"],
                       "kinds": ["summarize"], "capability": \(capability)}]}
        """
    }

    static let article = "Summarize: Tea is a drink made from leaves. It comes from China. People drink it hot or cold. "
        + "Green tea is not fermented. Black tea is fully oxidized. Tea has caffeine."
    static let hard = "Explain step by step why the proof works, compare it with induction, analyze the trade-off, and critique it."

    func task(_ box: KeysSandbox, _ sim: OpenRouterSimulator, _ arguments: [String]) async throws -> FinishedRun {
        try await helpers.chimera(["task"] + arguments, environment: helpers.environment(box, sim))
    }

    func chatRequests(_ sim: OpenRouterSimulator) -> Int { sim.stats().accounts.values.map(\.requests).reduce(0, +) }

    func store(_ box: KeysSandbox) throws -> RunStore { try RunStore(path: box.home + "/" + RunStore.fileName) }

    @Test func anEasyTask_goesToTheInternalHandler_isStored_andExplained() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        let run = try await task(box, sim, ["--kind", "summarize", "--json", "--no-learn", Self.article])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let line = try #require(try helpers.lines(run.stdoutText).first)
        #expect(line["choice"]?.stringValue == "internal")
        #expect(line["route"]?.stringValue == "internal:lead_summary")
        #expect(line["output"]?.stringValue == "Tea is a drink made from leaves. It comes from China.", "the handler's answer, from its process")
        #expect(line["passed"] == .bool(true))
        #expect(chatRequests(sim) == 0, "nothing was sent to the external route")
        let id = try #require(line["task_id"]?.stringValue)

        // Stored with its decision; --no-learn left the statistics alone.
        let stored = try #require(try store(box).task(id))
        #expect(stored.choice == "internal" && stored.candidates.count == 1 && !stored.learning)
        #expect(try store(box).allStatistics().isEmpty)

        let explained = try await helpers.chimera(["explain", String(id.prefix(10))], environment: helpers.environment(box, sim))
        #expect(explained.status == ChildExitStatus(code: 0, signal: 0), "\(explained.stderrText)")
        for expected in ["task \(id)", "decision: internal → internal:lead_summary", "capability 0.80 at low complexity",
                         "chose internal:lead_summary", "#1 internal:lead_summary (lead_summary) ok", "answer (best):"] {
            #expect(explained.stdoutText.contains(expected), "missing \"\(expected)\" in:\n\(explained.stdoutText)")
        }
        let json = try JSONParser.parse(try await helpers.chimera(["explain", "--json", id], environment: helpers.environment(box, sim)).stdoutText)
        #expect(json["decision"]?["choice"]?["kind"]?.stringValue == "internal")
        #expect(json["decision"]?["complexity"]?["bucket"]?.stringValue == "low")
        let missing = try await helpers.chimera(["explain", "t_nope"], environment: helpers.environment(box, sim))
        #expect(missing.status == ChildExitStatus(code: 1, signal: 0))
        #expect(missing.stderrText.contains("no task \"t_nope\""))
        await sim.stop()
    }

    @Test func aHardTask_goesExternal_andAnExhaustedPool_fallsBackToTheHandler() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        let run = try await task(box, sim, ["--kind", "summarize", "--json", "--no-learn", Self.hard])
        let line = try #require(try helpers.lines(run.stdoutText).first)
        #expect(line["choice"]?.stringValue == "external", "\(run.stdoutText) \(run.stderrText)")
        #expect(line["output"]?.stringValue?.hasPrefix("Simulated reply to: Explain step by step") == true)
        #expect(chatRequests(sim) == 1)

        // Every account spent (0 a day) and the policy says fail: the handler answers instead.
        let spent = KeysSandbox(config: Self.config(perDay: 0, onExhausted: "fail"))
        let fallback = try await task(spent, sim, ["--kind", "summarize", "--json", "--no-learn", Self.hard])
        let f = try #require(try helpers.lines(fallback.stdoutText).first)
        #expect(f["choice"]?.stringValue == "internal_fallback", "\(fallback.stdoutText) \(fallback.stderrText)")
        #expect(f["route"]?.stringValue == "internal:lead_summary")
        #expect(chatRequests(sim) == 1, "no request was sent for the fallback")
        let explained = try await helpers.chimera(["explain"], environment: helpers.environment(spent, sim)).stdoutText
        #expect(explained.contains("decision: internal_fallback → internal:lead_summary: external route preferred"), "\(explained)")
        #expect(explained.contains("quota exhausted"), "\(explained)")
        await sim.stop()
    }

    @Test func scoresTeachJHADE_toLeaveAWeakHandler_andNoLearnFreezesIt() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(capability: 0.9))
        // The reference is what the external route answers: the handler's two-sentence lead
        // scores about 0.4 against it, below the 0.6 bar; every task is also shadowed.
        var batch = ""
        for i in 0..<10 {
            let prompt = Self.article + " Note \(i)."
            let reference = "Simulated reply to: " + prompt
            batch += JSONValue.object([JSONMember("prompt", .string(prompt)), JSONMember("reference", .string(reference)),
                                       JSONMember("id", .string("learn-\(i)"))]).serialized + "\n"
        }
        let file = box.root + "/batch.jsonl"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        FileIO.writeAll(Array(batch.utf8), fd: fd)
        close(fd)
        let run = try await task(box, sim, ["--kind", "summarize", "--batch", file, "--concurrency", "1", "--shadow", "1",
                                            "--scorer", "reference", "--seed", "7"])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let lines = try helpers.lines(run.stdoutText)
        #expect(lines.count == 10)
        let routes = lines.map { $0["route"]?.stringValue ?? "?" }
        #expect(routes.first == "internal:lead_summary", "the prior trusts the handler at first: \(routes)")
        #expect(routes.suffix(3).allSatisfy { $0 == "external" }, "the evidence moved JHADE: \(routes)")
        let stats = try store(box).allStatistics()
        let internalStats = try #require(stats.first { $0.key.arm == .internal("lead_summary") }?.value)
        let externalStats = try #require(stats.first { $0.key.arm == .external }?.value)
        #expect(internalStats.count == 10 && externalStats.count == 10, "chosen and shadow candidates both teach")
        #expect(internalStats.meanScore < 0.6 && externalStats.meanScore > 0.9)

        // Frozen: the same seed gives the same decision, and nothing is learned.
        var frozen: [String] = []
        for _ in 0..<2 {
            let r = try await task(box, sim, ["--kind", "summarize", "--json", "--no-learn", "--seed", "3", Self.article])
            frozen.append(try helpers.lines(r.stdoutText).first?["route"]?.stringValue ?? "?")
        }
        #expect(frozen == ["external", "external"])
        #expect(try store(box).allStatistics() == stats)

        // The report compares the routes from what was stored.
        let env = helpers.environment(box, sim)
        let report = try JSONParser.parse(try await helpers.chimera(["report", "--format", "json", "--kind", "summarize"], environment: env).stdoutText)
        guard case .array(let kinds)? = report["kinds"], let kind = kinds.first else { Issue.record("no kinds in \(report.serialized)"); return }
        #expect(kind["kind"]?.stringValue == "summarize" && kind["tasks"]?.numberValue == 12)
        #expect(kind["internal"]?["count"]?.numberValue == 10, "ten shadow-or-chosen handler answers")
        #expect(kind["external"]?["count"]?.numberValue == 12)
        #expect((kind["internal"]?["mean_quality"]?.numberValue ?? 1) < (kind["external"]?["mean_quality"]?.numberValue ?? 0))
        #expect(kind["head_to_head"]?["external_wins"]?.numberValue == 10)
        let html = box.root + "/report.html"
        let written = try await helpers.chimera(["report", "--format", "html", "--out", html], environment: env)
        #expect(written.status == ChildExitStatus(code: 0, signal: 0), "\(written.stderrText)")
        let page = String(decoding: try FileIO.readAll(html), as: UTF8.self)
        #expect(page.contains("<svg") && !page.contains("http://") && !page.contains("https://"))
        let bad = try await helpers.chimera(["report", "--since", "7x"], environment: env)
        #expect(bad.stderrText.contains("--since must be a number followed by m, h, d or w"))
        await sim.stop()
    }

    @Test func theJudge_gradesOneAnswer_andComparesSeveral_inBothOrders() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        // One answer: graded alone. The directive makes the simulator answer as a judge would.
        let single = try await task(box, sim, ["--route", "external", "--json", "--scorer", "judge", "[[sim:reply=Score: 8/10]] Grade me"])
        let s = try #require(try helpers.lines(single.stdoutText).first)
        #expect(s["score"]?.numberValue == 0.8, "\(single.stdoutText) \(single.stderrText)")
        #expect(chatRequests(sim) == 2, "the answer and one judge call")
        let detail = try #require(try store(box).task(s["task_id"]?.stringValue ?? "")?.candidates.first?.scoreDetail)
        #expect(detail["explanation"]?.stringValue == "0.80 = judge 0.80×1", "\(detail.serialized)")

        // Two answers: each pair is judged twice, in both orders. This judge always prefers the
        // answer shown first, so its verdicts cancel out: a tie, which is what position bias deserves.
        let before = chatRequests(sim)
        let pair = try await task(box, sim, ["--route", "external", "--json", "--samples", "2", "--scorer", "judge", "[[sim:verdict=A]] Which is better?"])
        let p = try #require(try helpers.lines(pair.stdoutText).first)
        #expect(chatRequests(sim) - before == 4, "two samples and two judge calls")
        let candidates = try #require(try store(box).task(p["task_id"]?.stringValue ?? "")?.candidates)
        #expect(candidates.count == 2 && candidates.allSatisfy { $0.score == 0.5 }, "\(candidates.map(\.scoreDetail.serialized))")
        #expect(candidates[0].scoreDetail.serialized.contains("changed with the order"))
        await sim.stop()
    }

    @Test func aCustomScorer_isAHandlerProcess() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let keys = AskTests.config().dropFirst().dropLast()
        let box = KeysSandbox(config: """
            {\(keys), "handlers": [{"name": "keyword_scorer", "command": "python3",
                                    "args": ["\(Paths.packageRoot)/examples/handlers/python/keyword_scorer.py"]}]}
            """)
        // The reference has 4 content words (simulated, reply, tea, green); the answer has 3.
        let run = try await task(box, sim, ["--route", "external", "--json", "--scorer", "custom", "--custom-scorer", "keyword_scorer",
                                            "--reference", "Simulated reply: tea, green", "About tea"])
        let line = try #require(try helpers.lines(run.stdoutText).first)
        #expect(line["score"]?.numberValue == 0.75, "\(run.stdoutText) \(run.stderrText)")
        let stored = try #require(try store(box).task(line["task_id"]?.stringValue ?? "")?.candidates.first)
        #expect(stored.scoreDetail.serialized.contains("3 of 4 key words present"))
        let missing = try await task(box, sim, ["--scorer", "custom", "x"])
        #expect(missing.status == ChildExitStatus(code: 2, signal: 0))
        #expect(missing.stderrText.contains("--scorer custom needs --custom-scorer HANDLER"))
        await sim.stop()
    }

    @Test func severalSamples_areMerged_byEachStrategy() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        func run(_ merge: String) async throws -> (JSONValue, StoredTask) {
            let r = try await task(box, sim, ["--route", "external", "--json", "--no-learn", "--samples", "3", "--merge", merge, "Name a colour"])
            let line = try #require(try helpers.lines(r.stdoutText).first, "\(r.stderrText)")
            let stored = try #require(try store(box).task(line["task_id"]?.stringValue ?? ""))
            return (line, stored)
        }
        // The simulator answers the same text three times: a vote of 3 to 0.
        let (vote, voted) = try await run("vote")
        #expect(vote["output"]?.stringValue == "Simulated reply to: Name a colour")
        #expect(voted.candidates.count == 3 && voted.merge == "vote")
        let (concat, _) = try await run("concat")
        let sections = concat["output"]?.stringValue?.ranges(of: "### Candidate ").count
        #expect(sections == 3, "three sections: \(concat["output"]?.stringValue ?? "")")
        let (first, _) = try await run("first_success")
        #expect(first["output"]?.stringValue == "Simulated reply to: Name a colour")
        // synthesize: one more call fuses the answers (its prompt carries the candidates).
        let before = chatRequests(sim)
        let (fused, _) = try await run("synthesize")
        #expect(chatRequests(sim) - before == 4, "three samples and the synthesis")
        #expect(fused["output"]?.stringValue?.hasPrefix("Simulated reply to: ") == true)
        await sim.stop()
    }

    @Test func theBuiltInHandlers_serveTheirKinds_withoutAnyConfig() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let keys = AskTests.config().dropFirst().dropLast()
        let box = KeysSandbox(config: "{\(keys)}")
        let math = try await task(box, sim, ["--kind", "math", "--json", "--no-learn", "What is 3 * (4 + 5)?"])
        let m = try #require(try helpers.lines(math.stdoutText).first, "\(math.stderrText)")
        #expect(m["route"]?.stringValue == "internal:math.eval", "\(math.stdoutText)")
        #expect(m["output"]?.stringValue == "27")
        #expect(chatRequests(sim) == 0)
        await sim.stop()
    }

    @Test func usageErrors_areClear() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        let internalOnly = try await task(box, sim, ["--kind", "translate", "--route", "internal", "hola"])
        #expect(internalOnly.status == ChildExitStatus(code: 2, signal: 0))
        #expect(internalOnly.stderrText.contains("no internal handler serves kind \"translate\""), "\(internalOnly.stderrText)")
        let badScorer = try await task(box, sim, ["--scorer", "fromat", "x"])
        #expect(badScorer.status?.code == 2)
        #expect(badScorer.stderrText.contains("fromat"), "\(badScorer.stderrText)")
        await sim.stop()
    }
}
