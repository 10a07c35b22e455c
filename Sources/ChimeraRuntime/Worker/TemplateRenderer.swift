import ChimeraCore
import Foundation
import Mustache

/// `template.render`: a Mustache template (swift-mustache, the full spec: sections, inverted
/// sections, partials, set delimiters) rendered over JSON data, as plain text.
///
/// Input: `{"template": "Hello {{name}}!", "data": {"name": "Ada"}, "partials": {"item": "- {{.}}"}}`.
/// `data` (any JSON value; default `{}`) and `partials` (names to templates) are optional. A
/// routed task (`{"kind", "text", "prompt"}`) has no `template`: its `text` is the template.
/// Output: `{"output": "Hello Ada!"}`.
///
/// Values are not HTML-escaped (`{{x}}` and `{{{x}}}` render the same): the output is text for
/// prompts and reports, not a web page. A template that wants escaping starts with
/// `{{% CONTENT_TYPE: HTML}}`. Whole numbers render without a decimal point (`3`, not `3.0`);
/// `null` and a missing name render as nothing and are falsy in sections.
///
/// A template that does not parse fails with `invalid_input`, naming the line and column:
/// `"template": line 1, column 11: a section is closed with another name than it was opened with — in "{{#a}}x{{/b}}"`.
enum TemplateRenderer {
    /// Put before every template: no escaping. On its own line, so it is a standalone tag and
    /// leaves the template's own first line (and its standalone tags) as they were.
    static let textPragma = "{{% CONTENT_TYPE: TEXT}}\n"

    /// The handler: parses, renders, answers `{"output": text}`.
    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let source: String
        let field: String
        if let value = input["template"] {
            guard case .string(let text) = value else { throw TaskFailure(.invalidInput, "\"template\": expected a string, found \(value.typeName)") }
            (source, field) = (text, "template")
        } else if case .string(let text) = input {
            (source, field) = (text, "input")
        } else if case .string(let text)? = input["text"] {
            (source, field) = (text, "text")
        } else {
            throw TaskFailure(.invalidInput, "expected an object with a \"template\" string (and optional \"data\" and \"partials\"), found \(input.typeName)")
        }
        let data = input["data"] ?? .object([])
        var library = MustacheLibrary()
        if let partials = input["partials"], partials != .null {
            guard case .object(let members) = partials else {
                throw TaskFailure(.invalidInput, "\"partials\": expected an object of partial names and templates, found \(partials.typeName)")
            }
            for member in members {
                let path = JSONPath.appending(key: member.key, to: "partials")
                guard case .string(let text) = member.value else {
                    throw TaskFailure(.invalidInput, "\"\(path)\": expected a template (a string), found \(member.value.typeName)")
                }
                library.register(try parse(text, field: path), named: member.key)
            }
        }
        let template = try parse(source, field: field)
        return .object([JSONMember("output", .string(template.render(mustacheValue(data), library: library)))])
    }

    /// `text` parsed with escaping off; a parse error becomes `invalid_input` naming `field`, the line and the column.
    static func parse(_ text: String, field: String) throws(TaskFailure) -> MustacheTemplate {
        do {
            return try MustacheTemplate(string: textPragma + text)
        } catch let error as MustacheTemplate.ParserError {
            // The pragma is line 1 of what was parsed: the user's line N is line N + 1 there.
            let line = max(1, error.context.lineNumber - 1)
            let near = error.context.line.trimmingCharacters(in: .whitespaces)
            throw TaskFailure(.invalidInput, "\"\(field)\": line \(line), column \(error.context.columnNumber): \(describe(error.error))"
                + (near.isEmpty ? "" : " — in \"\(near.prefix(80))\""))
        } catch {
            throw TaskFailure(.invalidInput, "\"\(field)\": \(error)")
        }
    }

    /// What a parse error means, in words.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? MustacheTemplate.Error else { return "\(error)" }
        switch error {
        case .sectionCloseNameIncorrect: return "a section is closed with another name than it was opened with"
        case .unfinishedName: return "a tag is not finished (expected a name, then \"}}\")"
        case .expectedSectionEnd: return "a section is never closed (expected {{/name}})"
        case .invalidSetDelimiter: return "the set-delimiter tag is malformed (expected {{=<% %>=}})"
        case .transformAppliedToInheritanceSection: return "a transform cannot apply to an inheritance section"
        case .illegalTokenInsideInheritSection: return "only block definitions may appear inside an inheritance section"
        case .textInsideInheritSection: return "text is not allowed inside an inheritance section"
        case .invalidConfigVariableSyntax: return "the pragma is malformed (expected {{% CONTENT_TYPE: TEXT}})"
        case .unrecognisedConfigVariable: return "unknown pragma (only CONTENT_TYPE: TEXT or HTML is known)"
        }
    }

    /// A JSON value as swift-mustache reads context objects.
    static func mustacheValue(_ value: JSONValue) -> Any {
        switch value {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let d):
            if d == d.rounded(), abs(d) < 1e15 { return Int(d) }
            return d
        case .string(let s): return s
        case .array(let items): return items.map(mustacheValue)
        case .object(let members):
            var dictionary: [String: Any] = [:]
            for member in members { dictionary[member.key] = mustacheValue(member.value) }
            return dictionary
        }
    }
}
