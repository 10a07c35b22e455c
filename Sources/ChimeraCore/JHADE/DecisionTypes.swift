/// The two kinds of route a call can take: a local internal handler, or an external model chain.
public enum RouteKind: String, Sendable, Equatable, CaseIterable {
    case `internal`
    case external
}

/// One arm JHADE chooses between and learns about: `internal:NAME` (a handler) or `external`
/// (the call's model chain). Statistics are kept per (task kind, complexity bucket, arm).
public struct RouteArm: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: RouteKind
    /// The handler name for internal arms; nil for the external arm.
    public var handler: String?

    public static let external = RouteArm(kind: .external, handler: nil)
    public static func `internal`(_ handler: String) -> RouteArm { RouteArm(kind: .internal, handler: handler) }

    /// `internal:NAME` or `external`.
    public var description: String { handler.map { "internal:\($0)" } ?? "external" }

    /// Parses ``description``.
    public init?(_ text: String) {
        if text == "external" { self = .external; return }
        guard text.hasPrefix("internal:"), text.count > 9 else { return nil }
        self = .internal(String(text.dropFirst(9)))
    }

    public init(kind: RouteKind, handler: String?) {
        self.kind = kind
        self.handler = handler
    }

    public static func < (l: RouteArm, r: RouteArm) -> Bool { l.description < r.description }
}

/// What an internal handler declares it can do (config: a pool's `kinds` and `capability`).
public struct HandlerCapability: Sendable, Equatable {
    public var handler: String
    /// Task kinds it serves, e.g. `summarize`.
    public var kinds: [String]
    /// Prior probability, in [0, 1], that its answer to a simple task of those kinds passes the bar.
    public var prior: Double
    /// The largest input it takes, in (estimated) tokens; nil: no limit.
    public var maxInputTokens: Int?

    public init(handler: String, kinds: [String], prior: Double, maxInputTokens: Int? = nil) {
        self.handler = handler
        self.kinds = kinds
        self.prior = prior
        self.maxInputTokens = maxInputTokens
    }
}

/// One candidate answer for a step, from one route.
public struct Candidate: Sendable, Equatable {
    public var arm: RouteArm
    /// The model that answered (external) or the handler (internal), for display.
    public var target: String
    /// The answer text; empty when the call failed.
    public var output: String
    /// Nil on success; else the failure kind (`timeout`, `quota_exhausted`, a handler error…).
    public var errorKind: String?
    public var errorMessage: String?
    public var latencyMs: Int64
    /// USD; nil when unknown (never a silent zero).
    public var costUSD: Double?
    public var tokens: Int?
    /// Ran only to evaluate the route JHADE did not choose; never the step's answer.
    public var shadow: Bool

    public init(arm: RouteArm, target: String, output: String, errorKind: String? = nil, errorMessage: String? = nil,
                latencyMs: Int64 = 0, costUSD: Double? = nil, tokens: Int? = nil, shadow: Bool = false) {
        self.arm = arm
        self.target = target
        self.output = output
        self.errorKind = errorKind
        self.errorMessage = errorMessage
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.tokens = tokens
        self.shadow = shadow
    }

    public var succeeded: Bool { errorKind == nil }
}

/// A quality score in [0, 1] with why.
public struct QualityScore: Sendable, Equatable {
    public var score: Double
    public var explanation: String

    public init(_ score: Double, _ explanation: String) {
        self.score = min(1, max(0, score.isNaN ? 0 : score))
        self.explanation = explanation
    }
}
