import ChimeraCore
import Logging
import Synchronization
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Log entries captured from a coordinator, for asserting what a user would read.
final class LogCapture: Sendable {
    private let entries = Mutex<[String]>([])

    var lines: [String] { entries.withLock { $0 } }
    func append(_ line: String) { entries.withLock { $0.append(line) } }
    func contains(_ fragment: String) -> Bool { lines.contains { $0.contains(fragment) } }

    var logger: Logger {
        Logger(label: "test") { _ in CapturingHandler(capture: self) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .debug
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let worker = event.metadata?["worker"].map { "[\($0)] " } ?? ""
            capture.append("\(event.level) \(worker)\(event.message)")
        }
    }
}

/// Paths of the built products and of the package.
enum Paths {
    /// The `chimera` binary `swift build`/`swift test` put next to the test bundle.
    static var chimera: String {
        let testBinary = FileIO.executablePath()
        let directory = String(testBinary[..<testBinary.lastIndex(of: "/")!])
        return directory + "/chimera"
    }

    /// The package root, found from this source file.
    static var packageRoot: String {
        let file = #filePath
        var parts = file.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/ChimeraRuntimeTests/Harness.swift
        return parts.joined(separator: "/")
    }
}

/// One coordinator on its own loop, run until it stops. Every run ends by closing the loop and
/// requiring that no handle is left open: each test is also a leak test.
final class Harness {
    let loop: EventLoop
    let coordinator: Coordinator
    let logs = LogCapture()
    var events: [CoordinatorEvent] = []
    var onEvent: ((CoordinatorEvent) -> Void)?
    private var guardTimer: Timer?
    private(set) var timedOut = false
    private(set) var summary: ShutdownSummary?

    init(config: ChimeraConfig) throws {
        #expect(access(Paths.chimera, X_OK) == 0, "build the chimera executable first (swift build): \(Paths.chimera)")
        loop = try EventLoop()
        coordinator = Coordinator(loop: loop, config: config, workerExecutable: Paths.chimera, logger: logs.logger)
        coordinator.observer = { [unowned self] event in
            self.events.append(event)
            self.onEvent?(event)
        }
        coordinator.onStopped = { [unowned self] in self.summary = $0 }
    }

    /// A config with one built-in pool (test handlers on) and fast timings.
    static func config(size: Int = 2, maxConcurrency: Int? = nil, extraPools: [PoolConfig] = [],
                       tweak: (inout CoordinatorSettings) -> Void = { _ in }) -> ChimeraConfig {
        var pool = PoolConfig(name: "builtin", handlers: BuiltinHandlerNames.standard + BuiltinHandlerNames.test)
        pool.testHandlers = true
        pool.size = size
        pool.maxConcurrency = maxConcurrency
        pool.restart = RestartPolicy(maxRestarts: 5, windowMs: 10_000, backoffInitialMs: 10, backoffMaxMs: 200)
        var settings = CoordinatorSettings()
        settings.heartbeatIntervalMs = 1_000
        settings.heartbeatTimeoutMs = 5_000
        settings.stopGraceMs = 1_000
        settings.drainGraceMs = 5_000
        tweak(&settings)
        return ChimeraConfig(coordinator: settings, pools: [pool] + extraPools)
    }

    /// Starts the coordinator, calls `body` on the loop, and runs until the coordinator stopped
    /// (the test calls `coordinator.shutdown`). A guard stops runaway tests after `limitMs`.
    func run(limitMs: UInt64 = 30_000, _ body: @escaping () -> Void) throws {
        let guardTimer = Timer(loop: loop)
        self.guardTimer = guardTimer
        guardTimer.start(after: limitMs) { [unowned self] in
            self.timedOut = true
            self.coordinator.shutdown(reason: "test time limit")
        }
        guardTimer.keepsLoopAlive = false
        try coordinator.start()
        let kickoff = Timer(loop: loop)
        kickoff.start(after: 0) {
            kickoff.close()
            body()
        }
        loop.run()
        guardTimer.close()
        #expect(!timedOut, "the test hit its time limit; log:\n\(logs.lines.joined(separator: "\n"))")
        do {
            try loop.close()
        } catch {
            Issue.record("leak: \(error)")
        }
    }

    /// Submits and calls back with the outcome; counts deliveries so tests can check "exactly once".
    func submit(_ handler: String, _ input: JSONValue, timeoutMs: UInt64? = nil, priority: TaskPriority = .normal,
                then: @escaping (TaskOutcome) -> Void) {
        var request = TaskRequest(handler: handler, value: input, priority: priority)
        request.timeoutMs = timeoutMs
        coordinator.submit(request, completion: then)
    }
}
