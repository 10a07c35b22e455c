import ChimeraCore
import ChimeraSimulator
import Foundation
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera ask` through the whole path — coordinator, key lease, agent worker process, HTTP —
/// against the OpenRouter simulator on 127.0.0.1.
/// The output of one finished `chimera` process.
struct FinishedRun: Sendable {
    var status: ChildExitStatus?
    var stdoutText: String
    var stderrText: String
}

/// Runs `body` on a thread of its own. The CLI helpers block on a libuv loop; on Swift's small
/// cooperative pool (two threads here) that would starve the in-process simulator's handlers.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

@Suite("chimera ask against the simulator", .serialized, .timeLimit(.minutes(3)))
struct AskTests {
    static let free = "meta-llama/llama-3.3-70b-instruct:free"

    /// Three accounts of one key each, declared to Chimera as they are (50/day, 20/min).
    static func config(perDay: Int = 50, perMinute: Int? = 20, onExhausted: String = "wait") -> String {
        let minute = perMinute.map { ", \"per_minute\": \($0)" } ?? ""
        return """
        {"keys": {"read_environment": false, "strategy": "round_robin", "reserve_high_priority": 0, "on_exhausted": "\(onExhausted)",
          "accounts": [
            {"name": "a", "tier": "custom", "limits": {"per_day": \(perDay)\(minute)}},
            {"name": "b", "tier": "custom", "limits": {"per_day": \(perDay)\(minute)}},
            {"name": "c", "tier": "custom", "limits": {"per_day": \(perDay)\(minute)}}],
          "entries": [{"label": "a", "env": "SIM_KEY_A", "account": "a"}, {"label": "b", "env": "SIM_KEY_B", "account": "b"},
                      {"label": "c", "env": "SIM_KEY_C", "account": "c"}]}}
        """
    }

    static func simulatorConfig(perMinute: Int = 20) -> SimulatorConfig {
        var config = SimulatorConfig.standard
        config.accounts = [
            SimulatorConfig.Account(name: "a", keys: ["sk-or-v1-sim-a-0001"]),
            SimulatorConfig.Account(name: "b", keys: ["sk-or-v1-sim-b-0001"]),
            SimulatorConfig.Account(name: "c", keys: ["sk-or-v1-sim-c-0001"]),
        ]
        for i in config.accounts.indices { config.accounts[i].perMinute = perMinute }
        config.keepAliveComments = 1
        return config
    }

    func environment(_ box: KeysSandbox, _ sim: OpenRouterSimulator) -> [String: String] {
        box.environment(["OPENROUTER_BASE_URL": sim.baseURL, "SIM_KEY_A": "sk-or-v1-sim-a-0001", "SIM_KEY_B": "sk-or-v1-sim-b-0001",
                         "SIM_KEY_C": "sk-or-v1-sim-c-0001", "CHIMERA_LOG": "warning"])
    }

    func ask(_ box: KeysSandbox, _ sim: OpenRouterSimulator, _ arguments: [String], input: String = "") async throws -> FinishedRun {
        try await chimera(["ask"] + arguments, input: input, environment: environment(box, sim))
    }

    func chimera(_ arguments: [String], input: String = "", environment: [String: String]) async throws -> FinishedRun {
        try await offThePool {
            let run = CLIRun()
            try run.run(arguments, input: input, environment: environment)
            return FinishedRun(status: run.status, stdoutText: run.stdoutText, stderrText: run.stderrText)
        }
    }

    func lines(_ text: String) throws -> [JSONValue] {
        try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    /// Agent pools serving only `llm.chat` run `NIOAgentWorker`; `CHIMERA_AGENT_IO=libuv` (and
    /// any pool that also serves built-in handlers) runs the general worker: both answer alike.
    @Test func theGeneralWorker_answersStreamedAndNot_asTheNIOWorkerDoes() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        var env = environment(box, sim)
        env["CHIMERA_AGENT_IO"] = "libuv"
        let plain = try await chimera(["ask", "Hello there"], environment: env)
        #expect(plain.status == ChildExitStatus(code: 0, signal: 0), "\(plain.stderrText)")
        #expect(plain.stdoutText == "Simulated reply to: Hello there\n")
        let streamed = try await chimera(["ask", "--stream", "Stream this"], environment: env)
        #expect(streamed.stdoutText.hasPrefix("Simulated reply to: Stream this"), "\(streamed.stdoutText)")
        let failed = try await chimera(["ask", "--json", "--model", Self.free, "[[sim:status=400]] nope"], environment: env)
        #expect(try lines(failed.stdoutText).first?["error"]?["kind"]?.stringValue == "bad_request", "\(failed.stdoutText)")
        await sim.stop()
    }

    @Test func oneCall_nonStreamAndStream_answerFromTheSimulator() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        let plain = try await ask(box, sim, ["Hello there"])
        #expect(plain.status == ChildExitStatus(code: 0, signal: 0), "\(plain.stderrText)")
        #expect(plain.stdoutText == "Simulated reply to: Hello there\n")
        let streamed = try await ask(box, sim, ["--stream", "Stream this"])
        #expect(streamed.stdoutText.hasPrefix("Simulated reply to: Stream this"), "\(streamed.stdoutText)")
        let json = try lines(try await ask(box, sim, ["--json", "With details"]).stdoutText)
        #expect(json.first?["ok"] == .bool(true))
        // No model named: a free model from the simulator's catalog — the one already seen
        // answering (the ledger's latency), else the largest context.
        #expect(json.first?["model"]?.stringValue == "deepseek/deepseek-chat-v3-0324:free")
        #expect(json.first?["retries"]?.serialized.contains("no model given: chose deepseek/deepseek-chat-v3-0324:free") == true)
        #expect(json.first?["key"]?.stringValue?.hasPrefix("sk-or-…") == true)
        // The ledger counted each call once.
        let list = try await chimera(["keys", "list", "--json"], environment: environment(box, sim))
        let used = (try JSONParser.parse(list.stdoutText))["keys"].flatMap { if case .array(let a) = $0 { a } else { nil } }?
            .compactMap { $0["used_today"]?.numberValue }.reduce(0, +)
        #expect(used == 3)
        await sim.stop()
    }

    @Test func failover_alongTheModelChain_andClearFailures() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        let fallback = try lines(try await ask(box, sim, ["--json", "--model", "nobody/nothing:free", "--model", Self.free, "chain"]).stdoutText)
        #expect(fallback.first?["ok"] == .bool(true))
        #expect(fallback.first?["model"]?.stringValue == Self.free)
        #expect(fallback.first?["attempts"]?.numberValue == 2)

        // A stream that fails after tokens: a clear failure, never a spliced or partial "success".
        let midstream = try await ask(box, sim, ["--json", "--stream", "[[sim:midstream-error]] tell me more"])
        #expect(midstream.status == ChildExitStatus(code: 1, signal: 0))
        let m = try lines(midstream.stdoutText).first
        #expect(m?["ok"] == .bool(false))
        #expect(m?["attempts"]?.numberValue == 1, "no retry once tokens were streamed")
        #expect(m?["error"]?["message"]?.stringValue?.contains("never spliced") == true, "\(midstream.stdoutText)")

        // A stream dropped before any token is retried.
        let dropped = try lines(try await ask(box, sim, ["--json", "--stream", "[[sim:drop-before]] again"]).stdoutText).first
        #expect((dropped?["attempts"]?.numberValue ?? 0) > 1, "\(String(describing: dropped))")

        // A 200 that carries an error is not a success.
        let inBand = try lines(try await ask(box, sim, ["--json", "[[sim:200-error]] x"]).stdoutText).first
        #expect(inBand?["ok"] == .bool(false))
        await sim.stop()
    }

    @Test func dailyCap429_marksTheAccountSpent_andNoFurtherRequestGoesThere() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig(perMinute: 1_000))
        _ = try await sim.start()
        // Chimera is told 1,000/day, the simulator allows 50: upstream's 429 must correct the ledger.
        let box = KeysSandbox(config: Self.config(perDay: 1_000, perMinute: nil, onExhausted: "fail"))
        let prompts = TempFile((0..<170).map { "prompt \($0)" }.joined(separator: "\n"), suffix: ".txt")
        defer { prompts.remove() }
        // One at a time, so that exactly one request per account meets the upstream cap.
        let run = try await ask(box, sim, ["--batch", prompts.path, "--concurrency", "1"])
        let results = try lines(run.stdoutText)
        #expect(results.count == 170)
        let ok = results.filter { $0["ok"] == .bool(true) }.count
        #expect(ok == 150, "3 accounts × 50 served")
        let stats = sim.stats()
        for account in ["a", "b", "c"] {
            #expect(stats.accounts[account]?.rateLimitedDaily == 1, "exactly one daily 429 per account, then no request: \(String(describing: stats.accounts[account]))")
        }
        let events = try await chimera(["keys", "events"], environment: environment(box, sim))
        #expect(events.stdoutText.contains("account_exhausted"))
        await sim.stop()
    }

    @Test func twoProcesses_200Prompts_3AccountsOf50_exactly150Served_no429() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig(perMinute: 1_000))
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(perDay: 50, perMinute: nil))
        _ = try await chimera(["keys", "list"], environment: environment(box, sim))  // create the ledger before the race
        let first = TempFile((0..<100).map { "first \($0)" }.joined(separator: "\n"), suffix: ".txt")
        let second = TempFile((0..<100).map { "second \($0)" }.joined(separator: "\n"), suffix: ".txt")
        defer { first.remove(); second.remove() }
        let env = environment(box, sim)
        let (firstPath, secondPath) = (first.path, second.path)
        let results = try await offThePool {
            try runConcurrently([
                ["ask", "--batch", firstPath, "--concurrency", "16", "--no-wait"],
                ["ask", "--batch", secondPath, "--concurrency", "16", "--no-wait"],
            ], environment: env).map { FinishedRun(status: $0.status, stdoutText: $0.stdout, stderrText: $0.stderr) }
        }
        var ok = 0, exhausted = 0
        for r in results {
            for line in try lines(r.stdoutText) {
                if line["ok"] == .bool(true) { ok += 1 }
                if line["error"]?["kind"]?.stringValue == "quota_exhausted" { exhausted += 1 }
            }
        }
        #expect(ok == 150)
        #expect(exhausted == 50)
        let stats = sim.stats()
        let upstream429 = stats.accounts.values.reduce(0) { $0 + $1.rateLimitedDaily + $1.rateLimitedMinute }
        #expect(upstream429 == 0, "the ledger must stop at 50 per account before OpenRouter does")
        await sim.stop()
    }

    @Test func perMinute429_coolsTheKeyUntilItsReset_andAnotherAccountServes() async throws {
        var simConfig = Self.simulatorConfig(perMinute: 1_000)
        simConfig.accounts[0].perMinute = 1
        let sim = OpenRouterSimulator(config: simConfig)
        _ = try await sim.start()
        // Chimera does not know about account a's tiny per-minute limit; the simulator's 429 teaches it.
        let box = KeysSandbox(config: Self.config(perDay: 50, perMinute: nil, onExhausted: "fail"))
        let prompts = TempFile((0..<6).map { "p\($0)" }.joined(separator: "\n"), suffix: ".txt")
        defer { prompts.remove() }
        let results = try lines(try await ask(box, sim, ["--batch", prompts.path, "--concurrency", "1"]).stdoutText)
        #expect(results.filter { $0["ok"] == .bool(true) }.count == 6, "\(results.map(\.serialized))")
        #expect(results.contains { ($0["retries"]?.serialized ?? "").contains("per-minute") })
        #expect(sim.stats().accounts["a"]?.rateLimitedMinute == 1, "a cooling key gets no second request in its window")
        let audit = try await chimera(["keys", "audit"], environment: environment(box, sim))
        #expect(audit.stdoutText.contains("active → cooling") && audit.stdoutText.contains("HTTP 429"), "\(audit.stdoutText)")
        await sim.stop()
    }

    @Test func noKeys_isAClearUsageError() async throws {
        let box = KeysSandbox(config: #"{"keys": {"read_environment": false}}"#)
        let run = try await chimera(["ask", "hi"], environment: box.environment())
        #expect(run.status == ChildExitStatus(code: 2, signal: 0))
        #expect(run.stderrText.contains("no API keys"))
    }
}
