import ChimeraCore
import ChimeraSimulator
import ChimeraStore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera run` through the whole path: the file validated, steps on real handler and agent
/// worker processes, external steps against the simulator, checkpoints in `runs.sqlite`, and
/// `--resume` after the coordinator was killed.
@Suite("chimera run", .serialized, .timeLimit(.minutes(4)))
struct PipelineRunCLITests {
    let helpers = AskTests()

    static let text = "Tea is a drink made from leaves. It comes from China. People drink it hot or cold. "
        + "Green tea is not fermented. Black tea is fully oxidized. Tea has caffeine."

    static let brief = """
        {
          "name": "brief",
          "inputs": {"text": {"type": "string"}, "topic": {"type": "string", "default": "tea"}},
          "steps": [
            {"id": "summary", "kind": "summarize", "route": "internal", "prompt": "{{inputs.text}}"},
            {"id": "stats", "handler": "text.stats", "input": {"text": "{{inputs.text}}"}},
            {"id": "headline", "route": "external", "model": "\(AskTests.free)", "needs": ["summary"],
             "prompt": "Headline for {{inputs.topic}}: {{steps.summary.output}}"}
          ],
          "outputs": {"headline": "{{steps.headline.output}}", "summary": "{{steps.summary.output}}"}
        }
        """

    func write(_ text: String, in box: KeysSandbox, name: String = "pipeline.json") -> String {
        let path = box.root + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        FileIO.writeAll(Array(text.utf8), fd: fd)
        close(fd)
        return path
    }

    func requests(_ sim: OpenRouterSimulator) -> Int { sim.stats().accounts.values.map(\.requests).reduce(0, +) }

    @Test func aPipeline_runsInternalExternalAndHandlerSteps_andWritesItsOutputs() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: AskTests.config())
        let file = write(Self.brief, in: box)
        let env = helpers.environment(box, sim)

        let run = try await helpers.chimera(["run", file, "--input", "text=\(Self.text)", "--out", box.root + "/out", "--no-learn"], environment: env)
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let summary = "Tea is a drink made from leaves. Green tea is not fermented. Black tea is fully oxidized. Tea has caffeine."
        #expect(run.stdoutText.contains("== headline ==\nSimulated reply to: Headline for tea: \(summary)"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("== summary ==\n\(summary)"))
        // Progress lines (not a terminal): one per event, naming the route.
        #expect(run.stderrText.contains("summary: done · internal:text.summarize → text.summarize"), "\(run.stderrText)")
        #expect(run.stderrText.contains("stats: done · handler → text.stats"))
        #expect(requests(sim) == 1, "only the headline step went upstream")
        // --out: one file per output and the run's JSON.
        #expect(String(decoding: try FileIO.readAll(box.root + "/out/summary.txt"), as: UTF8.self) == summary)
        let document = try JSONParser.parse(String(decoding: try FileIO.readAll(box.root + "/out/run.json"), as: UTF8.self))
        #expect(document["status"]?.stringValue == "succeeded")
        guard case .array(let steps)? = document["steps"] else { Issue.record("no steps in run.json"); return }
        #expect(steps.map { $0["key"]?.stringValue } == ["summary", "stats", "headline"])
        #expect(steps.first { $0["key"]?.stringValue == "headline" }?["route"]?.stringValue == "external")
        // Stored: the run and its steps; the routed tasks with their decisions.
        let store = try RunStore(path: box.home + "/" + RunStore.fileName)
        let runId = try #require(document["run_id"]?.stringValue)
        #expect(try store.pipelineRun(runId)?.status == "succeeded")
        let headlineTask = try #require(try store.pipelineSteps(runId)["headline"]?.taskIds.first)
        #expect(try store.task(headlineTask)?.choice == "external")
        await sim.stop()
    }

    @Test func badInputsAndAnInvalidFile_failBeforeAnythingRuns() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: AskTests.config())
        let file = write(Self.brief, in: box)
        let env = helpers.environment(box, sim)

        let missing = try await helpers.chimera(["run", file], environment: env)
        #expect(missing.status == ChildExitStatus(code: 2, signal: 0))
        #expect(missing.stderrText.contains("input \"text\" (string) is required: give it with --input text=VALUE or --input-file text=PATH"))
        let unknown = try await helpers.chimera(["run", file, "--input", "text=x", "--input", "topik=y"], environment: env)
        #expect(unknown.status == ChildExitStatus(code: 2, signal: 0))
        #expect(unknown.stderrText.contains("--input topik: pipeline \"brief\" has no input \"topik\" (did you mean \"topic\"?)"), "\(unknown.stderrText)")

        let broken = write(Self.brief.replacingOccurrences(of: "\"needs\": [\"summary\"]", with: "\"needs\": [\"sumary\"]"), in: box, name: "broken.json")
        let invalid = try await helpers.chimera(["run", broken, "--input", "text=x"], environment: env)
        #expect(invalid.status == ChildExitStatus(code: 1, signal: 0))
        #expect(invalid.stderrText.contains("needs unknown step \"sumary\""), "\(invalid.stderrText)")
        #expect(invalid.stderrText.contains("nothing was run"))
        #expect(requests(sim) == 0)

        // A specialized agent refuses a kind it does not take, before any step runs.
        let refusing = write(Self.brief.replacingOccurrences(of: "\"id\": \"headline\",", with: "\"id\": \"headline\", \"agent\": \"news-analyst\", \"kind\": \"write\","),
                             in: box, name: "refusing.json")
        let refused = try await helpers.chimera(["run", refusing, "--input", "text=x", "--agents", Paths.packageRoot + "/Agents"], environment: env)
        #expect(refused.status == ChildExitStatus(code: 1, signal: 0), "\(refused.stderrText)")
        #expect(refused.stderrText.contains("step \"headline\": agent news-analyst (specialized) does not take tasks of kind \"write\""), "\(refused.stderrText)")
        #expect(requests(sim) == 0)
        await sim.stop()
    }

    @Test func killedMidRun_resumeSkipsFinishedSteps_andTheLedgerStaysExact() async throws {
        // The first simulator answers slowly, so the coordinator is killed with the draft in flight.
        var slow = AskTests.simulatorConfig()
        slow.latencyMs = 60_000
        let first = OpenRouterSimulator(config: slow)
        _ = try await first.start()
        let box = KeysSandbox(config: AskTests.config())
        let file = write("""
            {"name": "resumable", "inputs": {"text": "string"},
             "steps": [
               {"id": "outline", "kind": "summarize", "route": "internal", "prompt": "{{inputs.text}}"},
               {"id": "draft", "route": "external", "model": "\(AskTests.free)", "needs": ["outline"], "prompt": "Draft from: {{steps.outline.output}}"},
               {"id": "stats", "handler": "text.stats", "needs": ["draft"], "input": {"text": "{{steps.draft.output}}"}}
             ],
             "outputs": {"draft": "{{steps.draft.output}}"}}
            """, in: box)
        let firstEnv = helpers.environment(box, first)
        let killed = try await offThePool {
            let run = CLIRun()
            var killedIt = false
            run.onStderrLine = { line, run in
                guard !killedIt, line.hasPrefix("draft: external") else { return }
                // The draft's key is leased and its request is on its way: wait (bounded) until
                // the simulator has it, then kill the coordinator without warning.
                for _ in 0..<2_000 where first.stats().accounts.values.map(\.requests).reduce(0, +) == 0 { usleep(2_000) }
                killedIt = true
                kill(run.pid, SIGKILL)
            }
            try run.run(["run", file, "--input", "text=\(Self.text)"], environment: firstEnv)
            return FinishedRun(status: run.status, stdoutText: run.stdoutText, stderrText: run.stderrText)
        }
        #expect(killed.status?.signal == SIGKILL, "\(killed.stderrText)")
        #expect(requests(first) == 1)
        let runId = try #require(killed.stderrText.split(separator: "\n").first { $0.hasPrefix("run r_") }
            .map { String($0.dropFirst(4).prefix { $0 != ":" }) })
        let store = try RunStore(path: box.home + "/" + RunStore.fileName)
        #expect(try store.pipelineSteps(runId).keys.sorted() == ["outline"], "only the outline had finished")
        #expect(try store.pipelineRun(runId)?.status == "running")
        await first.stop()

        // Resume against a prompt simulator: the outline is reused, the draft and stats run.
        let second = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await second.start()
        let resumed = try await helpers.chimera(["run", "--resume", String(runId.prefix(12))], environment: helpers.environment(box, second))
        #expect(resumed.status == ChildExitStatus(code: 0, signal: 0), "\(resumed.stderrText)")
        #expect(resumed.stderrText.contains("outline: done (checkpoint)"))
        #expect(!resumed.stderrText.contains("outline: started"))
        #expect(resumed.stdoutText == "Simulated reply to: Draft from: Tea is a drink made from leaves. Green tea is not fermented. Black tea is fully oxidized. Tea has caffeine.\n")
        #expect(requests(second) == 1)
        #expect(try store.tasks(since: 0, kind: "summarize").count == 1, "the outline ran once in all")
        #expect(try store.pipelineRun(runId)?.status == "succeeded")
        // Two requests went upstream (one to each simulator), and the ledger counts exactly two:
        // the killed process's reservation stays counted, the resumed one was committed.
        let list = try await helpers.chimera(["keys", "list", "--json"], environment: helpers.environment(box, second))
        let used = (try JSONParser.parse(list.stdoutText))["keys"].flatMap { if case .array(let a) = $0 { a } else { nil } }?
            .compactMap { $0["used_today"]?.numberValue }.reduce(0, +)
        #expect(used == 2)
        let again = try await helpers.chimera(["run", "--resume", runId], environment: helpers.environment(box, second))
        #expect(again.status == ChildExitStatus(code: 2, signal: 0))
        #expect(again.stderrText.contains("already succeeded"))
        await second.stop()
    }
}
