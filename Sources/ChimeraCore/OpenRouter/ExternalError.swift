/// What went wrong with a call to OpenRouter (or an OpenAI-compatible API), in the categories
/// that decide what to do next. The raw values are the names logs and task failures use.
public enum ExternalErrorKind: String, Sendable, CaseIterable {
    /// 401: the key is invalid or disabled.
    case auth
    /// 402: the account (or the key's spending cap) has no credits.
    case payment
    /// 403 without moderation details: permissions, a guardrail, an exhausted budget layer.
    case forbidden
    /// 403 with `reasons`/`flagged_input`: the input was flagged.
    case moderation
    /// 404, or 400 with `availability.code` `model_not_found`: no usable endpoint for the model.
    case modelNotFound = "model_not_found"
    /// 400, 413, 422 and other 4xx: the request itself is wrong.
    case badRequest = "bad_request"
    /// The prompt (plus `max_tokens`) does not fit the model.
    case contextTooLong = "context_too_long"
    /// The daily free-model cap: wait for the reset; switching keys in the same account does not help.
    case rateLimitedDaily = "rate_limited_daily"
    /// A per-minute cap or an upstream provider's limit: back off.
    case rateLimited = "rate_limited"
    /// 500, 502, 503, 504, 524, 529 and other 5xx, and in-band provider errors.
    case providerError = "provider_error"
    /// 408, or no answer in time.
    case timeout
    /// The connection failed before a response arrived.
    case network
    /// The body was not what the protocol promises (not JSON, wrong shape).
    case malformedResponse = "malformed_response"
    /// The stream ended without `[DONE]`.
    case truncatedStream = "truncated_stream"
    /// No choices, or no content.
    case emptyResponse = "empty_response"
    /// The caller cancelled the call.
    case cancelled
    /// Local: no key can serve (reported by the key pool, never by the server).
    case quotaExhausted = "quota_exhausted"

    /// What a failure is about, for the failover policy: retry elsewhere with another key, another
    /// account, another model, not at all, or the same thing again after a pause.
    public var scope: ExternalErrorScope {
        switch self {
        case .auth, .forbidden: .key
        case .payment, .rateLimitedDaily: .account
        case .modelNotFound, .contextTooLong, .moderation: .model
        case .badRequest, .cancelled, .quotaExhausted: .request
        case .rateLimited, .providerError, .timeout, .network, .malformedResponse, .truncatedStream, .emptyResponse: .transient
        }
    }

    /// Whether the same request may succeed if simply tried again (the transient kinds).
    public var isRetryable: Bool { scope == .transient }
}

/// The thing a failure is attached to; see ``ExternalErrorKind/scope``.
public enum ExternalErrorScope: String, Sendable {
    /// This key is unusable; another key may work.
    case key
    /// The whole account is spent (credits, daily cap); other keys of the same account will not help.
    case account
    /// This model cannot serve the request; another model may.
    case model
    /// The request is wrong or was withdrawn; retrying cannot help.
    case request
    /// A passing condition; retry after a backoff.
    case transient
}

/// Rate-limit hints from a response (headers, or their copies in the error body).
public struct RateLimitInfo: Sendable, Equatable {
    /// `X-RateLimit-Limit`: the cap that was hit.
    public var limit: Int?
    /// `X-RateLimit-Remaining`.
    public var remaining: Int?
    /// When the limit resets, epoch milliseconds (`X-RateLimit-Reset`, normalised from seconds when
    /// needed). For a daily-cap 429 without one, the decoder fills in the next UTC midnight.
    public var resetAt: EpochMillis?
    /// `Retry-After` (or `retry_after_seconds` in the body), converted to milliseconds.
    public var retryAfterMs: EpochMillis?

    public init(limit: Int? = nil, remaining: Int? = nil, resetAt: EpochMillis? = nil, retryAfterMs: EpochMillis? = nil) {
        self.limit = limit
        self.remaining = remaining
        self.resetAt = resetAt
        self.retryAfterMs = retryAfterMs
    }

    /// True when no hint is present.
    public var isEmpty: Bool { limit == nil && remaining == nil && resetAt == nil && retryAfterMs == nil }
}

/// One failed call, classified. Produced by ``ChatResponseDecoder``, ``ChatStreamDecoder`` and the
/// HTTP client (timeouts, network errors, cancellation).
public struct ExternalError: Error, Sendable, Equatable, CustomStringConvertible {
    public var kind: ExternalErrorKind
    /// The HTTP status, or for an in-band error (inside a 200) its numeric `error.code`.
    public var status: Int?
    /// The upstream message, at most 300 characters.
    public var message: String
    /// `error.metadata.error_type`, OpenRouter's stable category (e.g. `provider_unavailable`).
    public var errorType: String?
    /// `error.metadata.provider_name` (or the chunk's `provider`), when known.
    public var providerName: String?
    public var rateLimit: RateLimitInfo
    /// `error.availability.retryable`, when present.
    public var retryable: Bool?
    /// Set when content had already arrived before the failure (tokens were generated and may be billed).
    public var afterTokens: Bool
    /// `error.availability.code` (e.g. `capacity_exhausted`, `free_variant_ended`), when present.
    public var availabilityCode: String?

    public init(
        kind: ExternalErrorKind, status: Int? = nil, message: String, errorType: String? = nil,
        providerName: String? = nil, rateLimit: RateLimitInfo = RateLimitInfo(), retryable: Bool? = nil,
        afterTokens: Bool = false, availabilityCode: String? = nil
    ) {
        self.kind = kind
        self.status = status
        self.message = message
        self.errorType = errorType
        self.providerName = providerName
        self.rateLimit = rateLimit
        self.retryable = retryable
        self.afterTokens = afterTokens
        self.availabilityCode = availabilityCode
    }

    /// Whether to retry: the server's `availability.retryable` when it said, else the kind's rule.
    public var isRetryable: Bool { retryable ?? kind.isRetryable }

    /// `provider_error (HTTP 502, Venice): Provider returned error`.
    public var description: String {
        var context: [String] = []
        if let status { context.append("HTTP \(status)") }
        if let providerName { context.append(providerName) }
        if afterTokens { context.append("after tokens") }
        let head = context.isEmpty ? kind.rawValue : "\(kind.rawValue) (\(context.joined(separator: ", ")))"
        return message.isEmpty ? head : "\(head): \(message)"
    }

    /// What this teaches the key pool about the key that made the call.
    ///
    /// Only 401 disables a key. A 403 here is content- or budget-related (guardrail, moderation,
    /// exhausted budget layer), so it is neutral, like other request errors; failover still moves
    /// off the key because ``ExternalErrorKind/scope`` is `.key`.
    public var keyOutcome: KeyOutcome {
        switch kind {
        case .auth:
            return .unauthorized(status: status ?? 401)
        case .forbidden:
            // JOKRS: 401 and 403 disable the key until an operator re-enables it (an exhausted
            // budget layer or a revoked permission does not heal by retrying). Moderation is a
            // separate kind and leaves the key alone.
            return .unauthorized(status: status ?? 403)
        case .payment:
            return .paymentRequired
        case .rateLimited, .rateLimitedDaily:
            return .rateLimited(resetAt: rateLimit.resetAt, retryAfterMs: rateLimit.retryAfterMs)
        case .providerError, .timeout, .network, .malformedResponse, .truncatedStream, .emptyResponse:
            let head = status.map { "HTTP \($0)" } ?? kind.rawValue
            return .failure(message.isEmpty ? head : "\(head): \(message)")
        case .moderation, .modelNotFound, .badRequest, .contextTooLong, .cancelled, .quotaExhausted:
            return .clientError
        }
    }

    /// For a daily-cap 429: the time the account is spent until, which is `X-RateLimit-Reset` when
    /// it lies after `now`, else the next UTC midnight after `now` (when OpenRouter resets daily
    /// counters). Nil for every other kind.
    public func accountSpentUntil(now: EpochMillis) -> EpochMillis? {
        guard kind == .rateLimitedDaily else { return nil }
        if let resetAt = rateLimit.resetAt, resetAt > now { return resetAt }
        return UTCDay.nextMidnight(after: now)
    }
}
