/// The `keys` section of the config: how the OpenRouter key pool is built and behaves.
public struct KeysConfig: Sendable, Equatable {
    /// Selection, reserve share, health thresholds, quota model patterns.
    public var pool = KeyPoolSettings()
    /// What a request gets when no key can serve it.
    public var onExhausted = ExhaustionPolicy.wait
    /// Longest a request waits for a key under the `wait` policy before it fails.
    public var maxWaitMs: UInt64 = 86_400_000
    /// Tier of accounts nobody configured (each environment or store key without an account).
    public var defaultTier = KeyTier.free
    /// Accounts with their tier or limits. Keys name them; an unnamed key is its own account.
    public var accounts: [KeyPoolAccount] = []
    /// Keys declared in the config file.
    public var entries: [ConfiguredKey] = []
    /// Whether `OPENROUTER_API_KEY`, `OPENROUTER_API_KEY_2`, … are read.
    public var readEnvironment = true

    public init() {}
}

/// What a request gets when every key is spent, cooling or disabled.
public enum ExhaustionPolicy: String, Sendable, Equatable, CaseIterable {
    /// Wait in a priority queue until the earliest key frees (a timer, not polling).
    case wait
    /// Fail at once with `quota_exhausted`, so the decision engine can fall back to an internal handler.
    case fail
}

/// One key declared in the config file.
public struct ConfiguredKey: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// The key itself in the file (discouraged: prefer `env` or `chimera keys add`).
        case literal(APIKeySecret)
        /// The name of an environment variable holding the key.
        case environment(String)
    }

    public var source: Source
    public var label: String?
    public var account: String?
    public var tier: KeyTier?
    public var limits = QuotaLimits.unlimited
    /// JSON path in the config file, for messages (`$.keys.entries[1]`).
    public var path: String

    public init(source: Source, label: String? = nil, account: String? = nil, tier: KeyTier? = nil, path: String) {
        self.source = source
        self.label = label
        self.account = account
        self.tier = tier
        self.path = path
    }
}
