import ChimeraCore

/// `chimera bench routing`: JHADE against baselines on a synthetic workload.
///
/// The generator knows, per task kind and difficulty, the hidden expected quality of the
/// internal handler and of the external model, and draws each task's realized qualities with
/// noise; the learner (the real ``DecisionEngine`` with ``RouteStats`` updates, as in
/// `chimera task`) sees only the prompt text, the handlers' declared capabilities, the external
/// price, and the score of the route it ran. Every policy is charged the same realized
/// qualities (common random numbers), so differences are the policies' own.
///
/// Policies: JHADE; always external; always internal; random at JHADE's external share; the
/// best static threshold on the complexity score (tuned with hindsight, at no more than JHADE's
/// cost); and the oracle, which knows each task's expected quality per route and takes the
/// better one (the cheaper when equal). APGR, after RouteLLM, is the area under a policy's
/// performance-gap-recovered curve over the share of tasks sent external: PGR = (quality −
/// always-internal) / (always-external − always-internal), over the share of always-external's
/// cost spent (RouteLLM counts calls; here calls differ in price, so cost is the fair axis),
/// points from sweeping the policy's knob (JHADE's cost weight, the threshold, the oracle's
/// margin), closed by (0, 0) and (1, 1) and taken as the upper concave envelope (mixing two
/// operating points is always possible).
public struct RoutingBenchmark: Sendable {
    /// One kind of task and its hidden truth.
    public struct KindSpec: Sendable {
        public var name: String
        /// Expected quality per difficulty (0 easy, 1 medium, 2 hard).
        public var internalQuality: [Double]
        public var externalQuality: [Double]
        /// What the kind's handler declares (JHADE's prior), honest but coarse.
        public var declaredCapability: Double
    }

    /// One generated task with its realized outcomes.
    public struct SyntheticTask: Sendable {
        public var kind: String
        public var difficulty: Int
        public var prompt: String
        public var expectedInternal: Double
        public var expectedExternal: Double
        public var internalQuality: Double
        public var externalQuality: Double
        public var externalCostUSD: Double
    }

    /// A policy's totals: mean quality per task, total external cost, share sent external.
    public struct Outcome: Sendable, Equatable {
        public var quality: Double
        public var cost: Double
        public var externalShare: Double
    }

    public var kinds: [KindSpec]
    /// Share of easy, medium and hard tasks.
    public var difficultyMix = [0.5, 0.3, 0.2]
    /// Standard deviation of a realized quality around its expectation.
    public var noise = 0.08
    /// USD per external call by difficulty (longer prompts and answers cost more).
    public var externalCost = [0.001, 0.002, 0.004]
    public var minQuality = 0.6

    /// Four kinds with different shapes: summarizing and classifying are within a local
    /// handler's reach until tasks get hard; extraction degrades quickly; reasoning needs a model.
    public static let standard = RoutingBenchmark(kinds: [
        KindSpec(name: "summarize", internalQuality: [0.84, 0.74, 0.52], externalQuality: [0.86, 0.85, 0.83], declaredCapability: 0.85),
        KindSpec(name: "classify", internalQuality: [0.90, 0.86, 0.76], externalQuality: [0.89, 0.88, 0.86], declaredCapability: 0.9),
        KindSpec(name: "extract", internalQuality: [0.86, 0.64, 0.44], externalQuality: [0.90, 0.88, 0.86], declaredCapability: 0.85),
        KindSpec(name: "reason", internalQuality: [0.58, 0.38, 0.22], externalQuality: [0.82, 0.80, 0.76], declaredCapability: 0.6),
    ])

    public init(kinds: [KindSpec]) { self.kinds = kinds }

    // MARK: Workload

    public func generate(tasks count: Int, seed: UInt64) -> [SyntheticTask] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { n in
            let kind = kinds[Int(rng.next() % UInt64(kinds.count))]
            let u = rng.unit()
            let difficulty = u < difficultyMix[0] ? 0 : u < difficultyMix[0] + difficultyMix[1] ? 1 : 2
            let expectedInternal = kind.internalQuality[difficulty], expectedExternal = kind.externalQuality[difficulty]
            let draw = { (mean: Double, rng: inout SplitMix64) -> Double in
                min(1, max(0, mean + noise * StandardNormal.sample(using: &rng)))
            }
            return SyntheticTask(kind: kind.name, difficulty: difficulty, prompt: Self.prompt(kind: kind.name, difficulty: difficulty, n: n, rng: &rng),
                                 expectedInternal: expectedInternal, expectedExternal: expectedExternal,
                                 internalQuality: draw(expectedInternal, &rng), externalQuality: draw(expectedExternal, &rng),
                                 externalCostUSD: externalCost[difficulty])
        }
    }

    /// Prompt text whose visible features grow with difficulty, as real prompts' do: easy tasks
    /// are short single requests; medium ones carry a longer input and several instructions;
    /// hard ones add reasoning cues and a structured output.
    static func prompt(kind: String, difficulty: Int, n: Int, rng: inout SplitMix64) -> String {
        let sentences = ["The committee met on Tuesday.", "Revenue rose by a third.", "The bridge reopened after repairs.",
                         "Two suppliers missed their deadlines.", "Customers praised the new design.", "The pilot ran for six weeks.",
                         "Costs stayed within the budget.", "A second site opens in May."]
        func text(_ count: Int) -> String {
            (0..<count).map { _ in sentences[Int(rng.next() % UInt64(sentences.count))] }.joined(separator: " ")
        }
        let request: String = switch kind {
        case "summarize": "Summarize this report"
        case "classify": "Label the tone of this note"
        case "extract": "Pull out every date and amount from this text"
        default: "Decide whether the plan below holds up"
        }
        switch difficulty {
        case 0:
            return "\(request): \(text(2)) (#\(n))"
        case 1:
            return "\(request).\n- Keep it short.\n- Mention the main actors.\n- Say what changed.\n\n\(text(40)) (#\(n))"
        default:
            return "\(request). Explain step by step why each point matters, compare the alternatives, analyze the trade-off and "
                + "justify the result. Return JSON in a table.\n- First pass.\n- Second pass.\n\n\(text(120)) (#\(n))"
        }
    }

    // MARK: Policies

    /// JHADE learning from scratch over `tasks` in order, with `weights`.
    public func runJHADE(_ tasks: [SyntheticTask], complexities: [ComplexityEstimate]? = nil, weights: DecisionWeights = DecisionWeights(),
                         seed: UInt64) -> Outcome {
        let complexities = complexities ?? tasks.map { ComplexityEstimator.estimate($0.prompt) }
        var engine = DecisionEngine()
        engine.weights = weights
        var rng = SplitMix64(seed: seed ^ 0x5EED)
        var learned: [StatsKey: RouteStats] = [:]
        let handlers = kinds.map { HandlerCapability(handler: "local-\($0.name)", kinds: [$0.name], prior: $0.declaredCapability) }
        var quality = 0.0, cost = 0.0, external = 0
        for (n, task) in tasks.enumerated() {
            let complexity = complexities[n]
            let bucket = complexity.bucket
            var observed: [RouteArm: RouteStats] = [:]
            for (key, stats) in learned where key.kind == task.kind && key.bucket == bucket { observed[key.arm] = stats }
            var input = DecisionInput(taskId: "b\(n)", kind: task.kind, prompt: task.prompt, minQuality: minQuality, handlers: handlers,
                                      external: ExternalOption(chain: ["model"], availability: .now, expectedCostUSD: task.externalCostUSD,
                                                               free: false, quotaPressure: 0, strong: true),
                                      learned: observed)
            input.complexity = complexity
            let decision = engine.decide(input, rng: &rng)
            guard let arm = decision.choice.arm else { continue }
            let q = arm.kind == .external ? task.externalQuality : task.internalQuality
            if arm.kind == .external {
                cost += task.externalCostUSD
                external += 1
            }
            quality += q
            let key = StatsKey(kind: task.kind, bucket: bucket, arm: arm)
            learned[key] = (learned[key] ?? .observed).updated(score: q, passed: q >= minQuality, latencyMs: 0,
                                                               costUSD: arm.kind == .external ? task.externalCostUSD : 0)
        }
        return Self.outcome(quality: quality, cost: cost, external: external, count: tasks.count)
    }

    /// Any routing rule applied to every task.
    public func run(_ tasks: [SyntheticTask], external: (Int, SyntheticTask) -> Bool) -> Outcome {
        var quality = 0.0, cost = 0.0, count = 0
        for (n, task) in tasks.enumerated() {
            if external(n, task) {
                quality += task.externalQuality
                cost += task.externalCostUSD
                count += 1
            } else {
                quality += task.internalQuality
            }
        }
        return Self.outcome(quality: quality, cost: cost, external: count, count: tasks.count)
    }

    static func outcome(quality: Double, cost: Double, external: Int, count: Int) -> Outcome {
        Outcome(quality: count > 0 ? quality / Double(count) : 0, cost: cost, externalShare: count > 0 ? Double(external) / Double(count) : 0)
    }

    // MARK: The report

    /// Everything `chimera bench routing --json` prints.
    public func report(tasks count: Int, seed: UInt64) -> JSONValue {
        let tasks = generate(tasks: count, seed: seed)
        let allExternal = run(tasks) { _, _ in true }
        let allInternal = run(tasks) { _, _ in false }
        let oracle = run(tasks) { _, t in t.expectedExternal > t.expectedInternal }
        let complexities = tasks.map { ComplexityEstimator.estimate($0.prompt) }
        let jhade = runJHADE(tasks, complexities: complexities, seed: seed)
        func pgr(_ o: Outcome) -> Double {
            let gap = allExternal.quality - allInternal.quality
            return abs(gap) < 1e-12 ? 1 : (o.quality - allInternal.quality) / gap
        }
        // Cost levels: the share of always-external's cost spent (calls differ in price here, so
        // the share of calls, RouteLLM's x-axis, would favour routers that send the dearest ones).
        func costLevel(_ o: Outcome) -> Double { allExternal.cost > 0 ? o.cost / allExternal.cost : 0 }
        func apgr(_ outcomes: [Outcome]) -> Double { Self.apgr(outcomes.map { (x: costLevel($0), y: pgr($0)) }) }

        // Sweeps: JHADE's cost weight, the threshold on complexity, the oracle's margin, random shares.
        let costWeights = [0.0, 0.1, 0.25, 0.5, 1, 2, 4, 8, 32]
        let jhadeCurve = costWeights.map { w -> Outcome in
            var weights = DecisionWeights()
            weights.cost = w
            return runJHADE(tasks, complexities: complexities, weights: weights, seed: seed)
        }
        let scores = complexities.map(\.score)
        let thresholds = Array(Set(scores)).sorted() + [2]
        let thresholdCurve = thresholds.map { t in (t, run(tasks) { n, _ in scores[n] >= t }) }
        let margins = Array(Set(tasks.map { $0.expectedExternal - $0.expectedInternal })).sorted() + [2]
        let oracleCurve = margins.map { m in run(tasks) { _, t in t.expectedExternal - t.expectedInternal > m - 1e-12 } }
        var randomRNG = SplitMix64(seed: seed ^ 0xA11CE)
        let draws = tasks.map { _ in randomRNG.unit() }
        let randomCurve = stride(from: 0.0, through: 1.0, by: 0.1).map { p in run(tasks) { n, _ in draws[n] < p } }
        let randomEqual = run(tasks) { n, _ in draws[n] < jhade.externalShare }
        let affordable = thresholdCurve.filter { $0.1.cost <= jhade.cost + 1e-12 }
        let bestThreshold = affordable.max { $0.1.quality < $1.1.quality } ?? thresholdCurve.last!

        func fields(_ o: Outcome, apgr a: Double) -> [JSONMember] {
            [JSONMember("quality", .number(Self.round(o.quality))), JSONMember("cost", .number(Self.round(o.cost))),
             JSONMember("external_share", .number(Self.round(o.externalShare))), JSONMember("apgr", .number(Self.round(a)))]
        }
        let jhadeAPGR = apgr(jhadeCurve + [jhade])
        let baselines: [(String, [JSONMember], Double)] = [
            ("always_external", fields(allExternal, apgr: apgr([allExternal])), apgr([allExternal])),
            ("always_internal", fields(allInternal, apgr: apgr([allInternal])), apgr([allInternal])),
            ("random_equal_cost", fields(randomEqual, apgr: apgr(randomCurve)), apgr(randomCurve)),
            ("best_static_threshold", fields(bestThreshold.1, apgr: apgr(thresholdCurve.map(\.1))) + [JSONMember("threshold", .number(Self.round(bestThreshold.0)))],
             apgr(thresholdCurve.map(\.1))),
        ]
        let qualityRatio = oracle.quality > 0 ? jhade.quality / oracle.quality : 0
        let costRatio = oracle.cost > 0 ? jhade.cost / oracle.cost : (jhade.cost == 0 ? 1 : .infinity)
        let beatsAll = baselines.allSatisfy { jhadeAPGR > $0.2 }
        return .object([
            JSONMember("tasks", .number(Double(count))),
            JSONMember("seed", .number(Double(seed))),
            JSONMember("jhade_quality", .number(Self.round(jhade.quality))),
            JSONMember("jhade_cost", .number(Self.round(jhade.cost))),
            JSONMember("jhade_external_share", .number(Self.round(jhade.externalShare))),
            JSONMember("oracle_quality", .number(Self.round(oracle.quality))),
            JSONMember("oracle_cost", .number(Self.round(oracle.cost))),
            JSONMember("oracle_apgr", .number(Self.round(apgr(oracleCurve)))),
            JSONMember("apgr", .number(Self.round(jhadeAPGR))),
            JSONMember("quality_vs_oracle", .number(Self.round(qualityRatio))),
            JSONMember("cost_vs_oracle", .number(Self.round(costRatio))),
            JSONMember("goal_met", .bool(qualityRatio >= 0.97 && costRatio <= 1.05 && beatsAll)),
            JSONMember("baselines", .object(baselines.map { JSONMember($0.0, .object($0.1)) })),
            JSONMember("jhade_curve", .array(zip(costWeights, jhadeCurve).map { w, o in
                .object([JSONMember("cost_weight", .number(w))] + fields(o, apgr: pgr(o)).dropLast()
                        + [JSONMember("cost_level", .number(Self.round(costLevel(o)))), JSONMember("pgr", .number(Self.round(pgr(o))))])
            })),
        ])
    }

    /// The area under the upper concave envelope of `points` ∪ {(0, 0), (1, 1)} over x ∈ [0, 1].
    static func apgr(_ points: [(x: Double, y: Double)]) -> Double {
        var all = points.filter { $0.x.isFinite && $0.y.isFinite } + [(0, 0), (1, 1)]
        all.sort { $0.x != $1.x ? $0.x < $1.x : $0.y > $1.y }
        var hull: [(x: Double, y: Double)] = []
        for p in all {
            if let last = hull.last, last.x == p.x { continue }  // the highest y at each x came first
            while hull.count >= 2 {
                let a = hull[hull.count - 2], b = hull[hull.count - 1]
                // Drop b when it lies on or below the segment a → p.
                if (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x) >= 0 { hull.removeLast() } else { break }
            }
            hull.append(p)
        }
        var area = 0.0
        for k in 1..<hull.count {
            area += (hull[k].x - hull[k - 1].x) * (hull[k].y + hull[k - 1].y) / 2
        }
        return area
    }

    static func round(_ d: Double) -> Double { (d * 1_000_000).rounded() / 1_000_000 }
}
