import ChimeraCore
import Logging

/// `chimera bench dispatch`: no-op tasks through the full path (queue → dispatch → worker
/// process → result) with real workers, measured in three phases:
///
/// 1. spawn + handshake of 4 workers (time from `start()` to the last `initialize` answer);
/// 2. pipelined throughput on 2 workers (the submission window keeps every worker slot busy);
/// 3. latency with one task in flight (p50 and p99 of submit → completion).
///
/// RSS is read once the 2-worker coordinator is idle and ready.
public enum DispatchBenchmark {
    public struct Options: Sendable {
        public var tasks = 500_000
        public var latencySamples = 20_000
        public var workers = 2
        /// Tasks each worker accepts at once (its declared max_concurrency).
        public var workerConcurrency = 256
        public init() {}
    }

    public struct Report: Sendable {
        public var tasks = 0
        public var workers = 0
        public var seconds = 0.0
        public var pipelinedTasksPerSec = 0.0
        public var p50Micros = 0.0
        public var p99Micros = 0.0
        public var latencySamples = 0
        public var spawnHandshakeMs = 0.0
        public var rssMB = 0.0
        public var failures = 0

        public var json: JSONValue {
            func round(_ v: Double, _ places: Double = 1) -> JSONValue { .number((v * places).rounded() / places) }
            return .object([
                JSONMember("tasks", .number(Double(tasks))),
                JSONMember("workers", .number(Double(workers))),
                JSONMember("seconds", round(seconds, 1000)),
                JSONMember("pipelined_tasks_per_sec", round(pipelinedTasksPerSec)),
                JSONMember("p50_us", round(p50Micros, 10)),
                JSONMember("p99_us", round(p99Micros, 10)),
                JSONMember("latency_samples", .number(Double(latencySamples))),
                JSONMember("spawn_handshake_ms", round(spawnHandshakeMs, 10)),
                JSONMember("rss_mb", round(rssMB, 10)),
                JSONMember("failures", .number(Double(failures))),
            ])
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs all phases; `workerExecutable` is the `chimera` binary.
    public static func run(workerExecutable: String, options: Options, logger: Logger,
                           progress: @escaping (String) -> Void = { _ in }) throws -> Report {
        var report = Report()
        report.tasks = options.tasks
        report.workers = options.workers
        let loop = try EventLoop()
        defer { try? loop.close() }

        // Phase 1: spawn and handshake of 4 workers.
        progress("spawning 4 workers")
        var pool = PoolConfig(name: "bench", handlers: ["noop"])
        pool.size = 4
        pool.maxConcurrency = options.workerConcurrency
        var spawnStart: UInt64 = 0
        var readyCount = 0
        let spawner = Coordinator(loop: loop, config: ChimeraConfig(pools: [pool]), workerExecutable: workerExecutable, logger: logger)
        spawner.observer = { event in
            switch event {
            case .workerReady:
                readyCount += 1
                if readyCount == 4 {
                    report.spawnHandshakeMs = Double(EventLoop.hrtime() - spawnStart) / 1e6
                    spawner.shutdown(reason: "bench phase done")
                }
            case .poolFailed(_, let reason):
                report.failures += 1
                progress("pool failed: \(reason)")
                spawner.shutdown(reason: "failed")
            default: break
            }
        }
        spawnStart = EventLoop.hrtime()
        try spawner.start()
        loop.run()
        guard readyCount == 4 else { throw Failure(description: "workers did not start (see the log above)") }

        // Phases 2 and 3 on one coordinator with `options.workers` workers.
        pool.size = options.workers
        let coordinator = Coordinator(loop: loop, config: ChimeraConfig(pools: [pool]), workerExecutable: workerExecutable, logger: logger)
        let driver = Driver(coordinator: coordinator, options: options, progress: progress)
        readyCount = 0
        coordinator.observer = { event in
            if case .workerReady = event {
                readyCount += 1
                if readyCount == options.workers {
                    report.rssMB = FileIO.residentMegabytes()
                    driver.warmUp()
                }
            }
            if case .poolFailed(_, let reason) = event {
                progress("pool failed: \(reason)")
                coordinator.shutdown(reason: "failed")
            }
        }
        try coordinator.start()
        loop.run()
        guard driver.done else { throw Failure(description: "the benchmark did not finish (see the log above)") }
        report.seconds = driver.pipelinedSeconds
        report.pipelinedTasksPerSec = Double(options.tasks) / driver.pipelinedSeconds
        let sorted = driver.latencies.sorted()
        report.latencySamples = sorted.count
        report.p50Micros = Double(sorted[sorted.count / 2]) / 1000
        report.p99Micros = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1000
        report.failures += driver.failures
        return report
    }

    /// Drives the phases with completion callbacks (no sleeping, no polling).
    final class Driver {
        let coordinator: Coordinator
        let options: Options
        let progress: (String) -> Void
        static let noop = Array("null".utf8)
        var submitted = 0
        var completed = 0
        var failures = 0
        var started: UInt64 = 0
        var pipelinedSeconds = 0.0
        var latencies: [UInt64] = []
        var done = false

        init(coordinator: Coordinator, options: Options, progress: @escaping (String) -> Void) {
            self.coordinator = coordinator
            self.options = options
            self.progress = progress
        }

        func warmUp() {
            progress("warming up")
            runPipelined(count: 20_000) { self.measurePipelined() }
        }

        func measurePipelined() {
            progress("pipelined: \(options.tasks) tasks on \(options.workers) workers")
            started = EventLoop.hrtime()
            runPipelined(count: options.tasks) {
                self.pipelinedSeconds = Double(EventLoop.hrtime() - self.started) / 1e9
                self.progress("latency: \(self.options.latencySamples) tasks, one in flight")
                self.latencies.reserveCapacity(self.options.latencySamples)
                self.pingPong()
            }
        }

        /// Keeps the queue topped up so every worker slot stays busy, until `count` finish.
        func runPipelined(count: Int, then: @escaping () -> Void) {
            submitted = 0
            completed = 0
            let window = options.workers * options.workerConcurrency * 2
            func top() {
                while submitted - completed < window, submitted < count {
                    submitted += 1
                    coordinator.submit(TaskRequest(handler: "noop", input: Driver.noop)) { outcome in
                        if case .failure = outcome.result { self.failures += 1 }
                        self.completed += 1
                        if self.completed == count { then() } else { top() }
                    }
                }
            }
            top()
        }

        func pingPong() {
            guard latencies.count < options.latencySamples else {
                done = true
                coordinator.shutdown(reason: "bench done")
                return
            }
            let start = EventLoop.hrtime()
            coordinator.submit(TaskRequest(handler: "noop", input: Driver.noop)) { outcome in
                if case .failure = outcome.result { self.failures += 1 }
                self.latencies.append(EventLoop.hrtime() - start)
                self.pingPong()
            }
        }
    }
}
