/// What the coordinator sends an agent worker for one external call (`llm.chat` task input), and
/// what the worker answers (its task output) — also when the call failed upstream: the task ran,
/// and the call's outcome, success or not, is data the coordinator's policy needs.
///
/// The key travels in the task input over the worker's stdin pipe (never argv, env or logs).
public struct ExternalCallInput: Sendable, Equatable {
    public var baseURL: String
    public var headers: [(name: String, value: String)]
    /// The API key for `Authorization: Bearer`; nil for a provider that takes no key.
    public var key: APIKeySecret?
    public var stream: Bool
    /// The JSON body of `POST /chat/completions`, sent as is.
    public var body: JSONValue
    public var connectMs: Int64
    public var firstByteMs: Int64
    public var idleMs: Int64
    public var totalMs: Int64

    public init(baseURL: String, headers: [(name: String, value: String)] = [], key: APIKeySecret?, stream: Bool, body: JSONValue,
                connectMs: Int64 = 10_000, firstByteMs: Int64 = 60_000, idleMs: Int64 = 60_000, totalMs: Int64 = 600_000) {
        self.baseURL = baseURL
        self.headers = headers
        self.key = key
        self.stream = stream
        self.body = body
        self.connectMs = connectMs
        self.firstByteMs = firstByteMs
        self.idleMs = idleMs
        self.totalMs = totalMs
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.baseURL == r.baseURL && l.headers.map { [$0.name, $0.value] } == r.headers.map { [$0.name, $0.value] } && l.key == r.key
            && l.stream == r.stream && l.body == r.body && l.connectMs == r.connectMs && l.firstByteMs == r.firstByteMs
            && l.idleMs == r.idleMs && l.totalMs == r.totalMs
    }

    public var json: JSONValue {
        .object([
            JSONMember("base_url", .string(baseURL)),
            JSONMember("headers", .array(headers.map { .array([.string($0.name), .string($0.value)]) })),
        ] + (key.map { [JSONMember("key", .string($0.reveal()))] } ?? []) + [
            JSONMember("stream", .bool(stream)),
            JSONMember("body", body),
            JSONMember("timeouts", .object([
                JSONMember("connect_ms", .number(Double(connectMs))), JSONMember("first_byte_ms", .number(Double(firstByteMs))),
                JSONMember("idle_ms", .number(Double(idleMs))), JSONMember("total_ms", .number(Double(totalMs))),
            ])),
        ])
    }

    /// Reads the task input; the message names the field that is wrong (never the key).
    public init(json value: JSONValue) throws(TaskFailure) {
        guard case .string(let base)? = value["base_url"] else { throw TaskFailure(.invalidInput, "llm.chat input needs \"base_url\" (a string)") }
        var key: APIKeySecret?
        switch value["key"] {
        case nil: key = nil
        case .string(let text)? where !text.isEmpty: key = APIKeySecret(text)
        default: throw TaskFailure(.invalidInput, "llm.chat \"key\" must be a non-empty string, or absent for a provider without keys")
        }
        guard let body = value["body"], case .object = body else { throw TaskFailure(.invalidInput, "llm.chat input needs \"body\" (the request object)") }
        var headers: [(name: String, value: String)] = []
        if case .array(let pairs)? = value["headers"] {
            for pair in pairs {
                guard case .array(let p) = pair, p.count == 2, case .string(let n) = p[0], case .string(let v) = p[1] else {
                    throw TaskFailure(.invalidInput, "llm.chat \"headers\" must be [[name, value], …]")
                }
                headers.append((n, v))
            }
        }
        var stream = false
        if case .bool(let b)? = value["stream"] { stream = b }
        self.init(baseURL: base, headers: headers, key: key, stream: stream, body: body)
        let t = value["timeouts"]
        func ms(_ name: String, _ current: Int64) -> Int64 {
            if case .number(let d)? = t?[name], d >= 1, d <= 86_400_000 { return Int64(d) }
            return current
        }
        connectMs = ms("connect_ms", connectMs)
        firstByteMs = ms("first_byte_ms", firstByteMs)
        idleMs = ms("idle_ms", idleMs)
        totalMs = ms("total_ms", totalMs)
    }
}

/// The outcome of one external call as the worker reports it.
public struct ExternalCallOutput: Sendable, Equatable {
    public var result: Result<ChatCompletion, ExternalError>
    public var status: Int?
    public var latencyMs: Int64
    public var firstTokenMs: Int64?

    public init(result: Result<ChatCompletion, ExternalError>, status: Int?, latencyMs: Int64, firstTokenMs: Int64?) {
        self.result = result
        self.status = status
        self.latencyMs = latencyMs
        self.firstTokenMs = firstTokenMs
    }

    public var json: JSONValue {
        var members = [
            JSONMember("status", status.map { .number(Double($0)) } ?? .null),
            JSONMember("latency_ms", .number(Double(latencyMs))),
            JSONMember("first_token_ms", firstTokenMs.map { .number(Double($0)) } ?? .null),
        ]
        switch result {
        case .success(let c):
            members.insert(JSONMember("ok", .bool(true)), at: 0)
            members += [
                JSONMember("content", .string(c.content)),
                JSONMember("model", c.model.map { .string($0) } ?? .null),
                JSONMember("provider", c.provider.map { .string($0) } ?? .null),
                JSONMember("id", c.id.map { .string($0) } ?? .null),
                JSONMember("finish_reason", c.finishReason.map { .string($0) } ?? .null),
                JSONMember("reasoning", c.reasoning.map { .string($0) } ?? .null),
                JSONMember("usage", c.usage.map(Self.usageJSON) ?? .null),
            ]
        case .failure(let e):
            members.insert(JSONMember("ok", .bool(false)), at: 0)
            members.append(JSONMember("error", .object([
                JSONMember("kind", .string(e.kind.rawValue)),
                JSONMember("message", .string(e.message)),
                JSONMember("status", e.status.map { .number(Double($0)) } ?? .null),
                JSONMember("error_type", e.errorType.map { .string($0) } ?? .null),
                JSONMember("provider", e.providerName.map { .string($0) } ?? .null),
                JSONMember("retryable", e.retryable.map { .bool($0) } ?? .null),
                JSONMember("after_tokens", .bool(e.afterTokens)),
                JSONMember("rate_limit", .object([
                    JSONMember("limit", e.rateLimit.limit.map { .number(Double($0)) } ?? .null),
                    JSONMember("remaining", e.rateLimit.remaining.map { .number(Double($0)) } ?? .null),
                    JSONMember("reset_at", e.rateLimit.resetAt.map { .number(Double($0)) } ?? .null),
                    JSONMember("retry_after_ms", e.rateLimit.retryAfterMs.map { .number(Double($0)) } ?? .null),
                ])),
            ])))
        }
        return .object(members)
    }

    static func usageJSON(_ u: ChatUsage) -> JSONValue {
        .object([
            JSONMember("prompt_tokens", .number(Double(u.promptTokens))),
            JSONMember("completion_tokens", .number(Double(u.completionTokens))),
            JSONMember("total_tokens", .number(Double(u.totalTokens))),
            JSONMember("cost", u.cost.map { .number($0) } ?? .null),
            JSONMember("cost_is_estimate", .bool(u.costIsEstimate)),
        ])
    }

    /// Reads a worker's answer; a malformed one is itself a `malformed_response`.
    public init(json value: JSONValue) {
        func int(_ v: JSONValue?) -> Int? { v?.numberValue.map { Int($0) } }
        func int64(_ v: JSONValue?) -> Int64? { v?.numberValue.map { Int64($0) } }
        func string(_ v: JSONValue?) -> String? { v?.stringValue }
        status = int(value["status"])
        latencyMs = int64(value["latency_ms"]) ?? 0
        firstTokenMs = int64(value["first_token_ms"])
        if case .bool(true)? = value["ok"] {
            var usage: ChatUsage?
            if let u = value["usage"], case .object = u {
                usage = ChatUsage(promptTokens: int(u["prompt_tokens"]) ?? 0, completionTokens: int(u["completion_tokens"]) ?? 0,
                                  totalTokens: int(u["total_tokens"]), cost: u["cost"]?.numberValue,
                                  costIsEstimate: { if case .bool(true)? = u["cost_is_estimate"] { return true } else { return false } }())
            }
            result = .success(ChatCompletion(id: string(value["id"]), model: string(value["model"]), provider: string(value["provider"]),
                                             content: string(value["content"]) ?? "", reasoning: string(value["reasoning"]),
                                             finishReason: string(value["finish_reason"]), usage: usage))
        } else if let e = value["error"], case .object = e {
            let kind = string(e["kind"]).flatMap(ExternalErrorKind.init(rawValue:)) ?? .malformedResponse
            let rl = e["rate_limit"]
            var error = ExternalError(kind: kind, status: int(e["status"]), message: string(e["message"]) ?? "")
            error.errorType = string(e["error_type"])
            error.providerName = string(e["provider"])
            if case .bool(let b)? = e["retryable"] { error.retryable = b }
            if case .bool(true)? = e["after_tokens"] { error.afterTokens = true }
            error.rateLimit = RateLimitInfo(limit: int(rl?["limit"]), remaining: int(rl?["remaining"]), resetAt: int64(rl?["reset_at"]),
                                            retryAfterMs: int64(rl?["retry_after_ms"]))
            result = .failure(error)
        } else {
            result = .failure(ExternalError(kind: .malformedResponse, status: nil, message: "the agent worker's answer has neither \"ok\": true nor an \"error\""))
        }
    }
}

extension ExternalError {
    /// An error with only a kind, a status and a message (transport failures, local outcomes).
    public init(kind: ExternalErrorKind, status: Int?, message: String) {
        self.init(kind: kind, status: status, message: message, errorType: nil, providerName: nil,
                  rateLimit: RateLimitInfo(), retryable: nil, afterTokens: false)
    }
}
