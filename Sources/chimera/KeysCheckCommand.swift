import ArgumentParser
import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
import Dispatch

/// `chimera keys check`: asks OpenRouter about each key (`GET /key`) and brings the ledger in line
/// with what it says.
///
/// The HTTP calls run on Swift's concurrency runtime in a `Task` while this thread waits on a
/// semaphore (the root command stays synchronous, see `SimOpenRouterCommand.run`); the ledger and
/// the broker are only touched from this thread, before and after.
struct KeysCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Ask OpenRouter (GET /key) whether each key works, and correct today's counts from its free-model counter.",
        discussion: """
        For every key (or --key): valid or not, a tier guess (is_free_tier: free, else credits), the key's spending \
        limit, and the account's free_model_daily_requests (used/limit/remaining). The upstream count of each \
        account replaces the ledger's (keys of one account report the same counter; the largest is taken). A key \
        that gets HTTP 401 is disabled, with the reason in the audit log, until `chimera keys enable`. \
        At most 8 keys are checked at a time.
        Exit status: 0 every key is valid, 1 a key is invalid or could not be checked, 2 usage or configuration error.
        """
    )

    @OptionGroup var common: CommonOptions
    @Option(help: "Only this key (id, label, or last 4+ characters).") var key: String?
    @Option(help: "API base URL (default: $OPENROUTER_BASE_URL, else https://openrouter.ai/api/v1).") var baseURL: String?
    @Option(help: "Give up on a key after this many milliseconds.") var timeoutMs: Int64 = 20_000
    @Flag(help: "Print JSON.") var json = false

    /// Keys checked at once.
    static let concurrency = 8

    /// One key to check: what the async part may see (its id and text, nothing of the ledger).
    struct Target: Sendable {
        var id: String
        var secret: APIKeySecret
    }

    /// What became of one key.
    struct Outcome {
        var status: KeyStatus
        var result: Result<KeyInfo, ExternalError>
        /// Set when this check disabled the key.
        var disabledNow = false
        var isValid: Bool { if case .success = result { true } else { false } }
        var isInvalid: Bool { if case .failure(let e) = result { e.kind == .auth } else { false } }
    }

    /// One account's daily count, before and after the correction.
    struct Correction {
        var account: String
        var upstream: Int
        var before: Int
        var after: Int
        /// Different counts from keys of the one account (they may belong to different OpenRouter accounts).
        var disagreeing: [Int]
    }

    func validate() throws {
        guard timeoutMs >= 1 else { throw ValidationError("--timeout-ms must be at least 1") }
    }

    func run() throws {
        let session = try KeysSession(common)
        let context = session.context
        let endpoint = try resolveEndpoint(session.config.openrouter)
        let entries = try key.map { [try session.key($0)] } ?? context.broker.pool.entries
        guard !entries.isEmpty else {
            printError("no API keys to check: set OPENROUTER_API_KEY (or _2, _3 …), or add one with `chimera keys add`")
            throw ExitCode(ExitCodes.usage)
        }
        let now = context.clock.now()
        let statuses = Dictionary(uniqueKeysWithValues: context.broker.pool.status(at: now).map { ($0.entry.id, $0) })
        var targets: [Target] = []
        for entry in entries {
            guard let secret = context.resolved.secrets[entry.id] else {
                printError("the text of \(entry.masked) (\(entry.id)) is not available")
                throw ExitCode(ExitCodes.usage)
            }
            targets.append(Target(id: entry.id, secret: secret))
        }

        let results = Self.checkAll(targets, endpoint: endpoint, timeouts: Self.timeouts(totalMs: timeoutMs))

        var outcomes: [Outcome] = []
        var failedToRecord = false
        for (i, entry) in entries.enumerated() {
            guard let status = statuses[entry.id] else { continue }
            var outcome = Outcome(status: status, result: results[i].mapError { Self.scrubbed($0, secret: targets[i].secret) })
            // Disabled already (by an earlier check, a 401 in a call, or an operator): left as it is,
            // so that repeated checks do not repeat the audit entry.
            if case .failure(let error) = outcome.result, error.kind == .auth, status.state.name != "disabled" {
                let reason = "keys check: HTTP \(error.status ?? 401) \(error.message)"
                do {
                    try context.broker.disable(keyId: entry.id, reason: reason)
                    outcome.disabledNow = true
                } catch {
                    printError("could not disable \(entry.masked) (\(entry.id)): \(error)")
                    failedToRecord = true
                }
            }
            outcomes.append(outcome)
        }

        var corrections: [Correction] = []
        var upstream: [(account: String, counts: [Int])] = []
        for outcome in outcomes {
            guard case .success(let info) = outcome.result, let used = info.freeDailyUsed else { continue }
            let account = outcome.status.entry.account
            if let i = upstream.firstIndex(where: { $0.account == account }) { upstream[i].counts.append(used) } else { upstream.append((account, [used])) }
        }
        for (account, counts) in upstream {
            let used = counts.max()!
            do {
                let before = try context.ledger.accountUsage(account, at: context.clock.now()).usedToday
                try context.broker.correctDailyUsage(account: account, used: used)
                let after = try context.ledger.accountUsage(account, at: context.clock.now()).usedToday
                let distinct = counts.reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
                corrections.append(Correction(account: account, upstream: used, before: before, after: after, disagreeing: distinct.count > 1 ? distinct.sorted() : []))
            } catch {
                printError("could not correct the ledger for account \(account): \(error)")
                failedToRecord = true
            }
        }

        if json {
            printLine(renderJSON(outcomes, corrections, endpoint: endpoint))
        } else {
            renderText(outcomes, corrections)
        }
        if failedToRecord || outcomes.contains(where: { !$0.isValid }) { throw ExitCode(ExitCodes.taskFailed) }
    }

    // MARK: Calls

    /// `--base-url`, else `$OPENROUTER_BASE_URL`, else the config's `openrouter.base_url`, else OpenRouter.
    func resolveEndpoint(_ settings: OpenRouterSettings) throws -> ProviderEndpoint {
        let endpoint = ProviderEndpoint.openRouter(flag: baseURL, settings: settings, environment: ProcessEnvironment.current)
        let url = endpoint.baseURL.lowercased()
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            printError("the base URL must start with http:// or https://, got \"\(endpoint.baseURL)\"")
            throw ExitCode(ExitCodes.usage)
        }
        return endpoint
    }

    /// The whole check of one key within `totalMs`; connecting gets half of it (at most 10 s), so
    /// that a refused or unroutable connection reports as such rather than as a slow answer.
    static func timeouts(totalMs: Int64) -> CallTimeouts {
        var timeouts = CallTimeouts()
        timeouts.connectMs = min(10_000, max(1, totalMs / 2))
        timeouts.firstByteMs = totalMs
        timeouts.idleMs = totalMs
        timeouts.totalMs = totalMs
        return timeouts
    }

    /// `GET /key` for every target, at most ``concurrency`` at a time; results in target order.
    static func checkAll(_ targets: [Target], endpoint: ProviderEndpoint, timeouts: CallTimeouts) -> [Result<KeyInfo, ExternalError>] {
        // Never throws: every failure is a result.
        (try? runBlocking {
            let client = OpenRouterClient(endpoint: endpoint, timeouts: timeouts, maxConnectionsPerHost: concurrency)
            let results = await checkAll(targets, client: client)
            await client.shutdown()
            return results
        }) ?? []
    }

    static func checkAll(_ targets: [Target], client: OpenRouterClient) async -> [Result<KeyInfo, ExternalError>] {
        await withTaskGroup(of: (Int, Result<KeyInfo, ExternalError>).self) { group in
            var results = [Result<KeyInfo, ExternalError>](repeating: .failure(ExternalError(kind: .cancelled, message: "not checked")), count: targets.count)
            var next = 0
            while next < min(concurrency, targets.count) {
                let i = next
                group.addTask { (i, await client.keyInfo(key: targets[i].secret)) }
                next += 1
            }
            while let (i, result) = await group.next() {
                results[i] = result
                if next < targets.count {
                    let j = next
                    group.addTask { (j, await client.keyInfo(key: targets[j].secret)) }
                    next += 1
                }
            }
            return results
        }
    }

    /// The error with any copy of the key's text in its message masked (upstream messages are not ours).
    static func scrubbed(_ error: ExternalError, secret: APIKeySecret) -> ExternalError {
        let text = secret.reveal()
        guard !text.isEmpty, error.message.contains(text) else { return error }
        var clean = error
        clean.message = error.message.replacing(text, with: secret.masked)
        return clean
    }

    // MARK: Output

    static func tier(_ info: KeyInfo) -> String? {
        info.isFreeTier.map { $0 ? "free" : "credits" }
    }

    /// `valid`, `invalid (HTTP 401: User not found.)`, `error (timeout: …)`.
    static func verdict(_ outcome: Outcome) -> String {
        switch outcome.result {
        case .success: return "valid"
        case .failure(let e) where e.kind == .auth: return "invalid"
        case .failure(let e): return "error (\(e.kind.rawValue))"
        }
    }

    static func usd(_ x: Double) -> String {
        let cents = Int((abs(x) * 100).rounded())
        let fraction = cents % 100
        return (x < 0 && cents > 0 ? "-$" : "$") + "\(cents / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }

    static func spending(_ info: KeyInfo) -> String {
        guard let limit = info.limit else { return "no limit" }
        return info.limitRemaining.map { "\(usd($0)) of \(usd(limit)) left" } ?? "limit \(usd(limit))"
    }

    static func freeToday(_ info: KeyInfo) -> String {
        guard info.freeDailyUsed != nil || info.freeDailyLimit != nil else { return "-" }
        let used = info.freeDailyUsed.map(String.init) ?? "?"
        let limit = info.freeDailyLimit.map(String.init) ?? "?"
        let remaining = info.freeDailyRemaining ?? info.freeDailyLimit.flatMap { l in info.freeDailyUsed.map { max(0, l - $0) } }
        return "\(used)/\(limit)" + (remaining.map { ", \($0) left" } ?? "")
    }

    private func renderText(_ outcomes: [Outcome], _ corrections: [Correction]) {
        var rows = [["KEY", "LABEL", "ACCOUNT", "STATUS", "TIER", "SPENDING", "FREE TODAY"]]
        for o in outcomes {
            let entry = o.status.entry
            var row = [entry.masked, entry.label ?? "-", entry.account, Self.verdict(o)]
            if case .success(let info) = o.result {
                row += [Self.tier(info) ?? "?", Self.spending(info), Self.freeToday(info)]
            } else {
                row += ["-", "-", "-"]
            }
            rows.append(row)
        }
        printTable(rows)
        var notes: [String] = []
        for o in outcomes {
            let entry = o.status.entry
            let name = entry.label ?? entry.id
            switch o.result {
            case .failure(let e) where e.kind == .auth:
                let what = "\(entry.masked) (\(name)): HTTP \(e.status ?? 401) \(e.message)"
                notes.append(o.disabledNow ? "\(what); disabled (`chimera keys enable \(name)` once it is fixed)" : "\(what); it stays disabled")
            case .failure(let e):
                notes.append("\(entry.masked) (\(name)): could not check: \(e)")
            case .success(let info):
                if o.status.state.name != "active" {
                    notes.append("\(entry.masked) (\(name)) is valid upstream but \(o.status.state.name) here" +
                                 (o.status.state.name == "disabled" ? "; `chimera keys enable \(name)` to use it again" : ""))
                }
                if let upstream = info.freeDailyLimit, let configured = o.status.accountLimits.perDay, upstream != configured {
                    notes.append("account \(entry.account): OpenRouter allows \(upstream) free-model requests a day, the config \(configured)")
                }
            }
        }
        for c in corrections {
            if c.before != c.after {
                notes.append("ledger corrected: \(c.account) \(c.before) → \(c.after)")
            } else {
                notes.append("ledger matches upstream: \(c.account) \(c.after)")
            }
            if !c.disagreeing.isEmpty {
                notes.append("keys of account \(c.account) report different counts (\(c.disagreeing.map(String.init).joined(separator: ", "))): are they of one OpenRouter account? The largest was taken")
            }
        }
        if !notes.isEmpty {
            printLine("")
            var printed: Set<String> = []
            for note in notes where printed.insert(note).inserted { printLine(note) }
        }
        let valid = outcomes.filter(\.isValid).count
        let invalid = outcomes.filter(\.isInvalid).count
        let unreachable = outcomes.count - valid - invalid
        printLine("")
        printLine("\(valid) of \(outcomes.count) key\(outcomes.count == 1 ? "" : "s") valid" +
                  (invalid > 0 ? ", \(invalid) invalid" : "") + (unreachable > 0 ? ", \(unreachable) not checked (errors)" : ""))
    }

    private func renderJSON(_ outcomes: [Outcome], _ corrections: [Correction], endpoint: ProviderEndpoint) -> String {
        func number(_ x: Double?) -> JSONValue { x.map { .number($0) } ?? .null }
        func integer(_ x: Int?) -> JSONValue { x.map { .number(Double($0)) } ?? .null }
        let keys: [JSONValue] = outcomes.map { o in
            let entry = o.status.entry
            var members = [
                JSONMember("id", .string(entry.id)),
                JSONMember("label", entry.label.map { .string($0) } ?? .null),
                JSONMember("key", .string(entry.masked)),
                JSONMember("account", .string(entry.account)),
                JSONMember("valid", .bool(o.isValid)),
                JSONMember("status", .string(o.isValid ? "valid" : o.isInvalid ? "invalid" : "error")),
            ]
            switch o.result {
            case .success(let info):
                var daily: JSONValue = .null
                if info.freeDailyUsed != nil || info.freeDailyLimit != nil || info.freeDailyRemaining != nil {
                    daily = .object([JSONMember("used", integer(info.freeDailyUsed)), JSONMember("limit", integer(info.freeDailyLimit)),
                                     JSONMember("remaining", integer(info.freeDailyRemaining))])
                }
                members += [
                    JSONMember("error", .null),
                    JSONMember("tier", Self.tier(info).map { .string($0) } ?? .null),
                    JSONMember("is_free_tier", info.isFreeTier.map { .bool($0) } ?? .null),
                    JSONMember("limit", number(info.limit)),
                    JSONMember("limit_remaining", number(info.limitRemaining)),
                    JSONMember("usage", number(info.usage)),
                    JSONMember("free_model_daily_requests", daily),
                ]
            case .failure(let e):
                members += [
                    JSONMember("error", .object([JSONMember("kind", .string(e.kind.rawValue)), JSONMember("status", integer(e.status)),
                                                 JSONMember("message", .string(e.message))])),
                    JSONMember("tier", .null), JSONMember("is_free_tier", .null), JSONMember("limit", .null),
                    JSONMember("limit_remaining", .null), JSONMember("usage", .null), JSONMember("free_model_daily_requests", .null),
                ]
            }
            members += [
                JSONMember("state", .string(o.disabledNow ? "disabled" : o.status.state.name)),
                JSONMember("disabled_now", .bool(o.disabledNow)),
            ]
            return .object(members)
        }
        let ledger: [JSONValue] = corrections.map { c in
            .object([
                JSONMember("account", .string(c.account)), JSONMember("upstream_used", .number(Double(c.upstream))),
                JSONMember("before", .number(Double(c.before))), JSONMember("after", .number(Double(c.after))),
                JSONMember("corrected", .bool(c.before != c.after)),
                JSONMember("disagreeing_counts", .array(c.disagreeing.map { .number(Double($0)) })),
            ])
        }
        let valid = outcomes.filter(\.isValid).count
        let invalid = outcomes.filter(\.isInvalid).count
        return JSONValue.object([
            JSONMember("base_url", .string(endpoint.baseURL)),
            JSONMember("keys", .array(keys)),
            JSONMember("ledger", .array(ledger)),
            JSONMember("valid", .number(Double(valid))),
            JSONMember("invalid", .number(Double(invalid))),
            JSONMember("errors", .number(Double(outcomes.count - valid - invalid))),
        ]).serialized
    }
}
