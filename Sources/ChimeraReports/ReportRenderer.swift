import ChimeraCore

/// The output formats of a report.
public enum ReportFormat: String, CaseIterable, Sendable {
    /// Aligned plain-text columns for a terminal (no colours).
    case table
    /// One compact JSON document; see ``ReportRenderer/render(_:as:)`` for its structure.
    case json
    /// A Markdown document with one section of tables per kind.
    case md
    /// One self-contained HTML file: inline CSS and SVG charts, no scripts, no external URLs.
    case html
}

/// Turns a ``QualityReport`` into text.
public enum ReportRenderer {
    /// Renders `report` as `format`.
    ///
    /// Every format says "No tasks recorded in this period." for a report without tasks, shows
    /// a missing value as `-` (`null` in JSON) and never shows an unknown cost as zero.
    ///
    /// The JSON document (keys in this order; times are epoch milliseconds with a `_utc` twin):
    /// ```
    /// { "generated_at", "generated_at_utc", "since", "since_utc", "kind_filter",
    ///   "tasks", "message" (the empty-period message, else null),
    ///   "totals": { "internal": SUMMARY, "external": SUMMARY, "head_to_head": H2H },
    ///   "kinds": [ { "kind", "tasks", "internal": SUMMARY, "external": SUMMARY,
    ///                "head_to_head": H2H, "curve": [ POINT ] } ] }
    /// SUMMARY: { "route", "count", "chosen_count", "shadow_count", "succeeded_count", "success_rate",
    ///   "scored_count", "mean_quality", "ci95": {"low","high"} | null, "ci95_half_width",
    ///   "pass_known_count", "passed_count", "pass_rate", "p50_latency_ms", "p95_latency_ms",
    ///   "total_cost_usd", "unknown_cost_count", "estimated_cost_count", "quota_requests", "targets": [string] }
    /// H2H: { "tasks", "internal_wins", "external_wins", "ties", "internal_win_rate" }
    /// POINT: { "start", "end", "start_utc", "end_utc", "tasks", "internal_share",
    ///   "internal_mean_quality", "external_mean_quality" }
    /// ```
    public static func render(_ report: QualityReport, as format: ReportFormat) throws -> String {
        switch format {
        case .table: return TableRenderer.render(report)
        case .json: return JSONReportRenderer.document(report).serialized + "\n"
        case .md: return try MarkdownRenderer.render(report)
        case .html: return try HTMLRenderer.render(report)
        }
    }
}
