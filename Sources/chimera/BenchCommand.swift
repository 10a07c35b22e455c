import ArgumentParser
import ChimeraCore
import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (build with -c release for meaningful numbers).",
        subcommands: [DispatchBench.self, KeysBench.self, GatewayBench.self, GatewayDirectClient.self, RoutingBench.self]
    )
}

/// `chimera bench routing`: JHADE against baselines on a synthetic workload (see ``RoutingBenchmark``).
struct RoutingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing",
        abstract: "JHADE's quality and cost against always-external, always-internal, random, the best static threshold and the oracle, with APGR.",
        discussion: """
        A synthetic workload: four task kinds whose hidden expected quality per route depends on the task's difficulty;         the learner sees only prompts, declared capabilities, prices and the scores of the routes it ran.         Goal: at least 97% of the oracle's quality at no more than 105% of its cost, and a higher APGR than every baseline.
        """
    )

    @Option(help: "Tasks in the workload.")
    var tasks = 300

    @Option(help: "Seed of the workload and of JHADE's sampling.")
    var seed: UInt64 = 1

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard tasks >= 1, tasks <= 1_000_000 else { throw ValidationError("--tasks must be from 1 to 1000000") }
    }

    func run() throws {
        let report = RoutingBenchmark.standard.report(tasks: tasks, seed: seed)
        if json {
            printLine(report.serialized)
            return
        }
        guard case .object(let members) = report else { return }
        for member in members {
            if case .object(let baselines) = member.value {
                for baseline in baselines { printLine("\(member.key).\(baseline.key)".padding(44) + baseline.value.serialized) }
            } else {
                printLine(member.key.padding(44) + member.value.serialized)
            }
        }
    }
}

/// `chimera bench dispatch`: see docs/BENCHMARKS.md.
struct DispatchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "Push no-op tasks through queue → dispatch → worker → result and print the figures."
    )

    @Option(help: "Tasks in the pipelined phase.")
    var tasks = 500_000

    @Option(help: "Samples in the one-in-flight latency phase.")
    var samples = 20_000

    @Option(help: "Workers in the throughput and latency phases.")
    var workers = 2

    @Option(help: "Tasks each worker accepts at once.")
    var workerConcurrency = 256

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "Log level (default: warning).")
    var logLevel = "warning"

    func validate() throws {
        guard tasks >= 1, samples >= 1, workers >= 1, workerConcurrency >= 1 else {
            throw ValidationError("--tasks, --samples, --workers and --worker-concurrency must be at least 1")
        }
    }

    func run() throws {
        var common = try CommonOptions.parse([])
        common.logLevel = logLevel
        let logger = try common.bootstrapLogging()
        var options = DispatchBenchmark.Options()
        options.tasks = tasks
        options.latencySamples = samples
        options.workers = workers
        options.workerConcurrency = workerConcurrency
        let report = try DispatchBenchmark.run(workerExecutable: FileIO.executablePath(), options: options, logger: logger) { message in
            if !json { printLine("… \(message)") }
        }
        if json {
            printLine(report.json.serialized)
        } else {
            printLine("""
            tasks                    \(report.tasks)
            workers                  \(report.workers)
            pipelined                \(Int(report.pipelinedTasksPerSec)) tasks/s (\(report.seconds) s)
            one in flight            p50 \(report.p50Micros) µs, p99 \(report.p99Micros) µs (\(report.latencySamples) samples)
            spawn + handshake (4)    \(report.spawnHandshakeMs) ms
            coordinator RSS (idle)   \(report.rssMB) MB
            failures                 \(report.failures)
            """)
        }
        if report.failures > 0 { throw ExitCode(ExitCodes.taskFailed) }
    }
}

/// `chimera bench keys`: see docs/BENCHMARKS.md.
struct KeysBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Time key selection plus reservation in memory, and durable reservations through the SQLite ledger."
    )

    @Option(help: "In-memory select+reserve operations per strategy and pool size.")
    var operations = 200_000

    @Option(help: "Durable reservations (one transaction each); the batched phase does 8× as many.")
    var durable = 5_000

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard operations >= 1, durable >= 1 else { throw ValidationError("--operations and --durable must be at least 1") }
    }

    func run() throws {
        var template = Array("/tmp/chimera-bench-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            printError("cannot create a temporary directory under /tmp")
            throw ExitCode(ExitCodes.usage)
        }
        defer {
            for name in ["bench-ledger.sqlite", "bench-broker.sqlite"] {
                for suffix in ["", "-wal", "-shm"] { unlink(dir + "/" + name + suffix) }
            }
            rmdir(dir)
        }
        let report = try KeysBenchmark.run(operations: operations, durable: durable, directory: dir) { message in
            if !json { printLine("… \(message)") }
        }
        if json {
            printLine(report.json.serialized)
        } else {
            guard case .object(let members) = report.json else { return }
            for member in members { printLine("\(member.key.padding(44))\(member.value.serialized)") }
        }
    }
}

private extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(1, width - count)) }
}
