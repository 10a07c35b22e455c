/// Decodes `POST /chat/completions` answers that arrive whole: a JSON completion, or an error.
///
/// OpenRouter reports failures in three places: the HTTP status with a JSON error body, a 200
/// body whose top level is `error`, and a 200 body whose choice has `finish_reason: "error"`.
/// All three end up as one ``ExternalError``; a 200 is a success only if it has content.
public enum ChatResponseDecoder {
    /// A complete non-streaming response. A status outside 2xx is classified; a 2xx body is checked
    /// for a top-level `error`, a choice with `finish_reason` "error" (its `error`), empty
    /// `choices`, missing content and non-JSON, each of which is a failure.
    public static func decode(status: Int, headers: [(String, String)], body: [UInt8], now: EpochMillis) -> Result<ChatCompletion, ExternalError> {
        guard (200..<300).contains(status) else {
            return .failure(classify(status: status, headers: headers, body: body, now: now))
        }
        guard let json = try? JSONParser.parse(body).value else {
            return .failure(ExternalError(kind: .malformedResponse, status: status, message: "the response body is not JSON: \(ErrorClassifier.snippet(body))"))
        }
        guard case .object = json else {
            return .failure(ExternalError(kind: .malformedResponse, status: status, message: "the response body is \(json.typeName), not an object"))
        }
        if let error = json["error"], error != .null {
            return .failure(ErrorClassifier.classify(error: error, topLevel: json, httpStatus: status, headers: headers, fallbackMessage: "", now: now))
        }
        guard case .array(let choices) = json["choices"] else {
            return .failure(ExternalError(kind: .malformedResponse, status: status, message: "the response has no `choices` array"))
        }
        let provider = json["provider"]?.stringValue
        guard let choice = choices.first(where: { ($0["index"]?.numberValue ?? 0) == 0 }) ?? choices.first else {
            return .failure(ExternalError(kind: .emptyResponse, status: status, message: "the response has no choices", providerName: provider))
        }
        let message = choice["message"]
        let content = WireJSON.text(message?["content"])
        let reasoning = message?["reasoning"]?.stringValue
        let finishReason = choice["finish_reason"]?.stringValue
        if finishReason == "error" || (choice["error"].map { $0 != .null } ?? false) {
            // A provider failed during generation; any partial content is not an answer.
            var error = choice["error"].map {
                ErrorClassifier.classify(error: $0, topLevel: json, httpStatus: status, headers: headers, fallbackMessage: "", now: now)
            } ?? ExternalError(kind: .providerError, message: "the choice finished with an error", providerName: provider)
            error.afterTokens = !content.isEmpty
            return .failure(error)
        }
        let completion = ChatCompletion(
            id: json["id"]?.stringValue,
            model: json["model"]?.stringValue,
            provider: provider,
            content: content,
            reasoning: reasoning,
            finishReason: finishReason,
            usage: WireJSON.usage(json["usage"])
        )
        if content.isEmpty {
            return .failure(ErrorClassifier.emptyContent(completion, status: status))
        }
        return .success(completion)
    }

    /// An error response (status >= 400), or a body carrying an in-band `error` object, classified.
    ///
    /// The HTTP status decides when it is an error status; inside a 2xx the error's numeric `code`
    /// does, then `metadata.error_type`, then `availability.code`; with none of them an in-band
    /// error is a provider error. Rate-limit hints come from the headers first and from
    /// `error.metadata.headers`, `metadata.retry_after_seconds` and `availability.retry_after`
    /// when the headers lack them. For a daily-cap 429 without a reset time, the next UTC midnight
    /// after `now` is filled in, since that is when OpenRouter resets the counter.
    public static func classify(status: Int, headers: [(String, String)], body: [UInt8], now: EpochMillis) -> ExternalError {
        ErrorClassifier.classify(status: status, headers: headers, body: body, now: now)
    }
}

/// Decodes a streamed completion one SSE event at a time.
///
/// Feed it every ``SSEEvent`` of a 200 `text/event-stream` body (comments need not be passed),
/// then call ``finish()`` when the body ends. A stream succeeds only when it reached `[DONE]`,
/// produced content and carried no error chunk.
public struct ChatStreamDecoder: Sendable {
    public enum Step: Sendable, Equatable {
        /// New answer text.
        case delta(String)
        /// Nothing to show (role chunks, reasoning, usage, empty data, anything after the end).
        case ignored
        /// `[DONE]`: the stream is complete.
        case done
        /// The stream failed; later events are ignored and ``finish()`` returns this error.
        case failed(ExternalError)
    }

    private var content = ""
    private var reasoning = ""
    private var id: String?
    private var model: String?
    private var provider: String?
    private var finishReason: String?
    private var usage: ChatUsage?
    private var sawDone = false
    private var failure: ExternalError?
    /// Whether any answer text has arrived (so a failure now comes after billed tokens).
    public private(set) var sawContent = false

    public init() {}

    /// One SSE event's `data`: `[DONE]` → `.done`; a chunk with a top-level `error` → `.failed`
    /// (`afterTokens` set if content arrived before); a choice with `finish_reason` "error" →
    /// `.failed` too; content → `.delta`; `usage` is taken from any chunk; data that is not a
    /// JSON object → `.failed(malformedResponse)`. Blank data is ignored (a keep-alive).
    public mutating func consume(_ event: SSEEvent) -> Step {
        if sawDone || failure != nil { return .ignored }
        let data = WireJSON.trimmingSpace(event.data)
        if data == "[DONE]" {
            sawDone = true
            return .done
        }
        if data.isEmpty { return .ignored }
        guard let json = try? JSONParser.parse(data), case .object = json else {
            return fail(ExternalError(kind: .malformedResponse, status: 200, message: "a stream event is not a JSON object: \(ErrorClassifier.snippet(Array(data.utf8)))", providerName: provider))
        }
        if let value = json["id"]?.stringValue { id = value }
        if let value = json["model"]?.stringValue { model = value }
        if let value = json["provider"]?.stringValue { provider = value }
        if let value = WireJSON.usage(json["usage"]) { usage = value }
        if let error = json["error"], error != .null {
            return fail(ErrorClassifier.classify(error: error, topLevel: json, httpStatus: 200, headers: [], fallbackMessage: "", now: nil))
        }
        var delta = ""
        if case .array(let choices) = json["choices"] {
            // Only the first choice is followed; Chimera never asks for n > 1.
            for choice in choices where (choice["index"]?.numberValue ?? 0) == 0 {
                if let text = choice["delta"]?["content"]?.stringValue { delta += text }
                if let text = choice["delta"]?["reasoning"]?.stringValue { reasoning += text }
                if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
                if finishReason == "error" || (choice["error"].map { $0 != .null } ?? false) {
                    content += delta
                    if !delta.isEmpty { sawContent = true }
                    let error = choice["error"].map {
                        ErrorClassifier.classify(error: $0, topLevel: json, httpStatus: 200, headers: [], fallbackMessage: "", now: nil)
                    } ?? ExternalError(kind: .providerError, status: 200, message: "the stream finished with an error", providerName: provider)
                    return fail(error)
                }
            }
        }
        guard !delta.isEmpty else { return .ignored }
        content += delta
        sawContent = true
        return .delta(delta)
    }

    /// After the body ended: the completion (content concatenated; id, model and provider from the
    /// chunks; the last `finish_reason`; usage) if `[DONE]` arrived; the recorded failure if a chunk
    /// failed; `.truncatedStream` without `[DONE]` (never a success, `afterTokens` set if content
    /// arrived); `.emptyResponse` when it completed without content.
    public func finish() -> Result<ChatCompletion, ExternalError> {
        if let failure { return .failure(failure) }
        guard sawDone else {
            let detail = sawContent ? "after \(content.count) characters of content" : "before any content"
            return .failure(ExternalError(kind: .truncatedStream, status: 200, message: "the stream ended without [DONE], \(detail)", providerName: provider, afterTokens: sawContent))
        }
        let completion = ChatCompletion(
            id: id, model: model, provider: provider, content: content,
            reasoning: reasoning.isEmpty ? nil : reasoning, finishReason: finishReason, usage: usage
        )
        if content.isEmpty { return .failure(ErrorClassifier.emptyContent(completion, status: 200)) }
        return .success(completion)
    }

    private mutating func fail(_ error: ExternalError) -> Step {
        var error = error
        error.afterTokens = sawContent
        if error.providerName == nil { error.providerName = provider }
        failure = error
        return .failed(error)
    }
}

/// The classification rules, shared by the response decoder, the stream decoder and the catalog
/// decoders.
enum ErrorClassifier {
    static let maxMessageCharacters = 300

    /// `error_type` values that mean the prompt does not fit.
    static let contextErrorTypes: Set<String> = ["context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded", "string_too_long"]

    static func classify(status: Int, headers: [(String, String)], body: [UInt8], now: EpochMillis?) -> ExternalError {
        let json = try? JSONParser.parse(body).value
        if let json, let error = json["error"], error != .null {
            return classify(error: error, topLevel: json, httpStatus: status, headers: headers, fallbackMessage: "", now: now)
        }
        // No error envelope: a proxy's HTML page, an empty body, or another gateway's shape.
        let message = json?["message"]?.stringValue ?? snippet(body)
        if status < 400 {
            return ExternalError(kind: .malformedResponse, status: status, message: message.isEmpty ? "HTTP \(status) without an error object" : message)
        }
        return classify(error: .null, topLevel: json, httpStatus: status, headers: headers, fallbackMessage: message, now: now)
    }

    /// Classifies one error object (`error` of a body, a chunk or a choice).
    ///
    /// - Parameters:
    ///   - httpStatus: the response status; when it is below 400 the error is in-band and its own
    ///     code decides.
    ///   - now: for filling in a daily cap's reset and reading a small `X-RateLimit-Reset` as a
    ///     delay; nil where no time is known (in-band stream errors carry no headers anyway).
    static func classify(error: JSONValue, topLevel: JSONValue?, httpStatus: Int, headers: [(String, String)], fallbackMessage: String, now: EpochMillis?) -> ExternalError {
        let metadata = error["metadata"]
        let availability = error["availability"]
        let errorType = metadata?["error_type"]?.stringValue ?? error["error_type"]?.stringValue
        let availabilityCode = availability?["code"]?.stringValue

        var message = error["message"]?.stringValue ?? error.stringValue ?? fallbackMessage
        if let raw = metadata?["raw"], raw != .null,
           message.isEmpty || message.lowercased().hasPrefix("provider returned error") {
            // The generic text says nothing; the provider's own words are in `raw`.
            let rawText = raw.stringValue ?? raw.serialized
            message = message.isEmpty ? rawText : "\(message): \(rawText)"
        }
        if message.isEmpty { message = "HTTP \(httpStatus)" }

        // `code` is a number equal to the status, but some examples use strings ("429", "server_error").
        let code = error["code"]
        let numericCode = code?.numberValue.flatMap(WireJSON.int) ?? code?.stringValue.flatMap { Int(WireJSON.trimmingSpace($0)) }
        let codeName = code?.stringValue.flatMap { Int($0) == nil ? $0 : nil }
        let effectiveStatus: Int? = httpStatus >= 400 ? httpStatus : (
            numericCode
                ?? error["http_status"]?.numberValue.flatMap(WireJSON.int)
                ?? errorType.flatMap(status(forErrorType:))
                ?? codeName.flatMap(status(forErrorType:))
                ?? availabilityCode.flatMap(status(forAvailabilityCode:))
        )

        let kind = self.kind(status: effectiveStatus, errorType: errorType ?? codeName, message: message, metadata: metadata, availabilityCode: availabilityCode)
        var rateLimit = rateLimitInfo(headers: headers, metadata: metadata, availability: availability, now: now)
        if kind == .rateLimitedDaily, rateLimit.resetAt == nil, let now {
            rateLimit.resetAt = UTCDay.nextMidnight(after: now)
        }
        var retryable: Bool?
        if case .bool(let flag)? = availability?["retryable"] { retryable = flag }
        return ExternalError(
            kind: kind,
            status: effectiveStatus,
            message: trimmed(message),
            errorType: errorType,
            providerName: metadata?["provider_name"]?.stringValue ?? topLevel?["provider"]?.stringValue,
            rateLimit: rateLimit,
            retryable: retryable,
            availabilityCode: availabilityCode
        )
    }

    static func kind(status: Int?, errorType: String?, message: String, metadata: JSONValue?, availabilityCode: String?) -> ExternalErrorKind {
        guard let status else { return .providerError }
        switch status {
        case 401: return .auth
        case 402: return .payment
        case 403:
            let flagged = metadata?["reasons"] != nil || metadata?["flagged_input"] != nil
            return flagged ? .moderation : .forbidden
        case 404: return .modelNotFound
        case 400:
            if let errorType, contextErrorTypes.contains(errorType) { return .contextTooLong }
            if isAboutContextLength(message) { return .contextTooLong }
            if availabilityCode == "model_not_found" { return .modelNotFound }
            return .badRequest
        case 408: return .timeout
        case 429:
            let daily = message.contains("free-models-per-day") || metadata?["limit_source"]?.stringValue == "openrouter_free_tier_daily"
            return daily ? .rateLimitedDaily : .rateLimited
        case 400..<500: return .badRequest
        default: return .providerError  // 5xx, and codes no HTTP status explains
        }
    }

    /// Messages providers use when the prompt is too long, for 400s without an `error_type`.
    static func isAboutContextLength(_ message: String) -> Bool {
        let text = message.lowercased()
        return text.contains("context length") || text.contains("context_length") || text.contains("context window")
            || text.contains("maximum context") || text.contains("prompt is too long")
    }

    /// The HTTP status OpenRouter documents for each `error_type` (§4.3 of the API notes).
    static func status(forErrorType type: String) -> Int? {
        switch type {
        case "context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded", "string_too_long",
             "invalid_request", "invalid_prompt", "content_policy_violation", "refusal", "invalid_image",
             "image_too_large", "image_too_small", "unsupported_image_format", "image_download_failed":
            return 400
        case "authentication": return 401
        case "payment_required": return 402
        case "permission_denied": return 403
        case "not_found", "image_not_found": return 404
        case "precondition_failed": return 412
        case "payload_too_large": return 413
        case "unprocessable": return 422
        case "rate_limit_exceeded": return 429
        case "provider_unavailable": return 502
        case "provider_overloaded": return 503
        case "timeout": return 504
        case "server", "unmapped", "server_error": return 500
        default: return nil
        }
    }

    /// The HTTP status OpenRouter documents for each `availability.code`.
    static func status(forAvailabilityCode code: String) -> Int? {
        switch code {
        case "model_not_found", "wrong_endpoint": return 400
        case "region_restricted": return 403
        case "no_endpoints", "model_deprecated", "model_unavailable_upstream", "privacy_restricted",
             "constraint_filtered", "free_variant_ended":
            return 404
        case "capacity_exhausted": return 429
        case "temporarily_unavailable": return 503
        default: return nil
        }
    }

    /// Rate-limit hints: each from the response headers when present, else from the copies in the
    /// error body.
    static func rateLimitInfo(headers: [(String, String)], metadata: JSONValue?, availability: JSONValue?, now: EpochMillis?) -> RateLimitInfo {
        let bodyHeaders = metadata?["headers"]
        func lookup(_ name: String) -> String? {
            if let value = header(name, in: headers) { return value }
            guard case .object(let members)? = bodyHeaders else { return nil }
            let lowered = name.lowercased()
            guard let member = members.last(where: { $0.key.lowercased() == lowered }) else { return nil }
            switch member.value {
            case .string(let s): return s
            case .number(let d): return WireJSON.int(d).map(String.init) ?? "\(d)"
            default: return nil
            }
        }
        var info = RateLimitInfo()
        info.limit = lookup("X-RateLimit-Limit").flatMap { Int(WireJSON.trimmingSpace($0)) }
        info.remaining = lookup("X-RateLimit-Remaining").flatMap { Int(WireJSON.trimmingSpace($0)) }
        info.resetAt = lookup("X-RateLimit-Reset").flatMap { resetTime(WireJSON.trimmingSpace($0), now: now) }
        if let text = lookup("Retry-After"), let seconds = Int64(WireJSON.trimmingSpace(text)), seconds >= 0 {
            info.retryAfterMs = seconds * 1000
        } else if let seconds = metadata?["retry_after_seconds"]?.numberValue ?? availability?["retry_after"]?.numberValue,
                  seconds.isFinite, seconds >= 0, seconds < 1e12 {
            info.retryAfterMs = EpochMillis((seconds * 1000).rounded(.up))
        }
        return info
    }

    /// `X-RateLimit-Reset` as epoch milliseconds. OpenRouter sends epoch ms (13 digits); a value
    /// below 1e11 can only be epoch seconds, and one below 1e9 (before 2001) only a delay in
    /// seconds, as some gateways send.
    static func resetTime(_ text: String, now: EpochMillis?) -> EpochMillis? {
        guard let value = Double(text), value.isFinite, value > 0, value < 1e15 else { return nil }
        if value < 1e9 {
            guard let now else { return nil }
            return now + EpochMillis((value * 1000).rounded(.up))
        }
        if value < 1e11 { return EpochMillis((value * 1000).rounded()) }
        return EpochMillis(value.rounded())
    }

    /// The first header named `name`, compared case-insensitively as HTTP requires.
    static func header(_ name: String, in headers: [(String, String)]) -> String? {
        let lowered = name.lowercased()
        return headers.first(where: { $0.0.lowercased() == lowered })?.1
    }

    /// A completion without content, as an error that says what did arrive.
    static func emptyContent(_ completion: ChatCompletion, status: Int) -> ExternalError {
        var parts = ["no content"]
        if let reason = completion.finishReason { parts.append("finish_reason \(reason)") }
        if completion.reasoning.map({ !$0.isEmpty }) ?? false { parts.append("only reasoning") }
        return ExternalError(kind: .emptyResponse, status: status, message: parts.joined(separator: ", "), providerName: completion.provider)
    }

    /// At most ``maxMessageCharacters`` characters, with an ellipsis when cut.
    static func trimmed(_ message: String) -> String {
        guard message.count > maxMessageCharacters else { return message }
        return String(message.prefix(maxMessageCharacters - 1)) + "…"
    }

    /// The start of a body, for a message about it.
    static func snippet(_ body: [UInt8]) -> String {
        let text = WireJSON.trimmingSpace(String(decoding: body.prefix(400), as: UTF8.self))
        return text.isEmpty ? "(empty body)" : trimmed(text)
    }
}

/// Small readers for OpenRouter's JSON shapes.
enum WireJSON {
    /// A JSON number as an Int, if it is integral and in range.
    static func int(_ d: Double) -> Int? {
        guard d.isFinite, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    /// `usage` of a response or chunk; nil when absent or not an object.
    static func usage(_ value: JSONValue?) -> ChatUsage? {
        guard let value, case .object = value else { return nil }
        let prompt = value["prompt_tokens"]?.numberValue.flatMap(int) ?? 0
        let completion = value["completion_tokens"]?.numberValue.flatMap(int) ?? 0
        var isBYOK: Bool?
        if case .bool(let flag)? = value["is_byok"] { isBYOK = flag }
        return ChatUsage(
            promptTokens: prompt,
            completionTokens: completion,
            totalTokens: value["total_tokens"]?.numberValue.flatMap(int),
            cost: value["cost"]?.numberValue,
            isBYOK: isBYOK
        )
    }

    /// Message content: a string, or the `text` of an array of parts; null or absent is empty.
    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let s)?: return s
        case .array(let parts)?: return parts.compactMap { $0["text"]?.stringValue ?? $0.stringValue }.joined()
        default: return ""
        }
    }

    /// `text` without leading and trailing ASCII whitespace.
    static func trimmingSpace(_ text: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(text[first...last])
    }
}
