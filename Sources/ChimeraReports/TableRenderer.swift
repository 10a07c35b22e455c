import ChimeraCore

/// The `table` format: aligned monospace columns, one row per kind and route, a head-to-head
/// line under each kind, and `(all)` rows when there is more than one kind.
enum TableRenderer {
    static let header = ["KIND", "ROUTE", "N", "QUALITY", "PASS", "P50", "P95", "SUCCESS", "COST", "QUOTA"]
    /// Numeric columns, right-aligned.
    static let rightAligned: Set<Int> = [2, 4, 5, 6, 7, 9]
    static let gap = "  "

    enum Line {
        case cells([String])
        case text(String)
    }

    static func render(_ report: QualityReport) -> String {
        var out = ["Chimera quality report: " + ReportText.plain(ReportText.coverage(report).joined(separator: ", "))]
        guard !report.isEmpty else {
            out.append(ReportText.emptyMessage)
            return out.joined(separator: "\n") + "\n"
        }
        out.append("")
        var lines: [Line] = [.cells(header)]
        for kind in report.kinds {
            for route in RouteKind.allCases {
                lines.append(.cells(cells(kind: ReportText.plain(kind.kind), kind.summary(route))))
            }
            lines.append(.text(gap + ReportText.headToHead(kind.headToHead)))
        }
        if report.kinds.count > 1 {
            for route in RouteKind.allCases {
                lines.append(.cells(cells(kind: "(all)", report.total(route))))
            }
            lines.append(.text(gap + ReportText.headToHead(report.headToHeadTotal)))
        }
        out.append(contentsOf: align(lines))
        return out.joined(separator: "\n") + "\n"
    }

    static func cells(kind: String, _ s: RouteSummary) -> [String] {
        [
            kind, s.route.rawValue, "\(s.count)", ReportText.quality(s), ReportText.percent(s.passRate),
            ReportText.latency(s.p50LatencyMs), ReportText.latency(s.p95LatencyMs),
            ReportText.percent(s.successRate), ReportText.cost(s), s.count > 0 ? "\(s.quotaRequests)" : ReportText.missing,
        ]
    }

    /// Pads every cell to its column's width (by characters) and drops trailing spaces.
    static func align(_ lines: [Line]) -> [String] {
        var widths = [Int](repeating: 0, count: header.count)
        for case .cells(let cells) in lines {
            for (i, cell) in cells.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        return lines.map { line in
            switch line {
            case .text(let text):
                return text
            case .cells(let cells):
                let padded = cells.enumerated().map { i, cell in
                    let fill = String(repeating: " ", count: widths[i] - cell.count)
                    return rightAligned.contains(i) ? fill + cell : cell + fill
                }
                var text = padded.joined(separator: gap)
                while text.last == " " { text.removeLast() }
                return text
            }
        }
    }
}
