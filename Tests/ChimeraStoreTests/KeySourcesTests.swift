import ChimeraCore
@testable import ChimeraStore
import Testing

/// Merging keys from the environment, the config file and the key store (KeySources.swift).
/// All keys are obviously fake.
@Suite struct KeySourcesTests {
    /// A distinct fake key of the usual shape for each `n`.
    static func fake(_ n: Int) -> String {
        let digits = String(n)
        return "sk-or-v1-fake" + String(repeating: "0", count: 56 - digits.count) + digits + "ab12"
    }

    static func stored(_ n: Int, label: String? = nil, account: String? = nil, tier: KeyTier? = nil) -> StoredKey {
        StoredKey(secret: APIKeySecret(fake(n)), label: label, account: account, tier: tier, addedAt: 1_795_910_400_000)
    }

    static func id(_ n: Int) -> String { KeyFingerprint.of(APIKeySecret(fake(n))) }

    /// No warning, entry or origin text contains any full key.
    static func expectNoKeyText(_ r: ResolvedKeys, _ keys: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let texts = r.warnings + r.entries.map { "\($0)" } + r.origins.values.flatMap { $0.map(\.description) } + r.secrets.values.map { "\($0)" }
        for key in keys {
            #expect(!texts.contains { $0.contains(key) }, "a full key appears in output", sourceLocation: sourceLocation)
        }
    }

    // MARK: Environment names

    @Test func environmentNames_plainThenNumbered_numericOrder_gapsAndJunkIgnored() {
        let env = [
            "OPENROUTER_API_KEY": Self.fake(1),
            "OPENROUTER_API_KEY_10": Self.fake(10),
            "OPENROUTER_API_KEY_2": Self.fake(2),
            "OPENROUTER_API_KEY_5": Self.fake(5),  // 3 and 4 missing: a gap is fine
            "OPENROUTER_API_KEY_X": Self.fake(6),
            "OPENROUTER_API_KEY_0": Self.fake(7),
            "OPENROUTER_API_KEY_3": "",
            "OPENROUTER_API_KEY_-1": Self.fake(8),
            "OPENROUTER_API_KEY_": Self.fake(9),
            "OPENROUTER_API_KEYS": Self.fake(11),
            "OPENROUTER_API_KEY_2X": Self.fake(12),
            "MY_OPENROUTER_API_KEY": Self.fake(13),
            "PATH": "/usr/bin",
        ]
        #expect(KeySources.environmentKeyNames(env) == ["OPENROUTER_API_KEY", "OPENROUTER_API_KEY_2", "OPENROUTER_API_KEY_5", "OPENROUTER_API_KEY_10"])
        #expect(KeySources.environmentKeyNames(["OPENROUTER_API_KEY_2": Self.fake(2)]) == ["OPENROUTER_API_KEY_2"])
        #expect(KeySources.environmentKeyNames(["OPENROUTER_API_KEY": ""]) == [])
        #expect(KeySources.environmentKeyNames([:]) == [])
    }

    @Test func resolve_environmentKeys_inOrder_eachItsOwnAccountNamedAfterTheVariable() {
        let env = ["OPENROUTER_API_KEY_10": Self.fake(10), "OPENROUTER_API_KEY": Self.fake(1), "OPENROUTER_API_KEY_2": Self.fake(2), "OPENROUTER_API_KEY_4": "  \n"]
        let r = KeySources.resolve(config: KeysConfig(), environment: env, stored: [])
        #expect(r.entries.map(\.label) == ["OPENROUTER_API_KEY", "OPENROUTER_API_KEY_2", "OPENROUTER_API_KEY_10"])
        #expect(r.entries.map(\.account) == ["OPENROUTER_API_KEY", "OPENROUTER_API_KEY_2", "OPENROUTER_API_KEY_10"])
        #expect(r.entries.map(\.id) == [Self.id(1), Self.id(2), Self.id(10)])
        #expect(r.entries.allSatisfy { $0.masked == "sk-or-…ab12" && $0.limits == .unlimited })
        #expect(r.accounts == ["OPENROUTER_API_KEY", "OPENROUTER_API_KEY_2", "OPENROUTER_API_KEY_10"].map { KeyPoolAccount(name: $0, tier: .free) })
        #expect(r.secrets[Self.id(2)]?.reveal() == Self.fake(2))
        #expect(r.origins[Self.id(10)] == [.environment("OPENROUTER_API_KEY_10")])
        #expect(r.warnings.isEmpty)
    }

    @Test func resolve_defaultTierAppliesToOwnAccounts_andReadEnvironmentFalseSkipsThem() {
        var config = KeysConfig()
        config.defaultTier = .credits
        let r = KeySources.resolve(config: config, environment: ["OPENROUTER_API_KEY": Self.fake(1)], stored: [Self.stored(2, label: "mine")])
        #expect(r.accounts.map(\.tier) == [.credits, .credits])
        #expect(r.accounts.map(\.limits) == [QuotaLimits(perDay: 1_000, perMinute: 20), QuotaLimits(perDay: 1_000, perMinute: 20)])
        config.readEnvironment = false
        let noEnv = KeySources.resolve(config: config, environment: ["OPENROUTER_API_KEY": Self.fake(1)], stored: [Self.stored(2, label: "mine")])
        #expect(noEnv.entries.map(\.label) == ["mine"])
    }

    // MARK: Duplicates

    @Test func resolve_sameKeyInEnvStoreAndConfig_isOneKey_withWarningsNamingBothSources_settingsFromConfig() {
        var config = KeysConfig()
        config.accounts = [KeyPoolAccount(name: "team", tier: .credits)]
        var entry = ConfiguredKey(source: .environment("TEAM_KEY"), label: "team-ci", account: "team", path: "$.keys.entries[0]")
        entry.limits = QuotaLimits(perDay: 300)
        config.entries = [entry]
        let env = ["TEAM_KEY": Self.fake(1), "OPENROUTER_API_KEY": Self.fake(1) + "\n"]
        let r = KeySources.resolve(config: config, environment: env, stored: [Self.stored(1, label: "stored-label", account: "other", tier: .free)])

        #expect(r.entries.count == 1)
        let e = r.entries.first
        #expect(e?.id == Self.id(1))
        #expect(e?.label == "team-ci")
        #expect(e?.account == "team")
        #expect(e?.limits == QuotaLimits(perDay: 300))
        #expect(r.accounts == [KeyPoolAccount(name: "team", tier: .credits)])
        #expect(r.origins[Self.id(1)] == [.config(path: "$.keys.entries[0]"), .store(label: "stored-label"), .environment("OPENROUTER_API_KEY")])
        #expect(r.warnings.count == 2)
        #expect(r.warnings.allSatisfy { $0.contains("sk-or-…ab12") && $0.contains("config $.keys.entries[0]") })
        #expect(r.warnings.first?.contains("key store (stored-label)") == true)
        #expect(r.warnings.last?.contains("$OPENROUTER_API_KEY") == true)
        #expect(r.warnings.first == "key sk-or-…ab12 is in both config $.keys.entries[0] and key store (stored-label); it is used once, with the settings from config $.keys.entries[0]")
        Self.expectNoKeyText(r, [Self.fake(1)])
    }

    @Test func resolve_duplicate_fillsWhatTheStrongerSourceLeftUnset() {
        // The environment key has no label or account; the store copy of it does.
        let r = KeySources.resolve(config: KeysConfig(), environment: ["OPENROUTER_API_KEY": Self.fake(3)],
                                   stored: [Self.stored(3, label: "laptop", account: "acme", tier: .credits)])
        #expect(r.entries.count == 1)
        #expect(r.entries.first?.label == "laptop")
        #expect(r.entries.first?.account == "acme")
        #expect(r.accounts == [KeyPoolAccount(name: "acme", tier: .credits)])
        #expect(r.origins[Self.id(3)] == [.store(label: "laptop"), .environment("OPENROUTER_API_KEY")])
        #expect(r.warnings.count == 1)
        Self.expectNoKeyText(r, [Self.fake(3)])
    }

    // MARK: Config entries

    @Test func resolve_configEntryWithUnsetVariable_warnsAndSkips() {
        var config = KeysConfig()
        config.entries = [
            ConfiguredKey(source: .environment("MISSING_KEY"), label: "gone", path: "$.keys.entries[0]"),
            ConfiguredKey(source: .environment("BLANK_KEY"), label: "blank", path: "$.keys.entries[1]"),
            ConfiguredKey(source: .environment("PRESENT_KEY"), label: "here", path: "$.keys.entries[2]"),
        ]
        let r = KeySources.resolve(config: config, environment: ["BLANK_KEY": " \t", "PRESENT_KEY": Self.fake(4)], stored: [])
        #expect(r.entries.map(\.label) == ["here"])
        #expect(r.warnings == [
            "config $.keys.entries[0]: environment variable MISSING_KEY is not set; that key is skipped",
            "config $.keys.entries[1]: environment variable BLANK_KEY is not set; that key is skipped",
        ])
    }

    @Test func resolve_configLiteralKeyWithOwnLimits_ownAccountNamedAfterLabel() {
        var config = KeysConfig()
        var entry = ConfiguredKey(source: .literal(APIKeySecret(Self.fake(5))), label: "lab", tier: .custom, path: "$.keys.entries[0]")
        entry.limits = QuotaLimits(perDay: 7, perMinute: 2)
        config.entries = [entry]
        let r = KeySources.resolve(config: config, environment: [:], stored: [])
        #expect(r.entries == [KeyPoolEntry(id: Self.id(5), label: "lab", masked: "sk-or-…ab12", account: "lab")])
        // The key's limits are its own account's.
        #expect(r.accounts == [KeyPoolAccount(name: "lab", tier: .custom, limits: QuotaLimits(perDay: 7, perMinute: 2))])
        #expect(r.origins[Self.id(5)] == [.config(path: "$.keys.entries[0]")])
    }

    @Test func resolve_keyInNamedAccount_keepsItsOwnLimitsAsPerKeyLimits() {
        var config = KeysConfig()
        config.accounts = [KeyPoolAccount(name: "team", tier: .free)]
        var entry = ConfiguredKey(source: .environment("A_KEY"), account: "team", path: "$.keys.entries[0]")
        entry.limits = QuotaLimits(perDay: 10)
        config.entries = [entry, ConfiguredKey(source: .environment("B_KEY"), account: "team", path: "$.keys.entries[1]")]
        let r = KeySources.resolve(config: config, environment: ["A_KEY": Self.fake(1), "B_KEY": Self.fake(2)], stored: [])
        #expect(r.entries.map(\.account) == ["team", "team"])
        #expect(r.entries.map(\.limits) == [QuotaLimits(perDay: 10), .unlimited])
        #expect(r.accounts == [KeyPoolAccount(name: "team", tier: .free)])
        // No label, not from the environment directly: no label.
        #expect(r.entries.map(\.label) == [nil, nil])
    }

    // MARK: Own accounts and store accounts

    @Test func resolve_ownAccountNaming_labelThenId_neverTakingAnotherAccountsName() {
        var config = KeysConfig()
        config.accounts = [KeyPoolAccount(name: "team", tier: .credits)]
        let stored = [
            Self.stored(1, label: "laptop"),
            Self.stored(2),                     // no label: named by its id
            Self.stored(3, label: "team"),      // the label is a declared account's name: its id instead
            Self.stored(4, label: "laptop"),    // a label already taken by another own account: its id
        ]
        let r = KeySources.resolve(config: config, environment: [:], stored: stored)
        #expect(r.entries.map(\.account) == ["laptop", Self.id(2), Self.id(3), Self.id(4)])
        #expect(r.entries.map(\.label) == ["laptop", nil, "team", "laptop"])
        #expect(r.accounts.map(\.name) == ["team", "laptop", Self.id(2), Self.id(3), Self.id(4)])
        #expect(r.accounts.dropFirst().allSatisfy { $0.tier == .free })
    }

    @Test func resolve_storeKeyNamingUndeclaredAccount_createsIt_once() {
        let stored = [
            Self.stored(1, label: "a", account: "side", tier: .credits),
            Self.stored(2, label: "b", account: "side", tier: .free),
            Self.stored(3, label: "c", account: "other"),
        ]
        let r = KeySources.resolve(config: KeysConfig(), environment: [:], stored: stored)
        #expect(r.entries.map(\.account) == ["side", "side", "other"])
        #expect(r.accounts == [KeyPoolAccount(name: "side", tier: .credits), KeyPoolAccount(name: "other", tier: .free)])
        #expect(r.warnings.isEmpty)
    }

    @Test func resolve_ownAccountNamedByLabel_isNotMergedWithANamedAccountOfTheSameName() {
        // Key 1 is its own account and happens to be labelled "side"; key 2 belongs to account
        // "side". They are different accounts whichever comes first.
        for stored in [[Self.stored(1, label: "side"), Self.stored(2, label: "x", account: "side")],
                       [Self.stored(2, label: "x", account: "side"), Self.stored(1, label: "side")]] {
            let r = KeySources.resolve(config: KeysConfig(), environment: [:], stored: stored)
            let own = r.entries.first { $0.id == Self.id(1) }
            let named = r.entries.first { $0.id == Self.id(2) }
            #expect(named?.account == "side")
            #expect(own?.account != "side", "the own-account key would share \"side\"'s quota")
            #expect(Set(r.accounts.map(\.name)).count == r.accounts.count, "account names must be unique")
            #expect(r.accounts.count == 2)
        }
    }

    @Test func resolve_warningsNeverContainTheFullKey() {
        var config = KeysConfig()
        config.entries = [
            ConfiguredKey(source: .literal(APIKeySecret(Self.fake(1))), label: "lit", path: "$.keys.entries[0]"),
            ConfiguredKey(source: .environment("E2"), path: "$.keys.entries[1]"),
            ConfiguredKey(source: .environment("UNSET"), path: "$.keys.entries[2]"),
        ]
        let env = ["E2": Self.fake(2), "OPENROUTER_API_KEY": Self.fake(1), "OPENROUTER_API_KEY_2": Self.fake(2), "OPENROUTER_API_KEY_3": Self.fake(3)]
        let stored = [Self.stored(3, label: "s3"), Self.stored(1), Self.stored(2, label: "s2")]
        let r = KeySources.resolve(config: config, environment: env, stored: stored)
        #expect(r.entries.count == 3)
        #expect(r.warnings.count == 1 + 5)
        Self.expectNoKeyText(r, [Self.fake(1), Self.fake(2), Self.fake(3)])
        // Nor does a key's last eight characters, let alone more.
        for key in [Self.fake(1), Self.fake(2), Self.fake(3)] {
            #expect(!r.warnings.contains { $0.contains(String(key.suffix(8))) })
        }
    }

    @Test func keyOrigin_descriptions() {
        #expect(KeyOrigin.environment("OPENROUTER_API_KEY").description == "$OPENROUTER_API_KEY")
        #expect(KeyOrigin.config(path: "$.keys.entries[1]").description == "config $.keys.entries[1]")
        #expect(KeyOrigin.store(label: "work").description == "key store (work)")
        #expect(KeyOrigin.store(label: nil).description == "key store")
    }
}
