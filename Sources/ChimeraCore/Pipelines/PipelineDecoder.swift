/// What ``PipelineDecoder/decode(_:file:context:)`` found: the pipeline when it is valid, and
/// every diagnostic in file order.
public struct PipelineDecodeResult: Sendable, Equatable {
    /// The decoded pipeline; nil when any diagnostic is an error.
    public var pipeline: PipelineDefinition?
    /// Errors and warnings, in file order (line, then column).
    public var diagnostics: [PipelineDiagnostic]

    /// A result; `pipeline` should be nil when `diagnostics` has an error.
    public init(pipeline: PipelineDefinition?, diagnostics: [PipelineDiagnostic]) {
        self.pipeline = pipeline
        self.diagnostics = diagnostics
    }

    /// The diagnostics that make the pipeline invalid.
    public var errors: [PipelineDiagnostic] { diagnostics.filter { $0.severity == .error } }
}

/// Decodes and validates a pipeline file (`Pipelines/*.json`), reporting every problem at once.
///
/// Checks, each reported with file, line, column, JSON path, a message and (where useful) a hint:
/// JSON syntax; types, required fields, unknown fields (with "did you mean"), enumerations and
/// ranges; step ids (unique, `[A-Za-z_][A-Za-z0-9_-]*`); input defaults against their type;
/// `needs` (unknown steps, a step needing itself, each cycle once with its whole path); agents
/// and handlers against ``PipelineValidationContext``; Mustache templates (syntax, and every
/// variable resolves: declared inputs, steps this step needs, `.json` only for JSON steps,
/// `.outputs` only for `foreach` steps, `item`/`index` only in `foreach` steps); `when`
/// (``PipelineCondition`` syntax and paths); `foreach` (a path to an array); `output.schema`
/// (usable by ``JSONSchema``). The format itself is documented in `docs/PIPELINES.md`.
///
/// ```swift
/// let result = PipelineDecoder.decode(bytes, file: "Pipelines/research.json",
///                                     context: PipelineValidationContext(knownAgents: ["default"]))
/// for diagnostic in result.diagnostics { print(diagnostic) }
/// guard let pipeline = result.pipeline else { exit(1) }
/// ```
public enum PipelineDecoder {
    /// Decodes `bytes`, the content of `file` (the name is only used in diagnostics).
    public static func decode(_ bytes: [UInt8], file: String, context: PipelineValidationContext = PipelineValidationContext()) -> PipelineDecodeResult {
        let source = SourceLocator(bytes)
        let root: JSONValue
        let offsets: [String: Int]
        do {
            (root, offsets) = try JSONParser.parse(bytes, recordPaths: true)
        } catch {
            let (line, column) = source.lineColumn(of: error.offset)
            let diagnostic = PipelineDiagnostic(file: file, line: line, column: column, path: "$", message: "not valid JSON: \(error.reason)")
            return PipelineDecodeResult(pipeline: nil, diagnostics: [diagnostic])
        }
        let checker = PipelineChecker(bytes: bytes, file: file, offsets: offsets, source: source, validation: context)
        let pipeline = checker.check(root)
        let diagnostics = checker.sortedDiagnostics()
        let valid = !diagnostics.contains { $0.severity == .error }
        return PipelineDecodeResult(pipeline: valid ? pipeline : nil, diagnostics: diagnostics)
    }

    // MARK: Known fields, level by level (Pipelines/pipeline.schema.json lists the same ones)

    /// The fields of the pipeline object.
    static let pipelineKeys = ["$schema", "name", "description", "inputs", "steps", "outputs"]
    /// The fields of one input written as an object.
    static let inputKeys = ["type", "default", "description"]
    /// The fields of one step.
    static let stepKeys = ["id", "agent", "kind", "handler", "prompt", "system", "input", "needs", "route", "model", "quality",
                           "foreach", "merge", "when", "retry", "timeout", "output", "max_tokens", "temperature"]
    /// The fields of a step's `quality`.
    static let qualityKeys = ["min_score", "scorers", "reference"]
    /// The fields of one scorer written as an object.
    static let scorerKeys = ["name", "weight"]
    /// The fields of a step's `retry` written as an object.
    static let retryKeys = ["max_attempts", "backoff_ms"]
    /// The fields of a step's `output` written as an object.
    static let outputKeys = ["format", "schema"]
}
