import ArgumentParser
import ChimeraCore
import ChimeraRuntime
import ChimeraStore
#if canImport(Glibc)
import Glibc
#endif

/// `chimera task`: tasks routed by JHADE (internal handler or external model), scored by the
/// mediator, stored with their decisions in `$CHIMERA_HOME/runs.sqlite`, and learned from.
struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Run a task through JHADE: an internal handler or an external model, whichever is expected to do best.",
        discussion: """
        Internal handlers are the config's handlers (and single-handler pools) that list "kinds"; their \
        "capability" (0-1) is JHADE's prior. The answer is scored (--scorer), the score updates what JHADE \
        learned for the task kind and complexity, and the decision is stored: `chimera explain TASK_ID` \
        shows why, `chimera report` compares internal and external.
        Batch: --batch FILE takes one JSON object per line, {"prompt": …, "kind": …, "reference": …, "id": …} \
        (kind defaults to --kind), and prints one JSON line per task, in input order.
        Exit status: 0 every task answered, 1 a task got no answer, 2 usage or configuration error.
        """
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var routing: RoutingOptions

    @Argument(help: "The prompt (default: read stdin).")
    var prompt: String?

    @Option(help: "Task kind: selects the internal handlers that may serve it and what JHADE learned about it.")
    var kind = "general"

    @Option(help: "auto (JHADE decides), internal or external (default: the agent's route, else auto).")
    var route: String?

    @Option(help: "Agent profile: a built-in one (default, specialized, creative, reasoning, cost-aware) or one of --agents; see `chimera agents`.")
    var agent = "default"

    @Option(help: "The quality bar in [0, 1]: an answer passes when its score reaches it (default: the config's jhade.min_quality, else 0.6).")
    var minQuality: Double?

    @Option(name: .customLong("model"), help: "External model; repeat for a chain (default: the fastest free catalog models that fit).")
    var models: [String] = []

    @Option(name: .customLong("scorer"), help: "Scorer with an optional weight: format, reference, agreement, judge (a model grades; several answers are compared in pairs, both orders), custom (--custom-scorer); e.g. reference:2; repeat to combine (default: format, plus reference when one is given).")
    var scorerSpecs: [String] = []

    @Flag(help: "format scorer: the answer must be JSON.")
    var requireJSON = false

    @Option(help: "format scorer: a JSON Schema file the answer must satisfy (implies --require-json).")
    var schema: String?

    @Option(name: .customLong("section"), help: "format scorer: a section the answer must have (a heading or 'Name:'); repeat.")
    var sections: [String] = []

    @Option(help: "format scorer: shortest acceptable answer, in characters.")
    var minLength: Int?

    @Option(help: "format scorer: longest acceptable answer, in characters.")
    var maxLength: Int?

    @Option(name: .customLong("judge-model"), help: "judge scorer: the judge's model; repeat for a chain (default: the task's chain).")
    var judgeModels: [String] = []

    @Option(help: "judge scorer: what a good answer is (default: correct, complete, faithful, clear, in the asked form).")
    var rubric: String?

    @Option(help: "custom scorer: the handler (config handlers[]) that scores answers.")
    var customScorer: String?

    @Option(help: "A reference answer for the reference scorer.")
    var reference: String?

    @Option(help: "A file holding the reference answer.")
    var referenceFile: String?

    @Option(help: "Share of tasks (0-1) also run on the other route, for evaluation (default: the config's jhade.shadow, else 0).")
    var shadow: Double?

    @Option(help: "Candidates to ask the chosen external route for (creative and reasoning agents ask for their profile's candidates or samples).")
    var samples = 1

    @Option(help: "How candidates become one answer: best, vote, first_success, concat, synthesize (creative and reasoning agents use their profile's merge).")
    var merge = "best"

    @Option(help: "Latency budget in milliseconds.")
    var latencyBudgetMs: Int64?

    @Option(help: "Cost budget per task in USD.")
    var costBudget: Double?

    @Option(help: "A system message for external models.")
    var system: String?

    @Option(help: "Largest answer in tokens (external).")
    var maxTokens: Int?

    @Option(help: "Priority: low, normal, high or critical.")
    var priority = "normal"

    @Option(help: "File with one JSON task per line.")
    var batch: String?

    @Option(help: "Tasks in flight at once in batch mode.")
    var concurrency = 8

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Agent workers to start for external calls.")
    var workers = 2

    func validate() throws {
        if let route, RoutePreference(rawValue: route) == nil { throw ValidationError("--route must be auto, internal or external") }
        if let minQuality, !(0...1).contains(minQuality) { throw ValidationError("--min-quality must be from 0 to 1") }
        if let shadow, !(0...1).contains(shadow) { throw ValidationError("--shadow must be from 0 to 1") }
        guard samples >= 1, samples <= 16 else { throw ValidationError("--samples must be from 1 to 16") }
        guard MergeStrategy(rawValue: merge) != nil else {
            throw ValidationError("--merge must be one of \(MergeStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard TaskPriority(name: priority) != nil else { throw ValidationError("--priority must be low, normal, high or critical") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be from 1 to 64") }
        if batch != nil, prompt != nil { throw ValidationError("give a prompt or --batch, not both") }
        if reference != nil, referenceFile != nil { throw ValidationError("give --reference or --reference-file, not both") }
        for spec in scorerSpecs {
            do { _ = try ScorerSpec.parse(spec) } catch { throw ValidationError("--scorer \(spec): \(error)") }
        }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        var config = try common.loadConfig().config
        let profile = try loadAgent()
        let (scorers, judge, customScoring) = try buildScorers()
        let preference = route.flatMap(RoutePreference.init(rawValue:)) ?? profile.route
        if judge != nil, preference == .internal {
            printError("--scorer judge needs an external model, which --route internal rules out")
            throw ExitCode(ExitCodes.usage)
        }
        let tasks = try readTasks(bar: minQuality ?? profile.minQuality ?? config.jhade.minQuality)
        if let refused = tasks.lazy.compactMap({ profile.refusal(kind: $0.kind) }).first {
            printError(refused)
            throw ExitCode(ExitCodes.usage)
        }
        try addToolPools(profile, to: &config)
        let handlers = config.handlerCapabilities
        let needsExternal = preference != .internal || judge != nil
        if let customScoring, config.pool(serving: customScoring.handler) == nil {
            printError("--custom-scorer \(customScoring.handler): no handler of that name in the config (its handlers: \(config.pools.flatMap(\.handlers).sorted().joined(separator: ", ")))")
            throw ExitCode(ExitCodes.usage)
        }
        // Only the pools JHADE can use run: handler pools (and the custom scorer's), plus agent workers for external calls.
        var handlerNames = Set(handlers.map(\.handler)).union(profile.tools)
        if let customScoring { handlerNames.insert(customScoring.handler) }
        config.pools.removeAll { pool in !pool.handlers.contains { handlerNames.contains($0) } && !pool.handlers.contains(ExternalChatHandler.handlerName) }
        if needsExternal { config.ensureAgentPool(size: workers) }
        if !needsExternal { config.pools.removeAll { $0.handlers.contains(ExternalChatHandler.handlerName) } }
        if preference == .internal {
            let served = Set(handlers.flatMap(\.kinds))
            if let missing = tasks.first(where: { !served.contains($0.kind) }) {
                printError("no internal handler serves kind \"\(missing.kind)\"" + (served.isEmpty ? " (no handler in the config declares \"kinds\")"
                    : " (the config's handlers serve: \(served.sorted().joined(separator: ", ")))") + ", and --route internal rules out external models")
                throw ExitCode(ExitCodes.usage)
            }
        }
        if config.pools.isEmpty {
            printError("no internal handler serves kind \"\(kind)\" (declare one in the config's handlers with \"kinds\"), and --route internal rules out external models")
            throw ExitCode(ExitCodes.usage)
        }

        let environment = ProcessEnvironment.current
        let home = ConfigLoader.homeDirectory(environment: environment)
        let store: RunStore
        do {
            store = try RunStore(path: home + "/" + RunStore.fileName)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        let loop = try EventLoop()
        let clock = SystemWallClock()
        var external: ExternalSetup?
        if needsExternal {
            do {
                external = try ExternalSetup.open(config: config, baseURL: routing.baseURL, chain: models, loop: loop, clock: clock,
                                                  environment: environment, logger: logger, requireKeys: preference == .external)
            } catch {
                try? loop.close()
                throw error
            }
        }
        let coordinator = Coordinator(loop: loop, config: config, workerExecutable: FileIO.executablePath(), logger: logger)
        let runner = external.map { ExternalCallRunner(coordinator: coordinator, routes: $0.routes, loop: loop, clock: clock, logger: logger) }
        let engine = DecisionEngine(config.jhade, noLearn: routing.noLearn, shadow: shadow)
        let router = TaskRouter(coordinator: coordinator, external: runner, handlers: handlers, store: store, engine: engine,
                                scorers: scorers, judge: judge, customScorer: customScoring, seed: routing.seed, clock: clock, logger: logger)
        let agentRunner = AgentRunner(router: router)

        let jsonLines = json || batch != nil
        try runOrderedBatch(count: tasks.count, window: batch == nil ? 1 : concurrency, loop: loop, coordinator: coordinator,
                            finishedReason: "all tasks answered", onShutdown: {
                                runner?.cancelPending()
                                external?.close()
                            }) { index, finish in
            // Text mode: the strategy's steps on stderr as they happen (JSON carries them as "trace").
            let label = "agent \(profile.name) (\(profile.strategy.rawValue)): "
            let progress: ((String) -> Void)? = jsonLines || profile.strategy == .default ? nil : { FileIO.writeAll(Array((label + $0 + "\n").utf8), fd: 2) }
            agentRunner.run(tasks[index], agent: profile, progress: progress) { result in finish(render(result, index: index, jsonLines: jsonLines), !result.ok) }
        }
    }

    // MARK: Output

    /// One task's answer: the text (and a summary line on stderr), or one JSON line. An agent
    /// that ran several routed tasks (a cascade) is shown by the one that answered, with every
    /// task listed under "tasks"; the trace goes to stderr as it happens (text) or to "trace" (JSON).
    private func render(_ agentResult: AgentRunResult, index: Int, jsonLines: Bool) -> String {
        let shown = agentResult.answer ?? agentResult.tasks.last
        if !jsonLines {
            guard let result = shown else {
                printError("agent \(agentResult.agent): \(agentResult.error ?? "no answer")")
                return ""
            }
            let task = result.task
            let chosen = result.answeringCandidate
            if let output = agentResult.output {
                let score = chosen?.score.map { " score \(ComplexityEstimate.format($0))" } ?? ""
                FileIO.writeAll(Array("task \(task.taskId): \(task.choice) \(task.arm ?? "-") (\(chosen?.candidate.target ?? "-"))\(score)\n".utf8), fd: 2)
                return output
            }
            printError("task \(task.taskId): \(agentResult.error ?? "no answer") (chimera explain \(task.taskId))")
            return ""
        }
        var members: [JSONMember] = []
        if batch != nil { members.append(JSONMember("index", .number(Double(index)))) }
        if let result = shown {
            let task = result.task
            let chosen = result.answeringCandidate
            members += [
                JSONMember("task_id", .string(task.taskId)),
                JSONMember("kind", .string(task.kind)),
                JSONMember("ok", .bool(agentResult.ok)),
                JSONMember("choice", .string(task.choice)),
                JSONMember("route", task.arm.map { .string($0) } ?? .null),
                JSONMember("target", chosen.map { .string($0.candidate.target) } ?? .null),
                JSONMember("output", agentResult.output.map { .string($0) } ?? .null),
                JSONMember("score", chosen?.score.map { .number($0) } ?? .null),
                JSONMember("passed", chosen?.passed.map { .bool($0) } ?? .null),
                JSONMember("complexity", .number((task.complexity * 1000).rounded() / 1000)),
                JSONMember("shadow", task.shadowArm.map { .string($0) } ?? .null),
                JSONMember("candidates", .array(task.candidates.map { c in
                    .object([
                        JSONMember("route", .string(c.candidate.arm.description)), JSONMember("target", .string(c.candidate.target)),
                        JSONMember("shadow", .bool(c.candidate.shadow)), JSONMember("ok", .bool(c.candidate.succeeded)),
                        JSONMember("error", c.candidate.errorKind.map { .string($0) } ?? .null),
                        JSONMember("score", c.score.map { .number($0) } ?? .null),
                        JSONMember("latency_ms", .number(Double(c.candidate.latencyMs))),
                        JSONMember("cost_usd", c.candidate.costUSD.map { .number($0) } ?? .null),
                    ])
                })),
            ]
        } else {
            members += [JSONMember("task_id", .null), JSONMember("ok", .bool(false)), JSONMember("output", .null)]
        }
        members += [
            JSONMember("agent", .string(agentResult.agent)),
            JSONMember("strategy", .string(agentResult.strategy.rawValue)),
            JSONMember("tasks", .array(agentResult.tasks.map { r in
                let answering = r.answeringCandidate
                return .object([
                    JSONMember("task_id", .string(r.task.taskId)), JSONMember("choice", .string(r.task.choice)),
                    JSONMember("route", r.task.arm.map { .string($0) } ?? .null),
                    JSONMember("target", answering.map { .string($0.candidate.target) } ?? .null),
                    JSONMember("ok", .bool(r.merged != nil)),
                    JSONMember("score", r.merged == nil ? .null : answering?.score.map { .number($0) } ?? .null),
                    JSONMember("candidates", .number(Double(r.task.candidates.count))),
                ])
            })),
            JSONMember("cost_usd", .number(agentResult.costUSD)),
            JSONMember("cost_complete", .bool(agentResult.costIsComplete)),
            JSONMember("trace", .array(agentResult.trace.map { .string($0) })),
        ]
        if let error = agentResult.error { members.append(JSONMember("error", .string(error))) }
        if let error = shown?.storeError { members.append(JSONMember("store_error", .string(error))) }
        return JSONValue.object(members).serialized
    }

    // MARK: Agent

    /// The `--agent` profile from the library (`--agents`, `$CHIMERA_AGENTS`, `./Agents`).
    private func loadAgent() throws -> AgentProfile {
        let library: AgentLibrary
        do {
            library = try AgentLibrary.load(directory: routing.agents, environment: ProcessEnvironment.current)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        guard let profile = library.profile(named: agent) else {
            printError("--agent: \(library.unknownAgentMessage(agent))")
            throw ExitCode(ExitCodes.usage)
        }
        return profile
    }

    /// The agent's tools must be served (see ``ChimeraConfig/addPools(forToolsOf:)``).
    private func addToolPools(_ profile: AgentProfile, to config: inout ChimeraConfig) throws {
        if let missing = config.addPools(forToolsOf: profile) {
            printError("agent \(profile.name)\(profile.source.map { " (\($0))" } ?? ""): tool \"\(missing)\" is not a handler of the config "
                + "(its handlers: \(config.pools.flatMap(\.handlers).sorted().joined(separator: ", ")))")
            throw ExitCode(ExitCodes.usage)
        }
    }

    // MARK: Input

    /// The synchronous scorers, and the judge and custom scorer settings when asked for.
    private func buildScorers() throws -> (ScorerSet, JudgeSettings?, CustomScorerSettings?) {
        var specs = try scorerSpecs.map { spec -> (name: String, weight: Double) in
            do { return try ScorerSpec.parse(spec) } catch { throw ValidationError("--scorer \(spec): \(error)") }
        }
        if specs.isEmpty {
            specs = [("format", 1)]
            if reference != nil || referenceFile != nil || batch != nil { specs.append(("reference", 1)) }
        }
        var schemaValue: JSONSchema?
        if let schema {
            do {
                let text = String(decoding: try FileIO.readAll(schema), as: UTF8.self)
                schemaValue = try JSONSchema(JSONParser.parse(text))
            } catch {
                printError("\(schema): not a usable JSON Schema: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }
        var entries: [(scorer: any QualityScorer, weight: Double)] = []
        var judge: JudgeSettings?
        var custom: CustomScorerSettings?
        for spec in specs {
            switch spec.name {
            case "judge":
                var settings = JudgeSettings(weight: spec.weight)
                settings.models = judgeModels
                if let rubric { settings.rubric = rubric }
                judge = settings
            case "custom":
                guard let customScorer else {
                    printError("--scorer custom needs --custom-scorer HANDLER (a handler in the config that scores answers)")
                    throw ExitCode(ExitCodes.usage)
                }
                custom = CustomScorerSettings(handler: customScorer, weight: spec.weight)
            case "format":
                entries.append((FormatScorer(requireJSON: requireJSON || schemaValue != nil, schema: schemaValue, requiredSections: sections,
                                             minLength: minLength, maxLength: maxLength), spec.weight))
            case "reference": entries.append((ReferenceScorer(), spec.weight))
            case "agreement": entries.append((AgreementScorer(), spec.weight))
            default:
                printError("--scorer \(spec.name) is unknown (known: \(ScorerSpec.knownNames.joined(separator: ", ")))")
                throw ExitCode(ExitCodes.usage)
            }
        }
        return (ScorerSet(entries), judge, custom)
    }

    private func readTasks(bar: Double) throws -> [RoutedTask] {
        var referenceText = reference
        if let referenceFile {
            do { referenceText = String(decoding: try FileIO.readAll(referenceFile), as: UTF8.self) } catch {
                printError("\(referenceFile): cannot read the reference: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }
        func make(_ prompt: String, kind: String, reference: String?, id: String?) -> RoutedTask {
            var task = RoutedTask(id: id ?? Self.newTaskId(), kind: kind, prompt: prompt)
            task.system = system
            task.minQuality = bar
            task.route = route.flatMap(RoutePreference.init(rawValue:)) ?? .auto
            task.models = models
            task.latencyBudgetMs = latencyBudgetMs
            task.costBudgetUSD = costBudget
            task.priority = TaskPriority(name: priority)!
            task.maxTokens = maxTokens
            task.reference = reference
            task.merge = MergeStrategy(rawValue: merge)!
            task.samples = samples
            return task
        }
        if let batch {
            let bytes: [UInt8]
            do { bytes = try FileIO.readAll(batch) } catch {
                printError("\(batch): cannot read the batch file: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
            var tasks: [RoutedTask] = []
            var problems: [String] = []
            var ids = Set<String>()
            for (n, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard !line.allSatisfy(\.isWhitespace) else { continue }
                guard let value = try? JSONParser.parse(String(line)), case .object = value else {
                    problems.append("\(batch):\(n + 1): expected a JSON object like {\"prompt\": \"…\", \"kind\": \"…\"}")
                    continue
                }
                guard case .string(let text)? = value["prompt"], !text.isEmpty else {
                    problems.append("\(batch):\(n + 1): missing \"prompt\" (a non-empty string)")
                    continue
                }
                let id = value["id"]?.stringValue
                if let id, !ids.insert(id).inserted { problems.append("\(batch):\(n + 1): id \"\(id)\" is used twice") }
                tasks.append(make(text, kind: value["kind"]?.stringValue ?? kind, reference: value["reference"]?.stringValue ?? referenceText, id: id))
            }
            if !problems.isEmpty {
                for p in problems { printError(p) }
                throw ExitCode(ExitCodes.usage)
            }
            return tasks
        }
        if let prompt { return [make(prompt, kind: kind, reference: referenceText, id: nil)] }
        guard isatty(0) == 0 else { throw ValidationError("no prompt: give one as an argument, pipe it in, or use --batch FILE") }
        let text = String(decoding: (try? FileIO.readAll(fd: 0)) ?? [], as: UTF8.self)
        guard !text.allSatisfy(\.isWhitespace) else { throw ValidationError("the prompt on stdin is empty") }
        return [make(text, kind: kind, reference: referenceText, id: nil)]
    }

    /// `t_` + milliseconds since 1970 in base 36 + 6 random hex digits: sortable by time, unique enough.
    static func newTaskId() -> String {
        let ms = String(UInt64(SystemWallClock().now()), radix: 36)
        let random = String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        return "t_\(ms)\(String(repeating: "0", count: 6 - random.count))\(random)"
    }
}
