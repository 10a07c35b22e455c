/// Turns `--input NAME=VALUE` texts into a pipeline's typed inputs, with its defaults.
public enum PipelineInputs {
    /// One given input: its name, its text, and where it came from (for messages).
    public struct Given: Sendable, Equatable {
        public var name: String
        public var text: String
        /// `--input topic=…` or `--input-file articles=PATH`.
        public var source: String

        public init(name: String, text: String, source: String) {
            self.name = name
            self.text = text
            self.source = source
        }
    }

    /// The inputs as one JSON object in declaration order: each given text converted to its
    /// declared type, defaults for the rest. Every problem is reported at once: an unknown name
    /// (with the closest declared one), a text that is not of the type, a required input missing.
    ///
    /// Conversion: `string` takes the text as is; `number`, `integer` and `boolean` parse it
    /// (`true`/`false`); `array` and `object` parse it as JSON, and an `array` given text that
    /// is not JSON becomes one string per non-empty line (a file of one article per line).
    public static func resolve(_ pipeline: PipelineDefinition, given: [Given]) -> Result<JSONValue, PipelineInputError> {
        var problems: [String] = []
        var values: [String: JSONValue] = [:]
        let declared = pipeline.inputs.map(\.name)
        for input in given {
            guard let spec = pipeline.inputs.first(where: { $0.name == input.name }) else {
                let hint = Suggestion.closest(to: input.name, in: declared).map { " (did you mean \"\($0)\"?)" } ?? ""
                let known = declared.isEmpty ? "it declares none" : "it declares \(declared.joined(separator: ", "))"
                problems.append("\(input.source): pipeline \"\(pipeline.name)\" has no input \"\(input.name)\"\(hint); \(known)")
                continue
            }
            if values[input.name] != nil {
                problems.append("\(input.source): input \"\(input.name)\" is given twice")
                continue
            }
            switch convert(input.text, to: spec.type) {
            case .some(let value): values[input.name] = value
            case .none: problems.append("\(input.source): input \"\(input.name)\" must be \(describe(spec.type)), got \(preview(input.text))")
            }
        }
        var members: [JSONMember] = []
        for spec in pipeline.inputs {
            if let value = values[spec.name] ?? spec.defaultValue {
                members.append(JSONMember(spec.name, value))
            } else {
                problems.append("input \"\(spec.name)\" (\(spec.type.rawValue)) is required: give it with --input \(spec.name)=VALUE or --input-file \(spec.name)=PATH")
            }
        }
        return problems.isEmpty ? .success(.object(members)) : .failure(PipelineInputError(problems: problems))
    }

    static func convert(_ text: String, to type: PipelineValueType) -> JSONValue? {
        switch type {
        case .string:
            return .string(text)
        case .number:
            guard case .number(let n)? = try? JSONParser.parse(text.trimmed) else { return nil }
            return .number(n)
        case .integer:
            guard case .number(let n)? = try? JSONParser.parse(text.trimmed), n.rounded() == n else { return nil }
            return .number(n)
        case .boolean:
            switch text.trimmed { case "true": return .bool(true); case "false": return .bool(false); default: return nil }
        case .array:
            if let value = try? JSONParser.parse(text) {
                if case .array = value { return value }
                return nil
            }
            return .array(text.split(whereSeparator: \.isNewline).map { String($0).trimmed }.filter { !$0.isEmpty }.map { .string($0) })
        case .object:
            guard let value = try? JSONParser.parse(text), case .object = value else { return nil }
            return value
        }
    }

    private static func describe(_ type: PipelineValueType) -> String {
        switch type {
        case .string: return "a string"
        case .number: return "a number"
        case .integer: return "an integer"
        case .boolean: return "true or false"
        case .array: return "a JSON array (or one item per line)"
        case .object: return "a JSON object"
        }
    }

    private static func preview(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flat.count > 40 ? "\"\(flat.prefix(40))…\"" : "\"\(flat)\""
    }
}

/// Inputs that could not be resolved: every problem, one sentence each.
public struct PipelineInputError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

private extension String {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
