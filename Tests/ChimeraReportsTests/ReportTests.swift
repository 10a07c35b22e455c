import ChimeraCore
import Testing

@testable import ChimeraReports

/// Rows for tests: `kind` "k" unless given, chosen internal by default.
private func row(_ task: String, at: EpochMillis = 0, kind: String = "k", _ arm: RouteArm = .internal("h"),
                 chosen: Bool = true, succeeded: Bool = true, score: Double? = nil, passed: Bool? = nil,
                 latency: Int64 = 0, cost: Double? = 0, estimate: Bool = false, quota: Int = 0) -> ReportRow {
    ReportRow(taskId: task, at: at, kind: kind, arm: arm, chosen: chosen, succeeded: succeeded, score: score,
              passed: passed, latencyMs: latency, costUSD: cost, costIsEstimate: estimate, quotaRequests: quota)
}

private func close(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}

private func build(_ rows: [ReportRow], since: EpochMillis? = nil, kind: String? = nil, buckets: Int = 10) -> QualityReport {
    ReportBuilder.build(rows, options: ReportOptions(now: 0, since: since, kind: kind, curveBuckets: buckets))
}

private func occurrences(of needle: String, in text: String) -> Int {
    var count = 0
    var rest = Substring(text)
    while let range = rest.firstRange(of: needle) {
        count += 1
        rest = rest[range.upperBound...]
    }
    return count
}

@Suite struct StatisticsTests {
    @Test func meanAndTIntervalForThreeScores() {
        // Scores 0.6, 0.7, 0.8: mean 0.7; deviations -0.1, 0, 0.1; s² = (0.01 + 0 + 0.01) / 2 = 0.01, s = 0.1.
        // df = 2: t = 4.303; half-width = 4.303 · 0.1 / √3 = 0.4303 / 1.7320508 = 0.2484339.
        let report = build([row("a", score: 0.6), row("b", score: 0.7), row("c", score: 0.8)])
        let s = report.kinds[0].internalSummary
        #expect(s.scoredCount == 3)
        #expect(close(s.meanQuality, 0.7))
        #expect(close(s.ciHalfWidth, 0.2484339, 1e-6))
        #expect(close(s.ci95?.low, 0.4515661, 1e-6))
        #expect(close(s.ci95?.high, 0.9484339, 1e-6))
        #expect(ReportText.quality(s) == "0.70 ± 0.25")
    }

    @Test func intervalIsClampedToTheUnitRange() {
        // 0.9, 1, 1: mean 0.96667, s = √(((−0.0667)² + 2·0.0333²) / 2) = √0.0033333 = 0.057735;
        // half-width = 4.303 · 0.057735 / √3 = 0.143433: high 1.1101 → 1, low 0.823233.
        let s = build([row("a", score: 0.9), row("b", score: 1), row("c", score: 1)]).kinds[0].internalSummary
        #expect(close(s.meanQuality, 0.9666667, 1e-6))
        #expect(close(s.ci95?.high, 1))
        #expect(close(s.ci95?.low, 0.823234, 1e-5))
        #expect(close(s.ciHalfWidth, 0.143433, 1e-5))
    }

    @Test func noIntervalBelowTwoScoresAndTableBeyondThirty() {
        let one = build([row("a", score: 0.4), row("b")]).kinds[0].internalSummary
        #expect(one.meanQuality == 0.4)
        #expect(one.ci95 == nil && one.ciHalfWidth == nil)
        #expect(ReportText.quality(one) == "0.40")
        #expect(Statistics.tCritical95(df: 1) == 12.706)
        #expect(Statistics.tCritical95(df: 30) == 2.042)
        #expect(Statistics.tCritical95(df: 31) == 1.96)
        // n = 2, scores 0.4 and 0.6: s = 0.141421, half-width = 12.706 · 0.141421 / √2 = 1.2706 → clamped to [0, 1].
        let two = build([row("a", score: 0.4), row("b", score: 0.6)]).kinds[0].internalSummary
        #expect(close(two.ciHalfWidth, 1.2706, 1e-9))
        #expect(two.ci95 == Interval(low: 0, high: 1))
    }

    @Test func nearestRankPercentiles() {
        // 20 values 100…2000: p50 rank ⌈0.5·20⌉ = 10 → 1000; p95 rank ⌈0.95·20⌉ = 19 → 1900.
        let twenty = (1...20).map { row("t\($0)", latency: Int64($0) * 100) }
        let s = build(twenty.reversed()).kinds[0].internalSummary
        #expect(s.p50LatencyMs == 1000)
        #expect(s.p95LatencyMs == 1900)
        // 3 values: p50 rank ⌈1.5⌉ = 2 → 200; p95 rank ⌈2.85⌉ = 3 → 300. One value is both.
        #expect(Statistics.nearestRank([300, 100, 200], percentile: 50) == 200)
        #expect(Statistics.nearestRank([300, 100, 200], percentile: 95) == 300)
        #expect(Statistics.nearestRank([7], percentile: 95) == 7)
        #expect(Statistics.nearestRank([], percentile: 50) == nil)
    }

    @Test func passAndSuccessRates() {
        let rows = [
            row("a", score: 0.9, passed: true), row("b", score: 0.8, passed: true),
            row("c", succeeded: false, score: 0.1, passed: false), row("d", succeeded: true),
        ]
        let s = build(rows).kinds[0].internalSummary
        #expect(s.passKnownCount == 3 && s.passedCount == 2)
        #expect(close(s.passRate, 2.0 / 3.0))
        #expect(s.succeededCount == 3)
        #expect(s.successRate == 0.75)
        #expect(ReportText.percent(s.passRate) == "67%")
        // No pass information at all: nil, not 0%.
        #expect(build([row("a", score: 0.5)]).kinds[0].internalSummary.passRate == nil)
    }

    @Test func unknownAndEstimatedCostsAreCountedApart() {
        let rows = [
            row("a", .external, cost: 0.01), row("b", .external, cost: 0.02, estimate: true, quota: 1),
            row("c", .external, cost: nil, quota: 2), row("d", .external, cost: nil),
        ]
        let s = build(rows).kinds[0].externalSummary
        #expect(close(s.totalCostUSD, 0.03))
        #expect(s.unknownCostCount == 2)
        #expect(s.estimatedCostCount == 1)
        #expect(s.quotaRequests == 3)
        #expect(ReportText.cost(s) == "$0.0300 (est.) +2 unknown")
        let allUnknown = build([row("a", .external, cost: nil)]).kinds[0].externalSummary
        #expect(ReportText.cost(allUnknown) == "unknown (1)")
        #expect(ReportText.cost(RouteSummary(route: .external)) == "-")
    }

    @Test func fixedDecimals() {
        #expect(ReportText.fixed(0.12345, 4) == "0.1235")
        #expect(ReportText.fixed(2.5, 0) == "3")
        #expect(ReportText.fixed(-0.05, 1) == "-0.1")
        #expect(ReportText.fixed(-0.0001, 2) == "0.00")
        #expect(ReportText.fixed(12.3, 3) == "12.300")
        #expect(ReportText.latency(1500) == "1.5s")
    }
}

@Suite struct BuilderTests {
    @Test func headToHeadComparesBestScoresOfShadowedTasks() {
        let rows = [
            // internal wins 0.8 to 0.7
            row("t1", score: 0.8), row("t1", .external, chosen: false, score: 0.7),
            // external wins 0.9 to 0.5
            row("t2", score: 0.5), row("t2", .external, chosen: false, score: 0.9),
            // tie: |0.905 - 0.9| < 0.01
            row("t3", .external, score: 0.9), row("t3", chosen: false, score: 0.905),
            // internal only: not compared
            row("t4", score: 0.3),
            // both chosen (an escalation), no shadow run: not compared
            row("t5", score: 0.6), row("t5", .external, score: 0.9),
            // shadow not scored: not compared
            row("t6", score: 0.7), row("t6", .external, chosen: false, succeeded: false),
            // best internal (0.9 of two) beats external 0.85
            row("t7", score: 0.4), row("t7", .internal("other"), score: 0.9), row("t7", .external, chosen: false, score: 0.85),
        ]
        let h = build(rows).kinds[0].headToHead
        #expect(h == HeadToHead(tasks: 4, internalWins: 2, externalWins: 1, ties: 1))
        #expect(h.internalWinRate == 0.5)
        #expect(ReportText.headToHead(h) == "shadowed 4: internal 2, external 1, ties 1")
        #expect(build([]).headToHeadTotal.internalWinRate == nil)
    }

    @Test func chosenAndShadowCounts() {
        let rows = [row("a"), row("a", .external, chosen: false), row("b", .external), row("c", .external)]
        let k = build(rows).kinds[0]
        #expect(k.tasks == 3)
        #expect(k.internalSummary.chosenCount == 1 && k.internalSummary.shadowCount == 0)
        #expect(k.externalSummary.chosenCount == 2 && k.externalSummary.shadowCount == 1)
        #expect(k.internalSummary.targets == ["h"])
    }

    @Test func curveWindowsAreEqualAndEmptyOnesAreOmitted() {
        // 4 tasks, 10 buckets asked: 4 windows over [1000, 2001): bounds 1000, 1250, 1500, 1750, 2001
        // (span 1001: 1000 + 1001·i/4 = 1000, 1250, 1500, 1750). Windows 2 and 3 are empty.
        let rows = [
            row("t1", at: 1000, score: 0.6),
            row("t2", at: 1100, .external, score: 0.8), row("t2", at: 1150, chosen: false, score: 0.4),
            row("t3", at: 1900, score: 0.9),
            row("t4", at: 2000, score: 0.7),
        ]
        let curve = build(rows).kinds[0].curve
        #expect(curve.count == 2)
        #expect(curve[0] == CurvePoint(start: 1000, end: 1250, tasks: 2, internalShare: 0.5,
                                       internalMeanQuality: 0.5, externalMeanQuality: 0.8))
        #expect(curve[1] == CurvePoint(start: 1750, end: 2001, tasks: 2, internalShare: 1,
                                       internalMeanQuality: 0.8, externalMeanQuality: nil))
        // 2 buckets: [1000, 1500) and [1500, 2001).
        let two = build(rows, buckets: 2).kinds[0].curve
        #expect(two.map(\.start) == [1000, 1500])
        #expect(two.map(\.end) == [1500, 2001])
        #expect(two.map(\.tasks) == [2, 2])
    }

    @Test func curveWithOneInstantAndWildTimes() {
        let same = build([row("a", at: 5), row("b", at: 5, .external)]).kinds[0].curve
        #expect(same == [CurvePoint(start: 5, end: 6, tasks: 2, internalShare: 0.5, internalMeanQuality: nil,
                                    externalMeanQuality: nil)])
        let wild = build([row("a", at: .min), row("b", at: .max)], buckets: 3).kinds[0].curve
        #expect(wild.map(\.tasks) == [1, 1])
        #expect(wild.first?.start == .min)
        // A task with no chosen candidate does not count in the share.
        let shadowOnly = build([row("a", chosen: false)]).kinds[0].curve
        #expect(shadowOnly[0].internalShare == nil)
    }

    @Test func filtersDropRowsFirst() {
        let rows = [
            row("old", at: 100, kind: "a", score: 0.1),
            row("new", at: 200, kind: "a", score: 0.9),
            row("other", at: 300, kind: "b", score: 0.5),
        ]
        let sinceReport = build(rows, since: 200)
        #expect(sinceReport.kinds.map(\.kind) == ["a", "b"])
        #expect(sinceReport.kinds[0].internalSummary.meanQuality == 0.9)
        #expect(sinceReport.internalTotal.count == 2)
        let kindReport = build(rows, kind: "b")
        #expect(kindReport.kinds.map(\.kind) == ["b"])
        #expect(kindReport.kindFilter == "b")
        #expect(kindReport.internalTotal.count == 1)
        #expect(build(rows, since: 1000).isEmpty)
    }

    @Test func kindsAreSortedAndTotalsSpanThem() {
        let rows = [row("1", kind: "zeta", score: 1), row("2", kind: "alpha", score: 0), row("3", kind: "mid", .external)]
        let report = build(rows)
        #expect(report.kinds.map(\.kind) == ["alpha", "mid", "zeta"])
        #expect(report.internalTotal.count == 2)
        #expect(report.internalTotal.meanQuality == 0.5)
        #expect(report.externalTotal.count == 1)
        #expect(report.tasks == 3)
    }
}

@Suite struct RendererTests {
    /// One task: internal chosen (0.8, passed, 120 ms, $0) and an external shadow (0.7, failed the bar, 900 ms, cost unknown).
    static let tiny = build([
        row("t1", kind: "sum", score: 0.8, passed: true, latency: 120, cost: 0),
        row("t1", kind: "sum", .external, chosen: false, score: 0.7, passed: false, latency: 900, cost: nil, quota: 1),
    ])

    @Test func tableIsAligned() throws {
        let text = try ReportRenderer.render(Self.tiny, as: .table)
        let expected = """
            Chimera quality report: generated 1970-01-01T00:00:00Z, 1 task

            KIND  ROUTE     N  QUALITY  PASS    P50    P95  SUCCESS  COST         QUOTA
            sum   internal  1  0.80     100%  120ms  120ms     100%  $0.0000          0
            sum   external  1  0.70       0%  900ms  900ms     100%  unknown (1)      1
              shadowed 1: internal 1, external 0, ties 0

            """
        #expect(text == expected)
    }

    @Test func tableShowsAllRowsForSeveralKinds() throws {
        let report = build([row("a", kind: "x", score: 0.5), row("b", kind: "y", .external, score: 0.25)])
        let lines = try ReportRenderer.render(report, as: .table).split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("(all)") }.count == 2)
        #expect(lines.contains("y      internal  0  -           -    -    -        -  -            -"))
        #expect(lines.contains("(all)  external  1  0.25        -  0ms  0ms     100%  $0.0000      0"))
    }

    @Test func jsonParsesBackFieldByField() throws {
        let text = try ReportRenderer.render(Self.tiny, as: .json)
        let json = try JSONParser.parse(text)
        #expect(json["generated_at"] == .number(0))
        #expect(json["generated_at_utc"] == .string("1970-01-01T00:00:00Z"))
        #expect(json["since"] == .null)
        #expect(json["kind_filter"] == .null)
        #expect(json["tasks"] == .number(1))
        #expect(json["message"] == .null)
        guard case .array(let kinds)? = json["kinds"], let kind = kinds.first else {
            Issue.record("no kinds array")
            return
        }
        #expect(kinds.count == 1)
        #expect(kind["kind"] == .string("sum"))
        #expect(kind["tasks"] == .number(1))
        let i = try #require(kind["internal"])
        #expect(i["route"] == .string("internal"))
        #expect(i["count"] == .number(1))
        #expect(i["chosen_count"] == .number(1))
        #expect(i["shadow_count"] == .number(0))
        #expect(i["scored_count"] == .number(1))
        #expect(i["mean_quality"] == .number(0.8))
        #expect(i["ci95"] == .null)
        #expect(i["ci95_half_width"] == .null)
        #expect(i["pass_rate"] == .number(1))
        #expect(i["success_rate"] == .number(1))
        #expect(i["p50_latency_ms"] == .number(120))
        #expect(i["p95_latency_ms"] == .number(120))
        #expect(i["total_cost_usd"] == .number(0))
        #expect(i["unknown_cost_count"] == .number(0))
        #expect(i["targets"] == .array([.string("h")]))
        let e = try #require(kind["external"])
        #expect(e["shadow_count"] == .number(1))
        #expect(e["pass_rate"] == .number(0))
        #expect(e["unknown_cost_count"] == .number(1))
        #expect(e["estimated_cost_count"] == .number(0))
        #expect(e["quota_requests"] == .number(1))
        let h = try #require(kind["head_to_head"])
        #expect(h["tasks"] == .number(1))
        #expect(h["internal_wins"] == .number(1))
        #expect(h["external_wins"] == .number(0))
        #expect(h["ties"] == .number(0))
        #expect(h["internal_win_rate"] == .number(1))
        guard case .array(let curve)? = kind["curve"] else {
            Issue.record("no curve array")
            return
        }
        #expect(curve.count == 1)
        #expect(curve[0]["start"] == .number(0))
        #expect(curve[0]["end"] == .number(1))
        #expect(curve[0]["tasks"] == .number(1))
        #expect(curve[0]["internal_share"] == .number(1))
        #expect(curve[0]["internal_mean_quality"] == .number(0.8))
        #expect(curve[0]["external_mean_quality"] == .number(0.7))
        #expect(json["totals"]?["internal"]?["count"] == .number(1))
        #expect(json["totals"]?["head_to_head"]?["tasks"] == .number(1))
    }

    @Test func jsonHasAnIntervalObjectWithTwoScores() throws {
        let report = build([row("a", score: 0.4), row("b", score: 0.6)], since: 86_400_000)
        let json = try JSONParser.parse(try ReportRenderer.render(report, as: .json))
        #expect(json["since"] == .number(86_400_000))
        #expect(json["since_utc"] == .string("1970-01-02T00:00:00Z"))
        // Both rows are before `since`: the report is empty.
        #expect(json["kinds"] == .array([]))
        let full = build([row("a", score: 0.4), row("b", score: 0.6)])
        let json2 = try JSONParser.parse(try ReportRenderer.render(full, as: .json))
        let ci = json2["kinds"].flatMap { value -> JSONValue? in
            if case .array(let items) = value { return items.first?["internal"]?["ci95"] }
            return nil
        }
        #expect(ci?["low"] == .number(0))
        #expect(ci?["high"] == .number(1))
    }

    @Test func htmlIsSelfContainedAndEscaped() throws {
        let kind = "<b>&\"x\""
        let report = build([
            row("1", kind: kind, .internal("<i>h</i>"), score: 0.5),
            row("1", kind: kind, .external, chosen: false, score: 0.6),
            row("2", at: 1000, kind: "plain", score: 0.9),
        ])
        let html = try ReportRenderer.render(report, as: .html)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("http://"))
        #expect(!html.contains("https://"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<b>"))
        #expect(!html.contains("<i>"))
        #expect(html.contains("&lt;b&gt;&amp;&quot;x&quot;"))
        #expect(html.contains("&lt;i&gt;h&lt;/i&gt;"))
        #expect(occurrences(of: "<svg ", in: html) == 2 * report.kinds.count)
        #expect(occurrences(of: "</svg>", in: html) == 2 * report.kinds.count)
        #expect(html.contains("Mean quality by route"))
        #expect(html.contains("internal share (chosen route)"))
        #expect(html.contains("stroke-dasharray=\"6 4\"") == false)  // one window each: no line, markers only
        #expect(html.contains("<circle"))
    }

    @Test func htmlCurveDrawsLinesAndCIBars() throws {
        let rows = (0..<6).flatMap { i -> [ReportRow] in
            [row("t\(i)", at: EpochMillis(i) * 1000, score: 0.5 + Double(i) / 20),
             row("t\(i)", at: EpochMillis(i) * 1000, .external, chosen: false, score: 0.8)]
        }
        let html = try ReportRenderer.render(build(rows, buckets: 3), as: .html)
        #expect(occurrences(of: "<polyline", in: html) == 3)
        #expect(html.contains("stroke-dasharray=\"6 4\""))
        #expect(html.contains("95% CI"))
    }

    @Test func markdownHasTablesAndEscapes() throws {
        let report = build([
            row("1", kind: "a|b*", score: 0.5, cost: 0.5, estimate: true),
            row("1", kind: "a|b*", .external, chosen: false, score: 0.6),
        ])
        let md = try ReportRenderer.render(report, as: .md)
        #expect(md.hasPrefix("# Chimera quality report\n"))
        #expect(md.contains("## a\\|b\\*\n"))
        #expect(md.contains("| Route | N | Chosen |"))
        #expect(md.contains("| internal | 1 | 1 | 0 | 0.50 | - | - | 0ms | 0ms | 100% | \\$0.5000 (est.) | 0 | h |"))
        #expect(md.contains("| external | 1 | 0 | 1 | 0.60 | - |"))
        #expect(md.contains("shadowed 1: internal 0, external 1, ties 0 (internal win rate 0%)"))
        #expect(md.contains("### Learning curve"))
        #expect(md.contains("| Window (UTC) | Tasks | Internal share | Internal quality | External quality |"))
        #expect(md.contains("| 1970-01-01 00:00 – 1970-01-01 00:00 | 1 | 100% | 0.50 | 0.60 |"))
        #expect(!md.contains("&amp;"))
    }

    @Test func emptyReportSaysSoInEveryFormat() throws {
        let empty = build([])
        #expect(empty.isEmpty)
        for format in ReportFormat.allCases {
            let text = try ReportRenderer.render(empty, as: format)
            #expect(text.contains("No tasks recorded in this period."), "format \(format.rawValue)")
        }
        let html = try ReportRenderer.render(empty, as: .html)
        #expect(!html.contains("<svg"))
        let json = try JSONParser.parse(try ReportRenderer.render(empty, as: .json))
        #expect(json["kinds"] == .array([]))
        #expect(json["totals"]?["internal"]?["mean_quality"] == .null)
        #expect(json["totals"]?["internal"]?["p50_latency_ms"] == .null)
        #expect(try ReportRenderer.render(empty, as: .table)
            == "Chimera quality report: generated 1970-01-01T00:00:00Z\nNo tasks recorded in this period.\n")
    }
}
