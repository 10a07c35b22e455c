import ArgumentParser
import ChimeraCore
import ChimeraRuntime
import ChimeraStore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `chimera keys …`: the API key pool, its quotas and its history.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage API keys and read their quota and health.",
        discussion: """
        Keys come from OPENROUTER_API_KEY, OPENROUTER_API_KEY_2 … _N, the config file's keys.entries, and the \
        encrypted store ($CHIMERA_HOME/keys.enc) managed with `keys add` and `keys remove`. A key is only ever \
        shown masked (sk-or-…a1b2). Usage, health, the audit log and events live in $CHIMERA_HOME/ledger.sqlite.
        """,
        subcommands: [KeysList.self, KeysAdd.self, KeysRemove.self, KeysEnable.self, KeysDisable.self,
                      KeysAudit.self, KeysEvents.self, KeysForecast.self, KeysCheck.self, KeysReserve.self],
        defaultSubcommand: KeysList.self
    )
}

/// Loads config and opens the key files, turning every failure into a clear message and exit 2.
struct KeysSession {
    let context: KeyContext
    let config: ChimeraConfig
    let logger: Logger

    init(_ common: CommonOptions) throws {
        logger = try common.bootstrapLogging()
        config = try common.loadConfig().config
        do {
            context = try KeyContext(config: config.keys, home: ConfigLoader.homeDirectory(), environment: ProcessEnvironment.current, logger: logger)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
    }

    /// Exactly one key for a reference, or a clear error.
    func key(_ reference: String) throws -> KeyPoolEntry {
        let found = context.findKey(reference)
        guard found.count == 1 else {
            let known = context.broker.pool.entries.map { "\($0.id) (\($0.label ?? $0.masked))" }.joined(separator: ", ")
            printError(found.isEmpty ? "no key matches \"\(reference)\"; give an id, a label or the last 4+ characters. Keys: \(known.isEmpty ? "none" : known)"
                                     : "\"\(reference)\" matches \(found.count) keys (\(found.map(\.id).joined(separator: ", "))); give an id or a label")
            throw ExitCode(ExitCodes.usage)
        }
        return found[0]
    }

    func audit(_ action: String, key: KeyPoolEntry?, account: String? = nil, reason: String) {
        let now = context.clock.now()
        do {
            try context.ledger.appendAudit(AuditEntry(at: now, keyId: key?.id, account: account ?? key?.account, action: action, reason: reason))
        } catch {
            logger.error("could not write the audit log: \(error)")
        }
    }
}

// MARK: list

struct KeysList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every key: masked key, label, account, state, usage today and this minute, cooldown.")

    @OptionGroup var common: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let session = try KeysSession(common)
        let context = session.context
        let now = context.clock.now()
        let statuses = context.broker.pool.status(at: now)
        let reset = UTCDay.nextMidnight(after: now)
        if json {
            let keys: [JSONValue] = statuses.map { s in
                .object([
                    JSONMember("id", .string(s.entry.id)),
                    JSONMember("label", s.entry.label.map { .string($0) } ?? .null),
                    JSONMember("key", .string(s.entry.masked)),
                    JSONMember("sources", .array((context.resolved.origins[s.entry.id] ?? []).map { .string($0.description) })),
                    JSONMember("account", .string(s.entry.account)),
                    JSONMember("tier", .string(s.tier.rawValue)),
                    JSONMember("state", .string(s.state.name)),
                    JSONMember("state_until", s.state.until.map { .string(UTCDay.timestamp($0)) } ?? .null),
                    JSONMember("used_today", .number(Double(s.accountUsedToday))),
                    JSONMember("limit_per_day", s.accountLimits.perDay.map { .number(Double($0)) } ?? .null),
                    JSONMember("used_this_minute", .number(Double(s.minuteCount))),
                    JSONMember("limit_per_minute", s.accountLimits.perMinute.map { .number(Double($0)) } ?? .null),
                    JSONMember("spent_until", s.spentUntil.map { .string(UTCDay.timestamp($0)) } ?? .null),
                    JSONMember("requests_today", .number(Double(s.requestsToday))),
                ])
            }
            printLine(JSONValue.object([
                JSONMember("home", .string(context.home)),
                JSONMember("daily_reset", .string(UTCDay.timestamp(reset))),
                JSONMember("warnings", .array(context.resolved.warnings.map { .string($0) })),
                JSONMember("keys", .array(keys)),
            ]).serialized)
            return
        }
        guard !statuses.isEmpty else {
            printLine("No API keys. Add one with `chimera keys add --label NAME` (it reads the key from stdin or asks for it),")
            printLine("or set OPENROUTER_API_KEY (and OPENROUTER_API_KEY_2, …) in the environment.")
            return
        }
        var rows = [["ID", "LABEL", "KEY", "ACCOUNT", "TIER", "STATE", "TODAY", "MINUTE", "READY IN"]]
        for s in statuses {
            let today = "\(s.accountUsedToday)/\(s.accountLimits.perDay.map(String.init) ?? "∞")"
            let minute = "\(s.minuteCount)/\(s.accountLimits.perMinute.map(String.init) ?? "∞")"
            var eta = "-"
            if let until = s.state.until { eta = UTCDay.duration(until - now) }
            else if case .disabled = s.state { eta = "never (keys enable)" }
            else if let spent = s.spentUntil { eta = UTCDay.duration(spent - now) }
            else if let d = s.accountLimits.perDay, s.accountUsedToday >= d { eta = UTCDay.duration(reset - now) }
            rows.append([s.entry.id, s.entry.label ?? "-", s.entry.masked, s.entry.account, s.tier.rawValue, s.state.name, today, minute, eta])
        }
        printTable(rows)
        printLine("")
        printLine("Daily quotas reset at 00:00 UTC (in \(UTCDay.duration(reset - now))). Quotas apply to: \(session.config.keys.pool.quotaModels.patterns.joined(separator: ", ")).")
    }
}

// MARK: add / remove

struct KeysAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a key to the encrypted store. The key is read from stdin, or asked for without echo on a terminal; never from the command line.",
        discussion: "Example: `printf %s \"$MY_KEY\" | chimera keys add --label team-a --account team --tier credits`"
    )

    @OptionGroup var common: CommonOptions
    @Option(help: "A name for the key (unique).") var label: String?
    @Option(help: "The account it belongs to (keys of one OpenRouter account share its quota). Default: its own.") var account: String?
    @Option(help: "The account's tier when the config does not declare it: free (50/day) or credits (1000/day).") var tier: String?
    /// Caught so that a key given here is refused without being echoed back by the usage error.
    @Argument(parsing: .allUnrecognized, help: .hidden) var unexpected: [String] = []

    func validate() throws {
        guard unexpected.isEmpty else {
            let looksLikeKey = unexpected.contains { !$0.hasPrefix("--") && ($0.hasPrefix("sk-") || $0.count >= 20) }
            guard looksLikeKey else {
                throw ValidationError("unexpected argument\(unexpected.count == 1 ? "" : "s") \(unexpected.joined(separator: " ")); `keys add` takes --label, --account and --tier, and reads the key from stdin")
            }
            throw ValidationError("`keys add` does not take the key as an argument (it would stay in your shell history and show in the process list); pipe it on stdin or type it at the prompt. If you did pass a key, consider it exposed and rotate it.")
        }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        let config = try common.loadConfig().config
        var tierValue: KeyTier?
        if let tier {
            guard let t = KeyTier(rawValue: tier), t != .custom else {
                printError("--tier must be free or credits (custom limits belong in the config's keys.accounts)")
                throw ExitCode(ExitCodes.usage)
            }
            tierValue = t
        }
        let secret = try readSecret()
        let home = ConfigLoader.homeDirectory()
        let env = ProcessEnvironment.current
        let clock = SystemWallClock()
        do {
            let store = try KeyContext.openStoreForUpdate(home: home, environment: env)
            let id = KeyFingerprint.of(secret)
            let duplicate = try store.update { (keys: inout [StoredKey]) throws(KeyStoreError) -> String? in
                if let existing = keys.first(where: { $0.id == id }) { return existing.label ?? existing.id }
                if let label, keys.contains(where: { $0.label == label }) { return "another key has the label \(label)" }
                keys.append(StoredKey(secret: secret, label: label, account: account, tier: tierValue, addedAt: clock.now()))
                return nil
            }
            if let duplicate {
                printError("not added: that key or label is already in the store (\(duplicate)); nothing changed")
                throw ExitCode(ExitCodes.usage)
            }
            // Other sources holding the same key are fine (it is one key) but worth saying.
            let resolved = KeySources.resolve(config: config.keys, environment: env, stored: [])
            if let origins = resolved.origins[id] {
                printLine("note: \(secret.masked) is also in \(origins.map(\.description).joined(separator: ", ")); it counts as one key")
            }
            let ledger = try QuotaLedger(path: KeyContext.ledgerPath(home: home))
            try ledger.appendAudit(AuditEntry(at: clock.now(), keyId: id, account: account, action: "add", reason: "added to the key store" + (label.map { " as \($0)" } ?? "")))
            printLine("added \(secret.masked) as \(id)\(label.map { " (\($0))" } ?? "") to \(KeyContext.storePath(home: home))")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            logger.debug("keys add failed: \(error)")
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
    }

    /// The key from a no-echo prompt on a terminal, else the first non-empty line of stdin.
    func readSecret() throws -> APIKeySecret {
        var text: String
        if isatty(0) != 0 {
            FileIO.writeAll(Array("API key (input hidden): ".utf8), fd: 2)
            var saved = termios()
            tcgetattr(0, &saved)
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &silent)
            defer { tcsetattr(0, TCSAFLUSH, &saved); FileIO.writeAll(Array("\n".utf8), fd: 2) }
            var line: [UInt8] = []
            var byte: UInt8 = 0
            while read(0, &byte, 1) == 1, byte != 0x0A { line.append(byte) }
            text = String(decoding: line, as: UTF8.self)
        } else {
            let bytes = (try? FileIO.readAll(fd: 0)) ?? []
            text = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).first { !$0.allSatisfy(\.isWhitespace) }.map(String.init) ?? ""
        }
        let secret = APIKeySecret(text)
        guard !secret.isEmpty else {
            printError("no key given: pipe it on stdin (printf %s \"$KEY\" | chimera keys add) or type it at the prompt")
            throw ExitCode(ExitCodes.usage)
        }
        guard !secret.reveal().contains(where: { $0 == " " || $0 == "\t" }) else {
            printError("the key contains spaces; give one key, on one line")
            throw ExitCode(ExitCodes.usage)
        }
        if !secret.reveal().hasPrefix("sk-") {
            printLine("note: \(secret.masked) does not start with sk- (OpenRouter keys start with sk-or-); added anyway")
        }
        return secret
    }
}

struct KeysRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a key from the encrypted store (by id, label or last characters).")

    @OptionGroup var common: CommonOptions
    @Argument(help: "The key's id (k_…), label, or its last 4+ characters.") var key: String

    func run() throws {
        let session = try KeysSession(common)
        let entry = try session.key(key)
        let origins = session.context.resolved.origins[entry.id] ?? []
        guard origins.contains(where: { if case .store = $0 { true } else { false } }) else {
            printError("\(entry.masked) is not in the key store; it comes from \(origins.map(\.description).joined(separator: ", ")). Remove it there.")
            throw ExitCode(ExitCodes.usage)
        }
        do {
            let store = try KeyContext.openStoreForUpdate(home: session.context.home, environment: ProcessEnvironment.current)
            try store.update { (keys: inout [StoredKey]) throws(KeyStoreError) in keys.removeAll { $0.id == entry.id } }
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        session.audit("remove", key: entry, reason: "removed from the key store")
        let others = origins.filter { if case .store = $0 { false } else { true } }
        printLine("removed \(entry.masked) (\(entry.id)) from the key store" + (others.isEmpty ? "" : "; it is still in \(others.map(\.description).joined(separator: ", "))"))
    }
}

// MARK: enable / disable

struct KeysEnable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Make a key usable again (after a 401/403, a manual disable, a suspension or a cooldown).")

    @OptionGroup var common: CommonOptions
    @Argument(help: "The key's id, label, or last 4+ characters.") var key: String
    @Option(help: "Why, for the audit log.") var reason = "operator enabled the key"

    func run() throws {
        let session = try KeysSession(common)
        let entry = try session.key(key)
        let before = session.context.broker.pool.status(at: session.context.clock.now()).first { $0.entry.id == entry.id }?.state.name ?? "?"
        do { try session.context.broker.enable(keyId: entry.id, reason: "operator: \(reason)") } catch {
            printError("\(error)"); throw ExitCode(ExitCodes.usage)
        }
        printLine(before == "active" ? "\(entry.masked) (\(entry.id)) is already active" : "\(entry.masked) (\(entry.id)): \(before) → active")
    }
}

struct KeysDisable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Stop using a key until `keys enable`.")

    @OptionGroup var common: CommonOptions
    @Argument(help: "The key's id, label, or last 4+ characters.") var key: String
    @Option(help: "Why, for the audit log.") var reason = "operator disabled the key"

    func run() throws {
        let session = try KeysSession(common)
        let entry = try session.key(key)
        do { try session.context.broker.disable(keyId: entry.id, reason: "operator: \(reason)") } catch {
            printError("\(error)"); throw ExitCode(ExitCodes.usage)
        }
        printLine("\(entry.masked) (\(entry.id)) disabled; `chimera keys enable \(entry.label ?? entry.id)` undoes it")
    }
}

// MARK: audit / events

/// `7d`, `24h`, `30m`, `45s` → milliseconds.
func parseDuration(_ text: String) throws -> EpochMillis {
    let units: [Character: EpochMillis] = ["d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000]
    guard let unit = text.last, let scale = units[unit], let n = Int64(text.dropLast()), n >= 0 else {
        throw ValidationError("expected a duration like 7d, 24h, 30m or 45s, found \"\(text)\"")
    }
    return n * scale
}

struct KeysAudit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Every key operation and state change, with time and reason.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Only this key (id, label or last characters).") var key: String?
    @Option(help: "Only entries this recent, e.g. 24h or 7d.") var since: String?
    @Option(help: "At most this many (the newest).") var limit = 100
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        let session = try KeysSession(common)
        let keyId = try key.map { try session.key($0).id }
        let from = try since.map { session.context.clock.now() - (try parseDuration($0)) }
        let entries: [AuditEntry]
        do { entries = try session.context.ledger.audit(since: from, keyId: keyId, limit: limit) } catch {
            printError("\(error)"); throw ExitCode(ExitCodes.usage)
        }
        let masked = Dictionary(uniqueKeysWithValues: session.context.broker.pool.entries.map { ($0.id, $0.masked) })
        for e in entries {
            if json {
                printLine(JSONValue.object([
                    JSONMember("at", .string(UTCDay.timestamp(e.at))), JSONMember("key", e.keyId.map { .string($0) } ?? .null),
                    JSONMember("account", e.account.map { .string($0) } ?? .null), JSONMember("action", .string(e.action)),
                    JSONMember("from", e.from.map { .string($0) } ?? .null), JSONMember("to", e.to.map { .string($0) } ?? .null),
                    JSONMember("reason", .string(e.reason)),
                ]).serialized)
            } else {
                let who = e.keyId.map { "\($0) \(masked[$0] ?? "")" } ?? (e.account.map { "account \($0)" } ?? "-")
                let change = e.from.map { " \($0) → \(e.to ?? "?")" } ?? ""
                printLine("\(UTCDay.timestamp(e.at))  \(who)  \(e.action)\(change): \(e.reason)")
            }
        }
        if entries.isEmpty && !json { printLine("no audit entries" + (since.map { " in the last \($0)" } ?? "")) }
    }
}

struct KeysEvents: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Alerts: quota low, account exhausted, daily reset, key disabled/suspended/re-enabled, error rate high.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Only events this recent, e.g. 24h or 7d.") var since: String?
    @Option(help: "At most this many (the newest).") var limit = 100
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        let session = try KeysSession(common)
        let from = try since.map { session.context.clock.now() - (try parseDuration($0)) }
        let events: [KeyEvent]
        do { events = try session.context.ledger.events(since: from, limit: limit) } catch {
            printError("\(error)"); throw ExitCode(ExitCodes.usage)
        }
        for e in events {
            if json {
                printLine(JSONValue.object([
                    JSONMember("at", .string(UTCDay.timestamp(e.at))), JSONMember("kind", .string(e.kind)),
                    JSONMember("key", e.keyId.map { .string($0) } ?? .null), JSONMember("account", e.account.map { .string($0) } ?? .null),
                    JSONMember("message", .string(e.message)),
                ]).serialized)
            } else {
                printLine("\(UTCDay.timestamp(e.at))  \(e.kind)  \(e.message)")
            }
        }
        if events.isEmpty && !json { printLine("no events" + (since.map { " in the last \($0)" } ?? "")) }
    }
}

// MARK: forecast

struct KeysForecast: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "When each account runs out today at the observed rate, and how many accounts the observed demand needs.",
        discussion: "The rate is today's requests over the hours elapsed today (at least one); the demand is the busiest of the last 7 UTC days, today's projection included."
    )

    @OptionGroup var common: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let session = try KeysSession(common)
        let context = session.context
        let now = context.clock.now()
        let today = UTCDay.index(of: now)
        let reset = UTCDay.nextMidnight(after: now)
        let totals: [DailyTotal]
        do { totals = try context.ledger.dailyTotals(fromDay: today - 6) } catch {
            printError("\(error)"); throw ExitCode(ExitCodes.usage)
        }
        let statuses = context.broker.pool.status(at: now)
        let elapsedHours = max(1.0, Double(now - UTCDay.start(ofDay: today)) / 3_600_000)
        var rows = [["ACCOUNT", "USED", "LIMIT", "RATE/H", "RUNS OUT", "PROJECTED TODAY"]]
        var jsonAccounts: [JSONValue] = []
        var projectedToday = 0.0
        var seen: Set<String> = []
        var limits: [Int] = []
        for s in statuses where seen.insert(s.entry.account).inserted {
            let used = s.accountUsedToday
            let rate = Double(used) / elapsedHours
            let projected = Double(used) + rate * Double(reset - now) / 3_600_000
            projectedToday += projected
            var runsOut = "not today"
            var runsOutAt: EpochMillis?
            if let limit = s.accountLimits.perDay {
                limits.append(limit)
                if used >= limit { runsOut = "spent"; runsOutAt = now }
                else if rate > 0 {
                    let at = now + EpochMillis(Double(limit - used) / rate * 3_600_000)
                    if at < reset { runsOutAt = at; runsOut = "\(UTCDay.timestamp(at)) (in \(UTCDay.duration(at - now)))" }
                }
            }
            rows.append([s.entry.account, "\(used)", s.accountLimits.perDay.map(String.init) ?? "∞", String(format1(rate)), runsOut, "\(Int(projected.rounded()))"])
            jsonAccounts.append(.object([
                JSONMember("account", .string(s.entry.account)), JSONMember("used_today", .number(Double(used))),
                JSONMember("limit_per_day", s.accountLimits.perDay.map { .number(Double($0)) } ?? .null),
                JSONMember("rate_per_hour", .number(rate)), JSONMember("runs_out_at", runsOutAt.map { .string(UTCDay.timestamp($0)) } ?? .null),
                JSONMember("projected_today", .number(projected.rounded())),
            ]))
        }
        var perDay: [Int64: Int] = [:]
        for t in totals where t.day < today { perDay[t.day, default: 0] += t.count }
        let peak = max(projectedToday, Double(perDay.values.max() ?? 0))
        let typicalLimit = limits.isEmpty ? nil : limits.sorted()[limits.count / 2]
        let needed = typicalLimit.map { $0 > 0 ? Int((peak / Double($0)).rounded(.up)) : 0 }
        if json {
            printLine(JSONValue.object([
                JSONMember("at", .string(UTCDay.timestamp(now))), JSONMember("accounts", .array(jsonAccounts)),
                JSONMember("demand_per_day", .number(peak.rounded())),
                JSONMember("accounts_needed", needed.map { .number(Double($0)) } ?? .null),
                JSONMember("accounts_configured", .number(Double(seen.count))),
            ]).serialized)
            return
        }
        guard rows.count > 1 else { printLine("no keys configured; nothing to forecast"); return }
        printTable(rows)
        printLine("")
        printLine("Observed demand: \(Int(peak.rounded())) requests/day (busiest of the last 7 days, today projected).")
        if let needed, let typicalLimit {
            printLine("At \(typicalLimit)/day per account that needs \(needed) account\(needed == 1 ? "" : "s"); \(seen.count) configured.")
        }
    }

    private func format1(_ x: Double) -> String {
        let tenths = Int((x * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

// MARK: reserve (hidden; scripting and tests)

/// Leases keys without calling upstream and settles each lease with a chosen outcome. This is how
/// tests drive several real processes against one ledger; it also lets a script rehearse quotas.
struct KeysReserve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reserve",
        abstract: "Reserve quota for N requests without sending them (testing and capacity rehearsal).",
        shouldDisplay: false
    )

    @OptionGroup var common: CommonOptions
    @Option(help: "Model id; quota applies when it matches keys.quota_models.") var model = "meta-llama/llama-3.3-70b-instruct:free"
    @Option(help: "How many requests.") var count = 1
    @Option(help: "Priority: low, normal, high, critical.") var priority = "normal"
    @Option(help: "How each lease ends: ok (sent, success), fail (sent, 500), release (never sent), none (left reserved, as if the process died).") var outcome = "ok"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let session = try KeysSession(common)
        let levels = ["low": TaskPriority.low, "normal": .normal, "high": .high, "critical": TaskPriority(rawValue: 3)]
        guard let p = levels[priority] else { throw ValidationError("--priority must be low, normal, high or critical") }
        guard ["ok", "fail", "release", "none"].contains(outcome) else { throw ValidationError("--outcome must be ok, fail, release or none") }
        let broker = session.context.broker
        var granted = 0
        var refused: [String] = []
        var perKey: [String: Int] = [:]
        for _ in 0..<count {
            switch broker.acquireNow(KeyRequest(model: model, priority: p)) {
            case .success(let lease):
                granted += 1
                perKey[lease.keyId, default: 0] += 1
                switch outcome {
                case "ok": broker.complete(lease, .success(latencyMs: 1))
                case "fail": broker.complete(lease, KeyCallReport(status: 500, outcome: .failure("HTTP 500 (rehearsal)")))
                case "release": broker.release(lease)
                default: break
                }
            case .failure(let failure):
                refused.append(failure.description)
            }
        }
        if json {
            printLine(JSONValue.object([
                JSONMember("granted", .number(Double(granted))), JSONMember("refused", .number(Double(refused.count))),
                JSONMember("per_key", .object(perKey.sorted { $0.key < $1.key }.map { JSONMember($0.key, .number(Double($0.value))) })),
                JSONMember("last_refusal", refused.last.map { .string($0) } ?? .null),
            ]).serialized)
        } else {
            printLine("granted \(granted), refused \(refused.count)" + (refused.last.map { "; \($0)" } ?? ""))
        }
        if !refused.isEmpty { throw ExitCode(ExitCodes.taskFailed) }
    }
}

/// Left-aligned columns separated by two spaces.
func printTable(_ rows: [[String]]) {
    for line in tableLines(rows) { printLine(line) }
}

/// The lines of ``printTable(_:)``: left-aligned columns separated by two spaces, the last
/// column unpadded.
func tableLines(_ rows: [[String]]) -> [String] {
    guard let first = rows.first else { return [] }
    var widths = Array(repeating: 0, count: first.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }.joined(separator: "  ")
    }
}
