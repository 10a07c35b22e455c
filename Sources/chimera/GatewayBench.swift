import ArgumentParser
import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
import ChimeraSimulator
import ChimeraStore
import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `chimera bench gateway`: what Chimera's whole path adds to an external call.
///
/// An in-process simulator (no latency) is driven at a fixed rate twice: directly with the same
/// HTTP client (`OpenRouterClient`), then through Chimera (coordinator loop → key lease with a
/// durable ledger reservation → agent worker process over a pipe → HTTP → outcome back to the
/// key pool and ledger). Both phases use a paid model, so the simulator's free-tier limits do
/// not interfere; both are open-loop (requests are sent on schedule, not after the previous one).
///
/// Where the direct client runs (`--direct`) decides what "added" means. By default it runs in
/// a process of its own (`chimera bench gateway-client`), as every real client of a remote API
/// does and as Chimera's agent worker does: each request then wakes the simulator's process from
/// another one in both phases. `in-process` shares the simulator's event-loop threads, so a
/// request can be served without any wake-up — a path no real client has, which makes the
/// direct baseline about 100 µs faster than any client outside the server can be and charges
/// that to Chimera (docs/BENCHMARKS.md, Gateway).
struct GatewayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Latency Chimera adds to external calls, at a fixed request rate, against the local simulator."
    )

    @Option(help: "Requests per second.") var rate = 1_000
    @Option(help: "Seconds per phase.") var seconds = 10
    @Option(help: "Agent worker processes.") var workers = 2
    @Option(help: "Requests before each phase that are not measured.") var warmup = 500
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Also time each step of a call (client, worker, pipes) and report the median of each.") var breakdown = false
    @Option(help: "Where the direct phase's client runs: own-process (default: like any client of a remote API, and like an agent worker), own-thread (in this process, on its own event loop), in-process (on the simulator's own event loop threads).")
    var direct = DirectPlacement.ownProcess

    enum DirectPlacement: String, ExpressibleByArgument, CaseIterable {
        case ownProcess = "own-process", ownThread = "own-thread", inProcess = "in-process"
    }

    static let model = "openai/gpt-4o-mini"

    func validate() throws {
        guard rate >= 1, rate <= 100_000, seconds >= 1, workers >= 1, warmup >= 0 else {
            throw ValidationError("--rate 1…100000, --seconds ≥ 1, --workers ≥ 1, --warmup ≥ 0")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: .error) }
        let total = rate * seconds
        let simulator = OpenRouterSimulator(config: .standard)
        let base = try runBlocking { _ = try await simulator.start(port: 0); return simulator.baseURL }
        defer { _ = try? runBlocking { await simulator.stop() } }
        if !json { printLine("… simulator at \(base); direct phase: \(total) requests at \(rate)/s") }
        let direct: (latencies: [Double], steps: [[UInt64]])
        switch self.direct {
        case .ownProcess: direct = try Self.directInChildProcess(base: base, rate: rate, count: total, warmup: warmup)
        case .ownThread, .inProcess:
            let ownThread = self.direct == .ownThread
            direct = try runBlocking { try await Self.direct(base: base, rate: rate, count: total, warmup: warmup, ownThread: ownThread) }
        }
        if !json { printLine("… through Chimera: \(total) requests at \(rate)/s, \(workers) agent workers") }
        let through = try throughChimera(base: base, count: total)
        var report = Report(rate: rate, direct: direct.latencies, chimera: through.latencies, failures: through.failures)
        if breakdown { report.breakdown = Breakdown(direct: direct.steps, chimera: through.steps, codec: Self.codecCosts(base: base)) }
        if json {
            printLine(report.json.serialized)
        } else if case .object(let members) = report.json {
            for m in members { printLine(m.key + String(repeating: " ", count: max(1, 22 - m.key.count)) + m.value.serialized) }
        }
    }

    // MARK: Direct

    static func direct(base: String, rate: Int, count: Int, warmup: Int, ownThread: Bool) async throws -> (latencies: [Double], steps: [[UInt64]]) {
        let client = OpenRouterClient(endpoint: ProviderEndpoint(name: "sim", baseURL: base), ownThread: ownThread)
        defer { Task { await client.shutdown() } }
        let key = APIKeySecret("sk-or-v1-sim-c-0001")
        var request = ChatRequest(model: model, messages: [ChatMessage(role: "user", content: "bench")])
        request.maxTokens = 8
        let body = request.body()
        for _ in 0..<warmup { _ = await client.chat(body: body, stream: false, key: key) }
        let interval = 1_000_000_000 / UInt64(rate)
        let start = DispatchTime.now().uptimeNanoseconds
        return await withTaskGroup(of: (Double, [UInt64]).self) { group in
            for i in 0..<count {
                let due = start + UInt64(i) * interval
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { try? await Task.sleep(nanoseconds: due - now) }
                group.addTask {
                    let sent = DispatchTime.now().uptimeNanoseconds
                    let called = ChatCallTiming.now()
                    let report = await client.chat(body: body, stream: false, key: key)
                    let returned = ChatCallTiming.now()
                    let latency = Double(DispatchTime.now().uptimeNanoseconds - sent) / 1000
                    return (latency, [called, report.timing.sent, report.timing.head, report.timing.end, returned])
                }
            }
            var out: [Double] = []
            var steps: [[UInt64]] = []
            for await (latency, instants) in group { out.append(latency); steps.append(instants) }
            return (out, steps)
        }
    }

    /// The direct phase in a child process (`chimera bench gateway-client`), which prints its
    /// latencies and step instants as one JSON object.
    static func directInChildProcess(base: String, rate: Int, count: Int, warmup: Int) throws -> (latencies: [Double], steps: [[UInt64]]) {
        let loop = try EventLoop()
        let pipes = ["stdin", "stdout", "stderr"].map { PipeStream(loop: loop, label: $0) }
        var output: [UInt8] = []
        var status: ChildExitStatus?
        _ = try ChildProcess(loop: loop, options: .init(executable: FileIO.executablePath(), arguments: [
            "bench", "gateway-client", "--url", base, "--rate", String(rate), "--count", String(count), "--warmup", String(warmup),
        ]), stdin: pipes[0], stdout: pipes[1], stderr: pipes[2]) { status = $0 }
        pipes[0].close()
        try pipes[1].startReading { event in
            if case .data(let bytes) = event { output.append(contentsOf: bytes) } else { pipes[1].close() }
        }
        try pipes[2].startReading { event in
            if case .data(let bytes) = event { FileIO.writeAll(Array(bytes), fd: 2) } else { pipes[2].close() }
        }
        loop.run()
        try loop.close()
        guard let status, status.code == 0, status.signal == 0, let value = try? JSONParser.parse(output).value,
              case .array(let latencies)? = value["latencies"], case .array(let steps)? = value["steps"] else {
            throw ValidationError("the direct client process failed (\(status.map { "\($0)" } ?? "it did not exit"))")
        }
        let rows = steps.map { row -> [UInt64] in
            guard case .array(let items) = row else { return [] }
            return items.map { UInt64($0.numberValue ?? 0) }
        }
        return (latencies.compactMap(\.numberValue), rows)
    }

    // MARK: Through Chimera

    func throughChimera(base: String, count: Int) throws -> (latencies: [Double], failures: Int, steps: [[UInt64]]) {
        var template = Array("/tmp/chimera-gateway-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw ValidationError("cannot create a temporary directory")
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
        var call = ExternalCall(messages: [ChatMessage(role: "user", content: "bench")], models: [Self.model])
        call.maxTokens = 8
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        var failures = 0
        var sent = 0, done = 0
        // Bench side of the breakdown: the coordinator numbers tasks t-1, t-2, … in submission
        // order, and every call here submits its one task before `run` returns.
        var submitted = 0
        var instants: [String: (sent: UInt64, done: UInt64)] = [:]
        var submittedAt: [String: UInt64] = [:]
        var ready = 0
        let warmupCount = warmup
        let ticker = Timer(loop: loop)
        var phaseStart: UInt64 = 0
        let interval = 1_000_000_000 / UInt64(rate)

        func finishIfDone() {
            guard done == warmupCount + count else { return }
            ticker.close()
            coordinator.shutdown(reason: "bench done")
        }
        func send(measured: Bool) {
            submitted += 1
            let task = "t-\(submitted)"
            let started = EventLoop.hrtime()
            runner.run(call) { result in
                let finished = EventLoop.hrtime()
                done += 1
                if case .failure = result.result { failures += measured ? 1 : 0 }
                if measured { latencies.append(Double(finished - started) / 1000) }
                if measured, breakdown { instants[task] = (started, finished) }
                if done == warmupCount, measured == false { startPhase() }
                finishIfDone()
            }
            if measured, breakdown { submittedAt[task] = EventLoop.hrtime() }
        }
        func startPhase() {
            phaseStart = EventLoop.hrtime()
            ticker.start(after: 0, repeat: 1) {
                // Send everything that is due by now: an open loop at the requested rate.
                let due = min(count, Int((EventLoop.hrtime() - phaseStart) / interval) + 1)
                while sent < due { sent += 1; send(measured: true) }
                if sent == count { ticker.stop() }
            }
        }
        coordinator.observer = { event in
            guard case .workerReady = event else { return }
            ready += 1
            guard ready == workers else { return }
            if warmupCount == 0 { startPhase() } else { for _ in 0..<warmupCount { send(measured: false) } }
        }
        try coordinator.start(handleSignals: true)
        loop.run()
        if !ticker.isClosing { ticker.close() }
        try loop.close()
        var steps: [[UInt64]] = []
        if breakdown {
            for call in GatewayTrace.read(directory: dir) {
                guard let bench = instants[call.task], let submitted = submittedAt[call.task] else { continue }
                steps.append([bench.sent, submitted, call.received, call.started, call.sent, call.head, call.end, call.serialized, call.looped, call.written, bench.done])
            }
        }
        return (latencies, failures, steps)
    }

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
            JSONMember("coordinator_reads_output", time {
                guard let value = try? JSONParser.parse(outputBytes).value else { return 0 }
                return ExternalCallOutput(json: value).latencyMs == 1 ? 1 : 0
            }),
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

/// `chimera bench gateway-client` (hidden): the direct phase of `bench gateway` in a process of
/// its own; prints `{"latencies": [µs…], "steps": [[instants…]…]}`.
struct GatewayDirectClient: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gateway-client", abstract: "The direct phase of bench gateway, in its own process.",
                                                    shouldDisplay: false)

    @Option var url: String
    @Option var rate: Int
    @Option var count: Int
    @Option var warmup: Int

    func run() throws {
        let (latencies, steps) = try runBlocking { [url, rate, count, warmup] in
            try await GatewayBench.direct(base: url, rate: rate, count: count, warmup: warmup, ownThread: true)
        }
        let value = JSONValue.object([
            JSONMember("latencies", .array(latencies.map { .number(($0 * 10).rounded() / 10) })),
            JSONMember("steps", .array(steps.map { .array($0.map { .number(Double($0)) }) })),
        ])
        printLine(value.serialized)
    }
}
