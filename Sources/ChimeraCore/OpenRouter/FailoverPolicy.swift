/// What to do after an external call failed: the retry, key-switch and model-failover rules in
/// one place, so the coordinator applies the same policy to every call.
///
/// * A failure after content reached the caller is final: two half answers are never spliced.
/// * Key- and account-scoped failures (401/403, 402, the daily cap) retry at once: the key pool
///   has already disabled the key or marked the account spent, so the next lease is another.
/// * Model-scoped failures (unknown model, context too long, moderation) move along the chain.
/// * OpenRouter's own per-minute 429 (no provider named) retries at once: the key now cools
///   until the reset the response gave, so the next lease is another key — or, if none is free,
///   the key pool's wait queue holds the call until one is.
/// * Other transient failures (an upstream provider's 429, 5xx, timeouts, broken streams) back off
///   exponentially with jitter, honouring `Retry-After` and `X-RateLimit-Reset` when they are
///   short enough, and move to the next model after `maxRetriesPerModel`.
/// * Request-scoped failures (a bad request, cancellation, no key at all) are final.
public struct FailoverPolicy: Sendable, Equatable {
    /// HTTP attempts per call, over all keys and models.
    public var maxAttempts = 6
    /// Transient retries on one model before moving to the next.
    public var maxRetriesPerModel = 2
    public var backoffInitialMs: Int64 = 250
    public var backoffMaxMs: Int64 = 20_000
    /// A server-given wait longer than this is not waited for: the next model is tried (or the call fails).
    public var maxHonouredWaitMs: Int64 = 60_000

    public init() {}

    public enum Decision: Sendable, Equatable {
        /// Try again with model `modelIndex` of the chain after `afterMs` (with a new key lease).
        case retry(modelIndex: Int, afterMs: Int64, reason: String)
        /// Give up; `reason` says why, for the caller.
        case fail(reason: String)
    }

    /// - Parameters:
    ///   - attempt: attempts made so far for this call (≥ 1).
    ///   - retriesOnModel: retries already made on `modelIndex`.
    ///   - jitter: a uniform random number in [0, 1), injected for reproducible tests.
    ///   - canSwitchKey: false for a provider without keys: a key- or account-scoped failure then
    ///     moves along the chain (another provider may serve), since no other key exists.
    public func decide(after error: ExternalError, attempt: Int, modelIndex: Int, chainLength: Int, retriesOnModel: Int,
                       now: EpochMillis, jitter: Double, canSwitchKey: Bool = true) -> Decision {
        if error.afterTokens {
            return .fail(reason: "\(error.kind.rawValue) after part of the answer was streamed; not retrying, so two answers are never spliced")
        }
        guard attempt < maxAttempts else { return .fail(reason: "gave up after \(attempt) attempts; last: \(error.kind.rawValue)") }
        let next = modelIndex + 1 < chainLength ? modelIndex + 1 : nil
        switch error.kind.scope {
        case .request:
            return .fail(reason: "\(error.kind.rawValue) is not retryable")
        case .key, .account:
            if canSwitchKey { return .retry(modelIndex: modelIndex, afterMs: 0, reason: "\(error.kind.rawValue): trying another key") }
            guard let next else { return .fail(reason: "\(error.kind.rawValue) from a provider without keys, and no model left in the chain") }
            return .retry(modelIndex: next, afterMs: 0, reason: "\(error.kind.rawValue) from a provider without keys: next model in the chain")
        case .model:
            guard let next else { return .fail(reason: "\(error.kind.rawValue) and no model left in the chain") }
            return .retry(modelIndex: next, afterMs: 0, reason: "\(error.kind.rawValue): next model in the chain")
        case .transient:
            if error.kind == .rateLimited, error.providerName == nil, retriesOnModel < maxRetriesPerModel {
                return .retry(modelIndex: modelIndex, afterMs: 0, reason: "rate_limited (per-minute): the key cools down; trying another key")
            }
            if error.retryable == false, let next {
                return .retry(modelIndex: next, afterMs: 0, reason: "\(error.kind.rawValue) (not retryable upstream): next model in the chain")
            }
            var wait = backoff(retriesOnModel, jitter: jitter)
            if let retryAfter = error.rateLimit.retryAfterMs { wait = max(wait, retryAfter) }
            if error.kind == .rateLimited, let reset = error.rateLimit.resetAt, reset > now { wait = max(wait, reset - now) }
            if retriesOnModel < maxRetriesPerModel, wait <= maxHonouredWaitMs {
                return .retry(modelIndex: modelIndex, afterMs: wait, reason: "\(error.kind.rawValue): retry \(retriesOnModel + 1) in \(wait) ms")
            }
            if let next { return .retry(modelIndex: next, afterMs: 0, reason: "\(error.kind.rawValue): next model in the chain") }
            return .fail(reason: "\(error.kind.rawValue) after \(retriesOnModel) retries and no model left in the chain")
        }
    }

    /// `initial × 2^n`, capped, scaled by 0.5–1.0 ("equal jitter") so that retries spread out.
    public func backoff(_ n: Int, jitter: Double) -> Int64 {
        let base = min(Double(backoffMaxMs), Double(backoffInitialMs) * Double(1 << min(n, 30)))
        return Int64(base * (0.5 + 0.5 * min(max(jitter, 0), 1)))
    }
}
