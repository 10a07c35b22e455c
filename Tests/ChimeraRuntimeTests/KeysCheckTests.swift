import ChimeraCore
import ChimeraSimulator
import Testing
@testable import ChimeraRuntime

/// `chimera keys check` (GET /key for every key) against the in-process OpenRouter simulator.
@Suite("chimera keys check against the simulator", .serialized, .timeLimit(.minutes(3)))
struct KeysCheckTests {
    static let keyA1 = "sk-or-v1-sim-a-0001"
    static let keyA2 = "sk-or-v1-sim-a-0002"
    static let keyB1 = "sk-or-v1-sim-b-0001"
    /// Not known to the simulator: 401 "User not found."
    static let keyX = "sk-or-v1-sim-x-unknown-9999"
    static let allKeys = [keyA1, keyA2, keyB1, keyX]

    /// Account a (free tier) with two keys, b (credits) with one, and optionally x, a key upstream does not know.
    static func config(withUnknownKey: Bool = false) -> String {
        let unknown = withUnknownKey ? #", {"label": "x", "env": "SIM_KEY_X", "account": "x"}"# : ""
        return """
        {"keys": {"read_environment": false, "strategy": "round_robin", "reserve_high_priority": 0,
          "accounts": [{"name": "a", "tier": "free"}, {"name": "b", "tier": "credits"}\(withUnknownKey ? #", {"name": "x", "tier": "free"}"# : "")],
          "entries": [{"label": "a1", "env": "SIM_KEY_A1", "account": "a"}, {"label": "a2", "env": "SIM_KEY_A2", "account": "a"},
                      {"label": "b1", "env": "SIM_KEY_B1", "account": "b"}\(unknown)]}}
        """
    }

    static func simulatorConfig() -> SimulatorConfig {
        var config = SimulatorConfig.standard
        config.accounts = [
            SimulatorConfig.Account(name: "a", keys: [keyA1, keyA2]),
            SimulatorConfig.Account(name: "b", keys: [keyB1], creditsPurchased: 10, balance: 10),
        ]
        return config
    }

    func environment(_ box: KeysSandbox, _ sim: OpenRouterSimulator) -> [String: String] {
        box.environment(["OPENROUTER_BASE_URL": sim.baseURL, "SIM_KEY_A1": Self.keyA1, "SIM_KEY_A2": Self.keyA2, "SIM_KEY_B1": Self.keyB1,
                         "SIM_KEY_X": Self.keyX, "CHIMERA_LOG": "warning"])
    }

    func chimera(_ arguments: [String], environment: [String: String]) async throws -> FinishedRun {
        try await offThePool {
            let run = CLIRun()
            try run.run(arguments, environment: environment)
            return FinishedRun(status: run.status, stdoutText: run.stdoutText, stderrText: run.stderrText)
        }
    }

    func expectNoKeyText(_ run: FinishedRun, sourceLocation: SourceLocation = #_sourceLocation) {
        for key in Self.allKeys {
            #expect(!run.stdoutText.contains(key) && !run.stderrText.contains(key), "a key was printed unmasked", sourceLocation: sourceLocation)
        }
    }

    func array(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { items } else { [] }
    }

    /// `keys list --json`: used today by label.
    func ledgerUsedToday(_ box: KeysSandbox, _ sim: OpenRouterSimulator) async throws -> [String: Int] {
        let list = try await chimera(["keys", "list", "--json"], environment: environment(box, sim))
        var used: [String: Int] = [:]
        for key in array(try JSONParser.parse(list.stdoutText)["keys"]) {
            if let label = key["label"]?.stringValue, let n = key["used_today"]?.numberValue { used[label] = Int(n) }
        }
        return used
    }

    @Test func validKeys_showTheSimulatorsCounts_andTheLedgerTakesThem() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config())
        let prompts = TempFile((0..<5).map { "question \($0)" }.joined(separator: "\n"), suffix: ".txt")
        defer { prompts.remove() }
        let asked = try await chimera(["ask", "--batch", prompts.path, "--concurrency", "1"], environment: environment(box, sim))
        #expect(asked.status == ChildExitStatus(code: 0, signal: 0), "\(asked.stderrText)")
        // Three requests the ledger counted that OpenRouter never saw (lost on the way, say).
        let reserved = try await chimera(["keys", "reserve", "--count", "3", "--outcome", "ok"], environment: environment(box, sim))
        #expect(reserved.status == ChildExitStatus(code: 0, signal: 0), "\(reserved.stderrText)")
        let upstream = sim.stats().freeUsedToday
        #expect((upstream["a"] ?? 0) + (upstream["b"] ?? 0) == 5)
        let before = try await ledgerUsedToday(box, sim)
        #expect((before["a1"] ?? 0) + (before["b1"] ?? 0) == 8, "\(before)")

        let text = try await chimera(["keys", "check"], environment: environment(box, sim))
        #expect(text.status == ChildExitStatus(code: 0, signal: 0), "\(text.stdoutText)\(text.stderrText)")
        #expect(text.stdoutText.contains("3 of 3 keys valid"), "\(text.stdoutText)")
        // Short test keys are masked to their last two characters.
        #expect(text.stdoutText.contains("sk-or-…01") && text.stdoutText.contains("sk-or-…02"), "\(text.stdoutText)")
        #expect(text.stdoutText.contains("ledger corrected: "), "\(text.stdoutText)")
        for account in ["a", "b"] where before[account == "a" ? "a1" : "b1"] != upstream[account] {
            let line = "ledger corrected: \(account) \(before[account == "a" ? "a1" : "b1"] ?? -1) → \(upstream[account] ?? 0)"
            #expect(text.stdoutText.contains(line), "expected \(line) in \(text.stdoutText)")
        }
        expectNoKeyText(text)

        // The ledger now holds upstream's counts; the key list shows them.
        let after = try await ledgerUsedToday(box, sim)
        #expect(after["a1"] == upstream["a"] ?? 0 && after["a2"] == upstream["a"] ?? 0, "\(after) vs \(upstream)")
        #expect(after["b1"] == upstream["b"] ?? 0, "\(after) vs \(upstream)")

        let json = try await chimera(["keys", "check", "--json"], environment: environment(box, sim))
        #expect(json.status == ChildExitStatus(code: 0, signal: 0), "\(json.stderrText)")
        expectNoKeyText(json)
        let report = try JSONParser.parse(json.stdoutText)
        let keys = array(report["keys"])
        #expect(keys.count == 3)
        for key in keys {
            let account = try #require(key["account"]?.stringValue)
            #expect(key["valid"] == .bool(true))
            #expect(key["status"]?.stringValue == "valid")
            #expect(key["key"]?.stringValue?.hasPrefix("sk-or-…") == true)
            let daily = key["free_model_daily_requests"]
            #expect(daily?["used"]?.numberValue.map(Int.init) == upstream[account] ?? 0, "\(key.serialized)")
            #expect(daily?["limit"]?.numberValue == (account == "a" ? 50 : 1_000))
            #expect(key["tier"]?.stringValue == (account == "a" ? "free" : "credits"))
        }
        for entry in array(report["ledger"]) {
            #expect(entry["corrected"] == .bool(false), "already in step: \(entry.serialized)")
        }
        #expect(report["valid"]?.numberValue == 3)
        await sim.stop()
    }

    @Test func unknownKey_isInvalid_exit1_disabledAndAudited() async throws {
        let sim = OpenRouterSimulator(config: Self.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: Self.config(withUnknownKey: true))
        let run = try await chimera(["keys", "check"], environment: environment(box, sim))
        #expect(run.status == ChildExitStatus(code: 1, signal: 0), "\(run.stdoutText)\(run.stderrText)")
        #expect(run.stdoutText.contains("invalid"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("3 of 4 keys valid, 1 invalid"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("HTTP 401 User not found."), "\(run.stdoutText)")
        expectNoKeyText(run)

        let list = try JSONParser.parse(try await chimera(["keys", "list", "--json"], environment: environment(box, sim)).stdoutText)
        let states = Dictionary(uniqueKeysWithValues: array(list["keys"]).compactMap { k in k["label"]?.stringValue.map { ($0, k["state"]?.stringValue ?? "?") } })
        #expect(states == ["a1": "active", "a2": "active", "b1": "active", "x": "disabled"])
        let audit = try await chimera(["keys", "audit", "--key", "x"], environment: environment(box, sim))
        #expect(audit.stdoutText.contains("active → disabled: keys check: HTTP 401 User not found."), "\(audit.stdoutText)")
        expectNoKeyText(audit)

        // Checked again, as JSON: still invalid, already disabled, and one key alone with --key.
        let json = try await chimera(["keys", "check", "--json", "--key", "x"], environment: environment(box, sim))
        #expect(json.status == ChildExitStatus(code: 1, signal: 0))
        let keys = array(try JSONParser.parse(json.stdoutText)["keys"])
        #expect(keys.count == 1)
        #expect(keys.first?["status"]?.stringValue == "invalid")
        #expect(keys.first?["error"]?["kind"]?.stringValue == "auth")
        #expect(keys.first?["error"]?["status"]?.numberValue == 401)
        #expect(keys.first?["disabled_now"] == .bool(false))
        #expect(keys.first?["state"]?.stringValue == "disabled")
        expectNoKeyText(json)
        let auditAgain = try await chimera(["keys", "audit", "--key", "x"], environment: environment(box, sim))
        #expect(auditAgain.stdoutText.split(separator: "\n").filter { $0.contains("keys check: HTTP 401") }.count == 1,
                "a key already disabled is not disabled (and audited) again: \(auditAgain.stdoutText)")
        let one = try await chimera(["keys", "check", "--key", "a1"], environment: environment(box, sim))
        #expect(one.status == ChildExitStatus(code: 0, signal: 0), "\(one.stdoutText)\(one.stderrText)")
        #expect(one.stdoutText.contains("1 of 1 key valid"), "\(one.stdoutText)")
        #expect(sim.stats().unauthorized == 2)
        await sim.stop()
    }

    @Test func unreachableAPI_isExit1_andUsageErrorsAreExit2() async throws {
        let box = KeysSandbox(config: Self.config())
        let env = box.environment(["SIM_KEY_A1": Self.keyA1, "SIM_KEY_A2": Self.keyA2, "SIM_KEY_B1": Self.keyB1, "CHIMERA_LOG": "warning"])
        // Nothing listens on port 1.
        let down = try await chimera(["keys", "check", "--json", "--base-url", "http://127.0.0.1:1/api/v1", "--timeout-ms", "1000"], environment: env)
        #expect(down.status == ChildExitStatus(code: 1, signal: 0), "\(down.stdoutText)\(down.stderrText)")
        let keys = array(try JSONParser.parse(down.stdoutText)["keys"])
        #expect(keys.count == 3)
        #expect(keys.allSatisfy { $0["status"]?.stringValue == "error" && $0["error"]?["kind"]?.stringValue == "network" }, "\(down.stdoutText)")
        #expect(keys.allSatisfy { $0["state"]?.stringValue == "active" }, "an unreachable API disables nothing")
        expectNoKeyText(down)

        let badURL = try await chimera(["keys", "check", "--base-url", "openrouter.ai"], environment: env)
        #expect(badURL.status == ChildExitStatus(code: 2, signal: 0))
        #expect(badURL.stderrText.contains("http:// or https://"))
        let noMatch = try await chimera(["keys", "check", "--key", "nobody"], environment: env)
        #expect(noMatch.status == ChildExitStatus(code: 2, signal: 0))
        let empty = KeysSandbox(config: #"{"keys": {"read_environment": false}}"#)
        let noKeys = try await chimera(["keys", "check"], environment: empty.environment())
        #expect(noKeys.status == ChildExitStatus(code: 2, signal: 0))
        #expect(noKeys.stderrText.contains("no API keys"), "\(noKeys.stderrText) in \(empty.root)")
    }
}
