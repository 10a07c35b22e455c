import ChimeraCore
import Testing
@testable import ChimeraRuntime

/// `template.render`, the built-in worker's Mustache handler, as a pure function.
@Suite struct TemplateRenderTests {
    func render(_ input: String) throws -> String? {
        try TemplateRenderer.handle(JSONParser.parse(input))["output"]?.stringValue
    }

    func failure(_ input: String) throws -> TaskFailure? {
        let value = try JSONParser.parse(input)
        do throws(TaskFailure) {
            _ = try TemplateRenderer.handle(value)
            return nil
        } catch {
            return error
        }
    }

    @Test func variables_areNotHTMLEscaped_andNumbersRenderAsWritten() throws {
        #expect(try render(#"{"template": "Hello {{name}} / {{{name}}}: {{n}} items at {{price}}", "data": {"name": "R&D <team> \"q\"", "n": 3, "price": 2.5}}"#)
            == #"Hello R&D <team> "q" / R&D <team> "q": 3 items at 2.5"#)
        // A template may still ask for HTML escaping.
        #expect(try render(#"{"template": "{{% CONTENT_TYPE: HTML}}{{x}}", "data": {"x": "<b>"}}"#) == "&lt;b&gt;")
    }

    @Test func sections_invertedSections_null_andStandaloneFirstLine() throws {
        let list = #"{"template": "{{#items}}\n- {{name}}: {{count}}\n{{/items}}\n{{^items}}none\n{{/items}}", "data": {"items": [{"name": "a", "count": 3}, {"name": "b", "count": 1}]}}"#
        #expect(try render(list) == "- a: 3\n- b: 1\n", "the standalone tag on line 1 leaves no blank line")
        #expect(try render(#"{"template": "{{#items}}x{{/items}}{{^items}}none{{/items}}", "data": {"items": []}}"#) == "none")
        #expect(try render(#"{"template": "{{#x}}yes{{/x}}{{^x}}no{{/x}}[{{x}}]", "data": {"x": null}}"#) == "no[]")
        #expect(try render(#"{"template": "{{#ok}}yes{{/ok}} {{missing}}.", "data": {"ok": true}}"#) == "yes .")
    }

    @Test func partials_andTheRoutedTaskShape() throws {
        #expect(try render(#"{"template": "{{#people}}{{>person}}{{/people}}", "partials": {"person": "[{{name}}]"}, "data": {"people": [{"name": "Ada"}, {"name": "Alan"}]}}"#)
            == "[Ada][Alan]")
        // What TaskRouter sends: the prompt is the template, with no data.
        #expect(try render(#"{"kind": "template", "text": "Hi {{who}}!", "prompt": "Hi {{who}}!"}"#) == "Hi !")
        #expect(try render(#""plain {{x}}""#) == "plain ")
    }

    @Test func badInput_namesTheFieldLineAndColumn() throws {
        let unclosed = try #require(try failure(#"{"template": "Dear {{name}},\n{{#items}}- {{.}}", "data": {}}"#))
        #expect(unclosed.kind == .invalidInput)
        #expect(unclosed.message == #""template": line 2, column 18: a section is never closed (expected {{/name}}) — in "{{#items}}- {{.}}""#)
        let mismatched = try failure(#"{"template": "{{#a}}x{{/b}}"}"#)?.message
        #expect(mismatched == #""template": line 1, column 11: a section is closed with another name than it was opened with — in "{{#a}}x{{/b}}""#)
        #expect(try failure(#"{"template": 3}"#)?.message == #""template": expected a string, found a number"#)
        #expect(try failure(#"{"template": "x", "partials": {"p": 1}}"#)?.message == #""partials.p": expected a template (a string), found a number"#)
        #expect(try failure(#"{"template": "x", "partials": ["p"]}"#)?.message == #""partials": expected an object of partial names and templates, found an array"#)
        #expect(try failure("[1]")?.message == #"expected an object with a "template" string (and optional "data" and "partials"), found an array"#)
    }
}
