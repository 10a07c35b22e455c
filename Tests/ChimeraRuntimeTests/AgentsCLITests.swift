import ChimeraCore
import ChimeraSimulator
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Agent profiles end to end: `chimera agents`, and each strategy of `chimera task --agent` as
/// real processes (coordinator, handler workers, agent workers) against the simulator, whose
/// `replies=A|B|…` directive varies answers the way sampling would.
@Suite("agent profiles and strategies", .serialized, .timeLimit(.minutes(4)))
struct AgentsCLITests {
    let helpers = AskTests()
    let tasks = TaskCLITests()
    static let shipped = Paths.packageRoot + "/Agents"

    /// Writes `profiles` (file name → JSON text) into a fresh directory under `box`.
    func agentsDirectory(_ box: KeysSandbox, _ profiles: [String: String]) -> String {
        let directory = box.root + "/agents"
        mkdir(directory, 0o755)
        for (name, text) in profiles {
            let fd = open(directory + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            FileIO.writeAll(Array(text.utf8), fd: fd)
            close(fd)
        }
        return directory
    }

    func task(_ box: KeysSandbox, _ sim: OpenRouterSimulator, _ arguments: [String]) async throws -> (FinishedRun, JSONValue?) {
        let run = try await tasks.task(box, sim, arguments)
        return (run, try? helpers.lines(run.stdoutText).first)
    }

    func strings(_ value: JSONValue?) -> [String] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap(\.stringValue)
    }

    func array(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { items } else { [] }
    }

    // MARK: Library and `chimera agents`

    @Test func everyShippedProfile_loads_andOverridesTheBuiltInOfItsName() throws {
        let files = try FileIO.directoryEntries(Self.shipped).filter { $0.hasSuffix(".json") && !$0.hasSuffix(".schema.json") }
        #expect(files == ["cost-aware.json", "creative.json", "news-analyst.json", "reasoning.json"])
        // The editors' schema agrees with the decoder on every shipped profile.
        let schema = try JSONSchema(JSONParser.parse(try FileIO.readAll(Self.shipped + "/agent.schema.json")).value)
        for file in files {
            let bytes = try FileIO.readAll(Self.shipped + "/" + file)
            let profile = try AgentProfileDecoder.decode(bytes, file: file)
            #expect(profile.name + ".json" == file, "a shipped profile is named after its file")
            #expect(schema.validate(try JSONParser.parse(bytes).value).isEmpty, "\(file) follows agent.schema.json")
        }
        #expect(!schema.validate(try JSONParser.parse(#"{"strategy": "creativ", "cascade": ["fre"]}"#)).isEmpty)
        let library = try AgentLibrary.load(directory: Self.shipped, environment: [:])
        #expect(library.names == ["cost-aware", "creative", "default", "news-analyst", "reasoning", "specialized"])
        #expect(library.profile(named: "creative")?.source == Self.shipped + "/creative.json")
        #expect(library.profile(named: "creative")?.candidates == 4)
        #expect(library.profile(named: "default")?.source == nil)
        #expect(library.profile(named: "news-analyst")?.tools == ["text.keywords"])
        // The environment names the directory when no argument does; nothing at all: built-ins only.
        #expect(try AgentLibrary.load(directory: nil, environment: ["CHIMERA_AGENTS": Self.shipped]).directory == Self.shipped)
        #expect(library.unknownAgentMessage("news-analist")
            == "unknown agent \"news-analist\" (did you mean \"news-analyst\"?); known agents (built-in and from \(Self.shipped)): cost-aware, creative, default, news-analyst, reasoning, specialized")
    }

    @Test func agentsList_andShow_describeTheProfiles() async throws {
        let box = KeysSandbox(config: "{}")
        let env = box.environment()
        let list = try await helpers.chimera(["agents", "--json", "--agents", Self.shipped], environment: env)
        #expect(list.status == ChildExitStatus(code: 0, signal: 0), "\(list.stderrText)")
        let agents = array(try JSONParser.parse(list.stdoutText)["agents"])
        #expect(agents.compactMap { $0["name"]?.stringValue } == ["cost-aware", "creative", "default", "news-analyst", "reasoning", "specialized"])
        let analyst = try #require(agents.first { $0["name"]?.stringValue == "news-analyst" })
        #expect(analyst["strategy"]?.stringValue == "specialized" && analyst["source"]?.stringValue == Self.shipped + "/news-analyst.json")
        #expect(agents.first { $0["name"]?.stringValue == "default" }?["source"]?.stringValue == "built-in")

        let table = try await helpers.chimera(["agents", "--agents", Self.shipped], environment: env).stdoutText
        #expect(table.hasPrefix("NAME          STRATEGY     SOURCE"), "\(table)")
        #expect(table.contains("news-analyst  specialized  \(Self.shipped)/news-analyst.json  News desk analyst"), "\(table)")

        let show = try await helpers.chimera(["agents", "show", "--json", "--agents", Self.shipped, "cost-aware"], environment: env)
        let profile = try JSONParser.parse(show.stdoutText)
        #expect(strings(profile["cascade"]) == ["internal", "free", "paid"] && profile["budget_usd"]?.numberValue == 0.01)
        let text = try await helpers.chimera(["agents", "show", "--agents", Self.shipped, "news-analyst"], environment: env).stdoutText
        #expect(text.contains("agent news-analyst (specialized), \(Self.shipped)/news-analyst.json\n") && text.contains("  tools: [\"text.keywords\"]\n"), "\(text)")

        let unknown = try await helpers.chimera(["agents", "show", "--agents", Self.shipped, "reasonin"], environment: env)
        #expect(unknown.status == ChildExitStatus(code: 2, signal: 0))
        #expect(unknown.stderrText.hasPrefix("error: unknown agent \"reasonin\" (did you mean \"reasoning\"?); known agents"), "\(unknown.stderrText)")
    }

    @Test func aBadProfile_orAnUnknownAgent_isAUsageError_namingFileLineAndField() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: TaskCLITests.config())
        let directory = agentsDirectory(box, ["poet.json": "{\n  \"strategy\": \"creative\",\n  \"candidats\": 2\n}\n", "ok.json": "{}"])
        let (bad, _) = try await task(box, sim, ["--agent", "poet", "--agents", directory, "hello"])
        #expect(bad.status == ChildExitStatus(code: 2, signal: 0))
        #expect(bad.stderrText.contains("""
        error: \(directory)/poet.json: invalid agent profile
          \(directory)/poet.json:3:16: $.candidats: unknown field "candidats" (did you mean "candidates"?)
        """), "\(bad.stderrText)")

        let fine = agentsDirectory(box, ["poet.json": #"{"strategy": "creative"}"#])
        let (unknown, _) = try await task(box, sim, ["--agent", "poer", "--agents", fine, "hello"])
        #expect(unknown.status == ChildExitStatus(code: 2, signal: 0))
        #expect(unknown.stderrText.contains("error: --agent: unknown agent \"poer\" (did you mean \"poet\"?); known agents"), "\(unknown.stderrText)")
        let (missing, _) = try await task(box, sim, ["--agent", "poet", "--agents", box.root + "/nowhere", "hello"])
        #expect(missing.stderrText.contains("\(box.root)/nowhere: the agent profile directory (--agents) does not exist or is not a directory"))
        #expect(tasks.chatRequests(sim) == 0)
        await sim.stop()
    }

    // MARK: Strategies

    @Test func specialized_refusesAnOutsideKind_andItsToolOutputReachesTheModel() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: TaskCLITests.config())
        let (refused, _) = try await task(box, sim, ["--agent", "news-analyst", "--agents", Self.shipped, "--kind", "translate", "Bonjour"])
        #expect(refused.status == ChildExitStatus(code: 2, signal: 0))
        #expect(refused.stderrText == "error: agent news-analyst (specialized) does not take tasks of kind \"translate\"; it accepts: summarize, keywords, sentiment, classify\n")

        // The config has no pool for text.keywords: the tool gets a built-in pool of its own.
        let article = "Solar panels on the harbour warehouse produced record power in June. The harbour authority plans more solar panels."
        let (run, line) = try await task(box, sim, ["--agent", "news-analyst", "--agents", Self.shipped, "--kind", "summarize", "--route", "external",
                                                    "--json", "--no-learn", article])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let output = try #require(line?["output"]?.stringValue)
        #expect(output.hasPrefix("Simulated reply to: Context from text.keywords:"), "the model saw the tool's output first: \(output)")
        #expect(output.contains("solar panels"), "\(output)")
        #expect(tasks.chatRequests(sim) == 1)
        let trace = strings(line?["trace"])
        #expect(trace.first?.hasPrefix("tool text.keywords answered in ") == true, "\(trace)")
        #expect(line?["agent"]?.stringValue == "news-analyst" && line?["strategy"]?.stringValue == "specialized")

        // A tool that fails is left out (and said so); a tool no handler serves is a usage error.
        let directory = agentsDirectory(box, ["desk.json": #"{"strategy": "specialized", "tools": ["math.eval", "text.keywords"]}"#,
                                              "broken.json": #"{"strategy": "specialized", "tools": ["text.nope"]}"#])
        let (partial, partialLine) = try await task(box, sim, ["--agent", "desk", "--agents", directory, "--kind", "summarize", "--route", "external",
                                                               "--json", "--no-learn", article])
        #expect(partial.status == ChildExitStatus(code: 0, signal: 0), "\(partial.stderrText)")
        let partialTrace = strings(partialLine?["trace"])
        #expect(partialTrace.first?.hasPrefix("tool math.eval failed (invalid_input: ") == true && partialTrace.first?.hasSuffix("; going on without it") == true,
                "\(partialTrace)")
        #expect(partialLine?["output"]?.stringValue?.hasPrefix("Simulated reply to: Context from text.keywords:") == true)
        let (broken, _) = try await task(box, sim, ["--agent", "broken", "--agents", directory, "--kind", "summarize", article])
        #expect(broken.status == ChildExitStatus(code: 2, signal: 0))
        #expect(broken.stderrText.hasPrefix("error: agent broken (\(directory)/broken.json): tool \"text.nope\" is not a handler of the config (its handlers: "),
                "\(broken.stderrText)")
        await sim.stop()
    }

    @Test func creative_asksNCandidates_andReturnsTheBestScored() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: TaskCLITests.config())
        let directory = agentsDirectory(box, ["poet.json": #"{"strategy": "creative", "candidates": 3, "route": "external", "temperature": 1.2}"#])
        let (run, line) = try await task(box, sim, ["--agent", "poet", "--agents", directory, "--json", "--no-learn", "--scorer", "reference",
                                                    "--reference", "a lighthouse keeper counts waves", "--model", AskTests.free,
                                                    "Write a one-line poem. [[sim:replies=the sea is wet|a lighthouse keeper counts waves|waves]]"])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(line?["output"]?.stringValue == "a lighthouse keeper counts waves")
        #expect(tasks.chatRequests(sim) == 3, "one request per candidate")
        let candidates = array(line?["candidates"])
        #expect(candidates.count == 3 && candidates.allSatisfy { $0["route"]?.stringValue == "external" && $0["ok"] == .bool(true) })
        #expect(line?["score"]?.numberValue == 1)
        let trace = strings(line?["trace"])
        #expect(trace.first == "asking 3 candidates at temperature 1.20, merged with best", "\(trace)")
        #expect(trace.last?.hasPrefix("merged (best): best score 1.00: candidate") == true, "\(trace)")
        await sim.stop()
    }

    @Test func reasoning_usesReasoningModels_andVotesTheMajorityOfItsSamples() async throws {
        var config = AskTests.simulatorConfig()
        config.models.append(SimulatorConfig.Model(id: "sim/thinker:free", contextLength: 32_768, reasoning: true))
        let sim = OpenRouterSimulator(config: config)
        _ = try await sim.start()
        let box = KeysSandbox(config: TaskCLITests.config())
        // Five samples answer 42, 41, 42, 42, 41 in some order: 42 is the majority.
        let (run, line) = try await task(box, sim, ["--agent", "reasoning", "--json", "--no-learn",
                                                    "What is six times seven? [[sim:replies=42|41|42]]"])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(line?["output"]?.stringValue == "42")
        #expect(tasks.chatRequests(sim) == 5, "one request per sample")
        let candidates = array(line?["candidates"])
        #expect(candidates.count == 5 && candidates.allSatisfy { $0["target"]?.stringValue == "sim/thinker:free" }, "\(candidates)")
        let trace = strings(line?["trace"])
        #expect(trace.first == "models: reasoning-capable catalog models: sim/thinker:free", "\(trace)")
        #expect(trace.last?.hasPrefix("merged (vote): 3 of 5 answers agree") == true, "\(trace)")

        // Models the task names are kept: the caller chose them.
        let (named, namedLine) = try await task(box, sim, ["--agent", "reasoning", "--json", "--no-learn", "--model", AskTests.free,
                                                           "What is six times seven? [[sim:replies=42|41|42]]"])
        #expect(named.status == ChildExitStatus(code: 0, signal: 0), "\(named.stderrText)")
        #expect(array(namedLine?["candidates"]).allSatisfy { $0["target"]?.stringValue == AskTests.free })
        #expect(strings(namedLine?["trace"]).first == "models: the task's, as given: \(AskTests.free)")
        await sim.stop()
    }

    static let costAware = #"{"strategy": "cost-aware", "models": ["meta-llama/llama-3.3-70b-instruct:free", "openai/gpt-4o-mini"], "min_quality": 0.5}"#
    static let cascadePrompt = TaskCLITests.article + " [[sim:replies=wrong words entirely|good answer here]]"

    /// `chimera task --agent saver --kind summarize --json --no-learn …`, `profile` being saver.json.
    func saver(_ sim: OpenRouterSimulator, _ profile: String, _ arguments: [String]) async throws -> (FinishedRun, JSONValue?) {
        let box = KeysSandbox(config: TaskCLITests.config())
        let directory = agentsDirectory(box, ["saver.json": profile])
        return try await task(box, sim, ["--agent", "saver", "--agents", directory, "--kind", "summarize", "--json", "--no-learn"] + arguments)
    }

    @Test func costAware_stopsAtTheInternalTier_whenItPassesTheBar() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let (run, line) = try await saver(sim, Self.costAware, [TaskCLITests.article])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(line?["output"]?.stringValue == "Tea is a drink made from leaves. It comes from China.")
        #expect(tasks.chatRequests(sim) == 0, "no external tier ran")
        let routed = array(line?["tasks"])
        #expect(routed.count == 1 && routed.first?["route"]?.stringValue == "internal:lead_summary")
        #expect(routed.first?["task_id"]?.stringValue?.hasSuffix(".1") == true)
        #expect(strings(line?["trace"]).last?.hasPrefix("tier 1/3 internal: internal → internal:lead_summary (lead_summary) scored 1.00, passes the bar 0.50; stopping") == true,
                "\(strings(line?["trace"]))")
        await sim.stop()
    }

    @Test func costAware_escalatesTierByTier_whileTheScoreIsUnderTheBar() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let (run, line) = try await saver(sim, Self.costAware, ["--scorer", "reference", "--reference", "good answer here", Self.cascadePrompt])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(line?["output"]?.stringValue == "good answer here")
        #expect(tasks.chatRequests(sim) == 2, "the free tier, then the paid one")
        let routed = array(line?["tasks"])
        #expect(routed.compactMap { $0["target"]?.stringValue } == ["lead_summary", AskTests.free, "openai/gpt-4o-mini"], "\(routed)")
        #expect(line?["task_id"]?.stringValue == routed.last?["task_id"]?.stringValue, "the answer is the paid tier's")
        let trace = strings(line?["trace"])
        #expect(trace.count == 4, "\(trace)")
        #expect(trace.dropFirst().first?.hasSuffix("under the bar 0.50; escalating") == true, "\(trace)")
        #expect(trace.last?.hasPrefix("tier 3/3 paid: external → external (openai/gpt-4o-mini) scored 1.00, passes the bar 0.50; stopping") == true, "\(trace)")
        #expect((line?["cost_usd"]?.numberValue ?? 0) > 0, "the paid call cost something")

        // In text mode the answer is on stdout and the strategy's steps on stderr, one line each.
        let box = KeysSandbox(config: TaskCLITests.config())
        let directory = agentsDirectory(box, ["saver.json": Self.costAware])
        let text = try await tasks.task(box, sim, ["--agent", "saver", "--agents", directory, "--kind", "summarize", "--no-learn",
                                                   "--scorer", "reference", "--reference", "good answer here", Self.cascadePrompt])
        #expect(text.stdoutText == "good answer here\n")
        let steps = text.stderrText.split(separator: "\n").filter { $0.hasPrefix("agent saver (cost-aware): ") }
        #expect(steps.count == 4 && steps.last?.hasSuffix("passes the bar 0.50; stopping") == true, "\(text.stderrText)")
        await sim.stop()
    }

    @Test func costAware_neverPassesItsBudget_estimatingBeforeTheCall() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let profile = Self.costAware.dropLast() + #", "budget_usd": 0.0001}"#
        let (run, line) = try await saver(sim, String(profile), ["--scorer", "reference", "--reference", "good answer here", Self.cascadePrompt])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(tasks.chatRequests(sim) == 1, "the free tier only: the paid one would pass the budget")
        #expect(array(line?["tasks"]).count == 2)
        let trace = strings(line?["trace"])
        // The prompt's ≈ tokens × $0.00000015 + 1,024 answer tokens (the cap a budgeted call gets) × $0.0000006.
        #expect(trace.contains("tier 3/3 paid: not called, its estimated $0.000625 on top of $0 spent would pass the budget $0.0001"), "\(trace)")
        #expect(trace.last?.hasPrefix("no tier passed the bar before the budget stopped the cascade; answering with the best score") == true, "\(trace)")
        #expect(line?["cost_usd"]?.numberValue == 0)
        await sim.stop()
    }

    @Test func theShippedCostAwareProfile_paysWithinItsBudget_andAnExternalRouteSkipsTheInternalTier() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: TaskCLITests.config())
        let (run, line) = try await task(box, sim, ["--agent", "cost-aware", "--agents", Self.shipped, "--kind", "summarize", "--json", "--no-learn",
                                                    "--route", "external", "--scorer", "reference", "--reference", "good answer here", Self.cascadePrompt])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(line?["output"]?.stringValue == "good answer here")
        #expect(tasks.chatRequests(sim) == 2)
        let trace = strings(line?["trace"])
        #expect(trace.first == "cascade internal → free → paid, bar 0.70, budget $0.01", "\(trace)")
        #expect(trace.dropFirst().first == "tier 1/3 internal: skipped, the route is external", "\(trace)")
        #expect(array(line?["tasks"]).compactMap { $0["target"]?.stringValue } == [AskTests.free, "openai/gpt-4o-mini"])
        let cost = try #require(line?["cost_usd"]?.numberValue)
        #expect(cost > 0 && cost <= 0.01 && line?["cost_complete"] == .bool(true))
        await sim.stop()
    }
}
