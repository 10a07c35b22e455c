/// The health of one API key: a state machine, so that the rules live in one place.
///
/// ```
///            401/403                       operator `keys enable`
///   active ───────────▶ disabled ─────────────────────────────────▶ active
///     │  402                       next UTC midnight, `keys enable`
///     ├───────────▶ no_credits ───────────────────────────────────▶ active
///     │  429                       deadline passes
///     ├───────────▶ cooling ──────────────────────────────────────▶ active
///     │               └─ another 429: deadline = max(old, new); it only ever grows
///     │  failure rate > threshold over ≥ N requests      5 minutes pass
///     └───────────▶ suspended ──────────────────▶ half_open ──(probe succeeds)──▶ active
///                       ▲                           │
///                       └──────(probe fails)────────┘
/// ```
///
/// * `cooling` takes the latest of the current deadline, the reset the response gave
///   (`X-RateLimit-Reset` in epoch ms, or `Retry-After`) and `now + defaultCooldown`: a later,
///   longer cooldown extends it and a shorter one never shortens it.
/// * In `half_open` exactly one request (the probe) is let through; until its outcome arrives the
///   key is not selectable. A probe whose reservation is released (never sent) re-opens the slot.
/// * Only server-side failures (5xx, timeouts, network errors, malformed responses) count toward the
///   error rate; a 400 is the caller's fault and a 429 is handled by cooling.
/// * `disabled` by 401/403 or by an operator stays until an operator re-enables the key.
public struct KeyHealth: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case active
        case cooling(until: EpochMillis)
        case disabled(byOperator: Bool)
        case noCredits(until: EpochMillis)
        case suspended(until: EpochMillis)
        case halfOpen(probing: Bool)

        /// The name used in the CLI, the ledger and the audit log.
        public var name: String {
            switch self {
            case .active: "active"
            case .cooling: "cooling"
            case .disabled: "disabled"
            case .noCredits: "no_credits"
            case .suspended: "suspended"
            case .halfOpen: "half_open"
            }
        }

        /// When the state ends by itself, if it does.
        public var until: EpochMillis? {
            switch self {
            case .cooling(let t), .noCredits(let t), .suspended(let t): t
            default: nil
            }
        }
    }

    public private(set) var state: State = .active
    /// Outcomes of the last requests, newest last (`true` = failure), for the error rate.
    private var recent: [Bool] = []

    public init(state: State = .active) { self.state = state }

    /// Whether a request may use the key at `now` (after ``advance(to:policy:)``).
    public var isSelectable: Bool {
        switch state {
        case .active, .halfOpen(probing: false): true
        default: false
        }
    }

    /// Moves timed states along: cooling and no-credits end, suspension turns into half-open.
    public mutating func advance(to now: EpochMillis) -> HealthTransition? {
        switch state {
        case .cooling(let until) where now >= until:
            return move(to: .active, at: now, reason: "cooldown ended")
        case .noCredits(let until) where now >= until:
            return move(to: .active, at: now, reason: "daily reset; credits will be re-checked by the next request")
        case .suspended(let until) where now >= until:
            return move(to: .halfOpen(probing: false), at: now, reason: "suspension ended; one probe request decides")
        default:
            return nil
        }
    }

    /// A request was handed this key. In half-open it becomes the probe.
    public mutating func didLease(at now: EpochMillis) -> HealthTransition? {
        guard case .halfOpen(probing: false) = state else { return nil }
        return move(to: .halfOpen(probing: true), at: now, reason: "probe request sent")
    }

    /// A leased request was never sent: a probe slot opens again.
    public mutating func didRelease(at now: EpochMillis) -> HealthTransition? {
        guard case .halfOpen(probing: true) = state else { return nil }
        return move(to: .halfOpen(probing: false), at: now, reason: "probe request was not sent")
    }

    /// Applies the outcome of a request that was sent with this key.
    public mutating func record(_ outcome: KeyOutcome, at now: EpochMillis, policy: KeyHealthPolicy) -> HealthTransition? {
        switch outcome {
        case .success:
            remember(failure: false, policy: policy)
            if case .halfOpen = state {
                recent.removeAll()
                return move(to: .active, at: now, reason: "probe request succeeded")
            }
            return nil
        case .clientError:
            if case .halfOpen = state { return move(to: .active, at: now, reason: "probe request reached the provider") }
            return nil
        case .unauthorized(let status):
            if case .disabled = state { return nil }  // already out of use; keep who disabled it
            return move(to: .disabled(byOperator: false), at: now, reason: "HTTP \(status): the provider rejected the key; re-enable it with `chimera keys enable` once fixed")
        case .paymentRequired:
            return move(to: .noCredits(until: UTCDay.nextMidnight(after: now)), at: now, reason: "HTTP 402: no credits left")
        case .rateLimited(let resetAt, let retryAfterMs):
            var deadline = now + policy.defaultCooldownMs
            if let resetAt { deadline = max(deadline, resetAt) }
            if let retryAfterMs { deadline = max(deadline, now + retryAfterMs) }
            if let current = state.until, case .cooling = state { deadline = max(deadline, current) }
            if case .cooling(let current) = state, current == deadline { return nil }
            switch state {
            case .disabled, .noCredits, .suspended: return nil  // a stronger state already holds
            default: break
            }
            let source = resetAt != nil ? "X-RateLimit-Reset" : (retryAfterMs != nil ? "Retry-After" : "default cooldown")
            return move(to: .cooling(until: deadline), at: now, reason: "HTTP 429; cooling until \(UTCDay.timestamp(deadline)) (\(source))")
        case .failure(let detail):
            if case .halfOpen = state {
                return move(to: .suspended(until: now + policy.suspendMs), at: now, reason: "probe request failed: \(detail)")
            }
            remember(failure: true, policy: policy)
            let failures = recent.lazy.filter { $0 }.count
            guard recent.count >= policy.errorWindow, Double(failures) > Double(recent.count) * policy.errorRateThreshold else { return nil }
            guard case .active = state else { return nil }
            recent.removeAll()
            return move(to: .suspended(until: now + policy.suspendMs), at: now,
                        reason: "error rate \(failures)/\(policy.errorWindow) above \(Int(policy.errorRateThreshold * 100)) %; last: \(detail)")
        }
    }

    /// Operator action from `chimera keys disable`.
    public mutating func disable(at now: EpochMillis, reason: String) -> HealthTransition? {
        if case .disabled(byOperator: true) = state { return nil }
        return move(to: .disabled(byOperator: true), at: now, reason: reason)
    }

    /// Operator action from `chimera keys enable`: any state back to active.
    public mutating func enable(at now: EpochMillis, reason: String) -> HealthTransition? {
        if case .active = state { return nil }
        recent.removeAll()
        return move(to: .active, at: now, reason: reason)
    }

    /// Replaces the state with one read from the shared ledger (another process's transition).
    public mutating func adopt(_ newState: State) { state = newState }

    private mutating func remember(failure: Bool, policy: KeyHealthPolicy) {
        recent.append(failure)
        if recent.count > policy.errorWindow { recent.removeFirst(recent.count - policy.errorWindow) }
    }

    private mutating func move(to next: State, at now: EpochMillis, reason: String) -> HealthTransition {
        let transition = HealthTransition(from: state, to: next, at: now, reason: reason)
        state = next
        return transition
    }
}

/// One change of a key's health, for the audit log.
public struct HealthTransition: Sendable, Equatable {
    public var from: KeyHealth.State
    public var to: KeyHealth.State
    public var at: EpochMillis
    public var reason: String
}

/// What a sent request taught us about its key.
public enum KeyOutcome: Sendable, Equatable {
    case success
    /// 400, 404, 413 and the like: the request's fault, neutral for the key.
    case clientError
    /// 401 or 403.
    case unauthorized(status: Int)
    /// 402.
    case paymentRequired
    /// 429, with the reset time (`X-RateLimit-Reset`, epoch ms) and `Retry-After` (ms) when given.
    case rateLimited(resetAt: EpochMillis?, retryAfterMs: EpochMillis?)
    /// 5xx, timeout, network error, malformed or truncated response.
    case failure(String)

    /// Maps an HTTP status (or none, for a transport failure) to the outcome class.
    public static func classify(status: Int?, resetAt: EpochMillis? = nil, retryAfterMs: EpochMillis? = nil, detail: String = "") -> KeyOutcome {
        guard let status else { return .failure(detail.isEmpty ? "no response" : detail) }
        switch status {
        case 200..<300: return .success
        case 401, 403: return .unauthorized(status: status)
        case 402: return .paymentRequired
        case 429: return .rateLimited(resetAt: resetAt, retryAfterMs: retryAfterMs)
        case 408, 500..<600: return .failure(detail.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(detail)")
        default: return .clientError
        }
    }
}

/// Thresholds of the health state machine (config `keys.health`).
public struct KeyHealthPolicy: Sendable, Equatable {
    /// Cooldown after a 429 that names no reset, and the floor for one that does.
    public var defaultCooldownMs: EpochMillis = 10_000
    /// Fewest outcomes in the window before the error rate can suspend a key.
    public var errorWindow = 10
    /// Suspend when failures exceed this share of the window.
    public var errorRateThreshold = 0.5
    /// How long a suspension lasts before the half-open probe.
    public var suspendMs: EpochMillis = 300_000

    public init() {}
}
