import ArgumentParser
import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
import ChimeraSimulator
import ChimeraStore
import Dispatch
import Logging
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// `chimera bench gateway`: what Chimera's whole path adds to an external call.
///
/// An in-process simulator (no latency) is driven at a fixed rate two ways: directly with the
/// same HTTP client (`OpenRouterClient`), and through Chimera (coordinator loop → key lease →
/// agent worker process over a pipe → HTTP → outcome back to the key pool and ledger). Both use a
/// paid model, so the simulator's free-tier limits do not interfere; both are open-loop (calls
/// start on schedule, not after the previous one) and both are timed the same way: from the
/// event loop that starts a call to the callback on that loop that gets its answer.
///
/// The two are measured in alternating slices (`--slices`, in ABBA order), not one after the
/// other: on this kind of machine the latency of either drifts by ±50 – 100 µs from one second
/// to the next, which two back-to-back ten-second phases turn into a random error of the same
/// size in "added". Only one of them is sending at any time.
///
/// Where the direct client runs (`--direct`) decides what "added" means. By default it runs in
/// a process of its own (`chimera bench gateway-client`), as every real client of a remote API
/// does and as Chimera's agent worker does. `in-process` shares the simulator's event-loop
/// threads, so a request can be served without any wake-up — a path no real client has
/// (docs/BENCHMARKS.md, Gateway).
struct GatewayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Latency Chimera adds to external calls, at a fixed request rate, against the local simulator."
    )

    @Option(help: "Requests per second.") var rate = 1_000
    @Option(help: "Seconds of measured calls, for each of the two ways.") var seconds = 10
    @Option(help: "Agent worker processes.") var workers = 2
    @Option(help: "Unmeasured requests each way before measuring.") var warmup = 500
    @Option(help: "Slices each way, alternated (ABBA) so that both see the same machine; 1 measures one way, then the other.")
    var slices = 20
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Also time each step of a call (client, worker, pipes) and report the median of each.") var breakdown = false
    @Option(help: "Where the direct client runs: own-process (default: like any client of a remote API, and like an agent worker), own-thread (in this process, on its own event loop), in-process (on the simulator's own event loop threads).")
    var direct = DirectPlacement.ownProcess

    enum DirectPlacement: String, ExpressibleByArgument, CaseIterable {
        case ownProcess = "own-process", ownThread = "own-thread", inProcess = "in-process"
    }

    static let model = "openai/gpt-4o-mini"

    func validate() throws {
        guard rate >= 1, rate <= 100_000, seconds >= 1, workers >= 1, warmup >= 0, slices >= 1, slices <= rate * seconds else {
            throw ValidationError("--rate 1…100000, --seconds ≥ 1, --workers ≥ 1, --warmup ≥ 0, --slices 1…(rate × seconds)")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: .error) }
        let total = rate * seconds
        let simulator = OpenRouterSimulator(config: .standard)
        let base = try runBlocking { _ = try await simulator.start(port: 0); return simulator.baseURL }
        defer { _ = try? runBlocking { await simulator.stop() } }
        if !json {
            printLine("… simulator at \(base); \(total) requests each way at \(rate)/s in \(slices) alternating slices, \(workers) agent workers")
        }
        let session = GatewaySession(bench: self, base: base)
        let measured = try session.run()
        var report = Report(rate: rate, direct: measured.direct, chimera: measured.chimera, failures: measured.failures)
        if breakdown { report.breakdown = Breakdown(direct: measured.directSteps, chimera: measured.chimeraSteps, codec: Self.codecCosts(base: base)) }
        if json {
            printLine(report.json.serialized)
        } else if case .object(let members) = report.json {
            for m in members { printLine(m.key + String(repeating: " ", count: max(1, 22 - m.key.count)) + m.value.serialized) }
        }
    }

    /// The sizes of the slices of `total` calls: as even as possible.
    static func sliceSizes(total: Int, slices: Int) -> [Int] {
        (0..<slices).map { total / slices + ($0 < total % slices ? 1 : 0) }
    }

    /// Whether slice `index` (0-based, over both ways) is a direct one: ABBA order (direct,
    /// Chimera, Chimera, direct, …) so that neither way always goes first after the other.
    static func isDirectSlice(_ index: Int) -> Bool {
        let pair = index / 2, second = index % 2 == 1
        return (pair % 2 == 0) != second
    }
}

/// What the measured calls gave, both ways.
struct GatewayMeasurement {
    var direct: [Double] = []
    var chimera: [Double] = []
    var directSteps: [[UInt64]] = []
    var chimeraSteps: [[UInt64]] = []
    var failures = 0
}

/// One slice of direct calls.
struct DirectSlice: Sendable {
    var latencies: [Double] = []
    /// Per call: called, sent (on the client's loop), head, end, returned.
    var steps: [[UInt64]] = []
    var failures = 0

    var json: JSONValue {
        .object([
            JSONMember("latencies", .array(latencies.map { .number(($0 * 10).rounded() / 10) })),
            JSONMember("steps", .array(steps.map { .array($0.map { .number(Double($0)) }) })),
            JSONMember("failures", .number(Double(failures))),
        ])
    }

    init() {}

    /// A slice whose `failures` calls all failed (the direct client could not run them).
    init(failures: Int) { self.failures = failures }

    init?(json bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes).value, case .array(let latencies)? = value["latencies"],
              case .array(let steps)? = value["steps"] else { return nil }
        self.latencies = latencies.compactMap(\.numberValue)
        self.steps = steps.map { row -> [UInt64] in
            guard case .array(let items) = row else { return [] }
            return items.map { UInt64($0.numberValue ?? 0) }
        }
        failures = Int(value["failures"]?.numberValue ?? 0)
    }
}

/// Runs direct calls in slices, from the client's own event loop: a 1 ms timer starts every
/// call that is due (open loop); each is timed from the line before `startChat` to its
/// completion, both on that loop — as the Chimera side is timed on the coordinator's loop. The
/// `async` form of the same call adds two thread hops (into the loop and back to a task), about
/// 50 – 80 µs here, which would be charged to the baseline and flatter Chimera.
///
/// Every method and field is used only on `loop`.
final class DirectCaller: @unchecked Sendable {
    let client: OpenRouterClient
    let loop: any NIOCore.EventLoop
    private let key = APIKeySecret("sk-or-v1-sim-c-0001")
    private let body: [UInt8]
    private let interval: UInt64

    init(base: String, rate: Int, group: MultiThreadedEventLoopGroup) {
        client = OpenRouterClient(endpoint: ProviderEndpoint(name: "sim", baseURL: base), sharing: group)
        loop = group.next()
        var request = ChatRequest(model: GatewayBench.model, messages: [ChatMessage(role: "user", content: "bench")])
        request.maxTokens = 8
        body = request.body()
        interval = 1_000_000_000 / UInt64(rate)
    }

    /// `count` unmeasured calls, one after another; then `done` (on the loop).
    func warm(_ count: Int, done: @escaping @Sendable () -> Void) {
        loop.execute { self.warmNext(left: count, done: done) }
    }

    private func warmNext(left: Int, done: @escaping @Sendable () -> Void) {
        guard left > 0 else { return done() }
        client.startChat(body: body, stream: false, key: key) { _ in self.warmNext(left: left - 1, done: done) }
    }

    /// `count` measured calls at the rate; `done` (on the loop) gets them once all have answered.
    func slice(_ count: Int, done: @escaping @Sendable (DirectSlice) -> Void) {
        loop.execute {
            let run = SliceRun(count: count, done: done)
            let start = ChatCallTiming.now()
            self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { task in
                let due = min(count, Int((ChatCallTiming.now() - start) / self.interval) + 1)
                while run.sent < due { run.sent += 1; self.call(run) }
                if run.sent == count { task.cancel() }
            }
        }
    }

    private func call(_ run: SliceRun) {
        let called = ChatCallTiming.now()
        client.startChat(body: body, stream: false, key: key) { report in
            let returned = ChatCallTiming.now()
            if case .failure = report.result { run.slice.failures += 1 }
            run.slice.latencies.append(Double(returned - called) / 1000)
            run.slice.steps.append([called, report.timing.sent, report.timing.head, report.timing.end, returned])
            if run.slice.latencies.count == run.count { run.done(run.slice) }
        }
    }

    private final class SliceRun: @unchecked Sendable {
        let count: Int
        let done: @Sendable (DirectSlice) -> Void
        var sent = 0
        var slice = DirectSlice()
        init(count: Int, done: @escaping @Sendable (DirectSlice) -> Void) {
            self.count = count
            self.done = done
            slice.latencies.reserveCapacity(count)
        }
    }
}

/// The direct side as the session on the coordinator's loop sees it.
protocol DirectDriver: AnyObject {
    /// Warms up, then calls `ready` on the loop.
    func start(ready: @escaping () -> Void) throws
    /// Runs one slice; `done` runs on the loop.
    func slice(_ count: Int, done: @escaping (DirectSlice) -> Void)
    func close()
}

/// Direct calls in this process, on a loop of their own or the simulator's.
final class InProcessDirect: DirectDriver {
    private let caller: DirectCaller
    private let ownGroup: MultiThreadedEventLoopGroup?
    private let warmup: Int
    private var inbox: LoopInbox<DirectSlice?>?
    private var pending: [(DirectSlice?) -> Void] = []

    init(loop: ChimeraRuntime.EventLoop, base: String, rate: Int, warmup: Int, ownThread: Bool) throws {
        ownGroup = ownThread ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        caller = DirectCaller(base: base, rate: rate, group: ownGroup ?? .singleton)
        self.warmup = warmup
        inbox = try LoopInbox(loop: loop) { [unowned self] messages in
            for message in messages where !pending.isEmpty { pending.removeFirst()(message) }
        }
    }

    func start(ready: @escaping () -> Void) throws {
        pending.append { _ in ready() }
        caller.warm(warmup) { [inbox] in inbox?.post(nil) }
    }

    func slice(_ count: Int, done: @escaping (DirectSlice) -> Void) {
        pending.append { done($0 ?? DirectSlice()) }
        caller.slice(count) { [inbox] in inbox?.post($0) }
    }

    func close() {
        inbox?.close()
        inbox = nil
        caller.client.shutdownNow()
        try? ownGroup?.syncShutdownGracefully()
    }
}

/// Direct calls in a child process (`chimera bench gateway-client`): it warms up and prints
/// `ready`, then runs a slice per count read from its input, printing each as one JSON line.
final class ChildProcessDirect: DirectDriver {
    private let loop: ChimeraRuntime.EventLoop
    private let arguments: [String]
    private let pipes: [PipeStream]
    /// A slice's line holds every latency and step of its calls: allow far more than any needs.
    private var framer = LineFramer(maxLineBytes: 1 << 28)
    private var pending: [([UInt8]) -> Void] = []
    private var ended = false

    init(loop: ChimeraRuntime.EventLoop, base: String, rate: Int, warmup: Int) {
        self.loop = loop
        arguments = ["bench", "gateway-client", "--url", base, "--rate", String(rate), "--warmup", String(warmup)]
        pipes = ["stdin", "stdout", "stderr"].map { PipeStream(loop: loop, label: $0) }
    }

    func start(ready: @escaping () -> Void) throws {
        pending.append { _ in ready() }
        _ = try ChildProcess(loop: loop, options: .init(executable: FileIO.executablePath(), arguments: arguments),
                             stdin: pipes[0], stdout: pipes[1], stderr: pipes[2]) { _ in }
        try pipes[1].startReading { [unowned self] event in
            guard case .data(let bytes) = event else {
                // The child is gone: whatever waits for it fails now instead of waiting forever.
                ended = true
                pipes[1].close()
                while !pending.isEmpty { pending.removeFirst()([]) }
                return
            }
            framer.append(bytes) { event in
                guard !pending.isEmpty else { return }
                if case .line(let line) = event { pending.removeFirst()(Array(line)) } else { pending.removeFirst()([]) }
            }
        }
        try pipes[2].startReading { [unowned self] event in
            if case .data(let bytes) = event { FileIO.writeAll(Array(bytes), fd: 2) } else { pipes[2].close() }
        }
    }

    func slice(_ count: Int, done: @escaping (DirectSlice) -> Void) {
        guard !ended else { return done(DirectSlice(failures: count)) }
        pending.append { line in done(DirectSlice(json: line) ?? DirectSlice(failures: count)) }
        pipes[0].withOutgoingBuffer { $0.append(contentsOf: Array("\(count)\n".utf8)) }
    }

    func close() {
        if !pipes[0].isClosing { pipes[0].close() }
    }
}

/// The measured run on the coordinator's loop: Chimera set up as `chimera ask` sets it up (the
/// ledger in a temporary directory), the direct side beside it, then alternating slices.
final class GatewaySession {
    let bench: GatewayBench
    let base: String
    private var measurement = GatewayMeasurement()

    init(bench: GatewayBench, base: String) {
        self.bench = bench
        self.base = base
    }

    func run() throws -> GatewayMeasurement {
        let workers = bench.workers, breakdown = bench.breakdown, rate = bench.rate
        var template = Array("/tmp/chimera-gateway-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            printError("cannot create a temporary directory in /tmp: \(String(cString: strerror(errno)))")
            throw ExitCode(ExitCodes.taskFailed)
        }
        defer { _ = system("rm -rf '\(dir)'") }
        var pool = PoolConfig(name: "agents", handlers: BuiltinHandlerNames.agent)
        pool.agent = "bench"
        pool.size = workers
        pool.maxConcurrency = 4_096
        if breakdown { pool.environment[GatewayTrace.environmentVariable] = dir }
        var config = ChimeraConfig(pools: [pool])
        config.coordinator.queueCapacity = 1_000_000
        var keys = ResolvedKeys()
        for account in SimulatorConfig.standard.accounts {
            keys.accounts.append(KeyPoolAccount(name: account.name, tier: account.creditsPurchased >= 10 ? .credits : .free))
            for key in account.keys {
                let secret = APIKeySecret(key)
                let id = KeyFingerprint.of(secret)
                keys.entries.append(KeyPoolEntry(id: id, masked: secret.masked, account: account.name))
                keys.secrets[id] = secret
            }
        }
        let loop = try EventLoop()
        let clock = SystemWallClock()
        let ledger = try QuotaLedger(path: dir + "/ledger.sqlite")
        let broker = try KeyBroker(keys: keys, config: config.keys, ledger: ledger, clock: clock)
        let coordinator = Coordinator(loop: loop, config: config, workerExecutable: FileIO.executablePath(), logger: Logger(label: "bench"))
        let route = ProviderRoute(name: ProviderRoutes.openRouterName, endpoint: ProviderEndpoint(name: "sim", baseURL: base),
                                  timeouts: CallTimeouts(), broker: broker)
        let runner = ExternalCallRunner(coordinator: coordinator, routes: ProviderRoutes(openRouter: route), loop: loop, clock: clock)
        let directSide: any DirectDriver = switch bench.direct {
        case .ownProcess: ChildProcessDirect(loop: loop, base: base, rate: rate, warmup: bench.warmup)
        case .ownThread: try InProcessDirect(loop: loop, base: base, rate: rate, warmup: bench.warmup, ownThread: true)
        case .inProcess: try InProcessDirect(loop: loop, base: base, rate: rate, warmup: bench.warmup, ownThread: false)
        }
        var call = ExternalCall(messages: [ChatMessage(role: "user", content: "bench")], models: [GatewayBench.model])
        call.maxTokens = 8
        let sizes = GatewayBench.sliceSizes(total: rate * bench.seconds, slices: bench.slices)
        let interval = 1_000_000_000 / UInt64(rate)
        // Bench side of the breakdown: the coordinator numbers tasks t-1, t-2, … in submission
        // order, and every call here submits its one task before `run` returns.
        var submitted = 0
        var instants: [String: (sent: UInt64, done: UInt64)] = [:]
        var submittedAt: [String: UInt64] = [:]
        var workersReady = 0, sidesReady = 0
        var sliceIndex = 0
        let ticker = Timer(loop: loop)

        func send(measured: Bool, then: @escaping () -> Void) {
            submitted += 1
            let task = "t-\(submitted)"
            let started = EventLoop.hrtime()
            runner.run(call) { [self] result in
                let finished = EventLoop.hrtime()
                if measured {
                    if case .failure = result.result { measurement.failures += 1 }
                    measurement.chimera.append(Double(finished - started) / 1000)
                    if breakdown { instants[task] = (started, finished) }
                }
                then()
            }
            if measured, breakdown { submittedAt[task] = EventLoop.hrtime() }
        }
        func sideReady() {
            sidesReady += 1
            if sidesReady == 2 { nextSlice() }
        }
        func nextSlice() {
            guard sliceIndex < 2 * sizes.count else {
                directSide.close()
                ticker.close()
                coordinator.shutdown(reason: "bench done")
                return
            }
            let index = sliceIndex
            sliceIndex += 1
            let size = sizes[index / 2]
            if GatewayBench.isDirectSlice(index) {
                directSide.slice(size) { [self] slice in
                    measurement.direct += slice.latencies
                    measurement.directSteps += slice.steps
                    measurement.failures += slice.failures
                    nextSlice()
                }
                return
            }
            // Chimera: start every call that is due by now, on a 1 ms timer (open loop).
            let start = EventLoop.hrtime()
            var sent = 0, answered = 0
            ticker.start(after: 0, repeat: 1) {
                let due = min(size, Int((EventLoop.hrtime() - start) / interval) + 1)
                while sent < due {
                    sent += 1
                    send(measured: true) {
                        answered += 1
                        if answered == size { nextSlice() }
                    }
                }
                if sent == size { ticker.stop() }
            }
        }
        coordinator.observer = { event in
            guard case .workerReady = event else { return }
            workersReady += 1
            guard workersReady == workers else { return }
            var warmed = 0
            let warmup = self.bench.warmup
            if warmup == 0 { return sideReady() }
            for _ in 0..<warmup {
                send(measured: false) {
                    warmed += 1
                    if warmed == warmup { sideReady() }
                }
            }
        }
        try coordinator.start(handleSignals: true)
        try directSide.start { sideReady() }
        loop.run()
        if !ticker.isClosing { ticker.close() }
        try loop.close()
        if breakdown {
            for call in GatewayTrace.read(directory: dir) {
                guard let bench = instants[call.task], let submitted = submittedAt[call.task] else { continue }
                measurement.chimeraSteps.append([bench.sent, submitted, call.received, call.started, call.sent, call.head, call.end,
                                                 call.serialized, call.looped, call.written, bench.done])
            }
        }
        guard measurement.direct.count == rate * bench.seconds, measurement.chimera.count == rate * bench.seconds else {
            printError("the run did not complete: \(measurement.direct.count) direct and \(measurement.chimera.count) Chimera calls "
                       + "of \(rate * bench.seconds) each answered, \(measurement.failures) failed")
            throw ExitCode(ExitCodes.taskFailed)
        }
        return measurement
    }
}

extension GatewayBench {
    // MARK: Plumbing

    /// What the JSON work of one call costs on each side, in microseconds (mean of 20,000 rounds,
    /// in process, one thread): the task input as the coordinator builds it and the worker reads
    /// it, before (a value tree each way) and after (raw body, direct writers), and the answer.
    static func codecCosts(base: String) -> JSONValue {
        var request = ChatRequest(model: model, messages: [ChatMessage(role: "user", content: "bench")])
        request.maxTokens = 8
        let key = APIKeySecret("sk-or-v1-sim-c-0001")
        let output = ExternalCallOutput(result: .success(ChatCompletion(id: "gen-1764400000-abcdefghijklmnopqrst", model: model, provider: "SimProvider",
                                                                         content: "Simulated reply to: bench", finishReason: "stop",
                                                                         usage: ChatUsage(promptTokens: 1, completionTokens: 4, cost: 0.0000042))),
                                        status: 200, latencyMs: 1, firstTokenMs: 1)
        let rounds = 20_000
        var sink = 0
        func time(_ body: () -> Int) -> JSONValue {
            for _ in 0..<1_000 { sink &+= body() }
            let start = EventLoop.hrtime()
            for _ in 0..<rounds { sink &+= body() }
            return .number((Double(EventLoop.hrtime() - start) / Double(rounds) / 100).rounded() / 10)
        }
        func submitted(_ input: [UInt8]) -> Int {
            // What `Coordinator.submit` does with every input: validate it, look for newlines.
            let valid = input.withUnsafeBytes { (try? JSONParser.validate($0)) != nil }
            return input.count + (valid ? 1 : 0) + (input.contains(0x0A) ? 1 : 0)
        }
        let oldInput: () -> [UInt8] = {
            let body = (try? JSONParser.parse(request.body()).value) ?? .object([])
            var bytes: [UInt8] = []
            ExternalCallInput(baseURL: base, key: key, stream: false, body: body).json.write(to: &bytes)
            return bytes
        }
        let taskInput = oldInput()
        var outputBytes: [UInt8] = []
        output.json.write(to: &outputBytes)
        let members: [JSONMember] = [
            JSONMember("coordinator_input_value_tree", time { submitted(oldInput()) }),
            JSONMember("coordinator_input_raw_body", time { submitted(ExternalCallInput(baseURL: base, key: key, stream: false, bodyJSON: request.body()).bytes) }),
            JSONMember("worker_input_value_tree", time {
                guard let value = try? JSONParser.parse(taskInput).value, let input = try? ExternalCallInput(json: value) else { return 0 }
                var body: [UInt8] = []
                input.body.write(to: &body)
                return body.count
            }),
            JSONMember("worker_input_raw", time { taskInput.withUnsafeBytes { raw in (try? ExternalCallInput(raw: raw))?.bodyJSON.count ?? 0 } }),
            JSONMember("worker_output_value_tree", time {
                var bytes: [UInt8] = []
                output.json.write(to: &bytes)
                return bytes.count
            }),
            JSONMember("worker_output_direct", time { output.bytes.count }),
            JSONMember("coordinator_reads_output_value_tree", time {
                guard let value = try? JSONParser.parse(outputBytes).value else { return 0 }
                return ExternalCallOutput(json: value).latencyMs == 1 ? 1 : 0
            }),
            JSONMember("coordinator_reads_output_raw", time { outputBytes.withUnsafeBytes { ExternalCallOutput(raw: $0).latencyMs == 1 ? 1 : 0 } }),
        ]
        return .object(members + [JSONMember("checksum", .number(Double(sink & 0xFF)))])
    }

    /// Medians of each step of a call, in microseconds.
    struct Breakdown {
        /// Steps as (name, from, to) indices into a row of instants.
        typealias Steps = [(name: String, from: Int, to: Int)]
        /// Direct rows: called, sent (on the client's loop), head, end, returned.
        static let directSteps: Steps = [("client_entry", 0, 1), ("http_to_head", 1, 2), ("head_to_end", 2, 3), ("client_exit", 3, 4)]
        /// Chimera rows: 0 `run` called, 1 `run` returned (task submitted), 2 the worker's handler
        /// got the task, 3 handed it to the client, 4 sent on the client's loop, 5 response head,
        /// 6 end, 7 answer serialized, 8 back on the worker's loop, 9 answered, 10 caller's completion.
        static let chimeraSteps: Steps = [
            ("coordinator_submit", 0, 1), ("pipe_to_worker", 1, 2), ("worker_reads_input", 2, 3), ("worker_to_http_loop", 3, 4),
            ("http_to_head", 4, 5), ("head_to_end", 5, 6), ("worker_output_json", 6, 7), ("http_loop_to_worker", 7, 8),
            ("worker_answer", 8, 9), ("worker_to_caller", 9, 10),
        ]
        var direct: [[UInt64]]
        var chimera: [[UInt64]]
        var codec: JSONValue

        static func medians(_ rows: [[UInt64]], steps: Steps) -> JSONValue {
            var members = [JSONMember("calls", .number(Double(rows.count)))]
            for step in steps {
                let values = rows.compactMap { row -> Double? in
                    guard row[step.from] > 0, row[step.to] >= row[step.from] else { return nil }
                    return Double(row[step.to] - row[step.from]) / 1000
                }
                members.append(JSONMember(step.name + "_us", .number((Report.percentile(values, 0.5) * 10).rounded() / 10)))
            }
            return .object(members)
        }

        var json: JSONValue {
            .object([JSONMember("direct", Self.medians(direct, steps: Self.directSteps)),
                     JSONMember("chimera", Self.medians(chimera, steps: Self.chimeraSteps)),
                     JSONMember("codec_us", codec)])
        }
    }

    struct Report {
        var rate: Int
        var direct: [Double]
        var chimera: [Double]
        var failures: Int
        var breakdown: Breakdown?

        static func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
        }

        var json: JSONValue {
            let d50 = Self.percentile(direct, 0.5), d99 = Self.percentile(direct, 0.99)
            let c50 = Self.percentile(chimera, 0.5), c99 = Self.percentile(chimera, 0.99)
            func r(_ v: Double) -> JSONValue { .number(v.rounded()) }
            return .object([
                JSONMember("rps", .number(Double(rate))),
                JSONMember("requests", .number(Double(chimera.count))),
                JSONMember("direct_p50_us", r(d50)), JSONMember("direct_p99_us", r(d99)),
                JSONMember("chimera_p50_us", r(c50)), JSONMember("chimera_p99_us", r(c99)),
                JSONMember("added_p50_us", r(c50 - d50)), JSONMember("added_p99_us", r(c99 - d99)),
                JSONMember("failures", .number(Double(failures))),
            ] + (breakdown.map { [JSONMember("breakdown", $0.json)] } ?? []))
        }
    }
}

/// `chimera bench gateway-client` (hidden): the direct side of `bench gateway` in a process of
/// its own. Warms up and prints `ready`; then, for each count read from its input, runs that
/// many calls at the rate and prints them as one JSON line (`DirectSlice`); exits at the end of
/// its input.
struct GatewayDirectClient: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gateway-client", abstract: "The direct side of bench gateway, in its own process.",
                                                    shouldDisplay: false)

    @Option var url: String
    @Option var rate: Int
    @Option var warmup: Int

    func validate() throws {
        guard rate >= 1, rate <= 100_000, warmup >= 0 else { throw ValidationError("--rate 1…100000, --warmup ≥ 0") }
    }

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let caller = DirectCaller(base: url, rate: rate, group: group)
        defer { caller.client.shutdownNow() }
        let done = DispatchSemaphore(value: 0)
        caller.warm(warmup) { done.signal() }
        done.wait()
        printLine("ready")
        while let line = readLine(), let count = Int(line), count > 0 {
            let box = SliceBox()
            caller.slice(count) { box.slice = $0; done.signal() }
            done.wait()
            printLine(box.slice.json.serialized)
        }
    }

    /// Carries a slice from the client's loop to the main thread (written before the signal).
    private final class SliceBox: @unchecked Sendable { var slice = DirectSlice() }
}
