import ChimeraCore

/// Where a key came from, for messages (never the key itself).
public enum KeyOrigin: Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case config(path: String)
    case store(label: String?)

    public var description: String {
        switch self {
        case .environment(let name): "$\(name)"
        case .config(let path): "config \(path)"
        case .store(let label): "key store" + (label.map { " (\($0))" } ?? "")
        }
    }
}

/// The key pool's inputs after merging every source: accounts, entries and their secrets.
public struct ResolvedKeys: Sendable {
    public var accounts: [KeyPoolAccount] = []
    public var entries: [KeyPoolEntry] = []
    /// Secrets by key id; only the HTTP client reads them.
    public var secrets: [String: APIKeySecret] = [:]
    /// Every source each key was found in, by key id.
    public var origins: [String: [KeyOrigin]] = [:]
    /// Duplicates and unset variables, already masked.
    public var warnings: [String] = []

    public init() {}
}

/// Merges keys from the environment (`OPENROUTER_API_KEY`, `OPENROUTER_API_KEY_2` … `_N`),
/// the config file and the encrypted store into one pool.
///
/// The same key from two sources is one key (identified by its fingerprint) with a warning; its
/// label, account and tier come from the config first, then the store, then the environment.
/// A key without an account is its own account, named after its label (or its id).
public enum KeySources {
    /// Environment variable names holding keys, in order: the unnumbered one, then by number.
    public static func environmentKeyNames(_ environment: [String: String]) -> [String] {
        let prefix = "OPENROUTER_API_KEY"
        var numbered: [(Int, String)] = []
        var plain = false
        for (name, value) in environment where name.hasPrefix(prefix) && !value.isEmpty {
            let rest = name.dropFirst(prefix.count)
            if rest.isEmpty { plain = true; continue }
            // Only canonical numbers (`_2`, not `_02` or `_+2`), so each number names one variable.
            guard rest.first == "_", let n = Int(rest.dropFirst()), n >= 1, String(n) == rest.dropFirst() else { continue }
            numbered.append((n, name))
        }
        return (plain ? [prefix] : []) + numbered.sorted { $0.0 < $1.0 }.map(\.1)
    }

    public static func resolve(config: KeysConfig, environment: [String: String], stored: [StoredKey]) -> ResolvedKeys {
        struct Candidate { var secret: APIKeySecret; var origin: KeyOrigin; var label: String?; var account: String?; var tier: KeyTier?; var limits: QuotaLimits }
        var candidates: [Candidate] = []
        var warnings: [String] = []
        for entry in config.entries {
            let secret: APIKeySecret
            switch entry.source {
            case .literal(let s): secret = s
            case .environment(let name):
                guard let text = environment[name], !APIKeySecret(text).isEmpty else {
                    warnings.append("config \(entry.path): environment variable \(name) is not set; that key is skipped")
                    continue
                }
                secret = APIKeySecret(text)
            }
            candidates.append(Candidate(secret: secret, origin: .config(path: entry.path), label: entry.label, account: entry.account, tier: entry.tier, limits: entry.limits))
        }
        for key in stored {
            candidates.append(Candidate(secret: key.secret, origin: .store(label: key.label), label: key.label, account: key.account, tier: key.tier, limits: .unlimited))
        }
        if config.readEnvironment {
            for name in environmentKeyNames(environment) {
                candidates.append(Candidate(secret: APIKeySecret(environment[name]!), origin: .environment(name), label: nil, account: nil, tier: nil, limits: .unlimited))
            }
        }

        var result = ResolvedKeys()
        result.accounts = config.accounts
        var indexById: [String: Int] = [:]
        var chosen: [Candidate] = []
        for c in candidates where !c.secret.isEmpty {
            let id = KeyFingerprint.of(c.secret)
            if let i = indexById[id] {
                let first = result.origins[id]![0]
                warnings.append("key \(c.secret.masked) is in both \(first) and \(c.origin); it is used once, with the settings from \(first)")
                result.origins[id]!.append(c.origin)
                // Fill what the stronger source left unset.
                if chosen[i].label == nil { chosen[i].label = c.label }
                if chosen[i].account == nil { chosen[i].account = c.account }
                if chosen[i].tier == nil { chosen[i].tier = c.tier }
                continue
            }
            indexById[id] = chosen.count
            result.origins[id] = [c.origin]
            result.secrets[id] = c.secret
            chosen.append(c)
        }
        let declared = Set(config.accounts.map(\.name))
        var created = declared
        // Account names that keys give are taken before any own account is named, whatever the order.
        var usedNames = declared.union(chosen.compactMap(\.account))
        for c in chosen {
            let id = KeyFingerprint.of(c.secret)
            let label = c.label ?? originLabel(c.origin)
            var account: String
            var keyLimits = QuotaLimits.unlimited
            if let named = c.account {
                account = named
                keyLimits = c.limits
                if !created.contains(named) {
                    // A store key may name an account the config does not declare.
                    let tier = c.tier ?? config.defaultTier
                    result.accounts.append(KeyPoolAccount(name: named, tier: tier))
                    created.insert(named)
                }
            } else {
                account = label ?? id
                if usedNames.contains(account) { account = id }
                usedNames.insert(account)
                let tier = c.tier ?? config.defaultTier
                result.accounts.append(KeyPoolAccount(name: account, tier: tier, limits: tier.defaultLimits.merged(with: c.limits)))
            }
            result.entries.append(KeyPoolEntry(id: id, label: label, masked: c.secret.masked, account: account, limits: keyLimits))
        }
        result.warnings = warnings
        return result
    }

    private static func originLabel(_ origin: KeyOrigin) -> String? {
        if case .environment(let name) = origin { return name }
        return nil
    }
}
