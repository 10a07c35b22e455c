import ChimeraCore
import Mustache

/// The `html` format: one self-contained page rendered from ``template``: inline CSS, inline
/// SVG charts, no scripts and no external URLs. Text values go through Mustache's HTML escaping
/// (`{{…}}`); the SVG markup, built and escaped by ``SVGCharts``, is inserted raw (`{{{…}}}`).
enum HTMLRenderer {
    static let summaryHeader = ["Route", "N", "Chosen", "Shadow", "Quality (mean ± 95% CI)", "95% CI", "Pass", "P50", "P95",
                                "Success", "Cost (USD)", "Quota", "Targets"]
    static let curveHeader = ["Window (UTC)", "Tasks", "Internal share", "Internal quality", "External quality"]

    static let template = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Chimera quality report</title>
        <style>
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #ffffff;
               max-width: 1040px; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
        h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
        h2 { font-size: 1.25rem; margin: 0 0 0.2rem; }
        .meta { color: #59636e; margin-top: 0; }
        section { margin-top: 2rem; padding-top: 1rem; border-top: 1px solid #d8dee4; }
        table { border-collapse: collapse; margin: 0.8rem 0; font-variant-numeric: tabular-nums; font-size: 0.9rem; }
        th, td { border: 1px solid #d8dee4; padding: 0.3rem 0.6rem; text-align: right; white-space: nowrap; }
        th { background: #f6f8fa; }
        th:first-child, td:first-child, td.text { text-align: left; }
        td.text { white-space: normal; }
        .charts { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
        svg { border: 1px solid #d8dee4; border-radius: 6px; background: #ffffff; }
        svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 11px; }
        .empty { padding: 1rem; border: 1px dashed #afb8c1; border-radius: 6px; color: #59636e; font-size: 1.1rem; }
        details { margin: 0.5rem 0; }
        summary { cursor: pointer; color: #59636e; }
        </style>
        </head>
        <body>
        <h1>Chimera quality report</h1>
        <p class="meta">{{subtitle}}</p>
        {{^kinds}}
        <p class="empty">No tasks recorded in this period.</p>
        {{/kinds}}
        {{#totals}}
        <section>
        <h2>All kinds</h2>
        {{>summaryTable}}
        <p>Head-to-head: {{headToHead}}.</p>
        </section>
        {{/totals}}
        {{#kinds}}
        <section>
        <h2>{{kind}}</h2>
        <p class="meta">{{tasks}}</p>
        {{>summaryTable}}
        <div class="charts">
        {{{barChart}}}
        {{{curveChart}}}
        </div>
        <p><strong>Head-to-head</strong> (tasks with scored answers from both routes, one of them a shadow run; best score per route, ties within 0.01): {{headToHead}}.</p>
        <details>
        <summary>Learning curve data</summary>
        <table>
        <thead><tr>{{#curveHeader}}<th>{{.}}</th>{{/curveHeader}}</tr></thead>
        <tbody>
        {{#curve}}
        <tr>{{#cells}}<td>{{.}}</td>{{/cells}}</tr>
        {{/curve}}
        </tbody>
        </table>
        </details>
        </section>
        {{/kinds}}
        </body>
        </html>

        """

    static let summaryTable = """
        <table>
        <thead><tr>{{#summaryHeader}}<th>{{.}}</th>{{/summaryHeader}}</tr></thead>
        <tbody>
        {{#rows}}
        <tr>{{#cells}}<td>{{.}}</td>{{/cells}}<td class="text">{{targets}}</td></tr>
        {{/rows}}
        </tbody>
        </table>

        """

    static func render(_ report: QualityReport) throws -> String {
        var library = MustacheLibrary()
        try library.register(summaryTable, named: "summaryTable")
        let page = try MustacheTemplate(string: template)
        return page.render(context(report), library: library)
    }

    static func context(_ report: QualityReport) -> [String: Any] {
        var context: [String: Any] = [
            "subtitle": ReportText.subtitle(report),
            "summaryHeader": summaryHeader,
            "curveHeader": curveHeader,
            "kinds": report.kinds.map(kindContext),
        ]
        if report.kinds.count > 1 {
            context["totals"] = [
                "rows": RouteKind.allCases.map { summaryRow(report.total($0)) },
                "headToHead": ReportText.headToHeadSentence(report.headToHeadTotal),
            ] as [String: Any]
        } else {
            context["totals"] = false
        }
        return context
    }

    static func kindContext(_ kind: KindReport) -> [String: Any] {
        [
            "kind": kind.kind,
            "tasks": kind.tasks == 1 ? "1 task" : "\(kind.tasks) tasks",
            "rows": RouteKind.allCases.map { summaryRow(kind.summary($0)) },
            "barChart": SVGCharts.qualityBars(kind: kind.kind, internal: kind.internalSummary, external: kind.externalSummary),
            "curveChart": SVGCharts.learningCurve(kind: kind.kind, curve: kind.curve),
            "headToHead": ReportText.headToHeadSentence(kind.headToHead),
            "curve": kind.curve.map { ["cells": ReportText.curveCells($0)] },
        ]
    }

    /// The cells of a summary row, and the targets for a wrapping text cell of their own.
    static func summaryRow(_ s: RouteSummary) -> [String: Any] {
        ["cells": ReportText.summaryCells(s), "targets": ReportText.targets(s.targets)]
    }
}
