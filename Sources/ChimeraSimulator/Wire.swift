import ChimeraCore

/// The provider name every simulated generation reports.
let simProviderName = "SimProvider"
let systemFingerprint = "fp_sim"

extension JSONValue {
    static func int(_ n: Int) -> JSONValue { .number(Double(n)) }
    static func int64(_ n: Int64) -> JSONValue { .number(Double(n)) }
    static func obj(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { JSONMember($0.0, $0.1) }) }
}

// MARK: prompt and reply

/// What the simulator reads from `messages`.
struct Prompt {
    /// The last user message with directives removed, trimmed.
    var lastUserText: String
    /// Whitespace-separated words in every message (directives removed).
    var promptTokens: Int
    /// Directives of the last user message.
    var directives: Directives
    /// Every message as `role: text` (directives removed), joined by ` | `: the `echo-messages` reply.
    var transcript = ""

    static func analyse(_ messages: [JSONValue]) throws(Directives.Invalid) -> Prompt {
        let lastUser = messages.lastIndex { $0["role"]?.stringValue == "user" }
        var words = 0
        var last = ""
        var directives = Directives()
        var transcript: [String] = []
        for (i, message) in messages.enumerated() {
            let raw = text(of: message)
            let stripped: String
            if i == lastUser {
                (directives, stripped) = try Directives.extract(from: raw)
                last = stripped.trimmingSpaces
            } else {
                stripped = (try? Directives.extract(from: raw))?.text ?? raw
            }
            words += stripped.split(whereSeparator: \.isWhitespace).count
            transcript.append((message["role"]?.stringValue ?? "?") + ": " + stripped.trimmingSpaces)
        }
        return Prompt(lastUserText: last, promptTokens: words, directives: directives, transcript: transcript.joined(separator: " | "))
    }

    /// A message's text: `content` as a string, or its text parts joined by spaces.
    static func text(of message: JSONValue) -> String {
        switch message["content"] {
        case .string(let s)?: return s
        case .array(let parts)?:
            return parts.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined(separator: " ")
        default: return ""
        }
    }
}

/// The deterministic answer: "Simulated reply to: " + the first 200 characters of the last user
/// message, cut to `max_tokens` words. Tokens are whitespace-separated words.
struct Reply {
    /// Words, each with the whitespace before it; joined they are exactly ``content``.
    var pieces: [String]
    var finishReason: String

    /// `chosen` is the text `replies=…` picked for this request, if any.
    init(prompt: Prompt, maxTokens: Int?, chosen: String? = nil) {
        // `reply=TEXT` answers with TEXT exactly (a canned judge verdict, a JSON document…).
        let text = chosen ?? prompt.directives.reply ?? (prompt.directives.echoMessages ? prompt.transcript
            : "Simulated reply to: " + String(prompt.lastUserText.prefix(200)))
        var pieces: [String] = []
        var current = ""
        var inWord = false
        for ch in text {
            if ch.isWhitespace {
                if inWord { pieces.append(current); current = ""; inWord = false }
                current.append(ch)
            } else {
                current.append(ch)
                inWord = true
            }
        }
        if inWord { pieces.append(current) }
        if let maxTokens, maxTokens >= 0, pieces.count > maxTokens {
            self.pieces = Array(pieces.prefix(maxTokens))
            finishReason = "length"
        } else {
            self.pieces = pieces
            finishReason = "stop"
        }
    }

    var content: String { pieces.joined() }
    var completionTokens: Int { pieces.count }
}

/// The model that answered, with its prices.
struct ServingModel {
    var id: String
    var promptPerToken: Double
    var completionPerToken: Double

    func usage(promptTokens: Int, completionTokens: Int) -> (json: JSONValue, cost: Double) {
        let promptCost = Double(promptTokens) * promptPerToken
        let completionCost = Double(completionTokens) * completionPerToken
        let cost = promptCost + completionCost
        let json = JSONValue.obj([
            ("prompt_tokens", .int(promptTokens)),
            ("completion_tokens", .int(completionTokens)),
            ("total_tokens", .int(promptTokens + completionTokens)),
            ("cost", .number(cost)),
            ("is_byok", .bool(false)),
            ("prompt_tokens_details", .obj([("cached_tokens", .int(0)), ("audio_tokens", .int(0)), ("video_tokens", .int(0))])),
            ("cost_details", .obj([
                ("upstream_inference_cost", .null),
                ("upstream_inference_prompt_cost", .number(promptCost)),
                ("upstream_inference_completions_cost", .number(completionCost)),
            ])),
            ("completion_tokens_details", .obj([("reasoning_tokens", .int(0)), ("image_tokens", .int(0))])),
        ])
        return (json, cost)
    }
}

/// Fields shared by a response and all chunks of one generation.
struct GenerationHead {
    var id: String
    var model: String
    var created: Int64

    /// `{id, provider, model, object, created, …rest}` in the order OpenRouter sends them.
    func envelope(object: String, _ rest: [(String, JSONValue)]) -> JSONValue {
        .obj([("id", .string(id)), ("provider", .string(simProviderName)), ("model", .string(model)),
              ("object", .string(object)), ("created", .int64(created))] + rest)
    }

    func completion(content: String?, finishReason: String, usage: JSONValue, choiceError: JSONValue? = nil, emptyChoices: Bool = false) -> JSONValue {
        var choice: [(String, JSONValue)] = [
            ("logprobs", .null), ("finish_reason", .string(finishReason)), ("native_finish_reason", .string(finishReason)), ("index", .int(0)),
            ("message", .obj([("role", .string("assistant")), ("content", content.map(JSONValue.string) ?? .null),
                              ("refusal", .null), ("reasoning", .null)])),
        ]
        if let choiceError { choice.append(("error", choiceError)) }
        return envelope(object: "chat.completion", [
            ("choices", .array(emptyChoices ? [] : [.obj(choice)])),
            ("system_fingerprint", .string(systemFingerprint)),
            ("usage", usage),
        ])
    }

    func chunk(delta: [(String, JSONValue)], finishReason: String?, first: Bool = false) -> JSONValue {
        let reason: JSONValue = finishReason.map(JSONValue.string) ?? .null
        var rest: [(String, JSONValue)] = [("choices", .array([.obj([
            ("index", .int(0)), ("delta", .obj(delta)), ("finish_reason", reason), ("native_finish_reason", reason), ("logprobs", .null),
        ])]))]
        if first { rest.append(("system_fingerprint", .string(systemFingerprint))) }
        return envelope(object: "chat.completion.chunk", rest)
    }

    func usageChunk(_ usage: JSONValue) -> JSONValue {
        envelope(object: "chat.completion.chunk", [("choices", .array([])), ("usage", usage)])
    }

    /// A mid-stream error chunk: top-level `error` and a choice finishing with "error"
    /// (or no choice at all, for a stream that fails before its first token).
    func errorChunk(_ error: JSONValue, withChoice: Bool) -> JSONValue {
        let choices: [JSONValue] = withChoice
            ? [.obj([("index", .int(0)), ("delta", .obj([("content", .string(""))])), ("finish_reason", .string("error")),
                     ("native_finish_reason", .string("error")), ("logprobs", .null)])]
            : []
        return envelope(object: "chat.completion.chunk", [("error", error), ("choices", .array(choices))])
    }
}

/// The in-band error object of a provider failure after the status was committed (§3, §4.5).
func inBandProviderError() -> JSONValue {
    .obj([("code", .int(502)), ("message", .string("Provider disconnected")),
          ("metadata", .obj([("error_type", .string("provider_unavailable")), ("provider_name", .string(simProviderName))]))])
}

func sseEvent(_ value: JSONValue) -> String { "data: \(value.serialized)\n\n" }

// MARK: errors

/// An error response: status, OpenRouter's body and headers.
struct SimError: Error {
    enum Kind { case unauthorized, invalid, paymentRequired, rateLimitedDaily, rateLimitedMinute, notFound, down, fault }

    var status: Int
    var message: String
    var kind: Kind
    var metadata: [(String, JSONValue)] = []
    var availability: JSONValue?
    var headers: [(String, String)] = []
    var userId: String?
    /// The model of the attempt, for `previous_errors`.
    var model: String?
    /// 401 bodies are `{"error":{"message":…,"code":401}}`: message first, no user id.
    var messageFirst = false

    func body(previous: [SimError] = []) -> JSONValue {
        var error: [(String, JSONValue)] = messageFirst
            ? [("message", .string(message)), ("code", .int(status))]
            : [("code", .int(status)), ("message", .string(message))]
        var meta = metadata
        if !previous.isEmpty {
            meta.append(("previous_errors", .array(previous.map { p in
                .obj([("model", p.model.map(JSONValue.string) ?? .null),
                      ("provider", p.kind == .down || p.kind == .fault ? .string(simProviderName) : .null),
                      ("code", .int(p.status)), ("status", .int(p.status)), ("message", .string(p.message))])
            })))
        }
        if !meta.isEmpty { error.append(("metadata", .obj(meta))) }
        if let availability { error.append(("availability", availability)) }
        var top: [(String, JSONValue)] = [("error", .obj(error))]
        if let userId { top.append(("user_id", .string(userId))) }
        return .obj(top)
    }

    static func missingCredentials() -> SimError {
        SimError(status: 401, message: "No auth credentials found", kind: .unauthorized, messageFirst: true)
    }

    static func unknownKey() -> SimError {
        SimError(status: 401, message: "User not found.", kind: .unauthorized, messageFirst: true)
    }

    static func badRequest(_ message: String, userId: String?) -> SimError {
        SimError(status: 400, message: message, kind: .invalid, metadata: [("error_type", .string("invalid_request"))], userId: userId)
    }

    static func paymentRequired(userId: String) -> SimError {
        SimError(status: 402, message: "Insufficient credits. Add more using https://openrouter.ai/settings/credits", kind: .paymentRequired,
                 metadata: [("error_type", .string("payment_required")), ("provider_name", .null)], userId: userId)
    }

    static func availability(_ code: String, retryable: Bool, models: [String], retryAfter: Int? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("code", .string(code)), ("retryable", .bool(retryable)),
                                              ("requested_models", .array(models.map(JSONValue.string)))]
        if let retryAfter { members.append(("retry_after", .int(retryAfter))) }
        members.append(("docs_url", .string("https://openrouter.ai/docs/api-reference/errors-and-debugging#model-availability-errors")))
        return .obj(members)
    }

    static func malformedModel(_ id: String, userId: String) -> SimError {
        SimError(status: 400, message: "\(id) is not a valid model ID", kind: .invalid,
                 metadata: [("error_type", .string("invalid_request"))],
                 availability: availability("model_not_found", retryable: false, models: [id]), userId: userId, model: id)
    }

    static func noEndpoints(_ id: String, userId: String) -> SimError {
        SimError(status: 404, message: "No endpoints found for \(id).", kind: .notFound, userId: userId, model: id)
    }

    static func rateLimit(_ admission: FreeAdmission, userId: String, model: String) -> SimError {
        let (limit, reset, daily): (Int, EpochMillis, Bool)
        switch admission {
        case .daily(let l, let r): (limit, reset, daily) = (l, r, true)
        case .minute(let l, let r): (limit, reset, daily) = (l, r, false)
        case .admitted: preconditionFailure("not a limit")
        }
        let headers = [("X-RateLimit-Limit", "\(limit)"), ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "\(reset)")]
        var metadata: [(String, JSONValue)] = [("headers", .obj(headers.map { ($0.0, .string($0.1)) })), ("error_type", .string("rate_limit_exceeded"))]
        let message: String
        if daily {
            message = limit > 50 ? "Rate limit exceeded: free-models-per-day-high-balance"
                                 : "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day"
            metadata.append(("limit_source", .string("openrouter_free_tier_daily")))
        } else {
            message = "Rate limit exceeded: free-models-per-min."
        }
        return SimError(status: 429, message: message, kind: daily ? .rateLimitedDaily : .rateLimitedMinute,
                        metadata: metadata, headers: headers, userId: userId, model: model)
    }

    static func modelDown(_ id: String, userId: String) -> SimError {
        SimError(status: 502, message: "Provider returned error", kind: .down,
                 metadata: [("error_type", .string("provider_unavailable")), ("provider_name", .string(simProviderName)),
                            ("raw", .string("{\"error\":\"upstream for \(id) is unavailable (simulated outage)\"}")), ("is_byok", .bool(false))],
                 userId: userId, model: id)
    }

    /// The body OpenRouter sends for `status`, injected by a directive or an error rate.
    static func injected(_ status: Int, model: String, retryAfter: Int, userId: String) -> SimError {
        var e = SimError(status: status, message: "", kind: .fault, userId: userId, model: model)
        func provider(_ type: String, raw: String) {
            e.message = "Provider returned error"
            e.metadata = [("error_type", .string(type)), ("provider_name", .string(simProviderName)), ("raw", .string(raw)), ("is_byok", .bool(false))]
        }
        switch status {
        case 429:
            e.message = "Provider returned error"
            e.metadata = [("error_type", .string("rate_limit_exceeded")),
                          ("raw", .string("\(model) is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations")),
                          ("provider_name", .string(simProviderName)), ("is_byok", .bool(false)),
                          ("retry_after_seconds", .int(retryAfter)), ("retry_after_seconds_raw", .int(retryAfter)),
                          ("headers", .obj([("Retry-After", .string("\(retryAfter)"))]))]
            e.headers = [("Retry-After", "\(retryAfter)")]
        case 502: provider("provider_unavailable", raw: "{\"error\":{\"message\":\"Bad gateway (simulated)\"}}")
        case 529: provider("provider_overloaded", raw: "{\"error\":{\"message\":\"Overloaded (simulated)\"}}")
        case 503:
            e.message = "No instances available for \(model) (simulated)"
            e.metadata = [("error_type", .string("provider_overloaded"))]
            e.availability = availability("temporarily_unavailable", retryable: true, models: [model], retryAfter: retryAfter)
            e.headers = [("Retry-After", "\(retryAfter)")]
        default:
            let (message, type): (String, String) = switch status {
            case 400: ("Bad request (simulated)", "invalid_request")
            case 401: ("User not found.", "authentication")
            case 402: ("Insufficient credits. Add more using https://openrouter.ai/settings/credits", "payment_required")
            case 403: ("Forbidden (simulated)", "permission_denied")
            case 404: ("No endpoints found for \(model).", "not_found")
            case 408: ("Request timed out", "timeout")
            case 413: ("Payload too large", "payload_too_large")
            case 422: ("Unprocessable entity (simulated)", "unprocessable")
            case 500: ("Internal Server Error", "server")
            case 504, 524: ("Provider timed out (simulated)", "timeout")
            default: ("Simulated error \(status)", status >= 500 ? "unmapped" : "invalid_request")
            }
            e.message = message
            e.metadata = [("error_type", .string(type))]
        }
        return e
    }
}
