import Testing
@testable import ChimeraCore

/// Decodes `text` as the profile file `file`, returning the profile or the error.
func decodeProfile(_ text: String, file: String = "Agents/poet.json") -> Result<AgentProfile, ConfigError> {
    do throws(ConfigError) {
        return .success(try AgentProfileDecoder.decode(Array(text.utf8), file: file))
    } catch {
        return .failure(error)
    }
}

@Suite struct AgentProfileTests {
    @Test func aFullSpecializedProfile_decodesEveryField_andKeepsItsFile() throws {
        let profile = try decodeProfile("""
        {"name": "news-analyst", "description": "News desk", "strategy": "specialized", "system": "Be exact.",
         "kinds": ["summarize", "keywords"], "tools": ["text.keywords"], "route": "external",
         "models": ["openai/gpt-4o-mini"], "min_quality": 0.65, "temperature": 0.2}
        """, file: "Agents/news.json").get()
        #expect(profile.name == "news-analyst" && profile.strategy == .specialized && profile.description == "News desk")
        #expect(profile.system == "Be exact." && profile.kinds == ["summarize", "keywords"] && profile.tools == ["text.keywords"])
        #expect(profile.route == .external && profile.models == ["openai/gpt-4o-mini"])
        #expect(profile.minQuality == 0.65 && profile.temperature == 0.2)
        #expect(profile.source == "Agents/news.json")
        // JHADE's hook: the strategy's bias, under the agent's own name.
        #expect(profile.bias.name == "news-analyst" && profile.bias.internalBonus == AgentBias.named("specialized").internalBonus)
    }

    @Test func aMinimalProfile_isNamedAfterItsFile_withTheStrategysDefaults() throws {
        let reasoning = try decodeProfile(#"{"strategy": "reasoning"}"#, file: "Agents/math-solver.json").get()
        #expect(reasoning.name == "math-solver" && reasoning.samples == 5 && reasoning.effectiveMerge == .vote)
        let creative = try decodeProfile(#"{"strategy": "creative", "candidates": 6}"#).get()
        #expect(creative.name == "poet" && creative.candidates == 6 && creative.effectiveMerge == .best)
        let plain = try decodeProfile("{}", file: "x/plain.json").get()
        #expect(plain.strategy == .default && plain.route == .auto && plain.minQuality == nil)
        let cascade = try decodeProfile(#"{"strategy": "cost-aware", "cascade": ["internal", "openai/gpt-4o-mini"], "budget_usd": 0.002}"#).get()
        #expect(cascade.cascade == [.internal, .model("openai/gpt-4o-mini")] && cascade.budgetUSD == 0.002)
    }

    @Test func everyProblem_isReported_withFileLineColumnAndPath() throws {
        let text = """
        {
          "name": "poet",
          "strategy": "creativ",
          "tmperature": 1.2,
          "candidates": 40
        }
        """
        let error = try #require(decodeProfile(text).failure)
        #expect(error.description == """
        Agents/poet.json: 3 problems in the agent profile
          Agents/poet.json:3:15: $.strategy: expected one of "default", "specialized", "creative", "reasoning", "cost-aware", found "creativ" (did you mean "creative"?)
          Agents/poet.json:5:17: $.candidates: expected an integer from 1 to 16, found 40
          Agents/poet.json:4:17: $.tmperature: unknown field "tmperature" (did you mean "temperature"?); known fields: $schema, name, description, strategy, system, kinds, tools, route, models, min_quality, temperature, candidates, samples, merge, cascade, budget_usd
        """)
    }

    @Test func fieldsOfAnotherStrategy_areRefused_namingTheStrategyThatUsesThem() throws {
        let error = try #require(decodeProfile(#"{"strategy": "creative", "samples": 3, "tools": ["text.keywords"]}"#).failure)
        #expect(error.issues.map(\.description) == [
            "1:49: $.tools: only the specialized strategy uses \"tools\"; this profile's strategy is creative",
            "1:37: $.samples: only the reasoning strategy uses \"samples\"; this profile's strategy is creative",
        ])
    }

    @Test func badCascadeEntries_namesAndTypes_areLocated() throws {
        let issues = try #require(decodeProfile("""
        {"name": "my agent", "strategy": "cost-aware", "cascade": ["internal", "fre", "internal"], "budget_usd": 0, "merge": "best"}
        """).failure).issues.map(\.description)
        #expect(issues == [
            "1:10: $.name: an agent name is letters, digits, '-', '_' or '.', starting with a letter or digit; found \"my agent\"",
            "1:72: $.cascade[1]: expected \"internal\", \"free\", \"paid\" or a model id like \"openai/gpt-4o-mini\", found \"fre\" (did you mean \"free\"?)",
            "1:79: $.cascade[2]: \"internal\" appears twice in the cascade",
            "1:106: $.budget_usd: expected a positive number of USD, found 0",
            "1:118: $.merge: only the creative and reasoning strategies use \"merge\"; this profile's strategy is cost-aware",
        ])
        let empty = try #require(decodeProfile(#"{"strategy": "cost-aware", "cascade": []}"#).failure).issues.map(\.description)
        #expect(empty == ["1:39: $.cascade: expected at least one tier: \"internal\", \"free\", \"paid\" or a model id"])
    }

    @Test func invalidJSON_isALocatedAgentProfileError() throws {
        let error = try #require(decodeProfile("{\n  \"strategy\": \"creative\",\n}").failure)
        #expect(error.description.hasPrefix("Agents/poet.json: invalid agent profile\n  Agents/poet.json:3:1: $: not valid JSON"), "\(error)")
    }

    @Test func aSpecializedProfile_refusesKindsOutsideItsList_withADidYouMean() {
        var profile = AgentProfile(name: "news-analyst", strategy: .specialized)
        #expect(profile.refusal(kind: "translate") == nil, "no kinds: every kind")
        profile.kinds = ["summarize", "keywords"]
        #expect(profile.refusal(kind: "summarize") == nil)
        #expect(profile.refusal(kind: "sumarize")
            == "agent news-analyst (specialized) does not take tasks of kind \"sumarize\" (did you mean \"summarize\"?); it accepts: summarize, keywords")
    }

    @Test func builtins_areOnePerStrategy_namedAfterIt() {
        #expect(AgentProfile.builtins.map(\.name) == AgentStrategy.allCases.map(\.rawValue))
        #expect(AgentProfile.builtins.allSatisfy { $0.name == $0.strategy.rawValue && $0.source == nil })
    }

    @Test func showJSON_roundTripsThroughTheDecoder() throws {
        for builtin in AgentProfile.builtins {
            var members: [JSONMember] = []
            if case .object(let all) = builtin.json { members = all.filter { $0.key != "source" } }
            let decoded = try decodeProfile(JSONValue.object(members).serialized, file: "\(builtin.name).json").get()
            var expected = builtin
            expected.source = "\(builtin.name).json"
            if expected.strategy == .creative || expected.strategy == .reasoning { expected.merge = builtin.effectiveMerge }
            #expect(decoded == expected)
        }
    }

    @Test func reasoningChain_prefersCapableModels_thenTheCatalogs_elseTheGivenOnes() {
        let catalog: [String: ModelInfo] = [
            "a/think:free": ModelInfo(id: "a/think:free", name: "A", supportedParameters: ["reasoning", "include_reasoning"]),
            "b/plain:free": ModelInfo(id: "b/plain:free", name: "B", supportedParameters: ["temperature"]),
            "c/think": ModelInfo(id: "c/think", name: "C", promptPrice: USDPrice("0.000001"), completionPrice: USDPrice("0.000002"),
                                 supportedParameters: ["include_reasoning"]),
        ]
        #expect(AgentModels.reasoningChain(preferred: ["b/plain:free", "c/think"], catalog: catalog).chain == ["c/think"])
        let found = AgentModels.reasoningChain(preferred: ["b/plain:free"], catalog: catalog)
        #expect(found.chain == ["a/think:free", "c/think"], "free first, then by price")
        #expect(found.note == "none of b/plain:free can reason; reasoning-capable catalog models: a/think:free, c/think")
        #expect(AgentModels.reasoningChain(preferred: ["x/y"], catalog: nil).chain == ["x/y"])
        #expect(AgentModels.reasoningChain(preferred: [], catalog: ["b/plain:free": catalog["b/plain:free"]!]).chain == [])
    }

    @Test func toolsWithoutAPool_getABuiltInPool_andAnUnknownToolIsNamed() {
        var config = ChimeraConfig.builtinDefault
        config.pools = []
        var profile = AgentProfile(name: "desk", strategy: .specialized)
        profile.tools = ["text.keywords", "math.eval"]
        #expect(config.addPools(forToolsOf: profile) == nil)
        #expect(config.pools.map(\.name) == ["agent-tools"] && config.pools[0].handlers == ["text.keywords", "math.eval"])
        #expect(config.addPools(forToolsOf: profile) == nil && config.pools.count == 1, "served tools need nothing more")
        profile.tools = ["text.keywords", "my.scorer"]
        #expect(config.addPools(forToolsOf: profile) == "my.scorer")
    }
}
