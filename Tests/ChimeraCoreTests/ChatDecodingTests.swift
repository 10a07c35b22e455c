import Testing
@testable import ChimeraCore

// Fixtures follow ../shared/openrouter-api.md (§2.3, §3, §4, §5.3): the composed examples there,
// and the observed body shapes it quotes.

/// 2026-11-29T12:00:00Z.
private let now: EpochMillis = 1_795_953_600_000
/// 2026-11-30T00:00:00Z, the next UTC midnight after `now`.
private let midnight: EpochMillis = 1_795_996_800_000

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func decodeChat(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Result<ChatCompletion, ExternalError> {
    ChatResponseDecoder.decode(status: status, headers: headers, body: bytes(body), now: now)
}

private func classifyChat(_ status: Int, _ body: String, headers: [(String, String)] = []) -> ExternalError {
    ChatResponseDecoder.classify(status: status, headers: headers, body: bytes(body), now: now)
}

/// Runs a whole SSE body through the parser and the stream decoder.
private func decodeStream(_ body: String, chunkSize: Int = 7) -> (steps: [ChatStreamDecoder.Step], comments: [String], result: Result<ChatCompletion, ExternalError>) {
    var parser = SSEParser()
    var decoder = ChatStreamDecoder()
    var steps: [ChatStreamDecoder.Step] = []
    var comments: [String] = []
    let raw = bytes(body)
    var items: [SSEItem] = []
    var start = 0
    while start < raw.count {
        items += parser.feed(raw[start..<min(raw.count, start + chunkSize)])
        start += chunkSize
    }
    items += parser.finish()
    for item in items {
        switch item {
        case .comment(let text): comments.append(text)
        case .event(let event): steps.append(decoder.consume(event))
        }
    }
    return (steps, comments, decoder.finish())
}

private let composedCompletion = """
{
  "id": "gen-1764926476-0N0195qHFzGljvYKVijc",
  "provider": "OpenAI",
  "model": "openai/gpt-4o-mini",
  "object": "chat.completion",
  "created": 1764926476,
  "choices": [{
    "logprobs": null, "finish_reason": "stop", "native_finish_reason": "stop", "index": 0,
    "message": {"role": "assistant", "content": "Hello!", "refusal": null, "reasoning": null}
  }],
  "system_fingerprint": "fp_aa07c96156",
  "usage": {
    "prompt_tokens": 29, "completion_tokens": 33, "total_tokens": 62,
    "cost": 0.00002415, "is_byok": false,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0, "video_tokens": 0},
    "cost_details": {"upstream_inference_cost": null,
                     "upstream_inference_prompt_cost": 0.00000435,
                     "upstream_inference_completions_cost": 0.0000198},
    "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}
  }
}
"""

private let streamTranscript = """
: OPENROUTER PROCESSING

data: {"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion.chunk","created":1739458867,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"system_fingerprint":"fp_x"}

data: {"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion.chunk","created":1739458867,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}

data: {"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion.chunk","created":1739458867,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"stop","logprobs":null}]}

data: {"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion.chunk","created":1739458867,"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9,"cost":0.0000018,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]


"""

/// A content chunk of the `gen-abc` stream used by the error tests.
private func contentChunk(_ text: String) -> String {
    """
    data: {"id":"gen-abc","object":"chat.completion.chunk","created":1730000000,"model":"openai/gpt-4o","provider":"OpenAI","choices":[{"index":0,"delta":{"content":"\(text)"},"finish_reason":null}]}


    """
}

/// The documented mid-stream error chunk (§3).
private let midStreamErrorChunk = """
data: {"id":"gen-abc","object":"chat.completion.chunk","created":1730000000,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":502,"message":"Provider disconnected","metadata":{"error_type":"provider_unavailable"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}


"""

private let dailyCapMessage = "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day"

@Suite struct ChatDecodingTests {
    // MARK: Request body

    @Test func request_defaults_writeModelMessagesAndStream() {
        let request = ChatRequest(model: "openai/gpt-4o-mini", messages: [ChatMessage(role: "user", content: "Say \"hi\"\n")])
        #expect(String(decoding: request.body(), as: UTF8.self)
            == #"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Say \"hi\"\n"}],"stream":false}"#)
    }

    @Test func request_allFields_writeModelsListProviderAndExtrasInOrder() throws {
        var request = ChatRequest(model: "a/free:free", messages: [ChatMessage(role: "system", content: "s"), ChatMessage(role: "user", content: "u")], stream: true)
        request.fallbackModels = ["b/one", "c/two"]
        request.maxTokens = 256
        request.temperature = 0.7
        request.provider = .object([JSONMember("allow_fallbacks", .bool(false)), JSONMember("order", .array([.string("openai")]))])
        request.extra = [JSONMember("user", .string("u-1")), JSONMember("seed", .number(7))]
        let text = String(decoding: request.body(), as: UTF8.self)
        #expect(text == #"{"model":"a/free:free","models":["a/free:free","b/one","c/two"],"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}],"stream":true,"max_tokens":256,"temperature":0.7,"provider":{"allow_fallbacks":false,"order":["openai"]},"user":"u-1","seed":7}"#)
        #expect(try JSONParser.parse(text)["models"] == .array([.string("a/free:free"), .string("b/one"), .string("c/two")]))
    }

    @Test func request_extraMemberWithTypedKey_replacesTypedField() {
        var request = ChatRequest(model: "m", messages: [])
        request.maxTokens = 10
        request.extra = [JSONMember("max_tokens", .number(20))]
        #expect(String(decoding: request.body(), as: UTF8.self) == #"{"model":"m","messages":[],"stream":false,"max_tokens":20}"#)
    }

    // MARK: Non-streaming responses

    @Test func decode_composedExample_givesCompletionWithUsageAndProvider() throws {
        let completion = try decodeChat(200, composedCompletion).get()
        #expect(completion == ChatCompletion(
            id: "gen-1764926476-0N0195qHFzGljvYKVijc", model: "openai/gpt-4o-mini", provider: "OpenAI",
            content: "Hello!", reasoning: nil, finishReason: "stop",
            usage: ChatUsage(promptTokens: 29, completionTokens: 33, totalTokens: 62, cost: 0.00002415, isBYOK: false)
        ))
        #expect(completion.usage?.costIsEstimate == false)
    }

    @Test func decode_reasoningAndContentParts_areRead() throws {
        let body = #"{"choices":[{"index":0,"finish_reason":"stop","message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"reasoning":"think"}}]}"#
        let completion = try decodeChat(200, body).get()
        #expect(completion.content == "ab")
        #expect(completion.reasoning == "think")
        #expect(completion.usage == nil)
    }

    @Test func decode_200WithOnlyError_isTheClassifiedError() {
        let body = #"{"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"Venice","raw":"upstream exploded"}},"user_id":"user_2abc"}"#
        let error = decodeChat(200, body).failure
        #expect(error == ExternalError(kind: .providerError, status: 502, message: "Provider returned error: upstream exploded", providerName: "Venice"))
        #expect(error?.isRetryable == true)
    }

    @Test func decode_200WithChoiceFinishReasonError_failsAfterTokens() {
        let body = #"{"id":"gen-2","model":"openai/gpt-4o","provider":"OpenAI","choices":[{"index":0,"finish_reason":"error","message":{"role":"assistant","content":"partial ans"},"error":{"code":502,"message":"Upstream died","metadata":{"error_type":"provider_unavailable"}}}]}"#
        let error = decodeChat(200, body).failure
        #expect(error?.kind == .providerError)
        #expect(error?.status == 502)
        #expect(error?.errorType == "provider_unavailable")
        #expect(error?.message == "Upstream died")
        #expect(error?.providerName == "OpenAI")
        #expect(error?.afterTokens == true)
        // Without an error object the choice still fails.
        let bare = decodeChat(200, #"{"choices":[{"index":0,"finish_reason":"error","message":{"content":null}}]}"#).failure
        #expect(bare?.kind == .providerError)
        #expect(bare?.afterTokens == false)
    }

    @Test func decode_emptyChoicesOrContent_isEmptyResponse() {
        #expect(decodeChat(200, #"{"id":"gen-3","choices":[]}"#).failure?.kind == .emptyResponse)
        let empty = decodeChat(200, #"{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":""}}]}"#).failure
        #expect(empty?.kind == .emptyResponse)
        #expect(empty?.message == "no content, finish_reason stop")
        let onlyReasoning = decodeChat(200, #"{"choices":[{"index":0,"finish_reason":"length","message":{"content":null,"reasoning":"hmm"}}]}"#).failure
        #expect(onlyReasoning?.message == "no content, finish_reason length, only reasoning")
    }

    @Test func decode_notJSONOrWrongShape_isMalformed() {
        for body in ["", "<html>502 Bad Gateway</html>", #"{"choices":[{"#, "[1,2]", #"{"id":"x"}"#] {
            let error = decodeChat(200, body).failure
            #expect(error?.kind == .malformedResponse, "\(body)")
            #expect(error?.isRetryable == true)
        }
        #expect(decodeChat(200, "<html>oops</html>").failure?.message == "the response body is not JSON: <html>oops</html>")
    }

    @Test func decode_errorStatus_isClassified() {
        let error = decodeChat(401, #"{"error":{"message":"User not found.","code":401}}"#).failure
        #expect(error == ExternalError(kind: .auth, status: 401, message: "User not found."))
    }

    // MARK: Classification by status

    struct StatusCase: Sendable, CustomTestStringConvertible {
        var status: Int
        var body: String
        var kind: ExternalErrorKind
        var testDescription: String { "\(status) → \(kind.rawValue)" }
    }

    static let statusCases: [StatusCase] = [
        StatusCase(status: 401, body: #"{"error":{"message":"No auth credentials found","code":401}}"#, kind: .auth),
        StatusCase(status: 402, body: #"{"error":{"message":"This request requires more credits, or fewer max_tokens.","code":402,"metadata":{"provider_name":null}},"user_id":"user_1"}"#, kind: .payment),
        StatusCase(status: 403, body: #"{"error":{"code":403,"message":"Input flagged","metadata":{"reasons":["violence"],"flagged_input":"...","provider_name":"OpenAI","model_slug":"x"}}}"#, kind: .moderation),
        StatusCase(status: 403, body: #"{"error":{"code":403,"message":"flagged","metadata":{"flagged_input":"ab...yz"}}}"#, kind: .moderation),
        StatusCase(status: 403, body: #"{"error":{"code":403,"message":"Request blocked: prompt injection patterns detected","metadata":{"patterns":["x"]}}}"#, kind: .forbidden),
        StatusCase(status: 404, body: #"{"error":{"code":404,"message":"No endpoints found for foo/bar."}}"#, kind: .modelNotFound),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"too long","metadata":{"error_type":"context_length_exceeded"}}}"#, kind: .contextTooLong),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"x","metadata":{"error_type":"max_tokens_exceeded"}}}"#, kind: .contextTooLong),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"x","metadata":{"error_type":"token_limit_exceeded"}}}"#, kind: .contextTooLong),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"x","metadata":{"error_type":"string_too_long"}}}"#, kind: .contextTooLong),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens."}}"#, kind: .contextTooLong),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"foo/bar is not a valid model ID","availability":{"code":"model_not_found","retryable":false,"requested_models":["foo/bar"],"docs_url":"u"}}}"#, kind: .modelNotFound),
        StatusCase(status: 400, body: #"{"error":{"code":400,"message":"bad","metadata":{"error_type":"invalid_request"}}}"#, kind: .badRequest),
        StatusCase(status: 408, body: #"{"error":{"code":408,"message":"Request timed out"}}"#, kind: .timeout),
        StatusCase(status: 413, body: #"{"error":{"code":413,"message":"Payload too large"}}"#, kind: .badRequest),
        StatusCase(status: 422, body: #"{"error":{"code":422,"message":"Unprocessable"}}"#, kind: .badRequest),
        StatusCase(status: 418, body: #"{"error":{"code":418,"message":"teapot"}}"#, kind: .badRequest),
        StatusCase(status: 429, body: #"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min.","metadata":{"error_type":"rate_limit_exceeded"}}}"#, kind: .rateLimited),
        StatusCase(status: 429, body: #"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-day-high-balance"}}"#, kind: .rateLimitedDaily),
        StatusCase(status: 429, body: #"{"error":{"code":429,"message":"Rate limit exceeded","metadata":{"limit_source":"openrouter_free_tier_daily"}}}"#, kind: .rateLimitedDaily),
        StatusCase(status: 500, body: #"{"error":{"code":500,"message":"Internal Server Error"}}"#, kind: .providerError),
        StatusCase(status: 502, body: #"{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"Venice"}}}"#, kind: .providerError),
        StatusCase(status: 503, body: #"{"error":{"code":503,"message":"No available providers"}}"#, kind: .providerError),
        StatusCase(status: 504, body: #"{"error":{"code":504,"message":"Gateway timeout"}}"#, kind: .providerError),
        StatusCase(status: 524, body: "<html>A timeout occurred</html>", kind: .providerError),
        StatusCase(status: 529, body: #"{"error":{"code":529,"message":"Provider overloaded"}}"#, kind: .providerError),
        StatusCase(status: 599, body: "", kind: .providerError),
    ]

    @Test(arguments: ChatDecodingTests.statusCases)
    func classify_eachStatus_givesDocumentedKind(_ c: StatusCase) {
        let error = classifyChat(c.status, c.body)
        #expect(error.kind == c.kind)
        #expect(error.status == c.status)
        #expect(!error.message.isEmpty)
        // Through `decode`, an error status is the same failure.
        #expect(decodeChat(c.status, c.body).failure == error)
    }

    @Test func classify_messagesAndDetails_areTaken() {
        let moderation = classifyChat(403, #"{"error":{"code":403,"message":"Input flagged","metadata":{"reasons":["violence"],"flagged_input":"...","provider_name":"OpenAI"}}}"#)
        #expect(moderation.providerName == "OpenAI")
        #expect(moderation.message == "Input flagged")
        #expect(classifyChat(524, "<html>A timeout occurred</html>").message == "<html>A timeout occurred</html>")
        #expect(classifyChat(599, "").message == "(empty body)")
        #expect(classifyChat(502, #"{"message":"gateway says no"}"#).message == "gateway says no")
        #expect(classifyChat(400, #"{"error":"plain string"}"#) == ExternalError(kind: .badRequest, status: 400, message: "plain string"))
    }

    @Test func classify_longMessage_isTrimmedTo300Characters() {
        let long = String(repeating: "é", count: 500)
        let error = classifyChat(500, #"{"error":{"code":500,"message":"\#(long)"}}"#)
        #expect(error.message.count == 300)
        #expect(error.message.hasSuffix("…"))
    }

    @Test func classify_availability_givesRetryableAndCode() {
        let error = classifyChat(429, #"{"error":{"code":429,"message":"capacity","availability":{"code":"capacity_exhausted","retryable":true,"retry_after":30,"requested_models":["m"],"docs_url":"u"}}}"#)
        #expect(error.kind == .rateLimited)
        #expect(error.availabilityCode == "capacity_exhausted")
        #expect(error.retryable == true)
        #expect(error.rateLimit.retryAfterMs == 30_000)
        let gone = classifyChat(404, #"{"error":{"code":404,"message":"gone","availability":{"code":"free_variant_ended","retryable":false}}}"#)
        #expect(gone.retryable == false)
        #expect(!gone.isRetryable)
        // A server's `retryable` overrides the kind's rule.
        let notAgain = classifyChat(503, #"{"error":{"code":503,"message":"x","availability":{"code":"temporarily_unavailable","retryable":false}}}"#)
        #expect(notAgain.kind.isRetryable)
        #expect(!notAgain.isRetryable)
    }

    // MARK: Rate limits

    @Test func classify_dailyCapWithHeaders_isAccountScopedUntilReset() {
        let body = #"{"error":{"code":429,"message":"\#(dailyCapMessage)","metadata":{"error_type":"rate_limit_exceeded"}},"user_id":"user_2abc"}"#
        let headers = [("x-ratelimit-limit", "50"), ("X-RATELIMIT-REMAINING", "0"), ("X-RateLimit-Reset", "\(midnight)")]
        let error = classifyChat(429, body, headers: headers)
        #expect(error.kind == .rateLimitedDaily)
        #expect(error.kind.scope == .account)
        #expect(error.errorType == "rate_limit_exceeded")
        #expect(error.rateLimit == RateLimitInfo(limit: 50, remaining: 0, resetAt: midnight, retryAfterMs: nil))
        #expect(error.accountSpentUntil(now: now) == midnight)
        #expect(error.keyOutcome == .rateLimited(resetAt: midnight, retryAfterMs: nil))
        #expect(error.message == dailyCapMessage)
    }

    @Test func classify_dailyCapWithBodyHeadersOnly_readsMetadataHeaders() {
        let body = #"{"error":{"code":429,"message":"Rate limit exceeded","metadata":{"headers":{"X-RateLimit-Limit":"1000","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"1795996800000"},"error_type":"rate_limit_exceeded","limit_source":"openrouter_free_tier_daily"}},"user_id":"user_x"}"#
        let error = classifyChat(429, body)
        #expect(error.kind == .rateLimitedDaily)
        #expect(error.rateLimit == RateLimitInfo(limit: 1000, remaining: 0, resetAt: midnight))
    }

    @Test func classify_dailyCapWithoutReset_fillsNextUTCMidnight() {
        let error = classifyChat(429, #"{"error":{"code":429,"message":"\#(dailyCapMessage)"}}"#)
        #expect(error.rateLimit.resetAt == midnight)
        #expect(error.accountSpentUntil(now: now) == midnight)
        // A reset already in the past is not believed.
        var stale = error
        stale.rateLimit.resetAt = now - 1
        #expect(stale.accountSpentUntil(now: now) == midnight)
    }

    @Test func classify_perMinuteWithResetInSeconds_isTransientWithMilliseconds() {
        let body = #"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min.","metadata":{"error_type":"rate_limit_exceeded"}}}"#
        let error = classifyChat(429, body, headers: [("X-RateLimit-Limit", "20"), ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "1795953660")])
        #expect(error.kind == .rateLimited)
        #expect(error.kind.scope == .transient)
        #expect(error.rateLimit.resetAt == 1_795_953_660_000)
        #expect(error.accountSpentUntil(now: now) == nil)
        #expect(error.keyOutcome == .rateLimited(resetAt: 1_795_953_660_000, retryAfterMs: nil))
        // A tiny value is a delay in seconds, not a date in 1970.
        let delay = classifyChat(429, body, headers: [("X-RateLimit-Reset", "60")])
        #expect(delay.rateLimit.resetAt == now + 60_000)
    }

    @Test func classify_retryAfter_fromHeaderOrUpstreamMetadata() {
        let headerOnly = classifyChat(503, #"{"error":{"code":503,"message":"busy"}}"#, headers: [("Retry-After", "17")])
        #expect(headerOnly.rateLimit.retryAfterMs == 17_000)
        // An HTTP date is not an integer: ignored.
        let date = classifyChat(503, #"{"error":{"code":503,"message":"busy"}}"#, headers: [("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")])
        #expect(date.rateLimit.retryAfterMs == nil)
        // The observed upstream 429 (§4.5): only the body says when.
        let upstream = classifyChat(429, #"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"m:free is temporarily rate-limited upstream. Please retry shortly.","provider_name":"Venice","is_byok":false,"retry_after_seconds":17,"retry_after_seconds_raw":16.007,"headers":{"Retry-After":"17"}}},"user_id":"user_1"}"#)
        #expect(upstream.kind == .rateLimited)
        #expect(upstream.providerName == "Venice")
        #expect(upstream.rateLimit.retryAfterMs == 17_000)
        #expect(upstream.message == "Provider returned error: m:free is temporarily rate-limited upstream. Please retry shortly.")
        let secondsOnly = classifyChat(429, #"{"error":{"message":"x","code":429,"metadata":{"retry_after_seconds":2.5}}}"#)
        #expect(secondsOnly.rateLimit.retryAfterMs == 2_500)
        // The header wins over the body.
        let both = classifyChat(429, #"{"error":{"message":"x","code":429,"metadata":{"retry_after_seconds":99}}}"#, headers: [("Retry-After", "3")])
        #expect(both.rateLimit.retryAfterMs == 3_000)
    }

    // MARK: In-band codes

    @Test func classify_stringOrMissingCodes_inBand() {
        #expect(decodeChat(200, #"{"error":{"code":"429","message":"Rate limit exceeded: free-models-per-min."}}"#).failure?.kind == .rateLimited)
        #expect(decodeChat(200, #"{"error":{"code":"429","message":"x"}}"#).failure?.status == 429)
        let serverError = decodeChat(200, #"{"error":{"code":"server_error","message":"Something broke"}}"#).failure
        #expect(serverError?.kind == .providerError)
        #expect(serverError?.status == 500)
        let byType = decodeChat(200, #"{"error":{"message":"too long","metadata":{"error_type":"context_length_exceeded"}}}"#).failure
        #expect(byType?.kind == .contextTooLong)
        let byAvailability = decodeChat(200, #"{"error":{"message":"no","availability":{"code":"model_not_found","retryable":false}}}"#).failure
        #expect(byAvailability?.kind == .modelNotFound)
        let nothing = decodeChat(200, #"{"error":{"message":"mystery"}}"#).failure
        #expect(nothing == ExternalError(kind: .providerError, message: "mystery"))
        // The HTTP status wins over a disagreeing code.
        #expect(classifyChat(402, #"{"error":{"code":500,"message":"x"}}"#).kind == .payment)
    }

    // MARK: Streams

    @Test func stream_transcript_givesDeltasAndCompletionWithUsage() throws {
        let (steps, comments, result) = decodeStream(streamTranscript)
        #expect(comments == ["OPENROUTER PROCESSING"])
        #expect(steps == [.ignored, .delta("Hi"), .ignored, .ignored, .done])
        #expect(try result.get() == ChatCompletion(
            id: "gen-1", model: "openai/gpt-4o-mini", provider: "OpenAI", content: "Hi", reasoning: nil, finishReason: "stop",
            usage: ChatUsage(promptTokens: 8, completionTokens: 1, totalTokens: 9, cost: 0.0000018, isBYOK: false)
        ))
    }

    @Test func stream_transcriptWithCRLF_decodesTheSame() throws {
        let crlf = String(streamTranscript.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n"))
        let (steps, _, result) = decodeStream(crlf, chunkSize: 3)
        #expect(steps == [.ignored, .delta("Hi"), .ignored, .ignored, .done])
        #expect(try result.get().content == "Hi")
    }

    @Test func stream_midStreamErrorAfterTokens_failsWithAfterTokens() {
        let body = contentChunk("Hel") + contentChunk("lo") + midStreamErrorChunk + contentChunk("ignored")
        let (steps, _, result) = decodeStream(body)
        let expected = ExternalError(kind: .providerError, status: 502, message: "Provider disconnected", errorType: "provider_unavailable", providerName: "OpenAI", afterTokens: true)
        #expect(steps == [.delta("Hel"), .delta("lo"), .failed(expected), .ignored])
        #expect(result.failure == expected)
        #expect(result.failure?.keyOutcome == .failure("HTTP 502: Provider disconnected"))
    }

    @Test func stream_errorAsFirstAndOnlyFrame_failsBeforeTokens() {
        let body = #"data: {"id":"gen-z","object":"chat.completion.chunk","created":1,"model":"m:free","choices":[],"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min.","metadata":{"error_type":"rate_limit_exceeded"}}}"# + "\n\n"
        let (steps, _, result) = decodeStream(body)
        let expected = ExternalError(kind: .rateLimited, status: 429, message: "Rate limit exceeded: free-models-per-min.", errorType: "rate_limit_exceeded", afterTokens: false)
        #expect(steps == [.failed(expected)])
        #expect(result.failure == expected)
    }

    @Test func stream_stringErrorCode_isProviderError() {
        let body = #"data: {"error":{"code":"server_error","message":"Internal error"},"choices":[]}"# + "\n\n"
        #expect(decodeStream(body).result.failure?.kind == .providerError)
    }

    @Test func stream_choiceFinishReasonErrorWithoutTopLevelError_fails() {
        let body = contentChunk("a") + #"data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"error","error":{"code":504,"message":"late"}}]}"# + "\n\n"
        let failure = decodeStream(body).result.failure
        #expect(failure?.kind == .providerError)
        #expect(failure?.status == 504)
        #expect(failure?.afterTokens == true)
    }

    @Test func stream_cutBeforeDone_isTruncated() {
        let afterTokens = decodeStream(contentChunk("Hel") + contentChunk("lo")).result.failure
        #expect(afterTokens?.kind == .truncatedStream)
        #expect(afterTokens?.afterTokens == true)
        #expect(afterTokens?.providerName == "OpenAI")
        #expect(afterTokens?.message == "the stream ended without [DONE], after 5 characters of content")
        // Everything but [DONE], usage included: still not a success.
        let withoutDone = streamTranscript.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { $0 != "data: [DONE]" }.joined(separator: "\n")
        #expect(decodeStream(withoutDone).result.failure?.kind == .truncatedStream)
        let nothing = decodeStream(": OPENROUTER PROCESSING\n\n").result.failure
        #expect(nothing?.kind == .truncatedStream)
        #expect(nothing?.afterTokens == false)
        // A [DONE] line without its blank line is an incomplete event.
        #expect(decodeStream(contentChunk("x") + "data: [DONE]\n").result.failure?.kind == .truncatedStream)
    }

    @Test func stream_doneWithoutContent_isEmptyResponse() {
        let body = #"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}"# + "\n\ndata: [DONE]\n\n"
        let failure = decodeStream(body).result.failure
        #expect(failure?.kind == .emptyResponse)
        #expect(failure?.message == "no content, finish_reason stop")
    }

    @Test func stream_usageOnAnyChunkAndReasoning_areKept() throws {
        let body = #"data: {"choices":[{"index":0,"delta":{"reasoning":"th","content":"A"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"# + "\n\n"
            + #"data: {"choices":[{"index":0,"delta":{"reasoning":"ink","content":"B"},"finish_reason":"length"}]}"# + "\n\ndata: [DONE]\n\n"
        let completion = try decodeStream(body).result.get()
        #expect(completion.content == "AB")
        #expect(completion.reasoning == "think")
        #expect(completion.finishReason == "length")
        #expect(completion.usage == ChatUsage(promptTokens: 1, completionTokens: 2))
    }

    @Test func stream_nonJSONData_isMalformedAndBlankDataIgnored() {
        var decoder = ChatStreamDecoder()
        #expect(decoder.consume(SSEEvent(data: "")) == .ignored)
        #expect(decoder.consume(SSEEvent(data: " [DONE] \n")) == .done)
        #expect(decoder.consume(SSEEvent(data: "late")) == .ignored)

        var broken = ChatStreamDecoder()
        #expect(broken.consume(SSEEvent(data: #"{"choices":[{"index":0,"delta":{"content":"x"}}]}"#)) == .delta("x"))
        #expect(broken.sawContent)
        guard case .failed(let error) = broken.consume(SSEEvent(data: "{not json")) else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.kind == .malformedResponse)
        #expect(error.afterTokens)
        #expect(broken.finish().failure == error)
        #expect(broken.consume(SSEEvent(data: "[DONE]")) == .ignored)
    }

    // MARK: The taxonomy

    @Test func kinds_scopeAndRetryability_matchFailoverPolicy() {
        let scopes: [ExternalErrorKind: ExternalErrorScope] = [
            .auth: .key, .forbidden: .key,
            .payment: .account, .rateLimitedDaily: .account,
            .modelNotFound: .model, .contextTooLong: .model, .moderation: .model,
            .badRequest: .request, .cancelled: .request, .quotaExhausted: .request,
            .rateLimited: .transient, .providerError: .transient, .timeout: .transient, .network: .transient,
            .malformedResponse: .transient, .truncatedStream: .transient, .emptyResponse: .transient,
        ]
        #expect(scopes.count == ExternalErrorKind.allCases.count)
        for kind in ExternalErrorKind.allCases {
            #expect(kind.scope == scopes[kind], "\(kind)")
            #expect(kind.isRetryable == (scopes[kind] == .transient), "\(kind)")
        }
        #expect(ExternalErrorKind.rateLimitedDaily.rawValue == "rate_limited_daily")
        #expect(ExternalErrorKind.truncatedStream.rawValue == "truncated_stream")
    }

    @Test func kinds_keyOutcome_mapsToKeyHealth() {
        func outcome(_ kind: ExternalErrorKind, status: Int? = nil) -> KeyOutcome {
            ExternalError(kind: kind, status: status, message: "m", rateLimit: RateLimitInfo(resetAt: 5, retryAfterMs: 7)).keyOutcome
        }
        #expect(outcome(.auth, status: 401) == .unauthorized(status: 401))
        #expect(outcome(.auth) == .unauthorized(status: 401))
        #expect(outcome(.payment) == .paymentRequired)
        #expect(outcome(.rateLimited) == .rateLimited(resetAt: 5, retryAfterMs: 7))
        #expect(outcome(.rateLimitedDaily) == .rateLimited(resetAt: 5, retryAfterMs: 7))
        #expect(outcome(.providerError, status: 503) == .failure("HTTP 503: m"))
        for kind in [ExternalErrorKind.timeout, .network, .malformedResponse, .truncatedStream, .emptyResponse] {
            #expect(outcome(kind) == .failure("\(kind.rawValue): m"))
        }
        #expect(outcome(.forbidden, status: 403) == .unauthorized(status: 403), "403 disables the key, as 401 does")
        for kind in [ExternalErrorKind.moderation, .modelNotFound, .badRequest, .contextTooLong, .cancelled, .quotaExhausted] {
            #expect(outcome(kind, status: 400) == .clientError, "\(kind)")
        }
    }

    @Test func error_description_namesKindStatusProviderAndMessage() {
        let error = ExternalError(kind: .providerError, status: 502, message: "Provider returned error", providerName: "Venice", afterTokens: true)
        #expect(error.description == "provider_error (HTTP 502, Venice, after tokens): Provider returned error")
        #expect(ExternalError(kind: .cancelled, message: "").description == "cancelled")
    }
}
