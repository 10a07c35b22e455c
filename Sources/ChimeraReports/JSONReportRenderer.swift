import ChimeraCore

/// The `json` format: the structure documented on ``ReportRenderer/render(_:as:)``, snake_case
/// keys in a fixed order, numbers as numbers and `null` for anything unknown.
enum JSONReportRenderer {
    static func document(_ report: QualityReport) -> JSONValue {
        .object([
            JSONMember("generated_at", int(report.generatedAt)),
            JSONMember("generated_at_utc", .string(UTCDay.timestamp(report.generatedAt))),
            JSONMember("since", report.since.map(int) ?? .null),
            JSONMember("since_utc", report.since.map { .string(UTCDay.timestamp($0)) } ?? .null),
            JSONMember("kind_filter", report.kindFilter.map(JSONValue.string) ?? .null),
            JSONMember("tasks", int(report.tasks)),
            JSONMember("message", report.isEmpty ? .string(ReportText.emptyMessage) : .null),
            JSONMember("totals", .object([
                JSONMember("internal", summary(report.internalTotal)),
                JSONMember("external", summary(report.externalTotal)),
                JSONMember("head_to_head", headToHead(report.headToHeadTotal)),
            ])),
            JSONMember("kinds", .array(report.kinds.map(kind))),
        ])
    }

    static func kind(_ k: KindReport) -> JSONValue {
        .object([
            JSONMember("kind", .string(k.kind)),
            JSONMember("tasks", int(k.tasks)),
            JSONMember("internal", summary(k.internalSummary)),
            JSONMember("external", summary(k.externalSummary)),
            JSONMember("head_to_head", headToHead(k.headToHead)),
            JSONMember("curve", .array(k.curve.map(point))),
        ])
    }

    static func summary(_ s: RouteSummary) -> JSONValue {
        .object([
            JSONMember("route", .string(s.route.rawValue)),
            JSONMember("count", int(s.count)),
            JSONMember("chosen_count", int(s.chosenCount)),
            JSONMember("shadow_count", int(s.shadowCount)),
            JSONMember("succeeded_count", int(s.succeededCount)),
            JSONMember("success_rate", number(s.successRate)),
            JSONMember("scored_count", int(s.scoredCount)),
            JSONMember("mean_quality", number(s.meanQuality)),
            JSONMember("ci95", s.ci95.map { .object([JSONMember("low", .number($0.low)), JSONMember("high", .number($0.high))]) } ?? .null),
            JSONMember("ci95_half_width", number(s.ciHalfWidth)),
            JSONMember("pass_known_count", int(s.passKnownCount)),
            JSONMember("passed_count", int(s.passedCount)),
            JSONMember("pass_rate", number(s.passRate)),
            JSONMember("p50_latency_ms", s.p50LatencyMs.map(int) ?? .null),
            JSONMember("p95_latency_ms", s.p95LatencyMs.map(int) ?? .null),
            JSONMember("total_cost_usd", .number(s.totalCostUSD)),
            JSONMember("unknown_cost_count", int(s.unknownCostCount)),
            JSONMember("estimated_cost_count", int(s.estimatedCostCount)),
            JSONMember("quota_requests", int(s.quotaRequests)),
            JSONMember("targets", .array(s.targets.map(JSONValue.string))),
        ])
    }

    static func headToHead(_ h: HeadToHead) -> JSONValue {
        .object([
            JSONMember("tasks", int(h.tasks)),
            JSONMember("internal_wins", int(h.internalWins)),
            JSONMember("external_wins", int(h.externalWins)),
            JSONMember("ties", int(h.ties)),
            JSONMember("internal_win_rate", number(h.internalWinRate)),
        ])
    }

    static func point(_ p: CurvePoint) -> JSONValue {
        .object([
            JSONMember("start", int(p.start)),
            JSONMember("end", int(p.end)),
            JSONMember("start_utc", .string(UTCDay.timestamp(p.start))),
            JSONMember("end_utc", .string(UTCDay.timestamp(p.end))),
            JSONMember("tasks", int(p.tasks)),
            JSONMember("internal_share", number(p.internalShare)),
            JSONMember("internal_mean_quality", number(p.internalMeanQuality)),
            JSONMember("external_mean_quality", number(p.externalMeanQuality)),
        ])
    }

    static func int<I: BinaryInteger>(_ i: I) -> JSONValue { .number(Double(i)) }
    static func number(_ d: Double?) -> JSONValue { d.map(JSONValue.number) ?? .null }
}
