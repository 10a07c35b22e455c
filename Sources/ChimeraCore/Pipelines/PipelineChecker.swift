/// Decodes one pipeline document and checks it, collecting every diagnostic.
///
/// Two passes: ``check(_:)`` first reads the fields (types, ranges, enumerations, unknown
/// fields, through the config decoder's ``DecodingContext`` and ``ObjectReader``) and notes
/// what the second pass needs; then the references between them are checked
/// (`PipelineChecker+References.swift`): needs and cycles, templates, `when`, `foreach`.
final class PipelineChecker {
    let bytes: [UInt8]
    let file: String
    let validation: PipelineValidationContext
    /// Structural problems are reported here (``ObjectReader`` writes to it).
    let context: DecodingContext
    /// Problems located inside strings, and warnings, with their byte offset.
    var extra: [(diagnostic: PipelineDiagnostic, offset: Int)] = []

    /// What the reference checks need to know about each step.
    struct StepFacts {
        var path: String
        /// Nil when the id is missing or invalid.
        var id: String?
        var needs: [(name: String, path: String)] = []
        /// Template strings of the step, with their JSON paths.
        var templates: [(text: String, path: String)] = []
        var when: (condition: PipelineCondition, path: String)?
        var foreach: (text: String, path: String)?
        var jsonOutput = false
        var isHandlerStep = false
    }

    var steps: [StepFacts] = []
    /// Declared inputs by name, with their type (nil when the type is invalid).
    var inputs: [(name: String, type: PipelineValueType?, path: String)] = []
    var outputTemplates: [(text: String, path: String)] = []
    /// Inputs some template, condition or foreach reads.
    var usedInputs: Set<String> = []

    init(bytes: [UInt8], file: String, offsets: [String: Int], source: SourceLocator, validation: PipelineValidationContext) {
        self.bytes = bytes
        self.file = file
        self.validation = validation
        context = DecodingContext(offsets: offsets, source: source, hintsApart: true)
    }

    // MARK: Reporting

    /// Reports at the value at `path` (or its nearest located ancestor).
    func report(_ path: String, _ message: String, hint: String? = nil, severity: PipelineDiagnostic.Severity = .error) {
        report(path, at: locate(path), message, hint: hint, severity: severity)
    }

    /// Reports at byte `offset` of the file.
    func report(_ path: String, at offset: Int, _ message: String, hint: String? = nil, severity: PipelineDiagnostic.Severity = .error) {
        let (line, column) = context.source.lineColumn(of: offset)
        extra.append((PipelineDiagnostic(file: file, line: line, column: column, path: path, message: message, hint: hint, severity: severity), offset))
    }

    /// The offset of the value at `path`, else of its closest recorded ancestor.
    func locate(_ path: String) -> Int {
        var p = path
        while true {
            if let offset = context.offsets[p] { return offset }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }), cut > p.startIndex else { return 0 }
            p = String(p[..<cut])
        }
    }

    /// Every diagnostic, in file order (ties keep the order they were found in).
    func sortedDiagnostics() -> [PipelineDiagnostic] {
        var all: [(PipelineDiagnostic, Int)] = []
        for issue in context.issues {
            let offset = locate(issue.path)
            let (line, column) = context.source.lineColumn(of: offset)
            all.append((PipelineDiagnostic(file: file, line: line, column: column, path: issue.path, message: issue.message, hint: issue.hint), offset))
        }
        all += extra.map { ($0.diagnostic, $0.offset) }
        return all.enumerated()
            .sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }
            .map(\.element.0)
    }

    // MARK: Fields

    func check(_ root: JSONValue) -> PipelineDefinition {
        var pipeline = PipelineDefinition(name: "")
        guard var top = context.object(root, "$", known: PipelineDecoder.pipelineKeys) else { return pipeline }
        if let schema = top.take("$schema"), schema.stringValue == nil {
            report(top.path("$schema"), "expected a string (the schema's URL or path), found \(schema.typeName)")
        }
        pipeline.name = top.string("name", required: "the pipeline's name") ?? ""
        pipeline.description = top.string("description")
        if let value = top.take("inputs") { pipeline.inputs = decodeInputs(value, top.path("inputs")) }
        if let value = top.take("steps") {
            if case .array(let items) = value {
                if items.isEmpty { report(top.path("steps"), "a pipeline needs at least one step") }
                for (i, item) in items.enumerated() {
                    if let step = decodeStep(item, "\(top.path("steps"))[\(i)]") { pipeline.steps.append(step) }
                }
            } else {
                report(top.path("steps"), "expected an array of steps, found \(value.typeName)")
            }
        } else {
            context.report("$", "missing required field \"steps\" (an array of steps)")
        }
        if let value = top.take("outputs") { pipeline.outputs = decodeOutputs(value, top.path("outputs")) }
        top.finish()
        checkReferences()
        return pipeline
    }

    func decodeInputs(_ value: JSONValue, _ path: String) -> [PipelineInput] {
        guard case .object(let members) = value else {
            report(path, "expected an object of inputs (name: type, or name: {type, default, description}), found \(value.typeName)")
            return []
        }
        var result: [PipelineInput] = []
        for member in members {
            let memberPath = JSONPath.appending(key: member.key, to: path)
            checkName(member.key, memberPath, what: "input name")
            if inputs.contains(where: { $0.name == member.key }) {
                report(memberPath, "input \"\(member.key)\" is declared twice", hint: "input names must be unique; keep one")
                continue
            }
            var type: PipelineValueType?
            var defaultValue: JSONValue?
            var description: String?
            switch member.value {
            case .string(let name):
                type = context.choice(name, PipelineValueType.self, at: memberPath)
            case .object:
                guard var reader = context.object(member.value, memberPath, known: PipelineDecoder.inputKeys) else { continue }
                if reader.has("type") {
                    type = reader.choice("type", PipelineValueType.self)
                } else {
                    context.report(memberPath, "missing required field \"type\" (one of \(PipelineValueType.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")))")
                }
                defaultValue = reader.take("default")
                description = reader.string("description")
                reader.finish()
                if let type, let defaultValue, !type.schemaType.matches(defaultValue) {
                    report(reader.path("default"), "the default \(excerpt(defaultValue)) is not \(type.schemaType.phrase) (the input's type)",
                           hint: "give a default of type \(type.rawValue), or change the type")
                }
            default:
                report(memberPath, "expected a type name (\"string\", \"array\", …) or an object {type, default, description}, found \(member.value.typeName)")
            }
            inputs.append((member.key, type, memberPath))
            if let type { result.append(PipelineInput(name: member.key, type: type, defaultValue: defaultValue, description: description)) }
        }
        return result
    }

    func decodeOutputs(_ value: JSONValue, _ path: String) -> [PipelineOutput] {
        guard case .object(let members) = value else {
            report(path, "expected an object of named output templates, found \(value.typeName)")
            return []
        }
        var result: [PipelineOutput] = []
        for member in members {
            let memberPath = JSONPath.appending(key: member.key, to: path)
            checkName(member.key, memberPath, what: "output name")
            if result.contains(where: { $0.name == member.key }) {
                report(memberPath, "output \"\(member.key)\" is declared twice", hint: "output names must be unique; keep one")
                continue
            }
            guard case .string(let template) = member.value else {
                report(memberPath, "expected a template string, found \(member.value.typeName)")
                continue
            }
            outputTemplates.append((template, memberPath))
            result.append(PipelineOutput(name: member.key, template: template))
        }
        return result
    }

    func decodeStep(_ value: JSONValue, _ path: String) -> PipelineStep? {
        var facts = StepFacts(path: path)
        defer { steps.append(facts) }
        guard var r = context.object(value, path, known: PipelineDecoder.stepKeys) else { return nil }
        let id = r.string("id", required: "a unique name that needs and templates use")
        if let id, checkName(id, r.path("id"), what: "step id") { facts.id = id }
        var step = PipelineStep(id: id ?? "")
        step.agent = r.string("agent")
        if let agent = step.agent, let known = validation.knownAgents, !known.contains(agent) {
            report(r.path("agent"), "unknown agent \"\(agent)\"", hint: suggestion(agent, in: known, listing: "known agents"))
        }
        if let kind = r.string("kind") { step.kind = kind }
        step.handler = r.string("handler")
        if let handler = step.handler, let known = validation.knownHandlers, !known.contains(handler) {
            report(r.path("handler"), "unknown handler \"\(handler)\"", hint: suggestion(handler, in: known, listing: "known handlers"))
        }
        step.prompt = template(&r, "prompt", &facts)
        step.system = template(&r, "system", &facts)
        if let input = r.take("input") {
            step.input = input
            collectTemplates(input, r.path("input"), &facts)
        }
        facts.isHandlerStep = step.handler != nil
        switch (value["prompt"] != nil, value["handler"] != nil) {
        case (true, true):
            report(r.path("handler"), "a step has either \"prompt\" or \"handler\", not both",
                   hint: "a prompt step is routed by JHADE; a handler step calls one handler with \"input\"")
        case (false, false):
            context.report(path, "missing required field \"prompt\" or \"handler\"",
                           hint: "add \"prompt\" (a task JHADE routes) or \"handler\" (a handler called directly)")
        default: break
        }
        if step.input != nil, step.handler == nil, step.prompt != nil {
            report(r.path("input"), "\"input\" is only read by handler steps", hint: "put the text in \"prompt\", or name a \"handler\"")
        }
        if let needs = r.take("needs") { facts.needs = decodeNeeds(needs, r.path("needs")) }
        step.needs = facts.needs.map(\.name)
        if let route = r.choice("route", RoutePreference.self) { step.route = route }
        if let model = r.take("model") { step.models = decodeModels(model, r.path("model")) }
        if let quality = r.take("quality") { step.quality = decodeQuality(quality, r.path("quality"), &facts) }
        if let foreach = r.string("foreach") {
            step.foreach = foreach
            facts.foreach = (foreach, r.path("foreach"))
        }
        step.merge = r.choice("merge", MergeStrategy.self)
        if let when = r.string("when") {
            step.when = when
            do throws(PipelineConditionError) {
                facts.when = (try PipelineCondition.parse(when), r.path("when"))
            } catch {
                report(r.path("when"), at: stringOffset(r.path("when"), error.offset), "invalid condition: \(error.message)",
                       hint: "see the when grammar in docs/PIPELINES.md")
            }
        }
        if let retry = r.take("retry") { step.retry = decodeRetry(retry, r.path("retry")) }
        if let timeout = r.take("timeout") { step.timeoutMs = decodeDuration(timeout, r.path("timeout")) }
        if let output = r.take("output") { step.output = decodeOutput(output, r.path("output")) }
        facts.jsonOutput = step.output.format == .json
        if r.has("max_tokens") {
            var maxTokens = 0
            r.int("max_tokens", 1...10_000_000, into: &maxTokens)
            if maxTokens > 0 { step.maxTokens = maxTokens }
        }
        if r.has("temperature") {
            var temperature = -1.0
            r.double("temperature", 0...2, into: &temperature)
            if temperature >= 0 { step.temperature = temperature }
        }
        if step.handler != nil {
            for key in ["agent", "route", "model", "system"] where value[key] != nil {
                report(r.path(key), "\"\(key)\" has no effect on a handler step", hint: "a handler step calls \"\(step.handler!)\" directly, bypassing JHADE", severity: .warning)
            }
        }
        if step.route == .internal, !step.models.isEmpty {
            report(r.path("model"), "\"model\" has no effect when \"route\" is \"internal\"", hint: "remove the model, or use route \"auto\"", severity: .warning)
        }
        r.finish()
        return step
    }

    /// A template field: a string, noted for the reference checks.
    func template(_ r: inout ObjectReader, _ key: String, _ facts: inout StepFacts) -> String? {
        guard let text = r.string(key) else { return nil }
        facts.templates.append((text, r.path(key)))
        return text
    }

    /// Every string inside a handler step's `input` is a template.
    func collectTemplates(_ value: JSONValue, _ path: String, _ facts: inout StepFacts) {
        switch value {
        case .string(let text): facts.templates.append((text, path))
        case .array(let items): for (i, item) in items.enumerated() { collectTemplates(item, "\(path)[\(i)]", &facts) }
        case .object(let members): for m in members { collectTemplates(m.value, JSONPath.appending(key: m.key, to: path), &facts) }
        default: break
        }
    }

    func decodeNeeds(_ value: JSONValue, _ path: String) -> [(name: String, path: String)] {
        switch value {
        case .string(let name) where !name.isEmpty:
            return [(name, path)]
        case .array(let items):
            var result: [(name: String, path: String)] = []
            for (i, item) in items.enumerated() {
                guard case .string(let name) = item, !name.isEmpty else {
                    report("\(path)[\(i)]", "expected a step id (a non-empty string), found \(excerpt(item))")
                    continue
                }
                if result.contains(where: { $0.name == name }) {
                    report("\(path)[\(i)]", "\"\(name)\" is listed twice in needs", hint: "remove the repeat", severity: .warning)
                    continue
                }
                result.append((name, "\(path)[\(i)]"))
            }
            return result
        default:
            report(path, "expected an array of step ids, found \(excerpt(value))")
            return []
        }
    }

    func decodeModels(_ value: JSONValue, _ path: String) -> [String] {
        switch value {
        case .string(let model) where !model.isEmpty:
            return [model]
        case .array(let items):
            if items.isEmpty { report(path, "expected at least one model id", hint: "remove \"model\" to let the agent or JHADE choose") }
            var result: [String] = []
            for (i, item) in items.enumerated() {
                if case .string(let model) = item, !model.isEmpty { result.append(model) } else {
                    report("\(path)[\(i)]", "expected a model id (a non-empty string), found \(excerpt(item))")
                }
            }
            return result
        default:
            report(path, "expected a model id or an array of model ids (the fallback chain), found \(excerpt(value))")
            return []
        }
    }

    func decodeQuality(_ value: JSONValue, _ path: String, _ facts: inout StepFacts) -> StepQuality? {
        guard var r = context.object(value, path, known: PipelineDecoder.qualityKeys) else { return nil }
        var quality = StepQuality()
        if r.has("min_score") {
            var score = -1.0
            r.double("min_score", 0...1, into: &score)
            if score >= 0 { quality.minScore = score }
        }
        quality.reference = template(&r, "reference", &facts)
        if let scorers = r.take("scorers") {
            let scorersPath = r.path("scorers")
            if case .array(let items) = scorers {
                for (i, item) in items.enumerated() {
                    guard let scorer = decodeScorer(item, "\(scorersPath)[\(i)]") else { continue }
                    if scorer.name == "reference", value["reference"] == nil {
                        report("\(scorersPath)[\(i)]", "the \"reference\" scorer needs a reference answer", hint: "add \"reference\": \"…\" to this step's quality")
                    }
                    quality.scorers.append(scorer)
                }
            } else {
                report(scorersPath, "expected an array of scorers (\"format\", \"reference:2\" or {name, weight}), found \(value.typeName)")
            }
        }
        r.finish()
        return quality
    }

    func decodeScorer(_ value: JSONValue, _ path: String) -> StepScorer? {
        let name: String
        var weight = 1.0
        var namePath = path
        switch value {
        case .string(let spec):
            let written = String(spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]).lowercased()
            do throws(ScorerSpecError) {
                (name, weight) = try ScorerSpec.parse(spec)
            } catch {
                // An unknown name says so itself; other problems need the spec they are about.
                report(path, ScorerSpec.knownNames.contains(written) ? error.description : error.message, hint: scorerHint(written))
                return nil
            }
        case .object:
            guard var r = context.object(value, path, known: PipelineDecoder.scorerKeys) else { return nil }
            guard let written = r.string("name", required: "one of \(ScorerSpec.knownNames.joined(separator: ", "))") else {
                r.finish()
                return nil
            }
            namePath = r.path("name")
            if r.has("weight") {
                var w = 0.0
                r.double("weight", 0...1_000, into: &w)
                if w > 0 { weight = w } else if case .number(let d)? = value["weight"], d == 0 {
                    report(r.path("weight"), "expected a weight greater than 0, found 0", hint: "remove the scorer instead of weighting it 0")
                }
            }
            r.finish()
            guard ScorerSpec.knownNames.contains(written) else {
                report(namePath, "unknown scorer \"\(written)\"; known scorers: \(ScorerSpec.knownNames.joined(separator: ", "))", hint: scorerHint(written))
                return nil
            }
            name = written
        default:
            report(path, "expected a scorer (\"format\", \"reference:2\" or {name, weight}), found \(excerpt(value))")
            return nil
        }
        return StepScorer(name: name, weight: weight)
    }

    func scorerHint(_ written: String) -> String? {
        guard !ScorerSpec.knownNames.contains(written) else { return nil }
        return Suggestion.closest(to: written, in: ScorerSpec.knownNames).map { "did you mean \"\($0)\"?" }
    }

    func decodeRetry(_ value: JSONValue, _ path: String) -> StepRetry {
        var retry = StepRetry()
        switch value {
        case .number(let d):
            if d == d.rounded(), d >= 1, d <= 10 { retry.maxAttempts = Int(d) } else {
                report(path, "expected a number of attempts from 1 to 10, found \(value.serialized)", hint: "1 means no retry")
            }
        case .object:
            guard var r = context.object(value, path, known: PipelineDecoder.retryKeys) else { return retry }
            r.int("max_attempts", 1...10, into: &retry.maxAttempts)
            var backoff = Int(retry.backoffMs)
            r.int("backoff_ms", 0...3_600_000, into: &backoff)
            retry.backoffMs = Int64(backoff)
            r.finish()
        default:
            report(path, "expected a number of attempts (1 to 10) or {max_attempts, backoff_ms}, found \(excerpt(value))")
        }
        return retry
    }

    /// `"30s"`, `"500ms"`, `"2m"`, `"1h"` or a number of milliseconds, greater than 0.
    func decodeDuration(_ value: JSONValue, _ path: String) -> Int64? {
        let expected = "expected a duration such as \"30s\", \"500ms\" or \"2m\", or a number of milliseconds"
        switch value {
        case .number(let d):
            guard d == d.rounded(), d <= 86_400_000 else {
                report(path, "\(expected), found \(value.serialized)", hint: "milliseconds are a whole number up to 86400000 (24h)")
                return nil
            }
            guard d > 0 else {
                report(path, "the timeout must be greater than 0, found \(value.serialized)", hint: "remove \"timeout\" to use the coordinator's task timeout")
                return nil
            }
            return Int64(d)
        case .string(let text):
            guard let ms = Self.parseDuration(text) else {
                report(path, "\(expected), found \(excerpt(value))", hint: "units: ms, s, m, h")
                return nil
            }
            guard ms > 0 else {
                report(path, "the timeout must be greater than 0, found \(excerpt(value))", hint: "remove \"timeout\" to use the coordinator's task timeout")
                return nil
            }
            return ms
        default:
            report(path, "\(expected), found \(excerpt(value))")
            return nil
        }
    }

    /// Milliseconds in `"1.5s"`-style text (number then `ms`, `s`, `m` or `h`), or nil.
    static func parseDuration(_ text: String) -> Int64? {
        let units: [(suffix: String, ms: Double)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
        for unit in units where text.hasSuffix(unit.suffix) {
            let number = text.dropLast(unit.suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let d = Double(number) else { continue }
            let ms = d * unit.ms
            guard ms == ms.rounded(), ms <= 86_400_000 else { return nil }
            return Int64(ms)
        }
        return nil
    }

    func decodeOutput(_ value: JSONValue, _ path: String) -> StepOutputSpec {
        var output = StepOutputSpec()
        switch value {
        case .string(let text):
            if let format = context.choice(text, StepOutputSpec.Format.self, at: path) { output.format = format }
        case .object:
            guard var r = context.object(value, path, known: PipelineDecoder.outputKeys) else { return output }
            let hasFormat = r.has("format")
            if let format = r.choice("format", StepOutputSpec.Format.self) { output.format = format }
            if let schema = r.take("schema") {
                // A schema implies JSON unless the format says otherwise.
                if !hasFormat { output.format = .json }
                if output.format == .text, hasFormat {
                    report(r.path("schema"), "a schema applies to JSON output, but \"format\" is \"text\"", hint: "set \"format\": \"json\"")
                }
                do throws(JSONSchemaError) {
                    _ = try JSONSchema(schema)
                    output.schema = schema
                } catch {
                    let inner = r.path("schema") + error.path.dropFirst()
                    report(inner, "not a usable JSON Schema: \(error.message)", hint: "docs/PIPELINES.md lists the supported keywords")
                }
            }
            r.finish()
        default:
            report(path, "expected \"text\", \"json\" or {format, schema}, found \(excerpt(value))")
        }
        return output
    }

    // MARK: Helpers

    /// Whether `name` is `[A-Za-z_][A-Za-z0-9_-]*`, reporting it otherwise.
    @discardableResult
    func checkName(_ name: String, _ path: String, what: String) -> Bool {
        if Self.isValidName(name) { return true }
        report(path, "\(what) \"\(name)\" must start with a letter or '_' and contain only letters, digits, '_' or '-'",
               hint: "templates refer to it as a dotted name, so it cannot contain spaces, dots or other punctuation")
        return false
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, ConditionParser.isNameStart(first) else { return false }
        return name.utf8.allSatisfy(ConditionParser.isNameByte)
    }

    /// "did you mean" when a name is close, else the list of names.
    func suggestion(_ word: String, in known: Set<String>, listing: String) -> String {
        let sorted = known.sorted()
        if let closest = Suggestion.closest(to: word, in: sorted) { return "did you mean \"\(closest)\"?" }
        return sorted.isEmpty ? "none are defined" : "\(listing): \(sorted.joined(separator: ", "))"
    }

    /// A value as JSON text, cut so a huge value cannot flood a message.
    func excerpt(_ value: JSONValue) -> String { SchemaValidator.excerpt(value) }

    /// The file offset of UTF-8 byte `index` of the string value at `path` (escapes counted as
    /// the bytes they stand for), so a problem inside a template points at its column.
    func stringOffset(_ path: String, _ index: Int) -> Int {
        let start = locate(path)
        guard start < bytes.count, bytes[start] == UInt8(ascii: "\"") else { return start }
        var raw = start + 1
        var decoded = 0
        while decoded < index, raw < bytes.count, bytes[raw] != UInt8(ascii: "\"") {
            guard bytes[raw] == UInt8(ascii: "\\"), raw + 1 < bytes.count else {
                raw += 1
                decoded += 1
                continue
            }
            guard bytes[raw + 1] == UInt8(ascii: "u"), let unit = hex4(at: raw + 2) else {
                raw += 2
                decoded += 1
                continue
            }
            if (0xD800..<0xDC00).contains(unit), raw + 11 < bytes.count, bytes[raw + 6] == UInt8(ascii: "\\"), let low = hex4(at: raw + 8), (0xDC00..<0xE000).contains(low) {
                raw += 12
                decoded += 4
            } else {
                raw += 6
                decoded += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3
            }
        }
        return raw
    }

    private func hex4(at i: Int) -> Int? {
        guard i + 4 <= bytes.count else { return nil }
        var value = 0
        for b in bytes[i..<(i + 4)] {
            let digit: Int
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(b) - 48
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(b) - 87
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(b) - 55
            default: return nil
            }
            value = value * 16 + digit
        }
        return value
    }
}

extension PipelineValueType {
    /// The same type as JSON Schema's validator sees it (the names are JSON Schema's).
    var schemaType: SchemaType { SchemaType(rawValue: rawValue)! }
}
