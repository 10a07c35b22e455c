import ChimeraCore
import Testing

@Suite struct FailoverPolicyTests {
    let policy = FailoverPolicy()
    let now: EpochMillis = 1_795_953_600_000

    func error(_ kind: ExternalErrorKind, status: Int? = nil, provider: String? = nil, retryAfterMs: EpochMillis? = nil,
               resetAt: EpochMillis? = nil, afterTokens: Bool = false, retryable: Bool? = nil) -> ExternalError {
        var e = ExternalError(kind: kind, status: status, message: "m")
        e.providerName = provider
        e.rateLimit = RateLimitInfo(resetAt: resetAt, retryAfterMs: retryAfterMs)
        e.afterTokens = afterTokens
        e.retryable = retryable
        return e
    }

    func decide(_ e: ExternalError, attempt: Int = 1, model: Int = 0, chain: Int = 2, retries: Int = 0, jitter: Double = 0.5) -> FailoverPolicy.Decision {
        policy.decide(after: e, attempt: attempt, modelIndex: model, chainLength: chain, retriesOnModel: retries, now: now, jitter: jitter)
    }

    @Test func afterTokens_isFinal_whateverTheKind() {
        for kind in ExternalErrorKind.allCases {
            guard case .fail(let reason) = decide(error(kind, afterTokens: true)) else { Issue.record("\(kind) retried after tokens"); continue }
            #expect(reason.contains("never spliced"))
        }
    }

    @Test func keyAndAccountFailures_retryAtOnce_onTheSameModel() {
        for kind in [ExternalErrorKind.auth, .forbidden, .payment, .rateLimitedDaily] {
            #expect(decide(error(kind)) == .retry(modelIndex: 0, afterMs: 0, reason: "\(kind.rawValue): trying another key"))
        }
    }

    @Test func keyFailures_fromAProviderWithoutKeys_moveAlongTheChain_thenFail() {
        for kind in [ExternalErrorKind.auth, .payment] {
            #expect(policy.decide(after: error(kind), attempt: 1, modelIndex: 0, chainLength: 2, retriesOnModel: 0, now: now, jitter: 0.5, canSwitchKey: false)
                    == .retry(modelIndex: 1, afterMs: 0, reason: "\(kind.rawValue) from a provider without keys: next model in the chain"))
            guard case .fail(let reason) = policy.decide(after: error(kind), attempt: 1, modelIndex: 1, chainLength: 2, retriesOnModel: 0,
                                                         now: now, jitter: 0.5, canSwitchKey: false) else {
                Issue.record("\(kind) retried without another key or model"); continue
            }
            #expect(reason.contains("without keys"))
        }
    }

    @Test func modelFailures_moveAlongTheChain_thenFail() {
        #expect(decide(error(.modelNotFound), model: 0, chain: 3) == .retry(modelIndex: 1, afterMs: 0, reason: "model_not_found: next model in the chain"))
        guard case .fail = decide(error(.contextTooLong), model: 2, chain: 3) else { Issue.record("last model must fail"); return }
    }

    @Test func requestFailures_areFinal() {
        for kind in [ExternalErrorKind.badRequest, .cancelled, .quotaExhausted] {
            guard case .fail = decide(error(kind)) else { Issue.record("\(kind) retried"); continue }
        }
    }

    @Test func transientFailures_backOffWithJitter_thenNextModel_thenFail() {
        // 250 ms × 2^n, scaled into [0.5, 1.0] by the jitter.
        #expect(decide(error(.providerError, status: 502), retries: 0, jitter: 0) == .retry(modelIndex: 0, afterMs: 125, reason: "provider_error: retry 1 in 125 ms"))
        #expect(decide(error(.providerError, status: 502), retries: 1, jitter: 0.999_999) == .retry(modelIndex: 0, afterMs: 499, reason: "provider_error: retry 2 in 499 ms"))
        #expect(decide(error(.timeout), chain: 2, retries: 2) == .retry(modelIndex: 1, afterMs: 0, reason: "timeout: next model in the chain"))
        guard case .fail = decide(error(.network), model: 1, chain: 2, retries: 2) else { Issue.record("must fail at the end of the chain"); return }
    }

    @Test func retryAfterAndReset_areHonoured_whenShort_andSkipped_whenLong() {
        #expect(decide(error(.rateLimited, provider: "Venice", retryAfterMs: 17_000)) == .retry(modelIndex: 0, afterMs: 17_000, reason: "rate_limited: retry 1 in 17000 ms"))
        #expect(decide(error(.providerError, status: 503, retryAfterMs: 3_000)) == .retry(modelIndex: 0, afterMs: 3_000, reason: "provider_error: retry 1 in 3000 ms"))
        // A wait beyond maxHonouredWaitMs is not waited for.
        #expect(decide(error(.rateLimited, provider: "Venice", retryAfterMs: 120_000)) == .retry(modelIndex: 1, afterMs: 0, reason: "rate_limited: next model in the chain"))
    }

    @Test func openRoutersOwnPerMinute429_triesAnotherKeyAtOnce() {
        #expect(decide(error(.rateLimited, status: 429, resetAt: now + 40_000)) == .retry(modelIndex: 0, afterMs: 0, reason: "rate_limited (per-minute): the key cools down; trying another key"))
    }

    @Test func attemptsAreBounded() {
        guard case .fail(let reason) = decide(error(.providerError), attempt: policy.maxAttempts) else { Issue.record("unbounded"); return }
        #expect(reason.contains("gave up after"))
    }

    @Test func notRetryableUpstream_movesOn() {
        #expect(decide(error(.providerError, retryable: false)) == .retry(modelIndex: 1, afterMs: 0, reason: "provider_error (not retryable upstream): next model in the chain"))
    }
}

@Suite struct ExternalCallWireTests {
    /// The worker's reader, on `text`.
    private func readRaw(_ text: String) throws(TaskFailure) -> ExternalCallInput {
        try Array(text.utf8).withUnsafeBytes { raw in Result { () throws(TaskFailure) in try ExternalCallInput(raw: raw) } }.get()
    }

    @Test func input_roundTrips_andNamesTheBadField() throws {
        let input = ExternalCallInput(baseURL: "http://127.0.0.1:1/api/v1", headers: [(name: "X-OpenRouter-Title", value: "Chimera")],
                                      key: APIKeySecret("sk-or-v1-fake0000000000000000000000000000a1b2"), stream: true,
                                      body: .object([JSONMember("model", .string("m:free"))]), connectMs: 5, firstByteMs: 6, idleMs: 7, totalMs: 8)
        let decoded = try ExternalCallInput(json: JSONParser.parse(input.json.serialized))
        #expect(decoded == input)
        // A provider without keys: no "key" at all is valid, and none is sent.
        var keyless = input
        keyless.key = nil
        #expect(!keyless.json.serialized.contains("\"key\""))
        #expect(try ExternalCallInput(json: JSONParser.parse(keyless.json.serialized)) == keyless)
        let body = JSONMember("body", .object([]))
        for (members, field) in [([JSONMember("base_url", .string("x")), JSONMember("key", .string("")), body], "\"key\""),
                                 ([JSONMember("base_url", .string("x")), JSONMember("key", .number(1)), body], "\"key\""),
                                 ([JSONMember("base_url", .string("x"))], "\"body\"")] {
            do {
                _ = try ExternalCallInput(json: .object(members))
                Issue.record("accepted \(members)")
            } catch {
                #expect(error.message.contains(field), "\(error.message)")
            }
        }
    }

    /// The worker reads the input from its raw text (the body kept as bytes); that must agree
    /// with the general reader, and the direct writer with the value's serialization.
    @Test func input_rawReaderAndDirectWriter_agreeWithTheValueForms() throws {
        let input = ExternalCallInput(baseURL: "http://127.0.0.1:1/api/v1", headers: [(name: "X-OpenRouter-Title", value: "Chimera \"q\"")],
                                      key: APIKeySecret("sk-or-v1-fake0000000000000000000000000000a1b2"), stream: true,
                                      body: .object([JSONMember("model", .string("m:free")), JSONMember("messages", .array([.object([
                                          JSONMember("role", .string("user")), JSONMember("content", .string("line one\nline \u{1} two ✓")),
                                      ])])), JSONMember("max_tokens", .number(8))]),
                                      connectMs: 5, firstByteMs: 6, idleMs: 7, totalMs: 8)
        var keyless = input
        keyless.key = nil
        keyless.headers = []
        keyless.stream = false
        for value in [input, keyless] {
            let text = value.json.serialized
            #expect(String(decoding: value.bytes, as: UTF8.self) == text)
            let raw = try readRaw(text)
            #expect(raw == value)
            #expect(raw.bodyJSON == value.bodyJSON, "the body is passed on byte for byte")
            #expect(try ExternalCallInput(json: JSONParser.parse(text)) == raw)
        }
        // Spacing inside the body survives the raw reader; the value forms still compare equal.
        let spaced = #"{"base_url":"http://x","body":{ "model" : "m" },"timeouts":{"total_ms":9}}"#
        let read = try readRaw(spaced)
        #expect(String(decoding: read.bodyJSON, as: UTF8.self) == #"{ "model" : "m" }"#)
        #expect(read.body == .object([JSONMember("model", .string("m"))]))
        #expect(read.totalMs == 9 && read.connectMs == 10_000 && read.key == nil && !read.stream)
        // A member name written with escapes is read the general way.
        let escaped = #"{"base\u005furl":"http://x","body":{}}"#
        #expect(try readRaw(escaped).baseURL == "http://x")
        // The same checks, with the same messages, as the value reader.
        for (text, field) in [(#"{"base_url":"x","key":"","body":{}}"#, "\"key\""), (#"{"base_url":"x","key":1,"body":{}}"#, "\"key\""),
                              (#"{"base_url":"x"}"#, "\"body\""), (#"{"base_url":"x","body":[1]}"#, "\"body\""),
                              (#"{"base_url":1,"body":{}}"#, "\"base_url\""), (#"{"base_url":"x","body":{},"headers":[["a"]]}"#, "\"headers\""),
                              (#"{"base_url":"x","body":{}"#, "not valid JSON"), (#"[1]"#, "not valid JSON")] {
            do {
                _ = try readRaw(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.message.contains(field), "\(text): \(error.message)")
                #expect(error.kind == .invalidInput)
            }
        }
    }

    @Test func output_directWriter_matchesTheValue() throws {
        var e = ExternalError(kind: .providerError, status: 502, message: "Bad \"gateway\"\n")
        e.errorType = "upstream"
        e.providerName = "P"
        e.retryable = true
        e.rateLimit = RateLimitInfo(limit: 20, remaining: 3, resetAt: 1_796_000_000_000, retryAfterMs: 1_500)
        let outputs = [
            ExternalCallOutput(result: .success(ChatCompletion(id: "gen-1", model: "m", provider: "P", content: "hi ✓ \u{7}", reasoning: "r",
                                                               finishReason: "stop", usage: ChatUsage(promptTokens: 3, completionTokens: 1, cost: 0.000125,
                                                                                                      costIsEstimate: true))),
                               status: 200, latencyMs: 12, firstTokenMs: 5),
            ExternalCallOutput(result: .success(ChatCompletion(content: "")), status: nil, latencyMs: 0, firstTokenMs: nil),
            ExternalCallOutput(result: .failure(e), status: 502, latencyMs: 3, firstTokenMs: nil),
            ExternalCallOutput(result: .failure(ExternalError(kind: .timeout, status: nil, message: "t")), status: nil, latencyMs: 1, firstTokenMs: 1),
        ]
        for output in outputs {
            #expect(String(decoding: output.bytes, as: UTF8.self) == output.json.serialized)
            #expect(ExternalCallOutput(json: try JSONParser.parse(output.bytes).value) == output)
            #expect(output.bytes.withUnsafeBytes { ExternalCallOutput(raw: $0) } == output)
        }
    }

    @Test func output_readInPlace_agreesWithTheValueReader_onOtherShapes() throws {
        let texts = [
            #"{ "ok" : true, "content": "spaced é", "usage": {"prompt_tokens": 2, "completion_tokens": 1e0, "cost": 1.5e-6}, "status": 200}"#,
            #"{"ok":true,"content":"no usage","usage":null,"latency_ms":7}"#,
            #"{"ok":true,"content":"escaped member name","model":"m"}"#,
            #"{"ok":true,"usage":{"prompt_tokens":1,"completion_tokens":2,"cost":0.5}}"#,
            #"{"ok":true,"content":"extra","future_field":[1,{"a":2}]}"#,
            #"{"ok":false,"error":{"kind":"timeout","message":"slow"}}"#,
            #"{"ok":"yes"}"#, #"{"ok":true"#, #"[]"#, "",
        ]
        for text in texts {
            let bytes = Array(text.utf8)
            let expected = ExternalCallOutput(json: (try? JSONParser.parse(bytes).value) ?? .null)
            #expect(bytes.withUnsafeBytes { ExternalCallOutput(raw: $0) } == expected, "\(text)")
        }
    }

    @Test func output_roundTrips_successAndFailure() throws {
        let ok = ExternalCallOutput(result: .success(ChatCompletion(id: "gen-1", model: "m:free", provider: "P", content: "hi", finishReason: "stop",
                                                                    usage: ChatUsage(promptTokens: 3, completionTokens: 1, cost: 0))),
                                    status: 200, latencyMs: 12, firstTokenMs: 5)
        #expect(ExternalCallOutput(json: try JSONParser.parse(ok.json.serialized)) == ok)
        var e = ExternalError(kind: .rateLimitedDaily, status: 429, message: "Rate limit exceeded: free-models-per-day")
        e.rateLimit = RateLimitInfo(limit: 50, remaining: 0, resetAt: 1_796_000_000_000, retryAfterMs: nil)
        e.afterTokens = true
        let failed = ExternalCallOutput(result: .failure(e), status: 429, latencyMs: 3, firstTokenMs: nil)
        #expect(ExternalCallOutput(json: try JSONParser.parse(failed.json.serialized)) == failed)
    }

    @Test func output_fromGarbage_isMalformed() {
        guard case .failure(let e) = ExternalCallOutput(json: .string("nonsense")).result else { Issue.record("accepted garbage"); return }
        #expect(e.kind == .malformedResponse)
    }
}
