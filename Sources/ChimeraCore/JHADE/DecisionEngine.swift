#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which routes a call may take.
public enum RoutePreference: String, Sendable, Equatable, CaseIterable {
    /// JHADE decides.
    case auto
    /// Only internal handlers (fails when none serves the kind).
    case `internal`
    /// Only the external chain.
    case external
}

/// What the key pool says about the external route right now.
public enum ExternalAvailability: Sendable, Equatable {
    /// A key can serve at once.
    case now
    /// Every key is spent or cooling; the earliest frees at `eta`.
    case wait(eta: EpochMillis)
    /// No key will serve (by itself) before the call would give up.
    case exhausted(String)
    /// No external route at all (no keys, no model fits the prompt…).
    case unavailable(String)
}

/// The external route as JHADE sees it.
public struct ExternalOption: Sendable, Equatable {
    /// The model chain the call would use.
    public var chain: [String]
    public var availability: ExternalAvailability
    /// Expected USD cost from catalog prices; nil when unknown, 0 for free models.
    public var expectedCostUSD: Double?
    /// Every model of the chain is free (draws on the free-request quota).
    public var free: Bool
    /// Share of today's free requests already used, over the accounts that could serve (0…1).
    public var quotaPressure: Double
    /// A strong model is in the chain (paid, or a large reasoning model), which reasoning agents prefer.
    public var strong: Bool

    public init(chain: [String], availability: ExternalAvailability, expectedCostUSD: Double? = 0, free: Bool = true,
                quotaPressure: Double = 0, strong: Bool = false) {
        self.chain = chain
        self.availability = availability
        self.expectedCostUSD = expectedCostUSD
        self.free = free
        self.quotaPressure = quotaPressure
        self.strong = strong
    }
}

/// How an agent profile biases the objective (the profiles themselves are data, in Agents/).
public struct AgentBias: Sendable, Equatable {
    public var name: String
    /// Added to internal arms' utility: cost-aware agents prefer local work.
    public var internalBonus: Double = 0
    /// Multiply the objective's weights.
    public var qualityFactor: Double = 1
    public var costFactor: Double = 1
    public var quotaFactor: Double = 1
    public var latencyFactor: Double = 1
    /// Added to the external arm when its chain has a strong model (reasoning agents).
    public var strongModelBonus: Double = 0

    public init(name: String) { self.name = name }

    /// The built-in profiles: `cost-aware` (prefers internal and free), `reasoning` (prefers
    /// strong models, quality first), `creative`, `specialized` (prefers its internal tools), and
    /// anything else as neutral.
    public static func named(_ name: String) -> AgentBias {
        var bias = AgentBias(name: name)
        switch name {
        case "cost-aware":
            bias.internalBonus = 0.1
            bias.costFactor = 3
            bias.quotaFactor = 3
        case "reasoning":
            bias.qualityFactor = 1.5
            bias.costFactor = 0.5
            bias.internalBonus = -0.05
            bias.strongModelBonus = 0.1
        case "specialized":
            bias.internalBonus = 0.05
        default:
            break
        }
        return bias
    }
}

/// The objective's weights: utility = quality × (½ E[score] + ½ P(pass)) − cost × (cost / scale)
/// − quota × (base + (1 − base) × pressure) for free external models − latency × (latency / budget),
/// plus the agent's bonuses.
public struct DecisionWeights: Sendable, Equatable {
    public var quality = 1.0
    public var cost = 0.25
    public var quota = 0.2
    public var latency = 0.1
    /// USD that counts as "expensive" (cost term 1) when the call has no cost budget.
    public var costScaleUSD = 0.01
    /// Milliseconds that count as "slow" (latency term 1) when the call has no latency budget.
    public var latencyScaleMs = 10_000.0
    /// The share of the quality term that is the expected score; the rest is the chance of
    /// passing the bar.
    public var scoreShare = 0.5
    /// What a free external request costs in quota even on a fresh day: the request is gone for
    /// the rest of it. The quota term is `quota × (base + (1 − base) × pressure)`.
    public var quotaBase = 0.1
    /// Latency assumed for an external arm before any observation (a model call), and for an
    /// internal one (a local process).
    public var externalLatencyPriorMs = 2_000.0
    public var internalLatencyPriorMs = 100.0

    public init() {}
}

/// Everything one decision looks at.
public struct DecisionInput: Sendable {
    public var taskId: String
    public var kind: String
    public var prompt: String
    public var agent: AgentBias
    /// The quality bar, in [0, 1]: a candidate passes when its score reaches it.
    public var minQuality: Double
    public var latencyBudgetMs: Int64?
    public var costBudgetUSD: Double?
    public var priority: TaskPriority
    public var route: RoutePreference
    /// Every internal handler with its capabilities; the engine keeps those serving `kind`.
    public var handlers: [HandlerCapability]
    /// Nil when no external route is configured at all.
    public var external: ExternalOption?
    /// What was observed for this kind, by arm, for the prompt's bucket (``RouteStats/observed``
    /// plus updates: no prior in it); the engine adds each arm's prior.
    public var learned: [RouteArm: RouteStats]
    /// The prompt's complexity when the caller already estimated it (it needed the bucket to
    /// look up `learned`); nil: the engine estimates it.
    public var complexity: ComplexityEstimate?

    public init(taskId: String, kind: String, prompt: String, agent: AgentBias = AgentBias(name: "default"), minQuality: Double = 0.6,
                latencyBudgetMs: Int64? = nil, costBudgetUSD: Double? = nil, priority: TaskPriority = .normal, route: RoutePreference = .auto,
                handlers: [HandlerCapability] = [], external: ExternalOption? = nil, learned: [RouteArm: RouteStats] = [:]) {
        self.taskId = taskId
        self.kind = kind
        self.prompt = prompt
        self.agent = agent
        self.minQuality = minQuality
        self.latencyBudgetMs = latencyBudgetMs
        self.costBudgetUSD = costBudgetUSD
        self.priority = priority
        self.route = route
        self.handlers = handlers
        self.external = external
        self.learned = learned
    }
}

/// What JHADE decided.
public enum DecisionChoice: Sendable, Equatable {
    case `internal`(handler: String)
    case external(chain: [String])
    /// The external route was wanted or better, but cannot serve; the handler does instead.
    case internalFallback(handler: String, reason: String)
    /// Only the external route can serve, and it frees at `eta`.
    case wait(eta: EpochMillis)
    /// Nothing can serve the call.
    case fail(reason: String)

    /// The arm that runs, if any.
    public var arm: RouteArm? {
        switch self {
        case .internal(let h), .internalFallback(let h, _): .internal(h)
        case .external: .external
        case .wait, .fail: nil
        }
    }

    /// `internal`, `external`, `internal_fallback`, `wait` or `fail`.
    public var label: String {
        switch self {
        case .internal: "internal"
        case .external: "external"
        case .internalFallback: "internal_fallback"
        case .wait: "wait"
        case .fail: "fail"
        }
    }
}

/// How one arm was evaluated, kept with the decision.
public struct ArmEvaluation: Sendable, Equatable {
    public var arm: RouteArm
    /// The statistics used (prior plus observations).
    public var stats: RouteStats
    /// Where the prior came from, e.g. "capability 0.80 at medium complexity".
    public var priorSource: String
    /// The pass probability used: a Thompson draw when learning, else the posterior mean.
    public var passEstimate: Double
    /// The mean score used, drawn or the posterior mean likewise.
    public var scoreEstimate: Double = 0
    /// The prior's pseudo-observations (its guess is also the prior mean score).
    public var prior = RouteStats.observed
    public var costUSD: Double?
    public var latencyMs: Double?
    public var utility: Double
    /// Nil when the arm could run; else why not.
    public var ineligible: String?
}

/// A decision with everything needed to explain it later.
public struct Decision: Sendable, Equatable {
    public var taskId: String
    public var kind: String
    public var choice: DecisionChoice
    public var complexity: ComplexityEstimate
    public var arms: [ArmEvaluation]
    /// Also run this arm, for evaluation only (its answer is never the step's).
    public var shadow: RouteArm?
    /// Human-readable, in order.
    public var reasons: [String]
    /// Whether statistics were sampled (learning) or their means used (frozen).
    public var learning: Bool
}

/// How learned statistics become estimates.
public enum LearningStrategy: String, Sendable, Equatable, CaseIterable {
    /// Draws from the posteriors (explores in proportion to uncertainty).
    case thompson
    /// Optimism in the face of uncertainty: the posterior mean plus a bonus that shrinks with
    /// evidence (deterministic).
    case ucb
}

/// The `jhade` config section.
public struct JHADESettings: Sendable, Equatable {
    public var weights = DecisionWeights()
    /// Share of tasks also run on the other route, for evaluation.
    public var shadow = 0.0
    public var strategy = LearningStrategy.thompson
    /// The default quality bar of a task.
    public var minQuality = 0.6
    /// False freezes learning for every run (`--no-learn` does it for one).
    public var learning = true

    public init() {}
}

/// JHADE: chooses internal or external for each call by expected quality against cost, quota
/// and latency, with learned statistics sampled Thompson-style; every decision carries its
/// inputs and reasons. Pure: the randomness is passed in.
public struct DecisionEngine: Sendable {
    public var weights = DecisionWeights()
    /// Share of calls also run on the other route, for evaluation.
    public var shadowFraction = 0.0
    /// False freezes learning: posterior means instead of draws (reproducible), and callers
    /// should not update statistics.
    public var learning = true
    public var strategy = LearningStrategy.thompson
    /// Pseudo-observations behind an internal handler's prior.
    public var internalPriorStrength = 4.0
    /// Pseudo-observations behind the external route's prior.
    public var externalPriorStrength = 2.0
    /// The external route's prior pass probability (free models a little lower).
    public var externalPrior = 0.85
    public var externalFreePrior = 0.8

    public init() {}

    /// The internal prior: the handler's declared capability, discounted for harder prompts
    /// (a capability is what it does on simple tasks of its kinds).
    public func internalPrior(_ capability: HandlerCapability, complexity: Double) -> Double {
        capability.prior * (1 - 0.6 * min(1, max(0, complexity)))
    }

    public func decide(_ input: DecisionInput, rng: inout SplitMix64) -> Decision {
        let complexity = input.complexity ?? ComplexityEstimator.estimate(input.prompt)
        var reasons = ["complexity \(complexity.summary)"]
        let tokens = input.prompt.utf8.count / 4
        var arms: [ArmEvaluation] = []
        let agent = input.agent
        let latencyScale = input.latencyBudgetMs.map(Double.init) ?? weights.latencyScaleMs
        let costScale = input.costBudgetUSD ?? weights.costScaleUSD

        // Internal arms: handlers serving the kind, in name order (deterministic).
        for capability in input.handlers.filter({ $0.kinds.contains(input.kind) }).sorted(by: { $0.handler < $1.handler }) {
            let arm = RouteArm.internal(capability.handler)
            let p = internalPrior(capability, complexity: complexity.score)
            let prior = RouteStats.prior(pass: p, strength: internalPriorStrength)
            let stats = input.learned[arm]?.adding(prior: prior) ?? prior
            var evaluation = ArmEvaluation(arm: arm, stats: stats, priorSource: "capability \(ComplexityEstimate.format(capability.prior)) at \(complexity.bucketName) complexity → \(ComplexityEstimate.format(p))",
                                           passEstimate: 0, costUSD: 0, latencyMs: stats.count > 0 ? stats.meanLatencyMs : weights.internalLatencyPriorMs,
                                           utility: 0, ineligible: nil)
            evaluation.prior = prior
            if let limit = capability.maxInputTokens, tokens > limit {
                evaluation.ineligible = "the prompt (≈\(tokens) tokens) exceeds its input limit of \(limit)"
            }
            arms.append(evaluation)
        }

        // The external arm.
        if let external = input.external {
            let p = external.free ? externalFreePrior : externalPrior
            let prior = RouteStats.prior(pass: p, strength: externalPriorStrength)
            let stats = input.learned[.external]?.adding(prior: prior) ?? prior
            var evaluation = ArmEvaluation(arm: .external, stats: stats, priorSource: "\(external.free ? "free" : "paid") models → \(ComplexityEstimate.format(p))",
                                           passEstimate: 0, costUSD: external.expectedCostUSD,
                                           latencyMs: stats.count > 0 ? stats.meanLatencyMs : weights.externalLatencyPriorMs,
                                           utility: 0, ineligible: nil)
            evaluation.prior = prior
            switch external.availability {
            case .now: break
            case .wait(let eta): evaluation.ineligible = "no key free until \(UTCDay.timestamp(eta))"
            case .exhausted(let why): evaluation.ineligible = "quota exhausted: \(why)"
            case .unavailable(let why): evaluation.ineligible = why
            }
            if evaluation.ineligible == nil, let budget = input.costBudgetUSD, let cost = external.expectedCostUSD, cost > budget {
                evaluation.ineligible = "expected cost $\(cost) is over the budget of $\(budget)"
            }
            arms.append(evaluation)
        }

        // Score every arm. Draws happen for every arm in a fixed order, so a seed reproduces a run.
        for i in arms.indices {
            let stats = arms[i].stats
            let prior = arms[i].prior
            let (priorMean, priorStrength) = (prior.passMean, prior.alpha + prior.beta)
            let pass: Double, score: Double
            switch (learning, strategy) {
            case (false, _):
                pass = stats.passMean
                score = stats.scorePosterior(priorMean: priorMean, priorStrength: priorStrength).mean
            case (true, .thompson):
                pass = stats.sample(using: &rng)
                score = stats.sampleScore(priorMean: priorMean, priorStrength: priorStrength, using: &rng)
            case (true, .ucb):
                let total = input.learned.values.reduce(0) { $0 + $1.count }
                pass = min(1, stats.upperConfidenceBound(totalObservations: total))
                let posterior = stats.scorePosterior(priorMean: priorMean, priorStrength: priorStrength)
                score = min(1, posterior.mean + posterior.sd * (2 * log(Double(total) + 1)).squareRoot())
            }
            arms[i].passEstimate = pass
            arms[i].scoreEstimate = score
            // Expected quality and the chance of clearing the bar, half each: quality is the goal,
            // the bar is the minimum the task asked for.
            var utility = weights.quality * agent.qualityFactor * (weights.scoreShare * score + (1 - weights.scoreShare) * pass)
            if let cost = arms[i].costUSD { utility -= weights.cost * agent.costFactor * min(1, cost / max(costScale, 1e-12)) }
            if let latency = arms[i].latencyMs { utility -= weights.latency * agent.latencyFactor * min(1, latency / max(latencyScale, 1)) }
            if arms[i].arm.kind == .internal {
                utility += agent.internalBonus
            } else if let external = input.external {
                if external.free {
                    let pressure = min(1, max(0, external.quotaPressure))
                    utility -= weights.quota * agent.quotaFactor * (weights.quotaBase + (1 - weights.quotaBase) * pressure)
                }
                if external.strong { utility += agent.strongModelBonus }
            }
            arms[i].utility = utility
        }
        for arm in arms {
            let observed = arm.stats.count > 0 ? ", \(arm.stats.count) observed (mean score \(ComplexityEstimate.format(arm.stats.meanScore)))" : ", no observations yet"
            reasons.append("\(arm.arm): prior \(arm.priorSource)\(observed); \(!learning ? "mean" : strategy == .ucb ? "upper bound of" : "drawn") score \(ComplexityEstimate.format(arm.scoreEstimate)), P(pass) \(ComplexityEstimate.format(arm.passEstimate)); utility \(ComplexityEstimate.format(arm.utility))"
                           + (arm.ineligible.map { "; cannot run: \($0)" } ?? ""))
        }

        let eligible = arms.filter { $0.ineligible == nil }
        let allowed = eligible.filter { arm in
            switch input.route {
            case .auto: true
            case .internal: arm.arm.kind == .internal
            case .external: arm.arm.kind == .external
            }
        }
        let best = allowed.max { a, b in a.utility != b.utility ? a.utility < b.utility : a.arm > b.arm }
        let externalArm = arms.first { $0.arm == .external }
        let bestInternal = eligible.filter { $0.arm.kind == .internal }.max { a, b in a.utility != b.utility ? a.utility < b.utility : a.arm > b.arm }

        var choice: DecisionChoice
        if let best {
            if best.arm.kind == .internal {
                // An internal choice forced by an external route that cannot serve is a fallback.
                if let externalArm, let why = externalArm.ineligible, input.route == .auto, externalArm.utility > best.utility {
                    choice = .internalFallback(handler: best.arm.handler!, reason: "external route preferred (utility \(ComplexityEstimate.format(externalArm.utility))) but \(why)")
                } else {
                    choice = .internal(handler: best.arm.handler!)
                }
            } else {
                choice = .external(chain: input.external?.chain ?? [])
            }
            let others = allowed.filter { $0.arm != best.arm }.map { "\($0.arm) \(ComplexityEstimate.format($0.utility))" }
            let alone = input.route == .auto ? " (the only route that can run)" : " (--route \(input.route.rawValue))"
            reasons.append("chose \(best.arm): utility \(ComplexityEstimate.format(best.utility))" + (others.isEmpty ? alone : " vs " + others.joined(separator: ", ")))
        } else if input.route != .internal, case .wait(let eta)? = input.external?.availability {
            choice = .wait(eta: eta)
            reasons.append("only the external route can serve; waiting for a key until \(UTCDay.timestamp(eta))")
        } else if input.route == .external, let bestInternal, let why = externalArm?.ineligible {
            // Asked for external, which cannot serve: fall back rather than fail, and say so.
            choice = .internalFallback(handler: bestInternal.arm.handler!, reason: why)
            reasons.append("external route requested but \(why); falling back to \(bestInternal.arm)")
        } else {
            let why: String
            switch input.route {
            case .internal: why = "no internal handler can serve kind \"\(input.kind)\"" + (arms.contains { $0.arm.kind == .internal } ? " (none eligible)" : "")
            case .external: why = externalArm?.ineligible ?? "no external route is configured"
            case .auto: why = arms.isEmpty ? "no internal handler serves kind \"\(input.kind)\" and no external route is configured"
                : "no route can run: " + arms.compactMap { a in a.ineligible.map { "\(a.arm): \($0)" } }.joined(separator: "; ")
            }
            choice = .fail(reason: why)
            reasons.append("cannot run: \(why)")
        }

        // Shadow: also run the best eligible arm of the other route kind, on a share of calls.
        var shadow: RouteArm?
        if shadowFraction > 0, let chosen = choice.arm {
            let draw = rng.unit()
            if draw < shadowFraction, let other = eligible.filter({ $0.arm.kind != chosen.kind }).max(by: { $0.utility < $1.utility }) {
                shadow = other.arm
                reasons.append("shadow: also running \(other.arm) for evaluation (\(Int((shadowFraction * 100).rounded())) % of calls)")
            }
        }
        return Decision(taskId: input.taskId, kind: input.kind, choice: choice, complexity: complexity, arms: arms, shadow: shadow,
                        reasons: reasons, learning: learning)
    }
}
