import ChimeraCore
import ChimeraSimulator
import Foundation
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera models` against the OpenRouter simulator on 127.0.0.1: the catalog is fetched, cached
/// in `$CHIMERA_HOME/catalog.sqlite`, served from the cache within its TTL, and shown stale (with
/// a warning) when the network is down.
@Suite("chimera models against the simulator", .serialized, .timeLimit(.minutes(2)))
struct ModelsCLITests {
    /// One key from the environment, so the fetch goes through the key sources.
    static let config = """
    {"keys": {"read_environment": false, "entries": [{"label": "a", "env": "SIM_KEY_A"}]}}
    """

    func models(_ box: KeysSandbox, baseURL: String, _ arguments: [String]) async throws -> FinishedRun {
        let environment = box.environment(["OPENROUTER_BASE_URL": baseURL, "SIM_KEY_A": "sk-or-v1-sim-a-0001", "CHIMERA_LOG": "warning"])
        return try await offThePool {
            let run = CLIRun()
            try run.run(["models"] + arguments, environment: environment)
            return FinishedRun(status: run.status, stdoutText: run.stdoutText, stderrText: run.stderrText)
        }
    }

    func parse(_ run: FinishedRun) throws -> JSONValue {
        try #require(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        return try JSONParser.parse(run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func entries(_ json: JSONValue) -> [JSONValue] {
        if case .array(let items)? = json["models"] { return items }
        return []
    }

    func ids(_ json: JSONValue) -> [String] { entries(json).compactMap { $0["id"]?.stringValue } }

    func entry(_ json: JSONValue, _ id: String) -> JSONValue? { entries(json).first { $0["id"]?.stringValue == id } }

    static let standardIds = SimulatorConfig.standard.models.map(\.id).sorted()

    @Test func firstCallFetches_secondUsesTheCache_evenWithTheSimulatorStopped() async throws {
        let sim = OpenRouterSimulator(config: .standard)
        _ = try await sim.start(port: 0)
        let url = sim.baseURL
        let box = KeysSandbox(config: Self.config)

        let first = try parse(try await models(box, baseURL: url, ["--json"]))
        #expect(first["source"]?.stringValue == "network")
        #expect(first["stale"] == .bool(false))
        #expect(first["base_url"]?.stringValue == url)
        #expect(ids(first) == Self.standardIds)
        #expect(box.directoryEntries(box.home).contains("catalog.sqlite"))
        #expect(box.mode(of: "catalog.sqlite") == 0o600)

        // Exact prices: 0.00000015 per token is 0.15 per million; "-1" is dynamic; "0" is free.
        let mini = try #require(entry(first, "openai/gpt-4o-mini"))
        #expect(mini["prompt_per_million"]?.stringValue == "0.15")
        #expect(mini["completion_per_million"]?.stringValue == "0.6")
        #expect(mini["context_length"]?.numberValue == 128_000)
        #expect(mini["free"] == .bool(false))
        #expect(entry(first, "openrouter/auto")?["prompt_per_million"]?.stringValue == "dynamic")
        #expect(entry(first, "meta-llama/llama-3.3-70b-instruct:free")?["prompt_per_million"]?.stringValue == "0")
        #expect(entry(first, "meta-llama/llama-3.3-70b-instruct:free")?["free"] == .bool(true))

        await sim.stop()
        let second = try parse(try await models(box, baseURL: url, ["--json"]))
        #expect(second["source"]?.stringValue == "cache")
        #expect(second["fetched_at_ms"] == first["fetched_at_ms"])
        #expect(second["models"] == first["models"])

        // The table, from the cache.
        let table = try await models(box, baseURL: url, [])
        #expect(table.status == ChildExitStatus(code: 0, signal: 0), "\(table.stderrText)")
        let lines = table.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["ID", "CONTEXT", "PROMPT", "$/M", "COMPLETION", "$/M"])
        let miniRow = lines.first { $0.hasPrefix("openai/gpt-4o-mini ") }?.split(separator: " ").map(String.init)
        #expect(miniRow == ["openai/gpt-4o-mini", "128000", "0.15", "0.6"])
        let autoRow = lines.first { $0.hasPrefix("openrouter/auto ") }?.split(separator: " ").map(String.init)
        #expect(autoRow == ["openrouter/auto", "2000000", "dynamic", "dynamic"])
        let freeRow = lines.first { $0.hasPrefix("google/gemma-3-27b-it:free ") }?.split(separator: " ").map(String.init)
        #expect(freeRow == ["google/gemma-3-27b-it:free", "96000", "free", "free"])
        let footer = try #require(lines.last)
        #expect(footer.hasPrefix("8 models (6 free), fetched "), "\(footer)")
        #expect(footer.hasSuffix("(cached) from \(url)"), "\(footer)")
        #expect(table.stderrText.isEmpty, "\(table.stderrText)")
    }

    @Test func refresh_fetchesAgain_andFooterSaysFresh() async throws {
        let sim = OpenRouterSimulator(config: .standard)
        _ = try await sim.start(port: 0)
        let url = sim.baseURL
        let box = KeysSandbox(config: Self.config)
        let first = try parse(try await models(box, baseURL: url, ["--json"]))
        #expect(first["source"]?.stringValue == "network")
        #expect(try parse(try await models(box, baseURL: url, ["--json"]))["source"]?.stringValue == "cache")
        usleep(5_000)
        let refreshed = try parse(try await models(box, baseURL: url, ["--json", "--refresh"]))
        #expect(refreshed["source"]?.stringValue == "network")
        #expect((refreshed["fetched_at_ms"]?.numberValue ?? 0) > (first["fetched_at_ms"]?.numberValue ?? .infinity))
        // The cache now holds the refreshed fetch.
        let after = try parse(try await models(box, baseURL: url, ["--json"]))
        #expect(after["source"]?.stringValue == "cache")
        #expect(after["fetched_at_ms"] == refreshed["fetched_at_ms"])

        let table = try await models(box, baseURL: url, ["--refresh"])
        #expect(table.stdoutText.contains("(fresh) from \(url)"), "\(table.stdoutText)")
        await sim.stop()
    }

    @Test func free_andSearch_filter() async throws {
        let sim = OpenRouterSimulator(config: .standard)
        _ = try await sim.start(port: 0)
        let url = sim.baseURL
        let box = KeysSandbox(config: Self.config)
        let free = try parse(try await models(box, baseURL: url, ["--json", "--free"]))
        let expected = SimulatorConfig.standard.models.map(\.id).filter { $0.hasSuffix(":free") || $0 == "openrouter/free" }.sorted()
        #expect(ids(free) == expected)
        #expect(!ids(free).contains("openai/gpt-4o-mini"))
        #expect(!ids(free).contains("openrouter/auto"))
        #expect(entries(free).allSatisfy { $0["free"] == .bool(true) })

        let searched = try parse(try await models(box, baseURL: url, ["--json", "--search", "LLAMA"]))
        #expect(ids(searched) == ["meta-llama/llama-3.3-70b-instruct:free"])
        let both = try parse(try await models(box, baseURL: url, ["--json", "--free", "--search", "openrouter"]))
        #expect(ids(both) == ["openrouter/free"])
        let none = try await models(box, baseURL: url, ["--search", "no-such-model"])
        #expect(none.stdoutText.contains("No models match."))
        #expect(none.stdoutText.contains("0 models (0 free)"))
        await sim.stop()
    }

    @Test func networkDown_noCache_exit1_namingTheURL() async throws {
        let sim = OpenRouterSimulator(config: .standard)
        _ = try await sim.start(port: 0)
        let url = sim.baseURL
        await sim.stop()
        let box = KeysSandbox(config: Self.config)
        let run = try await models(box, baseURL: url, ["--json", "--timeout", "1"])
        #expect(run.status == ChildExitStatus(code: 1, signal: 0), "\(run.stderrText)")
        #expect(run.stdoutText.isEmpty)
        #expect(run.stderrText.contains("error: cannot fetch the model list from \(url)/models"), "\(run.stderrText)")
        #expect(run.stderrText.contains("network"), "\(run.stderrText)")
    }

    @Test func staleCache_networkDown_warns_andShowsTheCachedList() async throws {
        let sim = OpenRouterSimulator(config: .standard)
        _ = try await sim.start(port: 0)
        let url = sim.baseURL
        let box = KeysSandbox(config: Self.config)
        let first = try parse(try await models(box, baseURL: url, ["--json"]))
        await sim.stop()
        // --ttl-hours 0: the cache is stale at once, so the command tries the (dead) network.
        let run = try await models(box, baseURL: url, ["--json", "--ttl-hours", "0", "--timeout", "1"])
        let stale = try parse(run)
        #expect(stale["source"]?.stringValue == "cache")
        #expect(stale["stale"] == .bool(true))
        #expect(stale["models"] == first["models"])
        #expect(run.stderrText.hasPrefix("warning: cannot fetch the model list from \(url)/models"), "\(run.stderrText)")
        #expect(run.stderrText.contains("using the cached list fetched"), "\(run.stderrText)")
        // --refresh with the network down also falls back to the cache.
        let refreshed = try await models(box, baseURL: url, ["--refresh", "--timeout", "1"])
        #expect(refreshed.status == ChildExitStatus(code: 0, signal: 0))
        #expect(refreshed.stdoutText.contains("(cached) from \(url)"))
        #expect(refreshed.stderrText.contains("warning:"))
    }

    @Test func baseURLOption_overridesTheEnvironment_andEachURLHasItsOwnCache() async throws {
        let sim = OpenRouterSimulator(config: .standard)
        _ = try await sim.start(port: 0)
        let url = sim.baseURL
        let box = KeysSandbox(config: Self.config)
        let dead = "http://127.0.0.1:1/api/v1"
        let viaOption = try parse(try await models(box, baseURL: dead, ["--json", "--base-url", url + "/"]))
        #expect(viaOption["source"]?.stringValue == "network")
        #expect(viaOption["base_url"]?.stringValue == url)
        // The environment's URL has no cache of its own.
        let viaEnvironment = try await models(box, baseURL: dead, ["--json", "--timeout", "1"])
        #expect(viaEnvironment.status == ChildExitStatus(code: 1, signal: 0))
        #expect(viaEnvironment.stderrText.contains(dead), "\(viaEnvironment.stderrText)")
        await sim.stop()
    }
}
