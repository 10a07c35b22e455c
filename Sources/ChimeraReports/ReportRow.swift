import ChimeraCore

/// One candidate answer produced for a task, as stored: the input of every report.
///
/// A task has one row per route that answered it: the route JHADE chose (``chosen``) and any
/// shadow runs of the other route made only to evaluate it.
public struct ReportRow: Sendable, Equatable {
    /// The task the candidate answered; rows with the same kind and task id are one task.
    public var taskId: String
    /// When the candidate finished.
    public var at: EpochMillis
    /// The task kind, e.g. `summarize`.
    public var kind: String
    /// `internal:NAME` or `external`.
    public var arm: RouteArm
    /// The handler name (internal) or model id (external), for display.
    public var target: String
    /// True: JHADE chose this route for the task; false: a shadow run for evaluation only.
    public var chosen: Bool
    /// The call returned an answer (no error).
    public var succeeded: Bool
    /// The mediator's quality score in [0, 1]; nil if not scored.
    public var score: Double?
    /// The score reached the task's minimum quality; nil if unknown.
    public var passed: Bool?
    /// Wall time of the call.
    public var latencyMs: Int64
    /// USD; nil when unknown (reports count these apart, never as zero).
    public var costUSD: Double?
    /// ``costUSD`` is an estimate (from catalog prices) rather than a billed amount.
    public var costIsEstimate: Bool
    /// Free-model requests this candidate used (0 for internal handlers).
    public var quotaRequests: Int

    /// A row; `target` defaults to the handler name for internal arms and `""` for external.
    public init(taskId: String, at: EpochMillis, kind: String, arm: RouteArm, target: String? = nil,
                chosen: Bool = true, succeeded: Bool = true, score: Double? = nil, passed: Bool? = nil,
                latencyMs: Int64 = 0, costUSD: Double? = nil, costIsEstimate: Bool = false, quotaRequests: Int = 0) {
        self.taskId = taskId
        self.at = at
        self.kind = kind
        self.arm = arm
        self.target = target ?? arm.handler ?? ""
        self.chosen = chosen
        self.succeeded = succeeded
        self.score = score
        self.passed = passed
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.costIsEstimate = costIsEstimate
        self.quotaRequests = quotaRequests
    }

    /// The score if it is a finite number; NaN or infinite scores count as unscored.
    var validScore: Double? {
        guard let score, score.isFinite else { return nil }
        return score
    }
}

/// What to put in a report.
public struct ReportOptions: Sendable, Equatable {
    /// Drop rows before this instant; nil: all rows.
    public var since: EpochMillis?
    /// Only this task kind; nil: every kind.
    public var kind: String?
    /// The report's generation time (injected so reports are reproducible).
    public var now: EpochMillis
    /// The most windows a learning curve is split into (fewer when a kind has fewer tasks).
    public var curveBuckets: Int

    /// Options generating the report at `now`.
    public init(now: EpochMillis, since: EpochMillis? = nil, kind: String? = nil, curveBuckets: Int = 10) {
        self.now = now
        self.since = since
        self.kind = kind
        self.curveBuckets = curveBuckets
    }
}
