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
    /// The JSON body of `POST /chat/completions` as text, sent as is: it travels from the
    /// coordinator to the HTTP request without being parsed into a value on the way.
    public var bodyJSON: [UInt8]
    public var connectMs: Int64
    public var firstByteMs: Int64
    public var idleMs: Int64
    public var totalMs: Int64

    public init(baseURL: String, headers: [(name: String, value: String)] = [], key: APIKeySecret?, stream: Bool, bodyJSON: [UInt8],
                connectMs: Int64 = 10_000, firstByteMs: Int64 = 60_000, idleMs: Int64 = 60_000, totalMs: Int64 = 600_000) {
        self.baseURL = baseURL
        self.headers = headers
        self.key = key
        self.stream = stream
        self.bodyJSON = bodyJSON
        self.connectMs = connectMs
        self.firstByteMs = firstByteMs
        self.idleMs = idleMs
        self.totalMs = totalMs
    }

    public init(baseURL: String, headers: [(name: String, value: String)] = [], key: APIKeySecret?, stream: Bool, body: JSONValue,
                connectMs: Int64 = 10_000, firstByteMs: Int64 = 60_000, idleMs: Int64 = 60_000, totalMs: Int64 = 600_000) {
        var bytes: [UInt8] = []
        body.write(to: &bytes)
        self.init(baseURL: baseURL, headers: headers, key: key, stream: stream, bodyJSON: bytes, connectMs: connectMs,
                  firstByteMs: firstByteMs, idleMs: idleMs, totalMs: totalMs)
    }

    /// The body as a value (parsed from, or written to, ``bodyJSON``).
    public var body: JSONValue {
        get { (try? JSONParser.parse(bodyJSON).value) ?? .null }
        set {
            var bytes: [UInt8] = []
            newValue.write(to: &bytes)
            bodyJSON = bytes
        }
    }

    /// Equal when every field is, the bodies compared as JSON values.
    public static func == (l: Self, r: Self) -> Bool {
        l.baseURL == r.baseURL && l.headers.map { [$0.name, $0.value] } == r.headers.map { [$0.name, $0.value] } && l.key == r.key
            && l.stream == r.stream && (l.bodyJSON == r.bodyJSON || l.body == r.body) && l.connectMs == r.connectMs
            && l.firstByteMs == r.firstByteMs && l.idleMs == r.idleMs && l.totalMs == r.totalMs
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

    /// The task input as JSON text, the body spliced in as it is: the same members as ``json``
    /// (byte for byte when ``bodyJSON`` is compact), without building a value tree.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bodyJSON.count + baseURL.utf8.count + 192)
        out.append(contentsOf: #"{"base_url":"#.utf8)
        JSONValue.writeString(baseURL, to: &out)
        out.append(contentsOf: #","headers":["#.utf8)
        for (i, header) in headers.enumerated() {
            out.append(contentsOf: i == 0 ? "[".utf8 : ",[".utf8)
            JSONValue.writeString(header.name, to: &out)
            out.append(UInt8(ascii: ","))
            JSONValue.writeString(header.value, to: &out)
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
        if let key {
            out.append(contentsOf: #","key":"#.utf8)
            JSONValue.writeString(key.reveal(), to: &out)
        }
        out.append(contentsOf: (stream ? #","stream":true,"body":"# : #","stream":false,"body":"#).utf8)
        out.append(contentsOf: bodyJSON)
        out.append(contentsOf: #","timeouts":{"connect_ms":"#.utf8)
        JSONValue.writeNumber(Double(connectMs), to: &out)
        out.append(contentsOf: #","first_byte_ms":"#.utf8)
        JSONValue.writeNumber(Double(firstByteMs), to: &out)
        out.append(contentsOf: #","idle_ms":"#.utf8)
        JSONValue.writeNumber(Double(idleMs), to: &out)
        out.append(contentsOf: #","total_ms":"#.utf8)
        JSONValue.writeNumber(Double(totalMs), to: &out)
        out.append(contentsOf: "}}".utf8)
        return out
    }

    /// Reads the task input; the message names the field that is wrong (never the key).
    public init(json value: JSONValue) throws(TaskFailure) {
        guard case .string(let base)? = value["base_url"] else { throw TaskFailure(.invalidInput, "llm.chat input needs \"base_url\" (a string)") }
        var bodyJSON: [UInt8]?
        if let body = value["body"], case .object = body {
            var bytes: [UInt8] = []
            body.write(to: &bytes)
            bodyJSON = bytes
        }
        try self.init(baseURL: base, key: value["key"], bodyJSON: bodyJSON, headers: value["headers"], stream: value["stream"], timeouts: value["timeouts"])
    }

    /// Reads the task input from its JSON text, as ``init(json:)`` does, but keeps the body as
    /// the bytes it arrived as (what an agent worker sends upstream) and builds no value tree:
    /// this runs once per call in the worker.
    public init(raw: UnsafeRawBufferPointer) throws(TaskFailure) {
        var base: String??
        var key: Range<Int>?, body: Range<Int>?, headers: Range<Int>?, stream: Range<Int>?, timeouts: Range<Int>?
        var escapedKey = false
        do {
            try JSONParser.forEachMember(of: raw) { name, range in
                guard let name else { escapedKey = true; return }
                if name.equals("base_url") { base = .some(JSONParser.decodeString(UnsafeRawBufferPointer(rebasing: raw[range]))) }
                else if name.equals("key") { key = range }
                else if name.equals("body") { body = range }
                else if name.equals("headers") { headers = range }
                else if name.equals("stream") { stream = range }
                else if name.equals("timeouts") { timeouts = range }
            }
        } catch {
            throw TaskFailure(.invalidInput, "input is not valid JSON")
        }
        if escapedKey {
            // A member name written with escapes (Chimera writes none): read it the general way.
            guard let value = try? JSONParser.parse(Array(raw)).value else { throw TaskFailure(.invalidInput, "input is not valid JSON") }
            try self.init(json: value)
            return
        }
        func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[range]) }
        guard case .some(.some(let baseURL)) = base else { throw TaskFailure(.invalidInput, "llm.chat input needs \"base_url\" (a string)") }
        // The common shapes are read in place; anything else goes through a value, as in `init(json:)`.
        let keyValue: JSONValue? = key.map { range in
            if bytes(range).first == UInt8(ascii: "\""), let text = JSONParser.decodeString(bytes(range)) { return .string(text) }
            return (try? JSONParser.parse(Array(bytes(range))).value) ?? .null
        }
        let headersValue: JSONValue? = headers.flatMap { range in
            bytes(range).equals("[]") ? .array([]) : try? JSONParser.parse(Array(bytes(range))).value
        }
        let streamValue: JSONValue? = stream.flatMap { range in
            bytes(range).equals("true") ? .bool(true) : bytes(range).equals("false") ? .bool(false) : nil
        }
        let timeoutsValue: JSONValue? = timeouts.flatMap { range in try? JSONParser.parse(Array(bytes(range))).value }
        let bodyJSON = body.flatMap { raw[$0.lowerBound] == UInt8(ascii: "{") ? Array(bytes($0)) : nil }
        try self.init(baseURL: baseURL, key: keyValue, bodyJSON: bodyJSON, headers: headersValue, stream: streamValue, timeouts: timeoutsValue)
    }

    /// The checks and defaults both readers share.
    private init(baseURL: String, key keyValue: JSONValue?, bodyJSON: [UInt8]?, headers headersValue: JSONValue?, stream streamValue: JSONValue?,
                 timeouts t: JSONValue?) throws(TaskFailure) {
        var key: APIKeySecret?
        switch keyValue {
        case nil: key = nil
        case .string(let text)? where !text.isEmpty: key = APIKeySecret(text)
        default: throw TaskFailure(.invalidInput, "llm.chat \"key\" must be a non-empty string, or absent for a provider without keys")
        }
        guard let bodyJSON else { throw TaskFailure(.invalidInput, "llm.chat input needs \"body\" (the request object)") }
        var headers: [(name: String, value: String)] = []
        if case .array(let pairs)? = headersValue {
            for pair in pairs {
                guard case .array(let p) = pair, p.count == 2, case .string(let n) = p[0], case .string(let v) = p[1] else {
                    throw TaskFailure(.invalidInput, "llm.chat \"headers\" must be [[name, value], …]")
                }
                headers.append((n, v))
            }
        }
        var stream = false
        if case .bool(let b)? = streamValue { stream = b }
        self.init(baseURL: baseURL, headers: headers, key: key, stream: stream, bodyJSON: bodyJSON)
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

    /// The same JSON text as ``json`` (byte for byte), written directly: what a worker answers
    /// with, once per call.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        func number(_ d: Double?) {
            if let d { JSONValue.writeNumber(d, to: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        func string(_ s: String?) {
            if let s { JSONValue.writeString(s, to: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        func member(_ name: StaticString) {
            out.append(UInt8(ascii: ","))
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: "\":".utf8)
        }
        switch result {
        case .success: out.append(contentsOf: #"{"ok":true"#.utf8)
        case .failure: out.append(contentsOf: #"{"ok":false"#.utf8)
        }
        member("status"); number(status.map(Double.init))
        member("latency_ms"); number(Double(latencyMs))
        member("first_token_ms"); number(firstTokenMs.map(Double.init))
        switch result {
        case .success(let c):
            member("content"); string(c.content)
            member("model"); string(c.model)
            member("provider"); string(c.provider)
            member("id"); string(c.id)
            member("finish_reason"); string(c.finishReason)
            member("reasoning"); string(c.reasoning)
            member("usage")
            if let u = c.usage {
                out.append(contentsOf: #"{"prompt_tokens":"#.utf8); number(Double(u.promptTokens))
                member("completion_tokens"); number(Double(u.completionTokens))
                member("total_tokens"); number(Double(u.totalTokens))
                member("cost"); number(u.cost)
                member("cost_is_estimate"); out.append(contentsOf: (u.costIsEstimate ? "true" : "false").utf8)
                out.append(UInt8(ascii: "}"))
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .failure(let e):
            member("error")
            out.append(contentsOf: #"{"kind":"#.utf8); string(e.kind.rawValue)
            member("message"); string(e.message)
            member("status"); number(e.status.map(Double.init))
            member("error_type"); string(e.errorType)
            member("provider"); string(e.providerName)
            member("retryable"); if let r = e.retryable { out.append(contentsOf: (r ? "true" : "false").utf8) } else { out.append(contentsOf: "null".utf8) }
            member("after_tokens"); out.append(contentsOf: (e.afterTokens ? "true" : "false").utf8)
            member("rate_limit")
            out.append(contentsOf: #"{"limit":"#.utf8); number(e.rateLimit.limit.map(Double.init))
            member("remaining"); number(e.rateLimit.remaining.map(Double.init))
            member("reset_at"); number(e.rateLimit.resetAt.map(Double.init))
            member("retry_after_ms"); number(e.rateLimit.retryAfterMs.map(Double.init))
            out.append(contentsOf: "}}".utf8)
        }
        out.append(UInt8(ascii: "}"))
        return out
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

    /// Reads a worker's answer as workers write it (``bytes``) in place, without a value tree:
    /// what the coordinator does once per call. Failures, and anything written another way, are
    /// read through a value by ``init(json:)``, with the same result.
    public init(raw: UnsafeRawBufferPointer) {
        func value(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[range]) }
        func number(_ v: UnsafeRawBufferPointer) -> Double? {
            guard let first = v.first, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return nil }
            return Double(String(decoding: v, as: UTF8.self))
        }
        var ok = false, general = false
        var status: Int?, latencyMs: Int64 = 0, firstTokenMs: Int64?
        var content: String?, model: String?, provider: String?, id: String?, finishReason: String?, reasoning: String?
        var usageRange: Range<Int>?
        do {
            try JSONParser.forEachMember(of: raw) { name, range in
                guard let name else { general = true; return }
                let v = value(range)
                if name.equals("ok") { ok = v.equals("true") }
                else if name.equals("status") { status = number(v).map { Int($0) } }
                else if name.equals("latency_ms") { latencyMs = number(v).map { Int64($0) } ?? 0 }
                else if name.equals("first_token_ms") { firstTokenMs = number(v).map { Int64($0) } }
                else if name.equals("content") { content = JSONParser.decodeString(v) }
                else if name.equals("model") { model = JSONParser.decodeString(v) }
                else if name.equals("provider") { provider = JSONParser.decodeString(v) }
                else if name.equals("id") { id = JSONParser.decodeString(v) }
                else if name.equals("finish_reason") { finishReason = JSONParser.decodeString(v) }
                else if name.equals("reasoning") { reasoning = JSONParser.decodeString(v) }
                else if name.equals("usage") { usageRange = range }
            }
        } catch {
            general = true
        }
        var usage: ChatUsage?
        if ok, !general, let usageRange, raw[usageRange.lowerBound] == UInt8(ascii: "{") {
            var prompt = 0, completion = 0, total: Int?, cost: Double?, estimate = false
            do {
                let usageBytes = value(usageRange)
                try JSONParser.forEachMember(of: usageBytes) { name, range in
                    guard let name else { general = true; return }
                    let v = UnsafeRawBufferPointer(rebasing: usageBytes[range])
                    if name.equals("prompt_tokens") { prompt = number(v).map { Int($0) } ?? 0 }
                    else if name.equals("completion_tokens") { completion = number(v).map { Int($0) } ?? 0 }
                    else if name.equals("total_tokens") { total = number(v).map { Int($0) } }
                    else if name.equals("cost") { cost = number(v) }
                    else if name.equals("cost_is_estimate") { estimate = v.equals("true") }
                }
            } catch {
                general = true
            }
            usage = ChatUsage(promptTokens: prompt, completionTokens: completion, totalTokens: total, cost: cost, costIsEstimate: estimate)
        }
        guard ok, !general else {
            self.init(json: (try? JSONParser.parse(Array(raw)).value) ?? .null)
            return
        }
        self.init(result: .success(ChatCompletion(id: id, model: model, provider: provider, content: content ?? "", reasoning: reasoning,
                                                  finishReason: finishReason, usage: usage)),
                  status: status, latencyMs: latencyMs, firstTokenMs: firstTokenMs)
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
