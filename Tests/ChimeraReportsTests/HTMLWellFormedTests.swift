import ChimeraCore
import Testing
@testable import ChimeraReports

/// The HTML report parses as balanced markup: every element opened is closed, in order, and
/// only void elements stand alone. (No HTML parser is available without Foundation; this
/// checker is strict on the subset the report uses.)
@Suite struct HTMLWellFormedTests {
    static let voidElements: Set<String> = ["meta", "br", "hr", "img", "input", "link", "col", "wbr"]

    /// The first problem found, or nil when the tags balance.
    static func problem(in html: String) -> String? {
        var stack: [String] = []
        var rest = Substring(html)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { return "unterminated tag" }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("!") { continue }  // <!doctype html>, comments
            let selfClosing = tag.hasSuffix("/")
            let closing = tag.hasPrefix("/")
            let name = String(tag.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber }).lowercased()
            guard !name.isEmpty else { return "empty tag name in <\(tag)>" }
            if closing {
                guard stack.last == name else { return "</\(name)> closes <\(stack.last ?? "nothing")>" }
                stack.removeLast()
            } else if !selfClosing, !voidElements.contains(name) {
                stack.append(name)
            }
        }
        return stack.isEmpty ? nil : "unclosed <\(stack.joined(separator: "> <"))>"
    }

    @Test func theCheckerCatchesBrokenMarkup() {
        #expect(Self.problem(in: "<html><body><p>x</p></body></html>") == nil)
        #expect(Self.problem(in: "<div><span></div>") == "</div> closes <span>")
        #expect(Self.problem(in: "<svg><line/><g>") == "unclosed <svg> <g>")
    }

    @Test func theHTMLReport_isWellFormed_withChartsPerKind() throws {
        var rows: [ReportRow] = []
        for i in 0..<12 {
            let at = EpochMillis(1_795_953_600_000 + i * 60_000)
            rows.append(ReportRow(taskId: "t\(i)", at: at, kind: i % 2 == 0 ? "summarize" : "math <&> \"x\"", arm: .internal("h"),
                                  chosen: i % 3 != 0, score: 0.5 + Double(i % 5) / 10, passed: i % 5 > 0, latencyMs: Int64(10 + i)))
            rows.append(ReportRow(taskId: "t\(i)", at: at, kind: i % 2 == 0 ? "summarize" : "math <&> \"x\"", arm: .external, target: "m:free",
                                  chosen: i % 3 == 0, score: 0.8, passed: true, latencyMs: 400, costUSD: 0.001))
        }
        let report = ReportBuilder.build(rows, options: ReportOptions(now: 1_795_960_000_000))
        let html = try ReportRenderer.render(report, as: .html)
        #expect(Self.problem(in: html) == nil, "\(Self.problem(in: html) ?? "")")
        #expect(html.components("<svg") == 4, "two charts for each of two kinds")
        #expect(!html.contains("math <&>"), "the kind name is escaped")
    }
}

private extension String {
    func components(_ needle: String) -> Int { ranges(of: needle).count }
}
