import ChimeraCore
import Mustache

/// The `md` format: a Markdown document rendered from ``template``. Every user-derived string is
/// Markdown-escaped in Swift before it reaches the template, which renders as plain text.
enum MarkdownRenderer {
    static let summaryHeader = ["Route", "N", "Chosen", "Shadow", "Quality (mean ± 95% CI)", "95% CI", "Pass", "P50", "P95",
                                "Success", "Cost (USD)", "Quota", "Targets"]
    static let summaryAlign = [":--", "--:", "--:", "--:", "--:", ":-:", "--:", "--:", "--:", "--:", "--:", "--:", ":--"]
    static let curveHeader = ["Window (UTC)", "Tasks", "Internal share", "Internal quality", "External quality"]
    static let curveAlign = [":--", "--:", "--:", "--:", "--:"]

    static let template = """
        {{% CONTENT_TYPE: TEXT}}
        # Chimera quality report

        {{subtitle}}.

        {{^kinds}}
        **No tasks recorded in this period.**
        {{/kinds}}
        {{#totals}}
        ## All kinds

        {{>table}}

        Head-to-head: {{headToHead}}.

        {{/totals}}
        {{#kinds}}
        ## {{kind}}

        {{tasks}}.

        {{>table}}

        ### Head-to-head

        {{headToHead}}.

        ### Learning curve

        {{#curve}}
        {{>table}}
        {{/curve}}

        {{/kinds}}
        """

    /// A table from `header`, `align` and `rows` (each with `cells`).
    static let tablePartial = """
        {{% CONTENT_TYPE: TEXT}}
        |{{#header}} {{.}} |{{/header}}
        |{{#align}} {{.}} |{{/align}}
        {{#rows}}
        |{{#cells}} {{.}} |{{/cells}}
        {{/rows}}
        """

    static func render(_ report: QualityReport) throws -> String {
        var library = MustacheLibrary()
        try library.register(tablePartial, named: "table")
        let page = try MustacheTemplate(string: template)
        var text = page.render(context(report), library: library)
        while text.hasSuffix("\n\n") { text.removeLast() }
        return text
    }

    static func context(_ report: QualityReport) -> [String: Any] {
        var context: [String: Any] = [
            "subtitle": ReportText.markdown(ReportText.subtitle(report)),
            "kinds": report.kinds.map(kindContext),
        ]
        if report.kinds.count > 1 {
            context["totals"] = [
                "header": summaryHeader, "align": summaryAlign,
                "rows": RouteKind.allCases.map { ["cells": cells(report.total($0))] },
                "headToHead": ReportText.headToHeadSentence(report.headToHeadTotal),
            ] as [String: Any]
        } else {
            context["totals"] = false
        }
        return context
    }

    static func kindContext(_ kind: KindReport) -> [String: Any] {
        [
            "kind": ReportText.markdown(kind.kind),
            "tasks": kind.tasks == 1 ? "1 task" : "\(kind.tasks) tasks",
            "header": summaryHeader, "align": summaryAlign,
            "rows": RouteKind.allCases.map { ["cells": cells(kind.summary($0))] },
            "headToHead": ReportText.headToHeadSentence(kind.headToHead),
            // The curve table is the same partial with other columns, rendered in this context.
            "curve": [
                "header": curveHeader, "align": curveAlign,
                "rows": kind.curve.map { ["cells": ReportText.curveCells($0).map(ReportText.markdown)] },
            ] as [String: Any],
        ]
    }

    /// A summary row: the shared cells and the targets, all Markdown-escaped.
    static func cells(_ s: RouteSummary) -> [String] {
        (ReportText.summaryCells(s) + [ReportText.targets(s.targets)]).map(ReportText.markdown)
    }
}
