/// Request and token limits for an account or a key. `nil` means unlimited.
public struct QuotaLimits: Sendable, Equatable {
    /// Requests per UTC day (reset at 00:00 UTC).
    public var perDay: Int?
    /// Requests in any rolling 60-second window.
    public var perMinute: Int?
    /// Tokens (prompt plus completion) in any rolling 60-second window.
    public var tokensPerMinute: Int?

    public init(perDay: Int? = nil, perMinute: Int? = nil, tokensPerMinute: Int? = nil) {
        self.perDay = perDay
        self.perMinute = perMinute
        self.tokensPerMinute = tokensPerMinute
    }

    public static let unlimited = QuotaLimits()

    /// Whether no limit is set at all.
    public var isUnlimited: Bool { perDay == nil && perMinute == nil && tokensPerMinute == nil }

    /// `overrides` where it sets a limit, else `self`.
    public func merged(with overrides: QuotaLimits) -> QuotaLimits {
        QuotaLimits(perDay: overrides.perDay ?? perDay, perMinute: overrides.perMinute ?? perMinute,
                    tokensPerMinute: overrides.tokensPerMinute ?? tokensPerMinute)
    }
}

/// OpenRouter's free-model tiers (shared/openrouter-api.md §5.1), or limits of one's own.
public enum KeyTier: String, Sendable, Equatable, CaseIterable {
    /// Fewer than 10 credits ever bought: 50 free-model requests per UTC day, 20 per minute.
    case free
    /// At least 10 credits ever bought: 1,000 per UTC day, 20 per minute.
    case credits
    /// Only the limits given in config.
    case custom

    public var defaultLimits: QuotaLimits {
        switch self {
        case .free: QuotaLimits(perDay: 50, perMinute: 20)
        case .credits: QuotaLimits(perDay: 1_000, perMinute: 20)
        case .custom: .unlimited
        }
    }
}

/// Which model ids draw on the request quotas: OpenRouter limits only its `:free` variants.
/// Patterns are globs where `*` matches any run of characters, e.g. `*:free`, `openrouter/free`.
public struct QuotaModelPatterns: Sendable, Equatable {
    public var patterns: [String]

    public init(_ patterns: [String] = ["*:free", "openrouter/free"]) { self.patterns = patterns }

    /// Whether requests for `model` count against the request quotas.
    public func matches(_ model: String) -> Bool {
        patterns.contains { Glob.matches(Array($0.utf8), Array(model.utf8)) }
    }
}

/// Minimal `*` globbing (no other wildcards), iterative with one backtrack point.
enum Glob {
    static func matches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0
        var star = -1, mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p; mark = t; p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1; t += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
