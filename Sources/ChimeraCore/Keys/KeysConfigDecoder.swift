extension DecodingContext {
    /// The `keys` section (see ``KeysConfig`` and chimera.example.json), or a provider's `keys`
    /// when `provider` is its name: then `OPENROUTER_API_KEY…` are not read, and no model draws
    /// on request quotas unless `quota_models` says which.
    func decodeKeys(_ value: JSONValue, _ path: String, provider: String? = nil) -> KeysConfig {
        var keys = KeysConfig()
        if provider != nil {
            keys.readEnvironment = false
            keys.pool.quotaModels = QuotaModelPatterns([])
        }
        var known = ["strategy", "reserve_high_priority", "on_exhausted", "max_wait_ms", "quota_models", "default_tier",
                     "low_quota_alert", "sample_size", "health", "accounts", "entries"]
        if provider == nil { known.append("read_environment") }
        guard var r = object(value, path, known: known) else { return keys }
        if let s = r.choice("strategy", KeySelectionStrategy.self) { keys.pool.strategy = s }
        r.double("reserve_high_priority", 0...0.9, into: &keys.pool.reservedShare)
        if let p = r.choice("on_exhausted", ExhaustionPolicy.self) { keys.onExhausted = p }
        r.millis("max_wait_ms", minimum: 1, into: &keys.maxWaitMs)
        if let patterns = r.strings("quota_models") { keys.pool.quotaModels = QuotaModelPatterns(patterns) }
        if let t = r.choice("default_tier", KeyTier.self) {
            if t == .custom { report(r.path("default_tier"), "\"custom\" needs limits; give accounts their own \"limits\" instead") } else { keys.defaultTier = t }
        }
        r.double("low_quota_alert", 0...1, into: &keys.pool.lowQuotaThreshold)
        r.int("sample_size", 1...64, into: &keys.pool.sampleSize)
        if provider == nil { keys.readEnvironment = r.bool("read_environment") ?? true }
        if let h = r.take("health"), var hr = object(h, r.path("health"), known: ["cooldown_ms", "error_window", "error_rate", "suspend_ms"]) {
            var cooldown = UInt64(keys.pool.health.defaultCooldownMs), suspend = UInt64(keys.pool.health.suspendMs)
            hr.millis("cooldown_ms", into: &cooldown)
            hr.int("error_window", 1...10_000, into: &keys.pool.health.errorWindow)
            hr.double("error_rate", 0.01...1, into: &keys.pool.health.errorRateThreshold)
            hr.millis("suspend_ms", minimum: 1, into: &suspend)
            keys.pool.health.defaultCooldownMs = EpochMillis(cooldown)
            keys.pool.health.suspendMs = EpochMillis(suspend)
            hr.finish()
        }
        if let list = r.take("accounts") {
            if case .array(let items) = list {
                for (i, item) in items.enumerated() {
                    if let account = decodeAccount(item, "\(r.path("accounts"))[\(i)]") {
                        if keys.accounts.contains(where: { $0.name == account.name }) {
                            report("\(r.path("accounts"))[\(i)]", "account \"\(account.name)\" is declared twice")
                        } else {
                            keys.accounts.append(account)
                        }
                    }
                }
            } else { report(r.path("accounts"), "expected an array of accounts, found \(list.typeName)") }
        }
        if let list = r.take("entries") {
            if case .array(let items) = list {
                for (i, item) in items.enumerated() {
                    if let entry = decodeKeyEntry(item, "\(r.path("entries"))[\(i)]") { keys.entries.append(entry) }
                }
            } else { report(r.path("entries"), "expected an array of keys, found \(list.typeName)") }
        }
        // An entry may name an account only if it is declared, so that a typo does not silently split quotas.
        let names = keys.accounts.map(\.name)
        for entry in keys.entries {
            if let account = entry.account, !names.contains(account) {
                let hint = Suggestion.closest(to: account, in: names).map { " (did you mean \"\($0)\"?)" } ?? ""
                report(JSONPath.appending(key: "account", to: entry.path), "unknown account \"\(account)\"\(hint); declare it in keys.accounts\(names.isEmpty ? "" : " (declared: \(names.joined(separator: ", ")))")")
            }
        }
        var labels: Set<String> = []
        for entry in keys.entries {
            if let label = entry.label, !labels.insert(label).inserted {
                report(JSONPath.appending(key: "label", to: entry.path), "label \"\(label)\" is used by two keys; labels must be unique")
            }
        }
        r.finish()
        return keys
    }

    private func decodeLimits(_ value: JSONValue, _ path: String) -> QuotaLimits {
        var limits = QuotaLimits()
        guard var r = object(value, path, known: ["per_day", "per_minute", "tokens_per_minute"]) else { return limits }
        for (field, keyPath) in [("per_day", \QuotaLimits.perDay), ("per_minute", \.perMinute), ("tokens_per_minute", \.tokensPerMinute)] {
            if r.has(field) {
                var n = 0
                r.int(field, 0...1_000_000_000, into: &n)
                limits[keyPath: keyPath] = n
            }
        }
        r.finish()
        return limits
    }

    private func decodeAccount(_ value: JSONValue, _ path: String) -> KeyPoolAccount? {
        guard var r = object(value, path, known: ["name", "tier", "limits"]) else { return nil }
        let name = r.string("name", required: "the account name keys refer to")
        let tier = r.choice("tier", KeyTier.self) ?? .free
        let limits = r.take("limits").map { decodeLimits($0, r.path("limits")) }
        if tier == .custom, limits == nil || limits!.isUnlimited {
            report(path, "tier \"custom\" needs \"limits\" (per_day, per_minute, tokens_per_minute)")
        }
        r.finish()
        guard let name else { return nil }
        return KeyPoolAccount(name: name, tier: tier, limits: tier.defaultLimits.merged(with: limits ?? .unlimited))
    }

    private func decodeKeyEntry(_ value: JSONValue, _ path: String) -> ConfiguredKey? {
        guard var r = object(value, path, known: ["key", "env", "label", "account", "tier", "limits"]) else { return nil }
        let literal = r.string("key")
        let env = r.string("env")
        var source: ConfiguredKey.Source?
        switch (literal, env) {
        case (let k?, nil): source = .literal(APIKeySecret(k))
        case (nil, let e?): source = .environment(e)
        case (.some, .some): report(path, "give either \"key\" or \"env\", not both")
        case (nil, nil): report(path, "missing \"env\" (the environment variable holding the key) or \"key\"")
        }
        var entry = ConfiguredKey(source: source ?? .environment(""), label: r.string("label"), account: r.string("account"), tier: r.choice("tier", KeyTier.self), path: path)
        if let limits = r.take("limits") { entry.limits = decodeLimits(limits, r.path("limits")) }
        if entry.tier == .custom, entry.account == nil, entry.limits.isUnlimited {
            report(path, "tier \"custom\" needs \"limits\"")
        }
        if entry.tier != nil, entry.account != nil {
            report(JSONPath.appending(key: "tier", to: path), "a key in a named account takes the account's tier; set \"tier\" on the account instead")
        }
        r.finish()
        return source == nil ? nil : entry
    }
}
