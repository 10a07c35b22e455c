import ChimeraCore
import Foundation

/// One request asking the ledger for quota.
public struct ReservationRequest: Sendable {
    public var keyId: String
    /// The OpenRouter account that owns the key: free-model limits are per account
    /// (shared/openrouter-api.md §5.2), so all keys of an account draw on one counter.
    public var account: String
    public var model: String
    /// Whether the request counts toward the request quotas (its model matched the quota
    /// patterns). An unscoped request is recorded, but no request or token limit applies to it.
    public var scoped: Bool
    /// Decides access to the share of the daily limit kept by ``reservedShare``.
    public var priority: TaskPriority
    /// The account's limits (e.g. ``KeyTier/defaultLimits`` merged with config).
    public var accountLimits: QuotaLimits
    /// Per-key limits on top of the account's (often `.unlimited`).
    public var keyLimits: QuotaLimits
    /// Share (0..<1) of each daily limit kept for priority `.high` and above: a lower-priority
    /// request is refused once `used >= perDay - ceil(perDay * reservedShare)`.
    public var reservedShare: Double
    /// Prompt plus completion tokens expected, for tokens-per-minute; 0 if unknown.
    public var estimatedTokens: Int
    /// When the request is made: its UTC day and place in the rolling minute.
    public var at: EpochMillis
    /// The reserving process, kept to diagnose reservations left by a process that died.
    public var pid: Int32

    public init(keyId: String, account: String, model: String, scoped: Bool, priority: TaskPriority = .normal,
                accountLimits: QuotaLimits, keyLimits: QuotaLimits = .unlimited, reservedShare: Double = 0,
                estimatedTokens: Int = 0, at: EpochMillis, pid: Int32 = getpid()) {
        self.keyId = keyId
        self.account = account
        self.model = model
        self.scoped = scoped
        self.priority = priority
        self.accountLimits = accountLimits
        self.keyLimits = keyLimits
        self.reservedShare = reservedShare
        self.estimatedTokens = estimatedTokens
        self.at = at
        self.pid = pid
    }
}

/// The answer to a ``ReservationRequest``: usage is reported either way so that the caller's
/// cache can resync from the authority without another query.
public enum ReservationResult: Sendable, Equatable {
    /// Recorded in state `reserved`; usage is AFTER this reservation.
    case reserved(id: Int64, account: AccountUsage, key: KeyUsage)
    /// Nothing recorded; usage is as it stands.
    case refused(RefusalReason, account: AccountUsage, key: KeyUsage)

    /// The reservation id, if one was made.
    public var id: Int64? {
        if case .reserved(let id, _, _) = self { return id }
        return nil
    }

    /// Why it was refused, if it was.
    public var refusal: RefusalReason? {
        if case .refused(let reason, _, _) = self { return reason }
        return nil
    }

    /// The account's usage reported with either answer.
    public var account: AccountUsage {
        switch self {
        case .reserved(_, let account, _), .refused(_, let account, _): account
        }
    }

    /// The key's usage reported with either answer.
    public var key: KeyUsage {
        switch self {
        case .reserved(_, _, let key), .refused(_, _, let key): key
        }
    }
}

/// Whose limit refused a request: the account's (shared by its keys) or the key's own.
public enum LimitScope: String, Sendable, Equatable {
    case account
    case key
}

/// Why the ledger refused a reservation.
public enum RefusalReason: Sendable, Equatable {
    /// The key's shared health record blocks it (`disabled`, or `cooling`/`suspended`/`no_credits`
    /// still in force).
    case keyUnavailable(state: String, until: EpochMillis?)
    /// Upstream said the account's daily quota is spent (``QuotaLedger/markAccountSpent(_:until:reason:at:)``).
    case accountSpent(until: EpochMillis)
    /// The per-day limit is reached; `resetsAt` is the next 00:00 UTC.
    case dailyLimit(used: Int, limit: Int, resetsAt: EpochMillis, scope: LimitScope)
    /// Only the share kept for priority `.high` and above is left today.
    case reservedForHighPriority(used: Int, limit: Int, resetsAt: EpochMillis, scope: LimitScope)
    /// The rolling minute is full; `freesAt` is when enough counted reservations leave it.
    case minuteLimit(count: Int, limit: Int, freesAt: EpochMillis, scope: LimitScope)
    /// The rolling minute's tokens plus this request's estimate exceed the limit.
    case tokenLimit(tokens: Int, limit: Int, freesAt: EpochMillis, scope: LimitScope)

    /// When trying again can succeed; nil when only a state change can unblock (a disabled key).
    public var retryAt: EpochMillis? {
        switch self {
        case .keyUnavailable(_, let until): until
        case .accountSpent(let until): until
        case .dailyLimit(_, _, let t, _), .reservedForHighPriority(_, _, let t, _): t
        case .minuteLimit(_, _, let t, _), .tokenLimit(_, _, let t, _): t
        }
    }

    /// `"key"` or `"account"`: whether another key of the same account could serve the request.
    public var scope: String { limitScope.rawValue }

    /// ``scope`` as an enum.
    public var limitScope: LimitScope {
        switch self {
        case .keyUnavailable: .key
        case .accountSpent: .account
        case .dailyLimit(_, _, _, let s), .reservedForHighPriority(_, _, _, let s),
             .minuteLimit(_, _, _, let s), .tokenLimit(_, _, _, let s): s
        }
    }
}

/// An account's counters as the ledger holds them, for the coordinator's cache.
public struct AccountUsage: Sendable, Equatable {
    public var account: String
    /// The UTC day (``UTCDay/index(of:)``) the counts are for.
    public var day: Int64
    /// Counted scoped requests today (reservations not released, or upstream's count after
    /// ``QuotaLedger/correctDailyUsage(_:used:at:)``).
    public var usedToday: Int
    /// Sorted `reserved_at` of the counted scoped reservations with `reserved_at > at - 60000`.
    public var minuteWindow: [EpochMillis]
    public var tokensInMinute: Int
    /// When an upstream daily-cap 429 said the quota comes back; nil when not in force at `at`.
    public var spentUntil: EpochMillis?

    public init(account: String, day: Int64, usedToday: Int, minuteWindow: [EpochMillis], tokensInMinute: Int,
                spentUntil: EpochMillis?) {
        self.account = account
        self.day = day
        self.usedToday = usedToday
        self.minuteWindow = minuteWindow
        self.tokensInMinute = tokensInMinute
        self.spentUntil = spentUntil
    }
}

/// A key's own counters (for per-key limits); same meaning as in ``AccountUsage``.
public struct KeyUsage: Sendable, Equatable {
    public var keyId: String
    public var usedToday: Int
    public var minuteWindow: [EpochMillis]
    public var tokensInMinute: Int

    public init(keyId: String, usedToday: Int, minuteWindow: [EpochMillis], tokensInMinute: Int) {
        self.keyId = keyId
        self.usedToday = usedToday
        self.minuteWindow = minuteWindow
        self.tokensInMinute = tokensInMinute
    }
}

/// What happened to a sent request, stored with its reservation.
public struct ReservationOutcome: Sendable, Equatable {
    public var status: Int?
    /// `"ok"`, `"rate_limited"`, `"auth"`, `"server_error"`, ...
    public var kind: String
    /// Actual prompt plus completion tokens; replaces the estimate for tokens-per-minute.
    public var tokens: Int?
    public var latencyMs: Int?
    public var costUSD: Double?
    /// `costUSD` was estimated from catalog prices: the response carried no cost.
    public var costIsEstimate: Bool
    /// The model that served the request (a router may pick another than the one asked for).
    public var model: String?

    public init(status: Int? = nil, kind: String, tokens: Int? = nil, latencyMs: Int? = nil, costUSD: Double? = nil,
                costIsEstimate: Bool = false, model: String? = nil) {
        self.status = status
        self.kind = kind
        self.tokens = tokens
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.costIsEstimate = costIsEstimate
        self.model = model
    }
}

/// One settled (committed) request as the ledger keeps it.
public struct SettledCall: Sendable, Equatable {
    public var keyId: String
    public var account: String
    /// The model asked for.
    public var model: String
    /// The model that answered, when known.
    public var servedModel: String?
    /// `"ok"` or the failure kind.
    public var outcome: String
    public var status: Int?
    public var latencyMs: Int?
    public var tokens: Int
    /// Nil when unknown (never a silent zero).
    public var costUSD: Double?
    /// `costUSD` was estimated from catalog prices.
    public var costIsEstimate: Bool
    public var at: EpochMillis
}

/// A key's health as shared between processes.
public struct KeyHealthRecord: Sendable, Equatable {
    public var keyId: String
    /// `"active"`, `"cooling"`, `"disabled"`, `"no_credits"`, `"suspended"`, `"half_open"`.
    public var state: String
    /// When a timed state (`cooling`, `no_credits`, `suspended`) ends.
    public var until: EpochMillis?
    public var reason: String
    public var updatedAt: EpochMillis

    public init(keyId: String, state: String, until: EpochMillis?, reason: String, updatedAt: EpochMillis) {
        self.keyId = keyId
        self.state = state
        self.until = until
        self.reason = reason
        self.updatedAt = updatedAt
    }
}

/// One line of the audit log: who changed what, and why.
public struct AuditEntry: Sendable, Equatable {
    public var at: EpochMillis
    public var keyId: String?
    public var account: String?
    /// What happened: `"health"`, `"disable"`, `"enable"`, `"import"`, ...
    public var action: String
    /// The state before and after, for state changes.
    public var from: String?
    public var to: String?
    public var reason: String

    public init(at: EpochMillis, keyId: String? = nil, account: String? = nil, action: String, from: String? = nil,
                to: String? = nil, reason: String) {
        self.at = at
        self.keyId = keyId
        self.account = account
        self.action = action
        self.from = from
        self.to = to
        self.reason = reason
    }
}

/// An alert-worthy event.
public struct KeyEvent: Sendable, Equatable {
    public var at: EpochMillis
    /// `"quota_low"`, `"account_exhausted"`, `"daily_reset"`, `"key_disabled"`, `"key_suspended"`,
    /// `"key_enabled"`, `"error_rate_high"`.
    public var kind: String
    public var keyId: String?
    public var account: String?
    public var message: String

    public init(at: EpochMillis, kind: String, keyId: String? = nil, account: String? = nil, message: String) {
        self.at = at
        self.kind = kind
        self.keyId = keyId
        self.account = account
        self.message = message
    }
}

/// Counted scoped requests of one account on one UTC day.
public struct DailyTotal: Sendable, Equatable {
    public var account: String
    public var day: Int64
    public var count: Int

    public init(account: String, day: Int64, count: Int) {
        self.account = account
        self.day = day
        self.count = count
    }
}
