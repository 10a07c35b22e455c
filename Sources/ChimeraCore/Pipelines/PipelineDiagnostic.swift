/// One problem in a pipeline file: where it is (file, line, column, JSON path), what is wrong,
/// and how to fix it.
///
/// ```
/// Pipelines/research.json:14:18: error: step "draft" needs unknown step "reserch" (at $.steps[1].needs[0])
///   hint: did you mean "research"?
/// ```
public struct PipelineDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// How bad a diagnostic is: an error makes the pipeline invalid; a warning does not.
    public enum Severity: String, Sendable, Equatable, CaseIterable {
        case error, warning
    }

    /// The file as given to the decoder.
    public var file: String
    /// 1-based line and column (the column counts UTF-8 bytes, as the JSON path's value or the
    /// offending character inside a string).
    public var line: Int
    public var column: Int
    /// JSON path of the offending value: `$.steps[2].needs[0]`.
    public var path: String
    /// What was expected and what was found.
    public var message: String
    /// How to fix it, when there is something useful to say.
    public var hint: String?
    public var severity: Severity

    /// A diagnostic at `line`:`column` of `file`, about the value at `path`.
    public init(file: String, line: Int, column: Int, path: String, message: String, hint: String? = nil, severity: Severity = .error) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
        self.hint = hint
        self.severity = severity
    }

    /// `FILE:LINE:COL: error: MESSAGE (at PATH)`, then `\n  hint: HINT` when there is a hint.
    public var description: String {
        "\(file):\(line):\(column): \(severity.rawValue): \(message) (at \(path))" + (hint.map { "\n  hint: \($0)" } ?? "")
    }

    /// The diagnostic as one JSON object: `file`, `line`, `column`, `path`, `severity`,
    /// `message` and (when there is one) `hint`.
    public var jsonValue: JSONValue {
        var members = [
            JSONMember("file", .string(file)), JSONMember("line", .number(Double(line))), JSONMember("column", .number(Double(column))),
            JSONMember("path", .string(path)), JSONMember("severity", .string(severity.rawValue)), JSONMember("message", .string(message)),
        ]
        if let hint { members.append(JSONMember("hint", .string(hint))) }
        return .object(members)
    }
}
