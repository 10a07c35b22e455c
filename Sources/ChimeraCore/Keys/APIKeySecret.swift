/// An API key. Its text is reachable only through ``reveal()``, so that string interpolation,
/// `print`, logging and `dump` show the masked form (`sk-or-…a1b2`) and never the key.
public struct APIKeySecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let text: String

    /// Wraps `text` after trimming surrounding whitespace (a key pasted with a newline is the same key).
    public init(_ text: String) {
        self.text = String(text.trimmingASCIIWhitespace())
    }

    /// The key itself, for the `Authorization` header and the encrypted store. Nothing else.
    public func reveal() -> String { text }

    /// The masked form: the `sk-or-` prefix when present, an ellipsis, and the last four characters.
    public var masked: String { APIKeyMask.mask(text) }

    public var isEmpty: Bool { text.isEmpty }

    public var description: String { masked }
    public var debugDescription: String { "APIKeySecret(\(masked))" }
    /// What `dump` and `Mirror` see: the masked form, not the stored text.
    public var customMirror: Mirror { Mirror(self, children: ["masked": masked]) }
}

/// How keys appear in output: at most the provider prefix and the last four characters.
public enum APIKeyMask {
    /// `sk-or-v1-0123…a1b2` → `sk-or-…a1b2`. Keys with fewer than 16 characters after the prefix
    /// show only their last two (none below 8), so that a short key is not mostly revealed.
    public static func mask(_ key: String) -> String {
        let prefix = key.hasPrefix("sk-or-") ? "sk-or-" : (key.hasPrefix("sk-") ? "sk-" : "")
        let rest = key.count - prefix.count
        let tail = rest >= 16 ? key.suffix(4) : key.suffix(rest >= 8 ? 2 : 0)
        return "\(prefix)…\(tail)"
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces, tabs, CR and LF.
    func trimmingASCIIWhitespace() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
