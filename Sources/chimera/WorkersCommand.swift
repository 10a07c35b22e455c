import ArgumentParser
import ChimeraCore
import ChimeraRuntime

/// `chimera workers`: what pools the configuration defines, and optionally whether they start.
struct WorkersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract: "List the configured worker pools.",
        discussion: "With --check, starts every pool, waits for the handshakes and reports what each worker declared."
    )

    @OptionGroup var common: CommonOptions

    @Flag(help: "Start the workers and report their handshakes.")
    var check = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let logger = try common.bootstrapLogging()
        let loaded = try common.loadConfig()
        var ready: [String: [(worker: String, pid: Int32, concurrency: Int)]] = [:]
        var failures: [String: String] = [:]
        if check {
            let loop = try EventLoop()
            let coordinator = Coordinator(loop: loop, config: loaded.config, workerExecutable: FileIO.executablePath(), logger: logger)
            let sizes = Dictionary(uniqueKeysWithValues: loaded.config.pools.map { ($0.name, $0.size) })
            coordinator.observer = { event in
                switch event {
                case .workerReady(let pool, let worker, let pid, let concurrency): ready[pool, default: []].append((worker, pid, concurrency))
                case .poolFailed(let pool, let reason): failures[pool] = reason
                default: return
                }
                // Done when every pool is either fully ready or failed.
                let settled = coordinator.poolSummaries.allSatisfy { $0.failure != nil || $0.readyWorkers == sizes[$0.name] }
                if settled { coordinator.shutdown(reason: "check done") }
            }
            try coordinator.start(handleSignals: true)
            loop.run()
            try loop.close()
        }
        if json {
            var pools: [JSONValue] = []
            for pool in loaded.config.pools {
                var members = [
                    JSONMember("name", .string(pool.name)),
                    JSONMember("command", pool.command.map { .string($0) } ?? .string("chimera worker (built-in)")),
                    JSONMember("args", .array(pool.arguments.map { .string($0) })),
                    JSONMember("size", .number(Double(pool.size))),
                    JSONMember("handlers", .array(pool.handlers.map { .string($0) })),
                ]
                if check {
                    members.append(JSONMember("ready", .number(Double(ready[pool.name]?.count ?? 0))))
                    members.append(JSONMember("failure", failures[pool.name].map { .string($0) } ?? .null))
                }
                pools.append(.object(members))
            }
            printLine(JSONValue.object([JSONMember("config", .string(loaded.sourceDescription)),
                                        JSONMember("home", .string(ConfigLoader.homeDirectory())),
                                        JSONMember("pools", .array(pools))]).serialized)
        } else {
            printLine("config: \(loaded.sourceDescription)")
            printLine("home:   \(ConfigLoader.homeDirectory())")
            for pool in loaded.config.pools {
                let command = pool.command.map { ([$0] + pool.arguments).joined(separator: " ") } ?? "chimera worker (built-in)"
                printLine("")
                printLine("pool \(pool.name): \(pool.size) × \(command)")
                printLine("  handlers: \(pool.handlers.joined(separator: ", "))")
                if let concurrency = pool.maxConcurrency { printLine("  max_concurrency: \(concurrency)") }
                printLine("  restart: at most \(pool.restart.maxRestarts) in \(pool.restart.windowMs) ms, backoff \(pool.restart.backoffInitialMs)–\(pool.restart.backoffMaxMs) ms")
                if check {
                    if let failure = failures[pool.name] {
                        printLine("  status: FAILED: \(failure)")
                    } else {
                        let workers = ready[pool.name] ?? []
                        printLine("  status: \(workers.count)/\(pool.size) ready" + workers.map { " \($0.worker) (pid \($0.pid), max \($0.concurrency))" }.joined(separator: ","))
                    }
                }
            }
        }
        if check, !failures.isEmpty { throw ExitCode(ExitCodes.taskFailed) }
    }
}
