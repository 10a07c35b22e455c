/// What one offline built-in handler declares: the name tasks route by, the task kinds it
/// serves, an honest prior capability and the largest input it is meant for.
///
/// The lead turns these into JHADE ``HandlerCapability`` values.
public struct BuiltinHandlerSpec: Sendable, Equatable {
    /// The handler name (`text.summarize`).
    public var name: String
    /// The task kinds JHADE may route to it (`summarize`).
    public var kinds: [String]
    /// The prior probability, in [0, 1], that its answer is acceptable on a simple task of its kinds.
    public var capability: Double
    /// The largest input, in tokens, it handles well; larger inputs should go elsewhere.
    public var maxInputTokens: Int

    /// A spec with every field given.
    public init(name: String, kinds: [String], capability: Double, maxInputTokens: Int) {
        self.name = name
        self.kinds = kinds
        self.capability = capability
        self.maxInputTokens = maxInputTokens
    }

    /// The JHADE declaration of this handler.
    public var handlerCapability: HandlerCapability {
        HandlerCapability(handler: name, kinds: kinds, prior: capability, maxInputTokens: maxInputTokens)
    }
}

/// Offline handlers as pure functions of their JSON input: no I/O, no models, deterministic.
///
/// Every handler accepts a JSON string, or an object whose `text` member is the text (the
/// shape ``TaskRouter`` sends: `{"kind": K, "text": PROMPT, "prompt": PROMPT}`) plus its own
/// options, and answers with an object whose `output` member is a string — except `text.stats`,
/// whose answer is its numbers (``TextStatistics/Report/json``). Bad input throws
/// ``TaskFailure`` of kind `invalid_input` with a message naming the field.
///
/// `template.render` is declared here, so that JHADE and config validation know it, but runs in
/// ChimeraRuntime's built-in worker: its Mustache engine needs Foundation, which this module
/// does not use. ``run(_:input:)`` refuses it.
public enum BuiltinTextHandlers {
    /// `template.render`'s name.
    public static let templateRender = "template.render"

    /// Every offline handler, in the order the built-in worker registers them.
    public static let all: [BuiltinHandlerSpec] = [
        BuiltinHandlerSpec(name: "text.summarize", kinds: ["summarize"], capability: 0.7, maxInputTokens: 20_000),
        BuiltinHandlerSpec(name: "text.keywords", kinds: ["keywords"], capability: 0.75, maxInputTokens: 50_000),
        BuiltinHandlerSpec(name: "text.classify", kinds: ["classify"], capability: 0.6, maxInputTokens: 50_000),
        BuiltinHandlerSpec(name: "text.sentiment", kinds: ["sentiment"], capability: 0.65, maxInputTokens: 50_000),
        BuiltinHandlerSpec(name: "json.extract", kinds: ["json", "json.extract"], capability: 0.9, maxInputTokens: 100_000),
        BuiltinHandlerSpec(name: "json.repair", kinds: ["json.repair"], capability: 0.8, maxInputTokens: 100_000),
        BuiltinHandlerSpec(name: "json.validate", kinds: ["json.validate"], capability: 0.95, maxInputTokens: 100_000),
        BuiltinHandlerSpec(name: "math.eval", kinds: ["math"], capability: 0.95, maxInputTokens: 2_000),
        // Counting is exact; the readability score is a formula, which is what "stats" asks for.
        BuiltinHandlerSpec(name: "text.stats", kinds: ["stats", "text.stats"], capability: 0.95, maxInputTokens: 1_000_000),
        // Rendering is exact when the input carries a template and its data.
        BuiltinHandlerSpec(name: templateRender, kinds: ["template", "template.render"], capability: 0.9, maxInputTokens: 100_000),
    ]

    /// The names of ``all``.
    public static var names: [String] { all.map(\.name) }

    /// Runs the handler named `name` on `input`.
    ///
    /// - Throws: ``TaskFailure`` `invalid_input` when the input is unusable, `unknown_handler`
    ///   when no offline handler has that name, or for `template.render` (see the type's notes).
    public static func run(_ name: String, input: JSONValue) throws(TaskFailure) -> JSONValue {
        switch name {
        case "text.summarize": return try TextRankSummarizer.handle(input)
        case "text.keywords": return try KeywordExtractor.handle(input)
        case "text.classify": return try KeywordClassifier.handle(input)
        case "text.sentiment": return try SentimentAnalyzer.handle(input)
        case "json.extract": return try JSONTools.handleExtract(input)
        case "json.repair": return try JSONTools.handleRepair(input)
        case "json.validate": return try JSONTools.handleValidate(input)
        case "math.eval": return try MathEvaluator.handle(input)
        case "text.stats": return try TextStatistics.handle(input)
        case templateRender: throw TaskFailure(.unknownHandler, "\"\(name)\" runs in the built-in worker (ChimeraRuntime's BuiltinHandlers), not in ChimeraCore")
        default: throw TaskFailure(.unknownHandler, "no offline handler named \"\(name)\"")
        }
    }
}

/// Reading handler inputs.
enum HandlerInput {
    /// The text of `input`: a JSON string, or the `text` member of an object.
    static func text(_ input: JSONValue) throws(TaskFailure) -> String {
        if case .string(let s) = input { return s }
        if case .string(let s)? = input["text"] { return s }
        if let member = input["text"] { throw TaskFailure(.invalidInput, "\"text\": expected a string, found \(member.typeName)") }
        throw TaskFailure(.invalidInput, "expected a string or an object with a \"text\" string, found \(input.typeName)")
    }

    /// The optional string option `key`; `nil` when absent or null.
    static func string(_ input: JSONValue, _ key: String) throws(TaskFailure) -> String? {
        guard let value = input[key], value != .null else { return nil }
        guard case .string(let s) = value else { throw TaskFailure(.invalidInput, "\"\(key)\": expected a string, found \(value.typeName)") }
        return s
    }

    /// The optional whole-number option `key` in `range`; `nil` when absent or null.
    static func integer(_ input: JSONValue, _ key: String, in range: ClosedRange<Int>) throws(TaskFailure) -> Int? {
        guard let value = input[key], value != .null else { return nil }
        guard case .number(let d) = value, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            throw TaskFailure(.invalidInput, "\"\(key)\": expected a whole number from \(range.lowerBound) to \(range.upperBound), found \(value.serialized)")
        }
        return Int(d)
    }

    /// `s` without leading and trailing whitespace.
    static func trimmed<S: StringProtocol>(_ s: S) -> String {
        String(CodeFence.trim(s))
    }
}
