/// One chat message with text content.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The body of `POST /chat/completions`, with the fields Chimera sets itself typed and
/// everything else passed through.
public struct ChatRequest: Sendable, Equatable {
    /// The model tried first.
    public var model: String
    /// Models OpenRouter tries in order when `model` fails. When non-empty the body carries
    /// `"models": [model] + fallbackModels`, which is how OpenRouter's fallback list is spelt.
    public var fallbackModels: [String]
    public var messages: [ChatMessage]
    public var stream: Bool
    public var maxTokens: Int?
    public var temperature: Double?
    /// OpenRouter's routing preferences, passed through unchanged.
    public var provider: JSONValue?
    /// Any other body fields, written after the typed ones. A member whose key a typed field
    /// would also write replaces that field, so the body never repeats a key.
    public var extra: [JSONMember]

    public init(model: String, messages: [ChatMessage], stream: Bool = false) {
        self.model = model
        self.fallbackModels = []
        self.messages = messages
        self.stream = stream
        self.maxTokens = nil
        self.temperature = nil
        self.provider = nil
        self.extra = []
    }

    /// The JSON body: compact UTF-8, members in a fixed order (model, models, messages, stream,
    /// max_tokens, temperature, provider, then `extra`).
    public func body() -> [UInt8] {
        var members: [JSONMember] = []
        let overridden = Set(extra.map(\.key))
        func add(_ key: String, _ value: JSONValue?) {
            guard let value, !overridden.contains(key) else { return }
            members.append(JSONMember(key, value))
        }
        add("model", .string(model))
        if !fallbackModels.isEmpty {
            add("models", .array(([model] + fallbackModels).map { .string($0) }))
        }
        add("messages", .array(messages.map { message in
            .object([JSONMember("role", .string(message.role)), JSONMember("content", .string(message.content))])
        }))
        add("stream", .bool(stream))
        add("max_tokens", maxTokens.map { .number(Double($0)) })
        add("temperature", temperature.map { .number($0) })
        add("provider", provider)
        members.append(contentsOf: extra)
        var out: [UInt8] = []
        JSONValue.object(members).write(to: &out)
        return out
    }
}

/// Token counts and cost of one call.
public struct ChatUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    /// USD charged, as OpenRouter reports it (0 for `:free` models); nil when not reported.
    public var cost: Double?
    public var isBYOK: Bool?
    /// True when `cost` was computed locally from catalog prices (``CostEstimator``), not reported.
    public var costIsEstimate: Bool

    public init(promptTokens: Int, completionTokens: Int, totalTokens: Int? = nil, cost: Double? = nil, isBYOK: Bool? = nil, costIsEstimate: Bool = false) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens ?? promptTokens + completionTokens
        self.cost = cost
        self.isBYOK = isBYOK
        self.costIsEstimate = costIsEstimate
    }
}

/// A finished chat completion, streamed or not.
public struct ChatCompletion: Sendable, Equatable {
    /// The generation id (`gen-…`), for `GET /generation`.
    public var id: String?
    /// The model that actually served the request: after a fallback it differs from the one asked for.
    public var model: String?
    /// The provider's display name, e.g. `OpenAI`.
    public var provider: String?
    public var content: String
    public var reasoning: String?
    /// `stop`, `length`, `tool_calls`, `content_filter` (normalised by OpenRouter).
    public var finishReason: String?
    public var usage: ChatUsage?

    public init(id: String? = nil, model: String? = nil, provider: String? = nil, content: String, reasoning: String? = nil, finishReason: String? = nil, usage: ChatUsage? = nil) {
        self.id = id
        self.model = model
        self.provider = provider
        self.content = content
        self.reasoning = reasoning
        self.finishReason = finishReason
        self.usage = usage
    }
}
