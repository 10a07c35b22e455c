import ChimeraCore

/// A closed interval `[low, high]`.
public struct Interval: Sendable, Equatable {
    /// The lower bound.
    public var low: Double
    /// The upper bound.
    public var high: Double

    /// The interval `[low, high]`.
    public init(low: Double, high: Double) {
        self.low = low
        self.high = high
    }
}

/// How one route (all internal handlers together, or the external model chain) did on a set of
/// candidates.
public struct RouteSummary: Sendable, Equatable {
    /// Which route.
    public var route: RouteKind
    /// Candidates of this route (chosen and shadow).
    public var count: Int
    /// Candidates that were the chosen route of their task.
    public var chosenCount: Int
    /// Candidates that were shadow runs.
    public var shadowCount: Int
    /// Candidates whose call returned an answer.
    public var succeededCount: Int
    /// `succeededCount / count`; nil with no candidates.
    public var successRate: Double?
    /// Candidates with a quality score.
    public var scoredCount: Int
    /// Mean quality score over the scored candidates; nil if none.
    public var meanQuality: Double?
    /// Half the width of the 95% confidence interval before clamping: `t(n-1) · s / √n`;
    /// nil below 2 scored candidates.
    public var ciHalfWidth: Double?
    /// The 95% confidence interval of ``meanQuality`` (Student's t), clamped to [0, 1];
    /// nil below 2 scored candidates.
    public var ci95: Interval?
    /// Candidates whose pass/fail against the task's minimum quality is known.
    public var passKnownCount: Int
    /// Candidates that passed.
    public var passedCount: Int
    /// `passedCount / passKnownCount`; nil if no candidate has pass information.
    public var passRate: Double?
    /// Median latency, nearest-rank over all candidates; nil with no candidates.
    public var p50LatencyMs: Int64?
    /// 95th-percentile latency, nearest-rank over all candidates; nil with no candidates.
    public var p95LatencyMs: Int64?
    /// Sum of the known costs (billed and estimated) in USD; see ``unknownCostCount``.
    public var totalCostUSD: Double
    /// Candidates whose cost is unknown: not included in ``totalCostUSD``.
    public var unknownCostCount: Int
    /// Candidates whose cost in ``totalCostUSD`` is an estimate.
    public var estimatedCostCount: Int
    /// Free-model requests used.
    public var quotaRequests: Int
    /// The distinct non-empty targets (handler names or model ids) of the candidates, sorted.
    public var targets: [String]

    /// An empty summary: no candidates.
    public init(route: RouteKind) {
        self.route = route
        count = 0
        chosenCount = 0
        shadowCount = 0
        succeededCount = 0
        successRate = nil
        scoredCount = 0
        meanQuality = nil
        ciHalfWidth = nil
        ci95 = nil
        passKnownCount = 0
        passedCount = 0
        passRate = nil
        p50LatencyMs = nil
        p95LatencyMs = nil
        totalCostUSD = 0
        unknownCostCount = 0
        estimatedCostCount = 0
        quotaRequests = 0
        targets = []
    }
}

/// Internal against external on the same tasks: the tasks that have a scored internal and a
/// scored external candidate, at least one of them a shadow run (an evaluation run on the same
/// input, so the comparison is not biased by routing). Each route's best score is compared;
/// a difference below ``ReportBuilder/tieMargin`` is a tie.
public struct HeadToHead: Sendable, Equatable {
    /// Tasks compared.
    public var tasks: Int
    /// Tasks where the best internal score beat the best external one by at least the margin.
    public var internalWins: Int
    /// Tasks where the best external score beat the best internal one by at least the margin.
    public var externalWins: Int
    /// Tasks whose best scores were within the margin.
    public var ties: Int
    /// `internalWins / tasks` (ties are not wins); nil with no tasks.
    public var internalWinRate: Double?

    /// Counts; ``internalWinRate`` is derived from them.
    public init(tasks: Int = 0, internalWins: Int = 0, externalWins: Int = 0, ties: Int = 0) {
        self.tasks = tasks
        self.internalWins = internalWins
        self.externalWins = externalWins
        self.ties = ties
        self.internalWinRate = tasks > 0 ? Double(internalWins) / Double(tasks) : nil
    }
}

/// One time window of a learning curve: `[start, end)`.
public struct CurvePoint: Sendable, Equatable {
    /// First instant of the window.
    public var start: EpochMillis
    /// First instant after the window.
    public var end: EpochMillis
    /// Tasks in the window (by the time of their first candidate).
    public var tasks: Int
    /// Share of the window's tasks whose chosen route was internal, among those with a chosen
    /// candidate; nil if none had one.
    public var internalShare: Double?
    /// Mean score of the window's scored internal candidates (chosen and shadow); nil if none.
    public var internalMeanQuality: Double?
    /// Mean score of the window's scored external candidates (chosen and shadow); nil if none.
    public var externalMeanQuality: Double?

    /// A window and its figures.
    public init(start: EpochMillis, end: EpochMillis, tasks: Int, internalShare: Double?,
                internalMeanQuality: Double?, externalMeanQuality: Double?) {
        self.start = start
        self.end = end
        self.tasks = tasks
        self.internalShare = internalShare
        self.internalMeanQuality = internalMeanQuality
        self.externalMeanQuality = externalMeanQuality
    }
}

/// The report for one task kind.
public struct KindReport: Sendable, Equatable {
    /// The task kind.
    public var kind: String
    /// Distinct tasks of this kind.
    public var tasks: Int
    /// The internal candidates of this kind.
    public var internalSummary: RouteSummary
    /// The external candidates of this kind.
    public var externalSummary: RouteSummary
    /// Internal against external on this kind's shadowed tasks.
    public var headToHead: HeadToHead
    /// The learning curve: windows in time order; windows without tasks are left out.
    public var curve: [CurvePoint]

    /// A kind's report from its parts.
    public init(kind: String, tasks: Int, internalSummary: RouteSummary, externalSummary: RouteSummary,
                headToHead: HeadToHead, curve: [CurvePoint]) {
        self.kind = kind
        self.tasks = tasks
        self.internalSummary = internalSummary
        self.externalSummary = externalSummary
        self.headToHead = headToHead
        self.curve = curve
    }

    /// The summary of `route`.
    public func summary(_ route: RouteKind) -> RouteSummary {
        route == .internal ? internalSummary : externalSummary
    }
}

/// Internal against external quality over a period: what every renderer shows.
public struct QualityReport: Sendable, Equatable {
    /// When the report was made (``ReportOptions/now``).
    public var generatedAt: EpochMillis
    /// The `since` filter, if any.
    public var since: EpochMillis?
    /// The kind filter, if any.
    public var kindFilter: String?
    /// One report per kind, sorted by kind.
    public var kinds: [KindReport]
    /// All internal candidates across kinds.
    public var internalTotal: RouteSummary
    /// All external candidates across kinds.
    public var externalTotal: RouteSummary

    /// A report from its parts (``ReportBuilder/build(_:options:)`` makes them from rows).
    public init(generatedAt: EpochMillis, since: EpochMillis?, kindFilter: String?, kinds: [KindReport],
                internalTotal: RouteSummary, externalTotal: RouteSummary) {
        self.generatedAt = generatedAt
        self.since = since
        self.kindFilter = kindFilter
        self.kinds = kinds
        self.internalTotal = internalTotal
        self.externalTotal = externalTotal
    }

    /// Distinct tasks across kinds.
    public var tasks: Int { kinds.reduce(0) { $0 + $1.tasks } }

    /// No tasks were recorded in the period.
    public var isEmpty: Bool { kinds.isEmpty }

    /// The total summary of `route`.
    public func total(_ route: RouteKind) -> RouteSummary {
        route == .internal ? internalTotal : externalTotal
    }

    /// The head-to-head counts of all kinds added up.
    public var headToHeadTotal: HeadToHead {
        HeadToHead(
            tasks: kinds.reduce(0) { $0 + $1.headToHead.tasks },
            internalWins: kinds.reduce(0) { $0 + $1.headToHead.internalWins },
            externalWins: kinds.reduce(0) { $0 + $1.headToHead.externalWins },
            ties: kinds.reduce(0) { $0 + $1.headToHead.ties })
    }
}
