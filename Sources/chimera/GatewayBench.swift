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
        let direct = try runBlocking { try await Self.direct(base: base, rate: rate, count: total, warmup: warmup) }
        if !json { printLine("… through Chimera: \(total) requests at \(rate)/s, \(workers) agent workers") }
        let through = try throughChimera(base: base, count: total)
        let report = Report(rate: rate, direct: direct, chimera: through.latencies, failures: through.failures)
        if json {
            printLine(report.json.serialized)
        } else if case .object(let members) = report.json {
            for m in members { printLine(m.key + String(repeating: " ", count: max(1, 22 - m.key.count)) + m.value.serialized) }
        }
    }

    // MARK: Direct

    static func direct(base: String, rate: Int, count: Int, warmup: Int) async throws -> [Double] {
        let client = OpenRouterClient(endpoint: ProviderEndpoint(name: "sim", baseURL: base))
        defer { Task { await client.shutdown() } }
        let key = APIKeySecret("sk-or-v1-sim-c-0001")
        var request = ChatRequest(model: model, messages: [ChatMessage(role: "user", content: "bench")])
        request.maxTokens = 8
        let body = request.body()
        for _ in 0..<warmup { _ = await client.chat(body: body, stream: false, key: key) }
        let interval = 1_000_000_000 / UInt64(rate)
        let start = DispatchTime.now().uptimeNanoseconds
        return await withTaskGroup(of: Double.self) { group in
            for i in 0..<count {
                let due = start + UInt64(i) * interval
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { try? await Task.sleep(nanoseconds: due - now) }
                group.addTask {
                    let sent = DispatchTime.now().uptimeNanoseconds
                    _ = await client.chat(body: body, stream: false, key: key)
                    return Double(DispatchTime.now().uptimeNanoseconds - sent) / 1000
                }
            }
            var out: [Double] = []
            for await latency in group { out.append(latency) }
            return out
        }
    }

    // MARK: Through Chimera

    func throughChimera(base: String, count: Int) throws -> (latencies: [Double], failures: Int) {
        var template = Array("/tmp/chimera-gateway-XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw ValidationError("cannot create a temporary directory")
        }
        defer { _ = system("rm -rf '\(dir)'") }
        var pool = PoolConfig(name: "agents", handlers: BuiltinHandlerNames.agent)
        pool.agent = "bench"
        pool.size = workers
        pool.maxConcurrency = 4_096
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
            let started = EventLoop.hrtime()
            runner.run(call) { result in
                done += 1
                if case .failure = result.result { failures += measured ? 1 : 0 }
                if measured { latencies.append(Double(EventLoop.hrtime() - started) / 1000) }
                if done == warmupCount, measured == false { startPhase() }
                finishIfDone()
            }
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
        return (latencies, failures)
    }

    // MARK: Plumbing

    struct Report {
        var rate: Int
        var direct: [Double]
        var chimera: [Double]
        var failures: Int

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
            ])
        }
    }
}
