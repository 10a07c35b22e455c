import ChimeraCore

/// Text for the numbers of a report, shared by the renderers. `-` stands for a missing value.
enum ReportText {
    static let missing = "-"
    static let emptyMessage = "No tasks recorded in this period."

    /// `x` with exactly `digits` decimals, rounded half away from zero: `fixed(0.12345, 4)` is `0.1235`.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<max(0, digits) { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9.0e18 else { return "\(x)" }
        let units = Int64(scaled)
        let divisor = Int64(scale)
        let whole = String(units / divisor)
        let sign = x < 0 && units != 0 ? "-" : ""
        guard digits > 0 else { return sign + whole }
        let fraction = String(units % divisor)
        return sign + whole + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    /// `0.667` → `67%`; nil → `-`.
    static func percent(_ x: Double?) -> String {
        guard let x else { return missing }
        return fixed(x * 100, 0) + "%"
    }

    /// A score in [0, 1] with two decimals; nil → `-`.
    static func score(_ x: Double?) -> String {
        guard let x else { return missing }
        return fixed(x, 2)
    }

    /// `0.70 ± 0.25` (mean ± unclamped CI half-width), `0.70` with one score, `-` with none.
    static func quality(_ s: RouteSummary) -> String {
        guard let mean = s.meanQuality else { return missing }
        guard let half = s.ciHalfWidth else { return fixed(mean, 2) }
        return "\(fixed(mean, 2)) ± \(fixed(half, 2))"
    }

    /// `[0.45, 0.95]`; `-` below two scores.
    static func interval(_ s: RouteSummary) -> String {
        guard let ci = s.ci95 else { return missing }
        return "[\(fixed(ci.low, 2)), \(fixed(ci.high, 2))]"
    }

    /// `850ms`, `1.5s`; nil → `-`.
    static func latency(_ ms: Int64?) -> String {
        guard let ms else { return missing }
        if ms < 1000 { return "\(ms)ms" }
        return fixed(Double(ms) / 1000, 1) + "s"
    }

    /// `$0.0123`, `$0.0123 (est.)`, `$0.0123 +2 unknown`, `unknown (3)` when no cost is known,
    /// `-` with no candidates: an unknown cost is never shown as a bare zero.
    static func cost(_ s: RouteSummary) -> String {
        guard s.count > 0 else { return missing }
        if s.unknownCostCount == s.count { return "unknown (\(s.count))" }
        var text = "$" + fixed(s.totalCostUSD, 4)
        if s.estimatedCostCount > 0 { text += " (est.)" }
        if s.unknownCostCount > 0 { text += " +\(s.unknownCostCount) unknown" }
        return text
    }

    /// `shadowed 12: internal 5, external 6, ties 1`.
    static func headToHead(_ h: HeadToHead) -> String {
        "shadowed \(h.tasks): internal \(h.internalWins), external \(h.externalWins), ties \(h.ties)"
    }

    /// `generated 2026-11-29T13:05:09Z`, `since …`, `kind …`, `12 tasks`: what the report covers.
    static func coverage(_ report: QualityReport) -> [String] {
        var parts = ["generated \(UTCDay.timestamp(report.generatedAt))"]
        if let since = report.since { parts.append("since \(UTCDay.timestamp(since))") }
        if let kind = report.kindFilter { parts.append("kind \(kind)") }
        if !report.isEmpty {
            let tasks = report.tasks
            parts.append("\(tasks) task\(tasks == 1 ? "" : "s")")
        }
        return parts
    }

    /// ``coverage(_:)`` as a sentence: `Generated 2026-11-29T13:05:09Z, since …, 12 tasks`.
    static func subtitle(_ report: QualityReport) -> String {
        let text = coverage(report).joined(separator: ", ")
        return text.prefix(1).uppercased() + text.dropFirst()
    }

    /// `text` with control characters (line breaks, tabs, escapes) shown as spaces, so it keeps
    /// one line and its column in plain text.
    static func plain(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// `2026-11-29 13:05` (UTC, minutes).
    static func shortTime(_ ms: EpochMillis) -> String {
        let stamp = UTCDay.timestamp(ms)  // 2026-11-29T13:05:09Z
        return String(stamp.prefix(16).map { $0 == "T" ? " " : $0 })
    }

    /// The targets, at most `limit` of them named: `a, b, c +2 more`; `-` for none.
    static func targets(_ names: [String], limit: Int = 4) -> String {
        guard !names.isEmpty else { return missing }
        let shown = names.prefix(limit).joined(separator: ", ")
        return names.count > limit ? "\(shown) +\(names.count - limit) more" : shown
    }

    /// Escapes `& < > " '` for HTML text and attribute values.
    static func html(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Backslash-escapes the characters that mean something in Markdown (CommonMark allows a
    /// backslash before any ASCII punctuation) and flattens line breaks, so a user-derived string
    /// stays one literal table cell or heading.
    static func markdown(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "&", "#", "~", "!", "$": out += "\\" + String(c)
            case "\n", "\r": out += " "
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// The cells of a summary row for Markdown and HTML (see their headers), targets excluded.
    static func summaryCells(_ s: RouteSummary) -> [String] {
        [
            s.route.rawValue, "\(s.count)", "\(s.chosenCount)", "\(s.shadowCount)", ReportText.quality(s),
            ReportText.interval(s), ReportText.percent(s.passRate), ReportText.latency(s.p50LatencyMs),
            ReportText.latency(s.p95LatencyMs), ReportText.percent(s.successRate), ReportText.cost(s),
            s.count > 0 ? "\(s.quotaRequests)" : ReportText.missing,
        ]
    }

    /// The cells of a learning-curve row for Markdown and HTML.
    static func curveCells(_ p: CurvePoint) -> [String] {
        [
            "\(ReportText.shortTime(p.start)) – \(ReportText.shortTime(p.end))", "\(p.tasks)",
            ReportText.percent(p.internalShare), ReportText.score(p.internalMeanQuality),
            ReportText.score(p.externalMeanQuality),
        ]
    }

    /// ``headToHead(_:)`` with the internal win rate: the sentence Markdown and HTML show.
    static func headToHeadSentence(_ h: HeadToHead) -> String {
        var text = ReportText.headToHead(h)
        if let rate = h.internalWinRate { text += " (internal win rate \(ReportText.percent(rate)))" }
        return text
    }
}
