import ArgumentParser
import ChimeraCore
import ChimeraRuntime
import ChimeraStore
#if canImport(Glibc)
import Glibc
#endif

/// `chimera run`: a pipeline (`Pipelines/*.json`) executed on the coordinator, each finished
/// step checkpointed in `$CHIMERA_HOME/runs.sqlite` so that `--resume` continues a run whose
/// process died.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline: its steps as a DAG on the coordinator, each checkpointed.",
        discussion: """
        The file is validated first (as by `chimera validate`). Steps start as soon as the steps they need \
        have finished; each prompt step is routed by JHADE (internal handler or external model) and scored, \
        each handler step runs on its handler. Progress goes to stderr: a live line per running step on a \
        terminal, one log line per event otherwise. The outputs go to stdout (--json: one JSON document).
        --resume RUN_ID continues a run that did not finish (its process was killed, or a step failed): \
        finished steps are not run again, and the pipeline is the one stored with the run.
        Exit status: 0 the run succeeded, 1 a step failed or the file is invalid, 2 usage or configuration \
        error, 3 interrupted by a signal.
        """
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var routing: RoutingOptions

    @Argument(help: "The pipeline file (optional with --resume).")
    var file: String?

    @Option(name: .customLong("input"), help: "An input, NAME=VALUE (typed as the pipeline declares it); repeat.")
    var inputs: [String] = []

    @Option(name: .customLong("input-file"), help: "An input read from a file, NAME=PATH (an array input takes a JSON array or one item per line); repeat.")
    var inputFiles: [String] = []

    @Option(help: "Continue the run with this id (or a unique prefix of it).")
    var resume: String?

    @Option(help: "Also write each output to DIR/NAME.txt (or .json), and DIR/run.json.")
    var out: String?

    @Flag(help: "Print the result as one JSON document.")
    var json = false

    @Flag(help: "No progress lines on stderr.")
    var quiet = false

    @Option(help: "Items of one foreach step in flight at once.")
    var parallelItems = 4

    @Option(help: "Agent workers to start for external calls.")
    var workers = 2

    func validate() throws {
        if file == nil, resume == nil { throw ValidationError("give a pipeline file, or --resume RUN_ID") }
        if resume != nil, !inputs.isEmpty || !inputFiles.isEmpty {
            throw ValidationError("--resume runs with the inputs the run started with; --input and --input-file cannot change them")
        }
        guard parallelItems >= 1, parallelItems <= 256 else { throw ValidationError("--parallel-items must be from 1 to 256") }
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be from 1 to 64") }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        let loaded = try common.loadConfig()
        var config = loaded.config
        let environment = ProcessEnvironment.current
        let home = ConfigLoader.homeDirectory(environment: environment)
        let store: RunStore
        do {
            store = try RunStore(path: home + "/" + RunStore.fileName)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        let clock = SystemWallClock()

        // What to run: a file, or the definition stored with the run being resumed.
        var resumed: StoredPipelineRun?
        var bytes: [UInt8]
        var path: String
        if let resume {
            guard let run = try loadRun(resume, store) else { throw ExitCode(ExitCodes.usage) }
            resumed = run
            bytes = run.definition
            path = run.file
            if let file, let current = try? FileIO.readAll(file), current != run.definition {
                FileIO.writeAll(Array("note: \(file) changed since run \(run.runId) started; resuming the pipeline as it was then\n".utf8), fd: 2)
            }
        } else {
            path = file!
            do { bytes = try FileIO.readAll(path) } catch {
                printError("\(path): cannot read the pipeline: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }

        // Built-in offline handlers are always at hand for pipelines.
        if !config.pools.contains(where: \.isBuiltin) || !config.pools.contains(where: { $0.isBuiltin && $0.agent == nil }) {
            var pool = PoolConfig(name: "builtin", handlers: BuiltinHandlerNames.standard)
            pool.size = 2
            config.pools.append(pool)
        }
        let library: AgentLibrary
        do {
            library = try AgentLibrary.load(directory: routing.agents, environment: environment)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        let context = PipelineValidationContext(knownAgents: Set(library.names), knownHandlers: Set(config.pools.flatMap(\.handlers)))
        let decoded = PipelineDecoder.decode(bytes, file: path, context: context)
        let problems = decoded.diagnostics.filter { $0.severity == .error }
        for diagnostic in decoded.diagnostics { FileIO.writeAll(Array("\(diagnostic)\n".utf8), fd: 2) }
        guard let pipeline = decoded.pipeline, problems.isEmpty else {
            printError("\(path): \(problems.count) problem\(problems.count == 1 ? "" : "s"); nothing was run")
            throw ExitCode(ExitCodes.taskFailed)
        }
        // A specialized agent takes only its kinds: better said now than after the steps before it ran.
        let refused = pipeline.steps.compactMap { step -> String? in
            guard step.handler == nil, let name = step.agent, let reason = library.profile(named: name)?.refusal(kind: step.kind) else { return nil }
            return "\(path): step \"\(step.id)\": \(reason)"
        }
        if !refused.isEmpty {
            for line in refused { printError(line) }
            printError("\(path): nothing was run")
            throw ExitCode(ExitCodes.taskFailed)
        }

        // Inputs, and the run's row.
        let runId: String
        var checkpoints: [String: StoredPipelineStep] = [:]
        let inputValues: JSONValue
        if let resumed {
            runId = resumed.runId
            inputValues = resumed.inputs
            if resumed.status == "succeeded" {
                printError("run \(runId) already succeeded; nothing to resume (its outputs: chimera run --resume is for unfinished runs)")
                throw ExitCode(ExitCodes.usage)
            }
            do {
                try store.reopenPipelineRun(runId)
                checkpoints = try store.pipelineSteps(runId)
            } catch {
                printError("\(error)")
                throw ExitCode(ExitCodes.usage)
            }
        } else {
            var given: [PipelineInputs.Given] = []
            for spec in inputs {
                guard let (name, value) = Self.split(spec) else { throw ValidationError("--input \(spec): expected NAME=VALUE") }
                given.append(.init(name: name, text: value, source: "--input \(name)"))
            }
            for spec in inputFiles {
                guard let (name, file) = Self.split(spec) else { throw ValidationError("--input-file \(spec): expected NAME=PATH") }
                do {
                    given.append(.init(name: name, text: String(decoding: try FileIO.readAll(file), as: UTF8.self), source: "--input-file \(name)"))
                } catch {
                    printError("--input-file \(name): cannot read \(file): \(error)")
                    throw ExitCode(ExitCodes.usage)
                }
            }
            switch PipelineInputs.resolve(pipeline, given: given) {
            case .success(let value): inputValues = value
            case .failure(let error):
                for problem in error.problems { printError(problem) }
                throw ExitCode(ExitCodes.usage)
            }
            runId = Self.newRunId()
            do {
                try store.startPipelineRun(StoredPipelineRun(runId: runId, pipeline: pipeline.name, file: Self.absolutePath(path), definition: bytes,
                                                             inputs: inputValues, status: "running", startedAt: clock.now()))
            } catch {
                printError("\(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }
        FileIO.writeAll(Array("run \(runId): \(pipeline.name), \(pipeline.steps.count) steps\(resumed == nil ? "" : ", resumed with \(checkpoints.count) finished") (resume with: chimera run --resume \(runId))\n".utf8), fd: 2)

        // The tools of the agents the steps name run on handler pools.
        for name in Set(pipeline.steps.compactMap(\.agent)) {
            if let profile = library.profile(named: name), let missing = config.addPools(forToolsOf: profile) {
                printError("agent \(name) uses tool \"\(missing)\", which no handler in the configuration serves")
                throw ExitCode(ExitCodes.usage)
            }
        }
        // The coordinator: handler pools, and agent workers when a step may go external.
        let mayGoExternal = pipeline.steps.contains { $0.handler == nil && $0.route != .internal }
        if mayGoExternal { config.ensureAgentPool(size: workers) }
        let loop = try EventLoop()
        var external: ExternalSetup?
        if mayGoExternal {
            do {
                external = try ExternalSetup.open(config: config, baseURL: routing.baseURL, chain: [], loop: loop, clock: clock,
                                                  environment: environment, logger: logger, requireKeys: false)
            } catch {
                try? loop.close()
                throw error
            }
        }
        let coordinator = Coordinator(loop: loop, config: config, workerExecutable: FileIO.executablePath(), logger: logger)
        // Ctrl-C on a terminal reaches the whole foreground group: detached workers keep serving
        // while the coordinator drains (running steps finish and are checkpointed).
        coordinator.detachesWorkers = isatty(0) != 0 || isatty(2) != 0
        let externalRunner = external.map { ExternalCallRunner(coordinator: coordinator, routes: $0.routes, loop: loop, clock: clock, logger: logger) }
        let router = TaskRouter(coordinator: coordinator, external: externalRunner, handlers: config.handlerCapabilities, store: store,
                                engine: DecisionEngine(config.jhade, noLearn: routing.noLearn, shadow: 0), seed: routing.seed, clock: clock, logger: logger)
        let stepRunner = RoutedStepRunner(router: router, coordinator: coordinator, agents: library)
        stepRunner.defaultMinQuality = config.jhade.minQuality
        let progress = PipelineProgress(loop: loop, clock: clock, enabled: !quiet, live: isatty(2) != 0 && environment["TERM"] != "dumb")
        let executor = PipelineExecutor(pipeline: pipeline, runId: runId, inputs: inputValues, checkpoints: checkpoints, store: store,
                                        runner: stepRunner, loop: loop, clock: clock, logger: logger, onEvent: progress.handle)
        executor.itemWindow = parallelItems

        var result: PipelineRunResult?
        var stopped: ExitCode?
        do {
            try runOrderedBatch(count: 1, window: 1, loop: loop, coordinator: coordinator, finishedReason: "pipeline finished", onShutdown: {
                executor.stop(reason: "interrupted")
                progress.close()
                externalRunner?.cancelPending()
                external?.close()
            }) { _, finish in
                executor.start { outcome in
                    result = outcome
                    progress.close()
                    finish("", outcome.status != "succeeded")
                }
            }
        } catch let exit as ExitCode {
            // A failed step is reported below with the run's details; after a signal (0 or 3) or
            // when the coordinator cannot start (2), the code is kept for the end.
            if exit.rawValue != ExitCodes.taskFailed { stopped = exit }
        }
        guard let result else { throw stopped ?? ExitCode(ExitCodes.interrupted) }
        try report(result, pipeline: pipeline)
        if let stopped, stopped.rawValue == ExitCodes.usage { throw stopped }
        // A run a signal stopped did not finish, however cleanly it drained: exit 3.
        if result.status != "succeeded" { throw ExitCode(stopped == nil ? ExitCodes.taskFailed : ExitCodes.interrupted) }
    }

    // MARK: Output

    private func report(_ result: PipelineRunResult, pipeline: PipelineDefinition) throws {
        let document = Self.json(result, pipeline: pipeline)
        if let out {
            do {
                for output in result.outputs {
                    let isJSON = (try? JSONParser.parse(output.value)).map { if case .object = $0 { true } else if case .array = $0 { true } else { false } } ?? false
                    try AtomicFile.write(Array(output.value.utf8), to: out + "/" + Self.fileName(output.name) + (isJSON ? ".json" : ".txt"), mode: 0o644)
                }
                try AtomicFile.write(Array(document.serialized.utf8) + [0x0A], to: out + "/run.json", mode: 0o644)
            } catch {
                printError("--out \(out): \(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }
        if json {
            printLine(document.serialized)
        } else if result.status == "succeeded" {
            if result.outputs.count == 1 {
                printLine(result.outputs[0].value)
            } else {
                for (i, output) in result.outputs.enumerated() {
                    printLine((i == 0 ? "" : "\n") + "== \(output.name) ==\n" + output.value)
                }
            }
        }
        if result.status != "succeeded" {
            printError("run \(result.runId) failed: \(result.error ?? "?") (continue it with: chimera run --resume \(result.runId))")
        } else {
            let cost = result.steps.values.filter { $0.item == nil }.compactMap(\.costUSD).reduce(0, +)
            FileIO.writeAll(Array("run \(result.runId) succeeded: \(result.ranHere) step\(result.ranHere == 1 ? "" : "s") and items run here, cost $\(ComplexityEstimate.format(cost))\n".utf8), fd: 2)
        }
    }

    static func json(_ result: PipelineRunResult, pipeline: PipelineDefinition) -> JSONValue {
        let order = Dictionary(uniqueKeysWithValues: pipeline.steps.enumerated().map { ($0.element.id, $0.offset) })
        let steps = result.steps.values.sorted { (order[$0.stepId] ?? 0, $0.item ?? -1) < (order[$1.stepId] ?? 0, $1.item ?? -1) }
        return .object([
            JSONMember("run_id", .string(result.runId)),
            JSONMember("pipeline", .string(pipeline.name)),
            JSONMember("status", .string(result.status)),
            JSONMember("outputs", .object(result.outputs.map { JSONMember($0.name, .string($0.value)) })),
            JSONMember("error", result.error.map { .string($0) } ?? .null),
            JSONMember("steps", .array(steps.map { s in
                .object([
                    JSONMember("key", .string(s.key)), JSONMember("status", .string(s.status)),
                    JSONMember("route", s.route.map { .string($0) } ?? .null), JSONMember("target", s.target.map { .string($0) } ?? .null),
                    JSONMember("score", s.score.map { .number($0) } ?? .null), JSONMember("attempts", .number(Double(s.attempts))),
                    JSONMember("ms", .number(Double(s.finishedAt - s.startedAt))), JSONMember("cost_usd", s.costUSD.map { .number($0) } ?? .null),
                    JSONMember("task_ids", .array(s.taskIds.map { .string($0) })), JSONMember("error", s.error.map { .string($0) } ?? .null),
                    JSONMember("output", s.output.map { .string($0) } ?? .null),
                ])
            })),
        ])
    }

    // MARK: Helpers

    private func loadRun(_ id: String, _ store: RunStore) throws -> StoredPipelineRun? {
        do {
            if let run = try store.pipelineRun(id) { return run }
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        let recent = (try? store.recentPipelineRuns(limit: 5)) ?? []
        printError("no pipeline run \"\(id)\"" + (recent.isEmpty ? "" : " (recent runs: " + recent.map { "\($0.runId) \($0.pipeline) \($0.status)" }.joined(separator: ", ") + ")"))
        return nil
    }

    static func absolutePath(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileIO.absoluteDirectory(of: path) + "/" + (path.split(separator: "/").last.map(String.init) ?? path)
    }

    static func split(_ spec: String) -> (String, String)? {
        guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else { return nil }
        return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
    }

    static func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    /// `r_` + milliseconds since 1970 in base 36 + 6 random hex digits.
    static func newRunId() -> String {
        let ms = String(UInt64(SystemWallClock().now()), radix: 36)
        let random = String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        return "r_\(ms)\(String(repeating: "0", count: 6 - random.count))\(random)"
    }
}
