#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What JHADE has learned about one arm for one task kind and complexity bucket: a Beta
/// posterior on "the answer passes the quality bar" (the prior's pseudo-counts included), and
/// a running mean and variance of the score (Welford), latency and cost of real observations.
public struct RouteStats: Sendable, Equatable {
    /// Beta posterior parameters: prior pseudo-passes plus observed passes, and the same for fails.
    public var alpha: Double
    public var beta: Double
    /// Real observations (the prior's pseudo-counts are not in it).
    public var count: Int
    public var meanScore: Double
    /// Sum of squared differences from the mean (Welford), for the variance.
    public var m2: Double
    public var meanLatencyMs: Double
    public var totalCostUSD: Double

    public init(alpha: Double, beta: Double, count: Int = 0, meanScore: Double = 0, m2: Double = 0, meanLatencyMs: Double = 0, totalCostUSD: Double = 0) {
        self.alpha = alpha
        self.beta = beta
        self.count = count
        self.meanScore = meanScore
        self.m2 = m2
        self.meanLatencyMs = meanLatencyMs
        self.totalCostUSD = totalCostUSD
    }

    /// A cold start: pass probability `p` held with the weight of `strength` observations.
    public static func prior(pass p: Double, strength: Double) -> RouteStats {
        let clamped = min(0.99, max(0.01, p))
        return RouteStats(alpha: clamped * strength, beta: (1 - clamped) * strength)
    }

    /// No observations and no prior: what is stored before the first update (priors are added
    /// at decision time, so a changed capability takes effect at once).
    public static let observed = RouteStats(alpha: 0, beta: 0)

    /// These observations on top of `prior`'s pseudo-counts.
    public func adding(prior: RouteStats) -> RouteStats {
        var combined = self
        combined.alpha += prior.alpha
        combined.beta += prior.beta
        return combined
    }

    /// The posterior mean of passing the bar.
    public var passMean: Double { alpha + beta > 0 ? alpha / (alpha + beta) : 0.5 }

    /// The sample variance of the score; nil below two observations.
    public var scoreVariance: Double? { count > 1 ? m2 / Double(count - 1) : nil }

    /// One more observation.
    public func updated(score: Double, passed: Bool, latencyMs: Int64, costUSD: Double?) -> RouteStats {
        var next = self
        let s = min(1, max(0, score.isNaN ? 0 : score))
        if passed { next.alpha += 1 } else { next.beta += 1 }
        next.count += 1
        let delta = s - meanScore
        next.meanScore += delta / Double(next.count)
        next.m2 += delta * (s - next.meanScore)
        next.meanLatencyMs += (Double(max(0, latencyMs)) - meanLatencyMs) / Double(next.count)
        next.totalCostUSD += max(0, costUSD ?? 0)
        return next
    }

    /// The posterior of the mean score: the prior's guess `priorMean` held with the weight of
    /// `priorStrength` observations, combined with the observed mean (a normal approximation;
    /// the spread is the observed standard deviation, 0.25 until two scores are known).
    public func scorePosterior(priorMean: Double, priorStrength: Double) -> (mean: Double, sd: Double) {
        let n = Double(count)
        let weight = max(priorStrength + n, 1e-9)
        let mean = (priorStrength * priorMean + n * meanScore) / weight
        let spread = scoreVariance.map { max($0.squareRoot(), 0.05) } ?? 0.25
        return (mean, spread / weight.squareRoot())
    }

    /// Thompson sampling of the mean score: one draw from ``scorePosterior(priorMean:priorStrength:)``.
    public func sampleScore(priorMean: Double, priorStrength: Double, using rng: inout SplitMix64) -> Double {
        let (mean, sd) = scorePosterior(priorMean: priorMean, priorStrength: priorStrength)
        return min(1, max(0, mean + sd * StandardNormal.sample(using: &rng)))
    }

    /// Thompson sampling: one draw of the pass probability from the posterior.
    public func sample(using rng: inout SplitMix64) -> Double {
        Beta.sample(alpha: alpha, beta: beta, using: &rng)
    }

    /// UCB1 on the pass probability: the posterior mean plus `sqrt(2 ln N / n)`, where n counts
    /// the prior's pseudo-observations too (so an arm with a confident prior is not forced).
    public func upperConfidenceBound(totalObservations: Int) -> Double {
        let n = max(alpha + beta, 1)
        return passMean + (2 * log(Double(max(totalObservations, 1)) + 1) / n).squareRoot()
    }
}

/// Where a statistic belongs: task kind, complexity bucket (0–2), arm.
public struct StatsKey: Sendable, Hashable, CustomStringConvertible {
    public var kind: String
    public var bucket: Int
    public var arm: RouteArm

    public init(kind: String, bucket: Int, arm: RouteArm) {
        self.kind = kind
        self.bucket = bucket
        self.arm = arm
    }

    public var description: String { "\(kind)/\(["low", "medium", "high"][min(max(bucket, 0), 2)])/\(arm)" }
}
