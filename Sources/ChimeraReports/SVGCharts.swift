import ChimeraCore

/// The inline SVG charts of the HTML report, built as text. Geometry is computed here; every
/// user-derived string is HTML-escaped before it is embedded. No `xmlns` (inline SVG in HTML
/// needs none), no scripts, no links.
enum SVGCharts {
    static let internalColor = "#2f6fdf"
    static let externalColor = "#e07b24"
    static let gridColor = "#d8dee4"
    static let inkColor = "#1f2328"
    static let mutedColor = "#59636e"
    static let gridValues: [Double] = [0, 0.25, 0.5, 0.75, 1]

    /// A coordinate with one decimal.
    static func c(_ x: Double) -> String { ReportText.fixed(x, 1) }

    /// A plot area with a [0, 1] vertical scale.
    struct Frame {
        var width: Double
        var height: Double
        var left: Double
        var right: Double
        var top: Double
        var bottom: Double

        var x0: Double { left }
        var x1: Double { width - right }
        var yTop: Double { top }
        var yBottom: Double { height - bottom }
        var plotWidth: Double { x1 - x0 }
        var plotHeight: Double { yBottom - yTop }

        /// The vertical position of a value in [0, 1] (clamped).
        func y(_ value: Double) -> Double { yBottom - min(1, max(0, value)) * plotHeight }
    }

    static func open(_ f: Frame, label: String) -> String {
        let w = c(f.width), h = c(f.height)
        return "<svg width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\" aria-label=\"\(ReportText.html(label))\">\n"
            + "<title>\(ReportText.html(label))</title>\n"
    }

    static func text(_ content: String, x: Double, y: Double, anchor: String = "start", fill: String = inkColor,
                     extra: String = "") -> String {
        "<text x=\"\(c(x))\" y=\"\(c(y))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\"\(extra)>\(ReportText.html(content))</text>\n"
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
                     dash: String? = nil) -> String {
        let dashAttr = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        return "<line x1=\"\(c(x1))\" y1=\"\(c(y1))\" x2=\"\(c(x2))\" y2=\"\(c(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(c(width))\"\(dashAttr)/>\n"
    }

    /// Horizontal grid lines with their labels, the two axes and a rotated vertical-axis title.
    static func axes(_ f: Frame, yTitle: String) -> String {
        var out = ""
        for v in gridValues {
            out += line(f.x0, f.y(v), f.x1, f.y(v), stroke: gridColor)
            out += text(ReportText.fixed(v, 2), x: f.x0 - 6, y: f.y(v) + 4, anchor: "end", fill: mutedColor)
        }
        out += line(f.x0, f.yTop, f.x0, f.yBottom, stroke: inkColor)
        out += line(f.x0, f.yBottom, f.x1, f.yBottom, stroke: inkColor)
        let midY = (f.yTop + f.yBottom) / 2
        out += "<text transform=\"translate(14,\(c(midY))) rotate(-90)\" text-anchor=\"middle\" fill=\"\(inkColor)\">\(ReportText.html(yTitle))</text>\n"
        return out
    }

    /// One legend entry: a swatch (`rect`, `line`, `dashed` or `ci`) and its text; returns the
    /// markup and the x where the next entry starts.
    static func legendEntry(_ label: String, swatch: String, color: String, x: Double, y: Double) -> (String, Double) {
        var out = ""
        switch swatch {
        case "rect":
            out += "<rect x=\"\(c(x))\" y=\"\(c(y - 9))\" width=\"12\" height=\"10\" fill=\"\(color)\"/>\n"
        case "ci":
            out += line(x + 6, y - 10, x + 6, y + 1, stroke: color, width: 1.5)
            out += line(x + 2, y - 10, x + 10, y - 10, stroke: color, width: 1.5)
            out += line(x + 2, y + 1, x + 10, y + 1, stroke: color, width: 1.5)
        case "dashed":
            out += line(x, y - 4, x + 18, y - 4, stroke: color, width: 2, dash: "5 3")
        default:
            out += line(x, y - 4, x + 18, y - 4, stroke: color, width: 2)
        }
        let textX = x + (swatch == "rect" || swatch == "ci" ? 16 : 22)
        out += text(label, x: textX, y: y)
        // About 6.2 px per character at 11 px.
        return (out, textX + Double(label.count) * 6.2 + 14)
    }

    static func legend(_ entries: [(label: String, swatch: String, color: String)], x: Double, y: Double) -> String {
        var out = "<g class=\"legend\">\n"
        var nextX = x
        for entry in entries {
            let (markup, after) = legendEntry(entry.label, swatch: entry.swatch, color: entry.color, x: nextX, y: y)
            out += markup
            nextX = after
        }
        return out + "</g>\n"
    }

    // MARK: - Bar chart

    /// Mean quality of each route as a bar, with its 95% confidence interval as an error bar.
    static func qualityBars(kind: String, internal: RouteSummary, external: RouteSummary) -> String {
        let f = Frame(width: 360, height: 260, left: 52, right: 16, top: 54, bottom: 52)
        var out = open(f, label: "Mean quality by route, \(kind)")
        out += text("Mean quality by route", x: f.x0, y: 16, extra: " font-weight=\"bold\"")
        out += legend([("internal", "rect", internalColor), ("external", "rect", externalColor), ("95% CI", "ci", inkColor)],
                      x: f.x0, y: 33)
        out += axes(f, yTitle: "mean quality score")
        let slot = f.plotWidth / 2
        for (i, summary) in [`internal`, external].enumerated() {
            let cx = f.x0 + slot * (Double(i) + 0.5)
            let color = summary.route == .internal ? internalColor : externalColor
            if let mean = summary.meanQuality {
                let top = f.y(mean)
                out += "<rect x=\"\(c(cx - 32))\" y=\"\(c(top))\" width=\"64\" height=\"\(c(f.yBottom - top))\" fill=\"\(color)\">"
                    + "<title>\(summary.route.rawValue): mean \(ReportText.fixed(mean, 3))\(summary.ci95.map { ", 95% CI \(ReportText.fixed($0.low, 3))–\(ReportText.fixed($0.high, 3))" } ?? "")</title></rect>\n"
                var labelY = top
                if let ci = summary.ci95 {
                    let low = f.y(ci.low), high = f.y(ci.high)
                    out += line(cx, low, cx, high, stroke: inkColor, width: 1.5)
                    out += line(cx - 8, low, cx + 8, low, stroke: inkColor, width: 1.5)
                    out += line(cx - 8, high, cx + 8, high, stroke: inkColor, width: 1.5)
                    labelY = min(labelY, high)
                }
                out += text(ReportText.fixed(mean, 2), x: cx, y: max(f.yTop - 4, labelY - 6),
                            anchor: "middle", extra: " font-weight=\"bold\"")
            } else {
                out += text("no scores", x: cx, y: f.yBottom - 8, anchor: "middle", fill: mutedColor)
            }
            out += text(summary.route.rawValue, x: cx, y: f.yBottom + 16, anchor: "middle")
            out += text("n = \(summary.scoredCount) scored", x: cx, y: f.yBottom + 30, anchor: "middle", fill: mutedColor)
        }
        out += text("route", x: (f.x0 + f.x1) / 2, y: f.height - 6, anchor: "middle")
        return out + "</svg>"
    }

    // MARK: - Line chart

    /// The learning curve: internal and external mean quality per window (solid) and the share
    /// of tasks routed internal (dashed), each point at its window's midpoint in time.
    static func learningCurve(kind: String, curve: [CurvePoint]) -> String {
        let f = Frame(width: 600, height: 280, left: 52, right: 20, top: 48, bottom: 56)
        var out = open(f, label: "Learning curve, \(kind)")
        out += text("Learning curve", x: f.x0, y: 16, extra: " font-weight=\"bold\"")
        out += legend([("internal quality", "line", internalColor), ("external quality", "line", externalColor),
                       ("internal share (chosen route)", "dashed", internalColor)],
                      x: f.x0, y: 34)
        out += axes(f, yTitle: "quality score / share")
        guard let first = curve.first, let last = curve.last else {
            out += text("no tasks", x: (f.x0 + f.x1) / 2, y: (f.yTop + f.yBottom) / 2, anchor: "middle", fill: mutedColor)
            return out + "</svg>"
        }
        let tMin = Double(first.start), tMax = Double(last.end)
        let xs = curve.map { p -> Double in
            let mid = (Double(p.start) + Double(p.end)) / 2
            return tMax > tMin ? f.x0 + (mid - tMin) / (tMax - tMin) * f.plotWidth : (f.x0 + f.x1) / 2
        }
        for x in xs { out += line(x, f.yBottom, x, f.yBottom + 4, stroke: inkColor) }
        out += text(ReportText.shortTime(first.start), x: f.x0, y: f.yBottom + 18, fill: mutedColor)
        out += text(ReportText.shortTime(last.end), x: f.x1, y: f.yBottom + 18, anchor: "end", fill: mutedColor)
        out += text("time (UTC), one point per window at its midpoint", x: (f.x0 + f.x1) / 2, y: f.height - 8, anchor: "middle")

        let windows = curve.map { "\(ReportText.shortTime($0.start)) – \(ReportText.shortTime($0.end)), \($0.tasks) task\($0.tasks == 1 ? "" : "s")" }
        out += series("internal quality", curve.map(\.internalMeanQuality), xs: xs, windows: windows, frame: f,
                      color: internalColor, dashed: false)
        out += series("external quality", curve.map(\.externalMeanQuality), xs: xs, windows: windows, frame: f,
                      color: externalColor, dashed: false)
        out += series("internal share", curve.map(\.internalShare), xs: xs, windows: windows, frame: f,
                      color: internalColor, dashed: true)
        if curve.allSatisfy({ $0.internalMeanQuality == nil && $0.externalMeanQuality == nil }) {
            out += text("no scored candidates", x: (f.x0 + f.x1) / 2, y: (f.yTop + f.yBottom) / 2, anchor: "middle", fill: mutedColor)
        }
        return out + "</svg>"
    }

    /// A line through the consecutive known values (a missing value breaks it) and a marker at
    /// each known value, filled for quality and hollow for the share.
    static func series(_ name: String, _ values: [Double?], xs: [Double], windows: [String], frame f: Frame,
                       color: String, dashed: Bool) -> String {
        var out = ""
        var run: [(Double, Double)] = []
        func flush() {
            if run.count > 1 {
                let points = run.map { "\(c($0.0)),\(c($0.1))" }.joined(separator: " ")
                let dash = dashed ? " stroke-dasharray=\"6 4\"" : ""
                out += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            }
            run = []
        }
        for (i, value) in values.enumerated() {
            guard let value else { flush(); continue }
            run.append((xs[i], f.y(value)))
        }
        flush()
        for (i, value) in values.enumerated() {
            guard let value else { continue }
            let fill = dashed ? "#ffffff" : color
            let shown = dashed ? ReportText.percent(value) : ReportText.fixed(value, 2)
            out += "<circle cx=\"\(c(xs[i]))\" cy=\"\(c(f.y(value)))\" r=\"3.5\" fill=\"\(fill)\" stroke=\"\(color)\" stroke-width=\"1.5\">"
                + "<title>\(ReportText.html("\(name) \(shown), \(windows[i])"))</title></circle>\n"
        }
        return out
    }
}
