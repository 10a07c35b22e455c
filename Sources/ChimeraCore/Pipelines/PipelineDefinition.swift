/// A pipeline as written in a JSON file (`Pipelines/*.json`, schema in
/// `Pipelines/pipeline.schema.json`), after decoding: typed inputs, steps wired by `needs`, and
/// named outputs. ``PipelineDecoder`` builds it and reports every problem at once;
/// the executor in ChimeraRuntime runs it.
///
/// Templates (`prompt`, `system`, `reference`, strings inside `input`, `outputs`) are Mustache,
/// rendered without HTML escaping over one context object:
///
/// | name | value |
/// |---|---|
/// | `inputs.NAME` | the run's input (or its default) |
/// | `steps.ID.output` | the step's answer as text (a `foreach` step: its items' answers joined by blank lines, or merged by `merge`) |
/// | `steps.ID.json` | the answer parsed as JSON, when the step's `output.format` is `json` |
/// | `steps.ID.outputs` | a `foreach` step: one `{index, number, item, output, json}` per item, in item order |
/// | `steps.ID.skipped` | true when the step's `when` was false (or a step it needs was skipped) |
/// | `item`, `index`, `number` | inside a `foreach` step: the current element, its 0-based position and its 1-based one |
///
/// `when` is an expression over the same names (``PipelineCondition``): a path alone tests
/// truthiness; `==`, `!=`, `<`, `<=`, `>`, `>=`, `contains` compare with a literal or another
/// path; `!`, `&&`, `||` and parentheses combine.
public struct PipelineDefinition: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// In file order.
    public var inputs: [PipelineInput]
    /// In file order; the executor orders them by `needs`.
    public var steps: [PipelineStep]
    /// In file order.
    public var outputs: [PipelineOutput]

    public init(name: String, description: String? = nil, inputs: [PipelineInput] = [], steps: [PipelineStep] = [],
                outputs: [PipelineOutput] = []) {
        self.name = name
        self.description = description
        self.inputs = inputs
        self.steps = steps
        self.outputs = outputs
    }

    /// The step with `id`.
    public func step(_ id: String) -> PipelineStep? { steps.first { $0.id == id } }
}

/// The type of a pipeline input (JSON Schema's names).
public enum PipelineValueType: String, Sendable, Equatable, CaseIterable {
    case string, number, integer, boolean, array, object
}

/// One typed input; required unless it has a default.
public struct PipelineInput: Sendable, Equatable {
    public var name: String
    public var type: PipelineValueType
    public var defaultValue: JSONValue?
    public var description: String?

    public init(name: String, type: PipelineValueType, defaultValue: JSONValue? = nil, description: String? = nil) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.description = description
    }

    public var isRequired: Bool { defaultValue == nil }
}

/// One step: a task routed by JHADE (`prompt`, with `kind`, `route`, `agent`), or a call to one
/// named handler (`handler`, with `input`).
public struct PipelineStep: Sendable, Equatable {
    public var id: String
    /// Agent profile (`Agents/NAME.json` or a built-in); nil: `default`.
    public var agent: String?
    /// Task kind: which internal handlers may serve it and what JHADE learned about it.
    public var kind: String
    /// Calls this handler directly, bypassing JHADE (e.g. `template.render`, `text.stats`).
    public var handler: String?
    /// Template of the task's prompt (JHADE steps).
    public var prompt: String?
    /// Template of a system message for external models.
    public var system: String?
    /// A handler step's input; strings in it are templates.
    public var input: JSONValue?
    /// Steps that must finish first.
    public var needs: [String]
    public var route: RoutePreference
    /// The external model chain; empty: the agent's, else JHADE's choice.
    public var models: [String]
    public var quality: StepQuality?
    /// A path (`inputs.articles`, `steps.split.json.items`) to an array: the step runs once per element.
    public var foreach: String?
    /// How a `foreach` step's answers (or an agent's candidates) become one output.
    public var merge: MergeStrategy?
    /// A condition (``PipelineCondition``); false: the step is skipped.
    public var when: String?
    public var retry: StepRetry
    /// Per attempt; nil: the coordinator's task timeout.
    public var timeoutMs: Int64?
    public var output: StepOutputSpec
    public var maxTokens: Int?
    public var temperature: Double?

    public init(id: String, kind: String = "general", prompt: String? = nil, needs: [String] = []) {
        self.id = id
        self.kind = kind
        self.prompt = prompt
        self.needs = needs
        route = .auto
        models = []
        retry = StepRetry()
        output = StepOutputSpec()
    }
}

/// A step's quality bar: the minimum score and how answers are scored.
public struct StepQuality: Sendable, Equatable {
    /// In [0, 1]; nil: the agent's or the config's `jhade.min_quality`.
    public var minScore: Double?
    /// Scorer names (`format`, `reference`, `agreement`, `judge`, `custom`) with weights.
    public var scorers: [StepScorer]
    /// Template of a reference answer (for the `reference` scorer).
    public var reference: String?

    public init(minScore: Double? = nil, scorers: [StepScorer] = [], reference: String? = nil) {
        self.minScore = minScore
        self.scorers = scorers
        self.reference = reference
    }
}

/// One scorer and its weight.
public struct StepScorer: Sendable, Equatable {
    public var name: String
    public var weight: Double
    public init(name: String, weight: Double = 1) {
        self.name = name
        self.weight = weight
    }
}

/// Attempts per step (per item of a `foreach`), with a fixed backoff doubled after each failure.
public struct StepRetry: Sendable, Equatable {
    /// 1: no retry.
    public var maxAttempts: Int
    public var backoffMs: Int64

    public init(maxAttempts: Int = 1, backoffMs: Int64 = 1_000) {
        self.maxAttempts = maxAttempts
        self.backoffMs = backoffMs
    }
}

/// What a step's answer must be.
public struct StepOutputSpec: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable, CaseIterable { case text, json }
    public var format: Format
    /// A JSON Schema the answer must satisfy (format `json`); the `format` scorer enforces it.
    public var schema: JSONValue?

    public init(format: Format = .text, schema: JSONValue? = nil) {
        self.format = format
        self.schema = schema
    }
}

/// A named pipeline output: a template over the context.
public struct PipelineOutput: Sendable, Equatable {
    public var name: String
    public var template: String
    public init(name: String, template: String) {
        self.name = name
        self.template = template
    }
}
