import Testing
@testable import ChimeraCore

@Suite struct ComplexityTests {
    @Test func aShortPlainRequest_isLow_andSaysWhy() {
        let e = ComplexityEstimator.estimate("Summarize this paragraph about tea.")
        #expect(e.bucket == 0, "\(e.summary)")
        #expect(e.features.map(\.name) == ["length", "instructions", "code", "math", "reasoning", "structure"])
        #expect(abs(e.features.map(\.weight).reduce(0, +) - 1) < 1e-12)
        #expect(e.features.first { $0.name == "reasoning" }?.detail == "none")
    }

    @Test func reasoningMathAndStructure_raiseTheScore_withTheirCues() {
        let e = ComplexityEstimator.estimate("""
            Explain step by step why 17 * 23 = 391, compare two methods to compute it, and return the result as JSON in a table.
            """)
        #expect(e.bucket == 2, "\(e.summary)")
        let reasoning = e.features.first { $0.name == "reasoning" }!
        #expect(reasoning.detail.contains("explain") && reasoning.detail.contains("step by step") && reasoning.detail.contains("compare"))
        #expect(e.features.first { $0.name == "math" }!.detail.contains("arithmetic"))
        #expect(e.features.first { $0.name == "structure" }!.detail == "asks for: json, table")
        #expect(e.summary.hasPrefix(ComplexityEstimate.format(e.score) + " (high): "))
    }

    @Test func code_aFenceIsDecisive() {
        let e = ComplexityEstimator.estimate("Fix this:\n```swift\nlet x = 1\n```")
        #expect(e.features.first { $0.name == "code" }!.value == 1)
    }

    @Test func length_isLogarithmic_andCapped() {
        let short = ComplexityEstimator.estimate(String(repeating: "word ", count: 50)).features[0].value
        let long = ComplexityEstimator.estimate(String(repeating: "word ", count: 10_000)).features[0].value
        #expect(short > 0 && short < 0.3)
        #expect(long == 1)
    }

    @Test func wholeWordsOnly() {
        #expect(ComplexityEstimator.estimate("The planet is round").features.first { $0.name == "reasoning" }!.value == 0)
        #expect(ComplexityEstimator.estimate("Make a plan").features.first { $0.name == "reasoning" }!.value > 0)
        #expect(ComplexityEstimator.estimate("").score == 0)
    }
}

@Suite struct RouteStatsTests {
    @Test func welfordAndBetaUpdates_matchHandComputedValues() {
        var s = RouteStats.observed
        for (score, passed) in [(0.9, true), (0.5, false), (0.7, true)] {
            s = s.updated(score: score, passed: passed, latencyMs: 100, costUSD: 0.001)
        }
        #expect(s.alpha == 2 && s.beta == 1 && s.count == 3)
        #expect(abs(s.meanScore - 0.7) < 1e-12)
        // Sample variance of 0.9, 0.5, 0.7: ((0.2)^2 + (0.2)^2 + 0) / 2 = 0.04.
        #expect(abs(s.scoreVariance! - 0.04) < 1e-12)
        #expect(abs(s.totalCostUSD - 0.003) < 1e-12 && s.meanLatencyMs == 100)
        let withPrior = s.adding(prior: .prior(pass: 0.5, strength: 4))
        #expect(withPrior.alpha == 4 && withPrior.beta == 3 && withPrior.count == 3)
    }

    @Test func thompsonDraws_centreOnThePosteriorMean() {
        let s = RouteStats(alpha: 30, beta: 10)
        var rng = SplitMix64(seed: 3)
        let draws = (0..<4_000).map { _ in s.sample(using: &rng) }
        let mean = draws.reduce(0, +) / Double(draws.count)
        #expect(abs(mean - 0.75) < 0.01)
        #expect(draws.allSatisfy { $0 > 0 && $0 < 1 })
    }

    @Test func ucb_shrinksWithEvidence() {
        let few = RouteStats(alpha: 2, beta: 1), many = RouteStats(alpha: 200, beta: 100)
        #expect(few.upperConfidenceBound(totalObservations: 300) > many.upperConfidenceBound(totalObservations: 300))
    }
}

@Suite struct DecisionEngineTests {
    let summarizer = HandlerCapability(handler: "summarize", kinds: ["summarize"], prior: 0.9)
    let free = ExternalOption(chain: ["m:free"], availability: .now, expectedCostUSD: 0, free: true, quotaPressure: 0)

    func input(_ prompt: String = "Summarize: tea is a drink.", kind: String = "summarize", agent: String = "default",
               route: RoutePreference = .auto, external: ExternalOption? = nil, learned: [RouteArm: RouteStats] = [:],
               handlers: [HandlerCapability]? = nil) -> DecisionInput {
        DecisionInput(taskId: "t1", kind: kind, prompt: prompt, agent: .named(agent), route: route,
                      handlers: handlers ?? [summarizer], external: external ?? free, learned: learned)
    }

    func frozen() -> DecisionEngine {
        var e = DecisionEngine()
        e.learning = false
        return e
    }

    func decide(_ input: DecisionInput, _ engine: DecisionEngine? = nil, seed: UInt64 = 1) -> Decision {
        var rng = SplitMix64(seed: seed)
        return (engine ?? frozen()).decide(input, rng: &rng)
    }

    @Test func easyTask_capableHandler_goesInternal_withReasons() {
        let d = decide(input())
        #expect(d.choice == .internal(handler: "summarize"))
        #expect(d.reasons.first?.hasPrefix("complexity ") == true)
        #expect(d.reasons.contains { $0.hasPrefix("internal:summarize: prior capability 0.90 at low complexity") })
        #expect(d.reasons.last?.hasPrefix("chose internal:summarize") == true)
        #expect(!d.learning)
    }

    @Test func hardTask_goesExternal_becauseTheInternalPriorIsDiscounted() {
        let hard = "Explain step by step why the proof works, compare it with induction, analyze the trade-off, and return JSON in a table. Then critique it."
        let d = decide(input(hard))
        #expect(d.complexity.bucket == 2)
        #expect(d.choice == .external(chain: ["m:free"]), "\(d.reasons)")
    }

    @Test func agents_biasTheChoice() {
        // A middling handler: a neutral agent goes external, a cost-aware one stays internal
        // when the external route costs money.
        let middling = HandlerCapability(handler: "summarize", kinds: ["summarize"], prior: 0.6)
        let paid = ExternalOption(chain: ["openai/gpt-4o-mini"], availability: .now, expectedCostUSD: 0.004, free: false)
        let neutral = decide(input(external: paid, handlers: [middling]))
        let costAware = decide(input(agent: "cost-aware", external: paid, handlers: [middling]))
        #expect(neutral.choice == .external(chain: ["openai/gpt-4o-mini"]), "\(neutral.reasons)")
        #expect(costAware.choice == .internal(handler: "summarize"), "\(costAware.reasons)")
        // A good handler wins an easy task for a neutral agent; a reasoning agent prefers a strong model.
        var strong = free
        strong.strong = true
        let good = HandlerCapability(handler: "summarize", kinds: ["summarize"], prior: 0.85)
        #expect(decide(input(external: strong, handlers: [good])).choice == .internal(handler: "summarize"))
        #expect(decide(input(agent: "reasoning", external: strong, handlers: [good])).choice == .external(chain: ["m:free"]))
    }

    @Test func exhaustedExternal_fallsBackToInternal_andWaitWhenOnlyExternal() {
        let hard = "Explain step by step why the proof works, compare it with induction, analyze the trade-off, and return JSON in a table."
        var spent = free
        spent.availability = .exhausted("all 3 accounts spent until 00:00 UTC")
        guard case .internalFallback(let handler, let reason) = decide(input(hard, external: spent)).choice else {
            Issue.record("expected a fallback"); return
        }
        #expect(handler == "summarize" && reason.contains("quota exhausted: all 3 accounts spent"))
        var waiting = free
        waiting.availability = .wait(eta: 1_796_000_000_000)
        #expect(decide(input(kind: "translate", external: waiting)).choice == .wait(eta: 1_796_000_000_000))
        // --route external with an exhausted pool still falls back, saying why.
        guard case .internalFallback = decide(input(route: .external, external: spent)).choice else { Issue.record("expected a fallback"); return }
    }

    @Test func routePreferences_andFailures_sayWhatIsMissing() {
        #expect(decide(input(route: .external)).choice == .external(chain: ["m:free"]))
        guard case .fail(let why) = decide(input(kind: "translate", route: .internal)).choice else { Issue.record("expected fail"); return }
        #expect(why == "no internal handler can serve kind \"translate\"")
        var none = free
        none.availability = .unavailable("no API keys")
        guard case .fail(let all) = decide(input(kind: "translate", external: none)).choice else { Issue.record("expected fail"); return }
        #expect(all.contains("external: no API keys"))
        let limited = HandlerCapability(handler: "summarize", kinds: ["summarize"], prior: 0.9, maxInputTokens: 10)
        let d = decide(input(String(repeating: "long text ", count: 20), handlers: [limited]))
        #expect(d.choice == .external(chain: ["m:free"]))
        #expect(d.arms.first { $0.arm == .internal("summarize") }?.ineligible?.contains("exceeds its input limit of 10") == true)
    }

    @Test func learning_movesTheChoice_withEvidence() {
        // Twenty failures of the handler on this kind outweigh its prior.
        var bad = RouteStats.observed
        for _ in 0..<20 { bad = bad.updated(score: 0.2, passed: false, latencyMs: 5, costUSD: 0) }
        #expect(decide(input()).choice == .internal(handler: "summarize"))
        #expect(decide(input(learned: [.internal("summarize"): bad])).choice == .external(chain: ["m:free"]))
    }

    @Test func thompsonSampling_isReproducibleBySeed_andExplores() {
        var engine = DecisionEngine()
        engine.learning = true
        let middling = HandlerCapability(handler: "summarize", kinds: ["summarize"], prior: 0.95)
        let choices = (1...200).map { decide(input(handlers: [middling]), engine, seed: UInt64($0)).choice.label }
        #expect(choices == (1...200).map { decide(input(handlers: [middling]), engine, seed: UInt64($0)).choice.label })
        #expect(Set(choices) == ["internal", "external"], "both arms get explored")
    }

    @Test func shadow_runsTheOtherRoute_onTheConfiguredShare() {
        var engine = frozen()
        engine.shadowFraction = 0.25
        let shadows = (1...2_000).filter { decide(input(), engine, seed: UInt64($0)).shadow == .external }.count
        #expect(abs(Double(shadows) / 2_000 - 0.25) < 0.03)
        engine.shadowFraction = 0
        #expect(decide(input(), engine).shadow == nil)
    }

    @Test func ucb_isDeterministic_andPrefersTheLessTriedArm_whenMeansAreClose() {
        var engine = DecisionEngine()
        engine.strategy = .ucb
        let middling = HandlerCapability(handler: "summarize", kinds: ["summarize"], prior: 0.8)
        var tried = RouteStats.observed
        for _ in 0..<30 { tried = tried.updated(score: 0.8, passed: true, latencyMs: 5, costUSD: 0) }
        let a = decide(input(learned: [.internal("summarize"): tried], handlers: [middling]), engine, seed: 1)
        let b = decide(input(learned: [.internal("summarize"): tried], handlers: [middling]), engine, seed: 99)
        #expect(a.choice == b.choice, "no randomness in UCB")
        #expect(a.choice == .external(chain: ["m:free"]), "the untried arm's bound is higher: \(a.reasons)")
        #expect(a.reasons.contains { $0.contains("upper bound of score") })
    }
}

@Suite struct JHADEConfigTests {
    @Test func theSection_decodes_andBadValuesAreLocated() throws {
        let config = try ConfigDecoder.decode(Array("""
            {"jhade": {"weights": {"cost": 1.5, "quota": 0}, "cost_scale_usd": 0.02, "shadow": 0.1, "strategy": "ucb", "min_quality": 0.7, "learning": false}}
            """.utf8), file: "c.json")
        #expect(config.jhade.weights.cost == 1.5 && config.jhade.weights.quota == 0 && config.jhade.weights.quality == 1)
        #expect(config.jhade.weights.costScaleUSD == 0.02 && config.jhade.shadow == 0.1 && config.jhade.strategy == .ucb)
        #expect(config.jhade.minQuality == 0.7 && !config.jhade.learning)
        #expect(try ConfigDecoder.decode(Array("{}".utf8), file: "c.json").jhade == JHADESettings())
        do {
            _ = try ConfigDecoder.decode(Array(#"{"jhade": {"strategy": "thomson", "shadow": 2, "weights": {"qualty": 1}}}"#.utf8), file: "c.json")
            Issue.record("accepted a bad jhade section")
        } catch {
            let text = error.description
            #expect(text.contains("$.jhade.strategy") && text.contains("did you mean \"thompson\""), "\(text)")
            #expect(text.contains("$.jhade.shadow") && text.contains("from 0 to 1"), "\(text)")
            #expect(text.contains("did you mean \"quality\""), "\(text)")
        }
    }
}
