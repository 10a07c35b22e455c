import ChimeraCore
import ChimeraSimulator
import ChimeraStore
import Testing
@testable import ChimeraRuntime

/// `chimera ask` with other OpenAI-compatible providers, catalog cost estimates and context
/// checks, against the simulator on 127.0.0.1 (which also plays the "other provider").
@Suite("chimera ask: providers, cost estimates, context checks", .serialized, .timeLimit(.minutes(3)))
struct AskProvidersTests {
    let helpers = AskTests()
    static let localKey = "sk-or-v1-sim-c-0001"

    /// OpenRouter keys as in ``AskTests``, plus `local` (its own key, from LOCAL_KEY) and `anon`
    /// (no keys), both served by the simulator.
    static func config(_ sim: OpenRouterSimulator, openRouterKeys: Bool = true) -> String {
        let keys = openRouterKeys ? AskTests.config().dropFirst().dropLast() + "," : "\"keys\": {\"read_environment\": false},"
        return """
        {\(keys)
         "providers": [
           {"name": "local", "base_url": "\(sim.baseURL)", "headers": {"X-Team": "tests"},
            "keys": {"entries": [{"env": "LOCAL_KEY", "label": "local-c"}]}},
           {"name": "anon", "base_url": "\(sim.baseURL)"}]}
        """
    }

    func environment(_ box: KeysSandbox, _ sim: OpenRouterSimulator, _ extra: [String: String] = [:]) -> [String: String] {
        helpers.environment(box, sim).merging(["LOCAL_KEY": Self.localKey]) { $1 }.merging(extra) { $1 }
    }

    func ask(_ box: KeysSandbox, _ sim: OpenRouterSimulator, _ arguments: [String], _ extra: [String: String] = [:]) async throws -> FinishedRun {
        try await helpers.chimera(["ask"] + arguments, environment: environment(box, sim, extra))
    }

    func calls(_ box: KeysSandbox) throws -> [SettledCall] {
        try QuotaLedger(path: box.home + "/" + QuotaLedger.fileName).settledCalls(since: 0)
    }

    @Test func aProviderWithItsOwnKey_servesItsPrefixedModels() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(sim, openRouterKeys: false))
        let run = try await ask(box, sim, ["--json", "--model", "local/openai/gpt-4o-mini", "hello provider"])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let line = try #require(try helpers.lines(run.stdoutText).first)
        #expect(line["ok"] == .bool(true))
        #expect(line["output"]?.stringValue == "Simulated reply to: hello provider")
        #expect(line["model"]?.stringValue == "local/openai/gpt-4o-mini", "the id the caller used, with its prefix")
        #expect(line["key"]?.stringValue == "sk-or-…01", "the provider's key, masked (a short key shows two characters)")
        #expect(!run.stdoutText.contains(Self.localKey) && !run.stderrText.contains(Self.localKey))
        // The simulator saw the upstream id (no prefix) with the provider's key, once.
        #expect(sim.stats().keys[Self.localKey]?.served == 1)
        // The ledger has the call, reported cost and all, under the provider's key.
        let recorded = try calls(box)
        #expect(recorded.count == 1)
        #expect(recorded.first?.model == "openai/gpt-4o-mini")
        #expect((recorded.first?.costUSD ?? 0) > 0 && recorded.first?.costIsEstimate == false)
        await sim.stop()
    }

    @Test func aProviderWithoutKeys_sendsNoAuthorization_andAKeyFailureIsNotRetried() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(sim))
        let run = try await ask(box, sim, ["--json", "--model", "anon/\(AskTests.free)", "who am I"])
        #expect(run.status == ChildExitStatus(code: 1, signal: 0))
        let line = try #require(try helpers.lines(run.stdoutText).first)
        #expect(line["error"]?["kind"]?.stringValue == "auth")
        #expect(line["error"]?["status"]?.numberValue == 401)
        #expect(line["attempts"]?.numberValue == 1, "no other key exists, so no retry")
        #expect(line["key"] == .null)
        #expect(sim.stats().unauthorized == 1, "the request reached the provider without credentials")

        // In a chain, a keyless provider's refusal moves on to the next model.
        let chained = try await ask(box, sim, ["--json", "--model", "anon/\(AskTests.free)", "--model", AskTests.free, "who am I"])
        let c = try #require(try helpers.lines(chained.stdoutText).first)
        #expect(c["ok"] == .bool(true), "\(chained.stdoutText)")
        #expect(c["model"]?.stringValue == AskTests.free)
        #expect(c["attempts"]?.numberValue == 2)
        await sim.stop()
    }

    @Test func aProviderWhoseKeyIsUnset_isAUsageError_namingIt() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(sim))
        let run = try await ask(box, sim, ["--model", "local/x", "hi"], ["LOCAL_KEY": ""])
        #expect(run.status == ChildExitStatus(code: 2, signal: 0))
        #expect(run.stderrText.contains("provider local has no API keys"), "\(run.stderrText)")
        // OpenRouter models do not need the provider's key.
        let other = try await ask(box, sim, ["--model", AskTests.free, "hi"], ["LOCAL_KEY": ""])
        #expect(other.status == ChildExitStatus(code: 0, signal: 0), "\(other.stderrText)")
        await sim.stop()
    }

    @Test func aPaidCallWithoutCost_getsACatalogEstimate_markedAsSuch_andNeverASilentZero() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(sim))
        // OpenRouter model: the catalog (fetched from the simulator and cached) prices it.
        let run = try await ask(box, sim, ["--json", "--model", "openai/gpt-4o-mini", "[[sim:no-cost]] price this answer please"])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let line = try #require(try helpers.lines(run.stdoutText).first)
        let usage = try #require(line["usage"])
        let prompt = try #require(usage["prompt_tokens"]?.numberValue), completion = try #require(usage["completion_tokens"]?.numberValue)
        let expected = prompt * 0.00000015 + completion * 0.0000006
        let cost = try #require(usage["cost"]?.numberValue)
        #expect(abs(cost - expected) < 1e-12, "\(cost) vs \(expected)")
        #expect(usage["cost_is_estimate"] == .bool(true))
        let recorded = try #require(try calls(box).first)
        #expect(recorded.costIsEstimate && abs((recorded.costUSD ?? 0) - expected) < 1e-12)

        // The same through a provider without a catalog: unknown (null), with a warning — not zero.
        let local = try await ask(box, sim, ["--json", "--model", "local/openai/gpt-4o-mini", "[[sim:no-cost]] and this one"])
        let l = try #require(try helpers.lines(local.stdoutText).first)
        #expect(l["ok"] == .bool(true))
        #expect(l["usage"]?["cost"] == .null && l["usage"]?["cost_is_estimate"] == .bool(false))
        #expect(local.stderrText.contains("cost of calls to local/openai/gpt-4o-mini is unknown"), "\(local.stderrText)")
        let unknown = try #require(try calls(box).first)
        #expect(unknown.costUSD == nil && !unknown.costIsEstimate)
        await sim.stop()
    }

    @Test func modelsTooSmallForThePrompt_areSkipped_beforeAnyRequest() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(sim))
        // About 10,000 tokens: more than sim/always-down:free's 8,192-token context.
        let long = String(repeating: "many words ", count: 3_700)
        let run = try await ask(box, sim, ["--json", "--model", "sim/always-down:free", "--model", AskTests.free, long])
        let line = try #require(try helpers.lines(run.stdoutText).first)
        #expect(line["ok"] == .bool(true), "\(run.stdoutText) \(run.stderrText)")
        #expect(line["model"]?.stringValue == AskTests.free)
        #expect(line["attempts"]?.numberValue == 1, "the small model was never sent the prompt")
        let notes = line["retries"].map { $0.serialized } ?? ""
        #expect(notes.contains("skipped sim/always-down:free: its context (8192 tokens)"), "\(notes)")

        let before = sim.stats().accounts.values.map(\.requests).reduce(0, +)
        let tooBig = try await ask(box, sim, ["--json", "--model", "sim/always-down:free", long])
        #expect(tooBig.status == ChildExitStatus(code: 1, signal: 0))
        let t = try #require(try helpers.lines(tooBig.stdoutText).first)
        #expect(t["error"]?["kind"]?.stringValue == "context_too_long")
        #expect(t["attempts"]?.numberValue == 0)
        #expect(sim.stats().accounts.values.map(\.requests).reduce(0, +) == before, "no request was sent")
        await sim.stop()
    }
}
