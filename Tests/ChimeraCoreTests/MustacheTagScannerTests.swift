import Testing
@testable import ChimeraCore

@Suite struct MustacheTagScannerTests {
    @Test func tags_areFoundWithTheirKindNameOffsetAndDepth() {
        let (tags, problems) = MustacheTagScanner.scan("A {{x}} {{{y.z}}} {{& w }}{{#s}}{{.}}{{^t}}{{u}}{{/t}}{{/s}}{{! {{ignored}} }}")
        #expect(problems.isEmpty)
        #expect(tags == [
            MustacheTag(kind: .variable, name: "x", offset: 4, depth: 0),
            MustacheTag(kind: .unescaped, name: "y.z", offset: 11, depth: 0),
            MustacheTag(kind: .unescaped, name: "w", offset: 22, depth: 0),
            MustacheTag(kind: .section, name: "s", offset: 29, depth: 0),
            MustacheTag(kind: .variable, name: ".", offset: 34, depth: 1),
            MustacheTag(kind: .invertedSection, name: "t", offset: 40, depth: 1),
            MustacheTag(kind: .variable, name: "u", offset: 45, depth: 2),
        ])
    }

    @Test func transforms_areStripped_andDelimitersCanChange() {
        let (tags, problems) = MustacheTagScanner.scan("{{uppercased(reversed(a.b))}} {{=<% %>=}}<%c%> {{d}} <%={{ }}=%>{{e}}")
        #expect(problems.isEmpty)
        #expect(tags.map(\.name) == ["a.b", "c", "e"])
    }

    @Test func aSwappedClose_isReportedOnce_andAMisspeltCloseToo() {
        let swapped = MustacheTagScanner.scan("{{#a}}{{#b}}{{/a}}{{/b}}").problems
        #expect(swapped.map(\.message) == ["{{/a}} does not match the open section {{#b}}"])
        #expect(swapped.map(\.offset) == [12])
        let misspelt = MustacheTagScanner.scan("{{#items}}x{{/itmes}}").problems
        #expect(misspelt.map(\.message) == ["{{/itmes}} does not match the open section {{#items}}"])
    }

    @Test func problems_areInTemplateOrder() {
        let problems = MustacheTagScanner.scan("{{#open}} {{> partial}} {{a..b}} {{x").problems
        #expect(problems.map(\.offset) == [0, 10, 26, 33])
        #expect(problems.map(\.message) == [
            "section {{#open}} is never closed",
            "{{> partial}}: partials, parents and blocks are not available in pipeline templates",
            "invalid name \"a..b\" in {{a..b}}",
            "unclosed tag: {{ has no matching }}",
        ])
    }
}
