import Testing
@testable import ChimeraCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes a whole config `text`, returning the config or the error.
private func decodeKeysText(_ text: String) -> Result<ChimeraConfig, ConfigError> {
    do throws(ConfigError) {
        return .success(try ConfigDecoder.decode(Array(text.utf8), file: "chimera.json"))
    } catch {
        return .failure(error)
    }
}

/// The issues reported for `text` (empty if it decodes).
private func keysIssues(_ text: String) -> [ConfigIssue] {
    if case .failure(let e) = decodeKeysText(text) { return e.issues }
    return []
}

/// 1-based line and column of the first occurrence of `needle` in `text`, computed here
/// independently of the decoder.
private func position(of needle: String, in text: String) -> (line: Int?, column: Int?) {
    let bytes = Array(text.utf8), n = Array(needle.utf8)
    guard bytes.count >= n.count else { return (nil, nil) }
    for start in 0...(bytes.count - n.count) where Array(bytes[start..<(start + n.count)]) == n {
        let before = bytes[..<start]
        return (before.filter { $0 == 0x0A }.count + 1, start - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1)
    }
    return (nil, nil)
}

@Suite struct KeysConfigTests {
    static let fakeKey = "sk-or-v1-fake00000000000000000000000000000000000000000000000000000000c0de"

    // MARK: Valid

    @Test func keysConfig_fullExample_decodesEveryField() throws {
        let text = """
        {
          "keys": {
            "strategy": "adaptive",
            "reserve_high_priority": 0.25,
            "on_exhausted": "fail",
            "max_wait_ms": 60000,
            "quota_models": ["*:free", "acme/*"],
            "default_tier": "credits",
            "low_quota_alert": 0.3,
            "sample_size": 8,
            "read_environment": false,
            "health": { "cooldown_ms": 15000, "error_window": 20, "error_rate": 0.4, "suspend_ms": 60000 },
            "accounts": [
              { "name": "team", "tier": "credits" },
              { "name": "lab", "tier": "custom", "limits": { "per_day": 200, "per_minute": 10, "tokens_per_minute": 100000 } },
              { "name": "small", "limits": { "per_day": 30 } }
            ],
            "entries": [
              { "label": "team-ci", "env": "TEAM_OPENROUTER_KEY", "account": "team" },
              { "label": "team-batch", "env": "TEAM_OPENROUTER_KEY_BATCH", "account": "team", "limits": { "per_day": 300 } },
              { "key": "\(Self.fakeKey)", "tier": "custom", "limits": { "per_minute": 5 } },
              { "env": "SOLO_KEY", "tier": "free" }
            ]
          }
        }
        """
        let keys = try decodeKeysText(text).get().keys
        #expect(keys.pool.strategy == .adaptive)
        #expect(keys.pool.reservedShare == 0.25)
        #expect(keys.onExhausted == .fail)
        #expect(keys.maxWaitMs == 60_000)
        #expect(keys.pool.quotaModels == QuotaModelPatterns(["*:free", "acme/*"]))
        #expect(keys.defaultTier == .credits)
        #expect(keys.pool.lowQuotaThreshold == 0.3)
        #expect(keys.pool.sampleSize == 8)
        #expect(keys.readEnvironment == false)
        var health = KeyHealthPolicy()
        health.defaultCooldownMs = 15_000
        health.errorWindow = 20
        health.errorRateThreshold = 0.4
        health.suspendMs = 60_000
        #expect(keys.pool.health == health)
        #expect(keys.accounts == [
            KeyPoolAccount(name: "team", tier: .credits, limits: QuotaLimits(perDay: 1_000, perMinute: 20)),
            KeyPoolAccount(name: "lab", tier: .custom, limits: QuotaLimits(perDay: 200, perMinute: 10, tokensPerMinute: 100_000)),
            // A tier's defaults fill what the limits leave out.
            KeyPoolAccount(name: "small", tier: .free, limits: QuotaLimits(perDay: 30, perMinute: 20)),
        ])
        var batch = ConfiguredKey(source: .environment("TEAM_OPENROUTER_KEY_BATCH"), label: "team-batch", account: "team", path: "$.keys.entries[1]")
        batch.limits = QuotaLimits(perDay: 300)
        var literal = ConfiguredKey(source: .literal(APIKeySecret(Self.fakeKey)), tier: .custom, path: "$.keys.entries[2]")
        literal.limits = QuotaLimits(perMinute: 5)
        #expect(keys.entries == [
            ConfiguredKey(source: .environment("TEAM_OPENROUTER_KEY"), label: "team-ci", account: "team", path: "$.keys.entries[0]"),
            batch,
            literal,
            ConfiguredKey(source: .environment("SOLO_KEY"), tier: .free, path: "$.keys.entries[3]"),
        ])
    }

    @Test func keysConfig_absentOrEmpty_givesDefaults() throws {
        #expect(try decodeKeysText("{}").get().keys == KeysConfig())
        #expect(try decodeKeysText(#"{ "keys": {} }"#).get().keys == KeysConfig())
        let d = KeysConfig()
        #expect(d.pool.strategy == .roundRobin)
        #expect(d.pool.reservedShare == 0.1)
        #expect(d.pool.quotaModels.patterns == ["*:free", "openrouter/free"])
        #expect(d.pool.health.defaultCooldownMs == 10_000)
        #expect(d.pool.health.errorWindow == 10)
        #expect(d.pool.health.errorRateThreshold == 0.5)
        #expect(d.pool.health.suspendMs == 300_000)
        #expect(d.onExhausted == .wait)
        #expect(d.defaultTier == .free)
        #expect(d.readEnvironment)
        #expect(d.accounts.isEmpty && d.entries.isEmpty)
    }

    @Test func keysConfig_exampleFileDecodes() throws {
        guard let bytes = PackageFiles.read("chimera.example.json") else { Issue.record("cannot open chimera.example.json"); return }
        let config: ChimeraConfig
        do throws(ConfigError) { config = try ConfigDecoder.decode(bytes, file: "chimera.example.json") } catch {
            Issue.record("\(error)")
            return
        }
        // Whatever the example shows, every key entry names a declared account or none.
        let names = Set(config.keys.accounts.map(\.name))
        #expect(config.keys.entries.allSatisfy { $0.account.map(names.contains) ?? true })
    }

    // MARK: Errors

    @Test func keysConfig_unknownStrategy_pathLineColumnAndDidYouMean() {
        let text = """
        {
          "keys": {
            "strategy": "round-robin"
          }
        }
        """
        let issues = keysIssues(text)
        #expect(issues.count == 1)
        let issue = issues.first
        #expect(issue?.path == "$.keys.strategy")
        let at = position(of: #""round-robin""#, in: text)
        #expect(issue?.line == at.line && issue?.column == at.column)
        #expect(issue?.line == 3 && issue?.column == 17)
        #expect(issue?.message == #"expected one of "round_robin", "least_used", "performance", "adaptive", found "round-robin" (did you mean "round_robin"?)"#)
        #expect(issue?.description == #"3:17: $.keys.strategy: expected one of "round_robin", "least_used", "performance", "adaptive", found "round-robin" (did you mean "round_robin"?)"#)
    }

    @Test func keysConfig_unknownAccountReferencedByEntry_didYouMeanAndDeclaredList() {
        let text = """
        {
          "keys": {
            "accounts": [ { "name": "team" }, { "name": "lab", "tier": "credits" } ],
            "entries": [
              { "env": "A_KEY", "account": "team" },
              { "env": "B_KEY", "account": "teams" }
            ]
          }
        }
        """
        let issues = keysIssues(text)
        #expect(issues.count == 1)
        #expect(issues.first?.path == "$.keys.entries[1].account")
        let at = position(of: #""teams""#, in: text)
        #expect(issues.first?.line == at.line && issues.first?.column == at.column)
        #expect(issues.first?.line == 6)
        #expect(issues.first?.message == #"unknown account "teams" (did you mean "team"?); declare it in keys.accounts (declared: team, lab)"#)
    }

    @Test func keysConfig_entryAccountWithNoAccountsDeclared() {
        let issues = keysIssues(#"{ "keys": { "entries": [ { "env": "A", "account": "acme" } ] } }"#)
        #expect(issues.map(\.message) == [#"unknown account "acme"; declare it in keys.accounts"#])
    }

    @Test func keysConfig_bothKeyAndEnv_reportedAtTheEntry() {
        let text = """
        {
          "keys": {
            "entries": [
              { "key": "\(Self.fakeKey)", "env": "OPENROUTER_API_KEY" }
            ]
          }
        }
        """
        let issues = keysIssues(text)
        #expect(issues.count == 1)
        #expect(issues.first?.path == "$.keys.entries[0]")
        #expect(issues.first?.line == 4 && issues.first?.column == 7)
        #expect(issues.first?.message == #"give either "key" or "env", not both"#)
        // The error never shows the key.
        #expect(!issues.contains { $0.description.contains(Self.fakeKey) })
    }

    @Test func keysConfig_entryWithNeitherKeyNorEnv() {
        let issues = keysIssues(#"{ "keys": { "entries": [ { "label": "x" } ] } }"#)
        #expect(issues.map(\.path) == ["$.keys.entries[0]"])
        #expect(issues.first?.message.contains(#"missing "env""#) == true)
    }

    @Test func keysConfig_customTierWithoutLimits() {
        let text = """
        {
          "keys": {
            "accounts": [
              { "name": "lab", "tier": "custom" },
              { "name": "lab2", "tier": "custom", "limits": {} },
              { "name": "lab3", "tier": "custom", "limits": { "per_day": 100 } }
            ],
            "entries": [
              { "env": "X_KEY", "tier": "custom" },
              { "env": "Y_KEY", "tier": "custom", "limits": { "tokens_per_minute": 5000 } }
            ]
          }
        }
        """
        let issues = keysIssues(text)
        #expect(issues.map(\.path) == ["$.keys.accounts[0]", "$.keys.accounts[1]", "$.keys.entries[0]"])
        #expect(issues.map(\.line) == [4, 5, 9])
        #expect(issues[0].message == #"tier "custom" needs "limits" (per_day, per_minute, tokens_per_minute)"#)
        #expect(issues[2].message == #"tier "custom" needs "limits""#)
    }

    @Test func keysConfig_defaultTierCustom_refused() {
        let issues = keysIssues(#"{ "keys": { "default_tier": "custom" } }"#)
        #expect(issues.map(\.path) == ["$.keys.default_tier"])
    }

    @Test func keysConfig_reserveShareOutOfRange() {
        for bad in ["0.95", "-0.1", "1", "\"10%\""] {
            let issues = keysIssues(#"{ "keys": { "reserve_high_priority": \#(bad) } }"#)
            #expect(issues.map(\.path) == ["$.keys.reserve_high_priority"], "\(bad)")
            #expect(issues.first?.message.hasPrefix("expected a number from 0 to 0.9, found ") == true, "\(bad)")
            #expect(issues.first?.line == 1 && issues.first?.column == position(of: bad, in: #"{ "keys": { "reserve_high_priority": \#(bad) } }"#).column)
        }
        for good in ["0", "0.9", "0.5"] {
            #expect(keysIssues(#"{ "keys": { "reserve_high_priority": \#(good) } }"#).isEmpty, "\(good)")
        }
    }

    @Test func keysConfig_duplicateLabels() {
        let text = """
        {
          "keys": {
            "entries": [
              { "env": "A_KEY", "label": "ci" },
              { "env": "B_KEY", "label": "batch" },
              { "env": "C_KEY", "label": "ci" }
            ]
          }
        }
        """
        let issues = keysIssues(text)
        #expect(issues.count == 1)
        #expect(issues.first?.path == "$.keys.entries[2].label")
        #expect(issues.first?.line == 6 && issues.first?.column == 34)
        #expect(issues.first?.message == #"label "ci" is used by two keys; labels must be unique"#)
    }

    @Test func keysConfig_duplicateAccountsAndTierOnKeyInNamedAccount() {
        let text = """
        {
          "keys": {
            "accounts": [ { "name": "team" }, { "name": "team", "tier": "credits" } ],
            "entries": [ { "env": "A_KEY", "account": "team", "tier": "credits" } ]
          }
        }
        """
        let issues = keysIssues(text)
        #expect(issues.map(\.path) == ["$.keys.accounts[1]", "$.keys.entries[0].tier"])
        #expect(issues[0].message == #"account "team" is declared twice"#)
        #expect(issues[1].message.contains("takes the account's tier"))
    }

    @Test func keysConfig_unknownFieldsAndBadValues_allReportedAtOnce() {
        let text = """
        {
          "keys": {
            "stratgy": "least_used",
            "on_exhausted": "block",
            "sample_size": 0,
            "health": { "error_rate": 2, "cooldown": 5 },
            "accounts": [ { "name": "a", "tier": "premium", "limits": { "per_dya": 5 } } ]
          }
        }
        """
        let issues = keysIssues(text)
        #expect(Set(issues.map(\.path)) == [
            "$.keys.stratgy", "$.keys.on_exhausted", "$.keys.sample_size", "$.keys.health.error_rate",
            "$.keys.health.cooldown", "$.keys.accounts[0].tier", "$.keys.accounts[0].limits.per_dya",
        ])
        #expect(issues.allSatisfy { $0.line != nil && $0.column != nil })
        let unknown = issues.first { $0.path == "$.keys.stratgy" }
        #expect(unknown?.message.hasPrefix(#"unknown field "stratgy" (did you mean "strategy"?)"#) == true)
        #expect(unknown?.line == 3 && unknown?.column == 16)
        let tier = issues.first { $0.path == "$.keys.accounts[0].tier" }
        #expect(tier?.message == #"expected one of "free", "credits", "custom", found "premium""#)
        let limit = issues.first { $0.path == "$.keys.accounts[0].limits.per_dya" }
        #expect(limit?.message.contains(#"(did you mean "per_day"?)"#) == true)
    }

    // MARK: Quota model patterns

    @Test func quotaModels_defaultPatterns() {
        let p = QuotaModelPatterns()
        for model in ["meta-llama/llama-3.3-70b-instruct:free", "x:free", ":free", "openrouter/free"] { #expect(p.matches(model), "\(model)") }
        for model in ["openai/gpt-4o", "x:free:extended", "x:FREE", "x:fre", "openrouter/free-2", "free", "openrouter/freebie", ""] {
            #expect(!p.matches(model), "\(model)")
        }
    }

    @Test func quotaModels_globbing() {
        func m(_ pattern: String, _ text: String) -> Bool { QuotaModelPatterns([pattern]).matches(text) }
        #expect(m("*", "") && m("*", "anything/at:all"))
        #expect(m("**", "abc"))
        #expect(m("", "") && !m("", "a"))
        #expect(m("abc", "abc") && !m("abc", "abcd") && !m("abc", "ab"))
        #expect(m("a*b*c", "abc") && m("a*b*c", "aXbYc") && m("a*b*c", "aXbYcZc"))
        #expect(!m("a*b*c", "acb") && !m("a*b*c", "aXbYcZ"))
        #expect(m("*ab", "aab") && m("*a*b", "xaxxb") && !m("*a*b", "xbxxa"))
        #expect(!m("a*", "") && m("a*", "a"))
        #expect(m("*é", "café") && !m("*é", "cafe"))
        #expect(m("vendor/*:free", "vendor/model:free") && !m("vendor/*:free", "other/model:free"))
        // No other wildcards: `?` and `[` are literal.
        #expect(m("a?c", "a?c") && !m("a?c", "abc"))
        #expect(!QuotaModelPatterns([]).matches("x:free"))
    }

    // MARK: UTC days

    @Test func utcDay_epochAndNegativeTimes() {
        #expect(UTCDay.index(of: 0) == 0)
        #expect(UTCDay.index(of: 86_399_999) == 0)
        #expect(UTCDay.index(of: 86_400_000) == 1)
        #expect(UTCDay.index(of: -1) == -1)
        #expect(UTCDay.index(of: -86_400_000) == -1)
        #expect(UTCDay.index(of: -86_400_001) == -2)
        #expect(UTCDay.dateString(of: 0) == "1970-01-01")
        #expect(UTCDay.dateString(of: -1) == "1969-12-31")
        #expect(UTCDay.timestamp(0) == "1970-01-01T00:00:00Z")
        #expect(UTCDay.timestamp(-1) == "1969-12-31T23:59:59Z")
        #expect(UTCDay.timestamp(-86_400_000) == "1969-12-31T00:00:00Z")
        #expect(UTCDay.timestamp(-2_208_988_800_000) == "1900-01-01T00:00:00Z")
        #expect(UTCDay.nextMidnight(after: -1) == 0)
        #expect(UTCDay.nextMidnight(after: -86_400_000) == 0)
        #expect(UTCDay.nextMidnight(after: -86_400_001) == -86_400_000)
        // Strictly after: at midnight, the next one.
        #expect(UTCDay.nextMidnight(after: 0) == 86_400_000)
        #expect(UTCDay.start(ofDay: -1) == -86_400_000)
    }

    @Test func utcDay_leapDays() {
        let feb29: EpochMillis = 1_835_395_200_000  // 2028-02-29T00:00:00Z
        #expect(UTCDay.dateString(of: feb29) == "2028-02-29")
        #expect(UTCDay.dateString(of: feb29 - 1) == "2028-02-28")
        #expect(UTCDay.timestamp(feb29 + UTCDay.millisPerDay - 1) == "2028-02-29T23:59:59Z")
        #expect(UTCDay.nextMidnight(after: feb29) == 1_835_481_600_000)
        #expect(UTCDay.dateString(of: UTCDay.nextMidnight(after: feb29 + 5)) == "2028-03-01")
        // 2000 was a leap year (divisible by 400); 2100 will not be.
        #expect(UTCDay.dateString(of: 951_782_400_000) == "2000-02-29")
        #expect(UTCDay.dateString(of: 4_107_456_000_000) == "2100-02-28")
        #expect(UTCDay.dateString(of: 4_107_456_000_000 + UTCDay.millisPerDay) == "2100-03-01")
    }

    @Test func utcDay_timestampDropsMillis_andDurations() {
        #expect(UTCDay.timestamp(1_795_957_509_999) == "2026-11-29T13:05:09Z")
        #expect(UTCDay.duration(0) == "0s")
        #expect(UTCDay.duration(-5_000) == "0s")
        #expect(UTCDay.duration(1) == "1s")
        #expect(UTCDay.duration(45_000) == "45s")
        #expect(UTCDay.duration(725_000) == "12m 5s")
        #expect(UTCDay.duration(12_000_000) == "3h 20m")
    }

    @Test func utcDay_civilRoundTrip_overFourHundredYears() {
        // Every day from 1900 to 2300 follows the previous one in the calendar.
        var previous = UTCDay.civil(UTCDay.index(of: -2_208_988_800_000) - 1)
        #expect(previous == (1899, 12, 31))
        let daysInMonth: [Int64] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for day in UTCDay.index(of: -2_208_988_800_000)...(UTCDay.index(of: -2_208_988_800_000) + 146_097) {
            let (y, m, d) = UTCDay.civil(day)
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
            let length = m == 2 && leap ? 29 : daysInMonth[Int(m) - 1]
            let (py, pm, pd) = previous
            let expected = pd < (pm == 2 && ((py % 4 == 0 && py % 100 != 0) || py % 400 == 0) ? 29 : daysInMonth[Int(pm) - 1])
                ? (py, pm, pd + 1) : (pm == 12 ? (py + 1, 1, 1) : (py, pm + 1, 1))
            if (y, m, d) != expected || d > length { Issue.record("day \(day): \(y)-\(m)-\(d), expected \(expected)"); return }
            previous = (y, m, d)
        }
    }

    // MARK: Masking

    @Test func apiKeyMask_longKeys_prefixAndLastFour() {
        #expect(APIKeyMask.mask("sk-or-v1-0123456789abcdef0123456789abcdefab12") == "sk-or-…ab12")
        #expect(APIKeyMask.mask("sk-proj-0123456789abcdefghij") == "sk-…ghij")
        #expect(APIKeyMask.mask("0123456789abcdefghij") == "…ghij")
        #expect(APIKeySecret("  sk-or-v1-0123456789abcdef0123456789abcdefab12\n").masked == "sk-or-…ab12")
    }

    @Test func apiKeyMask_shortKeys_revealLittle() {
        #expect(APIKeyMask.mask("") == "…")
        #expect(APIKeyMask.mask("abc") == "…")
        #expect(APIKeyMask.mask("abcdefg") == "…")
        #expect(APIKeyMask.mask("abcdefgh") == "…gh")
        #expect(APIKeyMask.mask("abcdefghijklmno") == "…no")
        #expect(APIKeyMask.mask("abcdefghijklmnop") == "…mnop")
        // Whatever the length, at most a quarter of what follows the public prefix is shown,
        // so a short key with a familiar prefix is not revealed either.
        for prefix in ["", "sk-", "sk-or-", "sk-or-v1-"] {
            for n in 0...40 {
                let secret = String(repeating: "x", count: n)
                let key = prefix + secret
                let masked = APIKeyMask.mask(key)
                let shown = masked.split(separator: "…", omittingEmptySubsequences: false).last.map(\.count) ?? 0
                let rest = key.count - (key.hasPrefix("sk-or-") ? 6 : (key.hasPrefix("sk-") ? 3 : 0))
                #expect(shown * 4 <= rest, "\(key) → \(masked)")
                if !key.isEmpty { #expect(masked != key) }
            }
        }
    }

    @Test func apiKeySecret_neverPrintsTheKey() {
        let text = Self.fakeKey
        let secret = APIKeySecret(text)
        #expect(secret.reveal() == text)
        #expect("\(secret)" == "sk-or-…c0de")
        #expect(String(describing: secret) == "sk-or-…c0de")
        #expect(secret.debugDescription == "APIKeySecret(sk-or-…c0de)")
        #expect(String(reflecting: secret) == "APIKeySecret(sk-or-…c0de)")
        #expect(!"\([secret])".contains(text))
        #expect(!"\(Optional(secret) as Any)".contains(text))
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains(text), "\(dumped)")
        #expect(!Mirror(reflecting: secret).children.contains { "\($0.value)".contains(text) })
        // Nor does a config holding it.
        let entry = ConfiguredKey(source: .literal(secret), label: "x", path: "$.keys.entries[0]")
        var dumpedEntry = ""
        dump(entry, to: &dumpedEntry)
        #expect(!dumpedEntry.contains(text))
        #expect(!String(describing: entry).contains(text))
    }
}

@Suite struct OpenRouterSettingsConfigTests {
    @Test func openrouterSection_decodes_andDefaults() throws {
        let config = try ConfigDecoder.decode(Array("""
        {"openrouter": {"base_url": "http://127.0.0.1:8089/api/v1", "referer": "https://example.org/app", "title": "My App",
                        "connect_timeout_ms": 500, "first_byte_timeout_ms": 1000, "idle_timeout_ms": 2000, "total_timeout_ms": 3000}}
        """.utf8), file: "c.json")
        #expect(config.openrouter.baseURL == "http://127.0.0.1:8089/api/v1")
        #expect(config.openrouter.referer == "https://example.org/app")
        #expect(config.openrouter.title == "My App")
        #expect([config.openrouter.timeouts.connectMs, config.openrouter.timeouts.firstByteMs, config.openrouter.timeouts.idleMs, config.openrouter.timeouts.totalMs] == [500, 1000, 2000, 3000])
        let defaults = try ConfigDecoder.decode(Array("{}".utf8), file: "c.json").openrouter
        #expect(defaults == OpenRouterSettings())
        #expect(defaults.title == "Chimera" && defaults.baseURL == nil)
    }

    @Test func openrouterSection_badValues_areLocated() {
        do {
            _ = try ConfigDecoder.decode(Array("""
            {"openrouter": {"base_url": "ftp://x", "titl": "x", "total_timeout_ms": 0}}
            """.utf8), file: "c.json")
            Issue.record("accepted a bad openrouter section")
        } catch {
            let text = error.description
            #expect(text.contains("$.openrouter.base_url") && text.contains("http:// or https://"))
            #expect(text.contains("did you mean \"title\""))
            #expect(text.contains("$.openrouter.total_timeout_ms"))
        }
    }
}

@Suite struct ProvidersConfigTests {
    @Test func providers_decode_withTheirOwnKeys_namespacedAccounts_andNoOpenRouterDefaults() throws {
        let config = try ConfigDecoder.decode(Array("""
        {"providers": [
          {"name": "local", "base_url": "http://127.0.0.1:11434/v1", "headers": {"X-Team": "research", "X-Trace": "1"},
           "keys": {"strategy": "least_used", "accounts": [{"name": "main", "tier": "custom", "limits": {"per_minute": 30}}],
                    "entries": [{"env": "LOCAL_KEY", "label": "l1", "account": "main"}], "quota_models": ["*"]},
           "total_timeout_ms": 1234},
          {"name": "open_ai-2", "base_url": "https://api.openai.com/v1", "keys": {"entries": [{"env": "OPENAI_API_KEY"}]}},
          {"name": "anon", "base_url": "http://127.0.0.1:8080/v1"}
        ]}
        """.utf8), file: "c.json")
        #expect(config.providers.map(\.name) == ["local", "open_ai-2", "anon"])
        let local = config.providers[0]
        #expect(local.baseURL == "http://127.0.0.1:11434/v1")
        #expect(local.headers.map { "\($0.name)=\($0.value)" } == ["X-Team=research", "X-Trace=1"])
        #expect(local.timeouts.totalMs == 1234 && local.timeouts.connectMs == TimeoutSettings().connectMs)
        let keys = try #require(local.keys)
        #expect(keys.pool.strategy == .leastUsed)
        #expect(keys.accounts.map(\.name) == ["local/main"], "accounts are kept apart from OpenRouter's in the ledger")
        #expect(keys.entries.first?.account == "local/main")
        #expect(!keys.readEnvironment, "OPENROUTER_API_KEY is OpenRouter's, never another provider's")
        #expect(keys.pool.quotaModels.matches("anything"))
        // Without quota_models no model of a provider draws on request quotas.
        let openAI = try #require(config.providers[1].keys)
        #expect(!openAI.pool.quotaModels.matches("gpt-4o-mini:free") && !openAI.readEnvironment)
        #expect(config.providers[2].keys == nil, "no keys: requests carry no Authorization")
    }

    @Test func providers_badEntries_areLocated_allAtOnce() {
        do {
            _ = try ConfigDecoder.decode(Array("""
            {"providers": [
              {"name": "openrouter", "base_url": "http://x/v1"},
              {"name": "Bad Name", "base_url": "http://x/v1"},
              {"name": "nourl"},
              {"name": "ftp", "base_url": "ftp://x"},
              {"name": "auth", "base_url": "http://x/v1", "headers": {"Authorization": "Bearer sk-or-v1-fake", "X-N": 3}},
              {"name": "env", "base_url": "http://x/v1", "keys": {"read_environment": true, "entries": [{"env": "K", "account": "nope"}]}},
              {"name": "dup", "base_url": "http://x/v1"},
              {"name": "dup", "base_url": "http://y/v1"}
            ]}
            """.utf8), file: "c.json")
            Issue.record("accepted bad providers")
        } catch {
            let text = error.description
            #expect(text.contains("$.providers[0].name") && text.contains("built-in provider"), "\(text)")
            #expect(text.contains("$.providers[1].name") && text.contains("lowercase letters"), "\(text)")
            #expect(text.contains("$.providers[2]") && text.contains("missing required field \"base_url\""), "\(text)")
            #expect(text.contains("$.providers[3].base_url") && text.contains("http:// or https://"), "\(text)")
            #expect(text.contains("$.providers[4].headers.Authorization") && text.contains("comes from the provider's keys"), "\(text)")
            #expect(!text.contains("sk-or-v1-fake"), "a key in a refused header is not echoed")
            #expect(text.contains("$.providers[4].headers.X-N") && text.contains("expected a header value"), "\(text)")
            #expect(text.contains("$.providers[5].keys") && text.contains("read_environment"), "\(text)")
            #expect(text.contains("unknown account \"nope\""), "\(text)")
            #expect(text.contains("$.providers[7].name") && text.contains("declared twice"), "\(text)")
        }
    }
}
