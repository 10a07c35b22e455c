import ChimeraCore
import GRDB

/// The statements run inside one ledger transaction. Cached statements: a reservation runs
/// about ten, and preparing them each time would cost more than executing them.
struct LedgerSQL {
    let db: Database

    init(_ db: Database) { self.db = db }

    /// Counted scoped reservations in a rolling minute, oldest first.
    struct Window {
        var times: [EpochMillis] = []
        var tokens: [Int] = []
        var total = 0

        mutating func add(_ time: EpochMillis, tokens count: Int) {
            let index = times.lastIndex { $0 <= time }.map { $0 + 1 } ?? 0
            times.insert(time, at: index)
            tokens.insert(count, at: index)
            total += count
        }
    }

    // MARK: Reserve

    func reserve(_ r: ReservationRequest) throws -> ReservationResult {
        let day = UTCDay.index(of: r.at)
        var accountUsed = try dayCount(.account, r.account, day: day)
        var accountWindow = try window(.account, r.account, at: r.at)
        let spentUntil = try spentUntil(r.account, at: r.at)
        var keyUsed = try dayCount(.key, r.keyId, day: day)
        var keyWindow = try window(.key, r.keyId, at: r.at)

        func usage() -> (AccountUsage, KeyUsage) {
            (AccountUsage(account: r.account, day: day, usedToday: accountUsed, minuteWindow: accountWindow.times,
                          tokensInMinute: accountWindow.total, spentUntil: spentUntil),
             KeyUsage(keyId: r.keyId, usedToday: keyUsed, minuteWindow: keyWindow.times, tokensInMinute: keyWindow.total))
        }
        func refuse(_ reason: RefusalReason) -> ReservationResult {
            let (account, key) = usage()
            return .refused(reason, account: account, key: key)
        }

        if let blocked = try healthRefusal(r.keyId, at: r.at) { return refuse(blocked) }
        if r.scoped {
            if let spentUntil { return refuse(.accountSpent(until: spentUntil)) }
            if let refusal = Self.check(r.accountLimits, used: accountUsed, window: accountWindow, request: r, scope: .account) {
                return refuse(refusal)
            }
            if let refusal = Self.check(r.keyLimits, used: keyUsed, window: keyWindow, request: r, scope: .key) {
                return refuse(refusal)
            }
        }

        try db.cachedStatement(sql: """
            INSERT INTO reservation (key_id, account, model, scoped, priority, state, day, reserved_at, tokens, pid)
            VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?)
            """).execute(arguments: [r.keyId, r.account, r.model, r.scoped, r.priority.rawValue, day, r.at,
                                     max(r.estimatedTokens, 0), r.pid])
        let id = db.lastInsertedRowID
        if r.scoped {
            try bump(.account, r.account, day: day)
            try bump(.key, r.keyId, day: day)
            accountUsed += 1
            keyUsed += 1
            accountWindow.add(r.at, tokens: max(r.estimatedTokens, 0))
            keyWindow.add(r.at, tokens: max(r.estimatedTokens, 0))
        }
        let (account, key) = usage()
        return .reserved(id: id, account: account, key: key)
    }

    /// The first limit of `limits` the request would break, if any.
    static func check(_ limits: QuotaLimits, used: Int, window: Window, request r: ReservationRequest,
                      scope: LimitScope) -> RefusalReason? {
        if let perDay = limits.perDay {
            let resetsAt = UTCDay.nextMidnight(after: r.at)
            if used >= perDay { return .dailyLimit(used: used, limit: perDay, resetsAt: resetsAt, scope: scope) }
            if r.priority < .high {
                // In Double: a huge perDay would trap converting back to Int, and below 2^53
                // (any real limit) the comparison is exact.
                let share = r.reservedShare.isFinite ? min(max(r.reservedShare, 0), 1) : 0
                let kept = (Double(perDay) * share).rounded(.up)
                if kept > 0, Double(used) >= Double(perDay) - kept {
                    return .reservedForHighPriority(used: used, limit: perDay, resetsAt: resetsAt, scope: scope)
                }
            }
        }
        let count = window.times.count
        if let perMinute = limits.perMinute, count >= perMinute {
            // Once the oldest (count - perMinute + 1) entries have left, count < perMinute.
            let index = count - perMinute
            let oldest = index < count ? window.times[max(index, 0)] : (window.times.last ?? r.at)
            return .minuteLimit(count: count, limit: perMinute, freesAt: oldest + UTCDay.millisPerMinute, scope: scope)
        }
        // A request whose estimate alone exceeds the limit could never fit: it passes when the
        // window is empty instead of waiting forever.
        if let perMinute = limits.tokensPerMinute, window.total > 0, window.total + r.estimatedTokens > perMinute {
            var remaining = window.total
            var freesAt = r.at + UTCDay.millisPerMinute
            for (time, tokens) in zip(window.times, window.tokens) {
                remaining -= tokens
                if remaining == 0 || remaining + r.estimatedTokens <= perMinute {
                    freesAt = time + UTCDay.millisPerMinute
                    break
                }
            }
            return .tokenLimit(tokens: window.total, limit: perMinute, freesAt: freesAt, scope: scope)
        }
        return nil
    }

    /// `disabled` blocks whatever its `until`; `cooling`, `suspended` and `no_credits` block
    /// until `until` (for ever without one, as the state has no end of its own then). Other
    /// states pass: the coordinator handles the single `half_open` probe.
    func healthRefusal(_ keyId: String, at: EpochMillis) throws -> RefusalReason? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT state, until FROM key_health WHERE key_id = ?"),
                                         arguments: [keyId]) else { return nil }
        let state: String = row[0]
        let until: EpochMillis? = row[1]
        switch state {
        case "disabled":
            return .keyUnavailable(state: state, until: until)
        case "cooling", "suspended", "no_credits":
            if let until, until <= at { return nil }
            return .keyUnavailable(state: state, until: until)
        default:
            return nil
        }
    }

    // MARK: Settle

    func commit(_ id: Int64, outcome: ReservationOutcome, at: EpochMillis) throws -> Bool {
        try db.cachedStatement(sql: """
            UPDATE reservation SET state = 'committed', settled_at = ?, status = ?, outcome = ?,
                tokens = COALESCE(?, tokens), latency_ms = ?, cost_usd = ?, cost_is_estimate = ?, served_model = ?
            WHERE id = ? AND state = 'reserved'
            """).execute(arguments: [at, outcome.status, outcome.kind, outcome.tokens.map { max($0, 0) },
                                     outcome.latencyMs, outcome.costUSD, outcome.costIsEstimate, outcome.model, id])
        return db.changesCount == 1
    }

    func release(_ id: Int64, at: EpochMillis) throws -> Bool {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT scoped, day, account, key_id FROM reservation WHERE id = ? AND state = 'reserved'
            """), arguments: [id]) else { return false }
        try db.cachedStatement(sql: "UPDATE reservation SET state = 'released', settled_at = ? WHERE id = ?")
            .execute(arguments: [at, id])
        let scoped: Bool = row[0]
        if scoped {
            let day: Int64 = row[1]
            // MAX: an upstream correction may have set the counter below the rows it holds.
            try db.cachedStatement(sql: "UPDATE account_day SET used = MAX(used - 1, 0) WHERE account = ? AND day = ?")
                .execute(arguments: [row[2] as String, day])
            try db.cachedStatement(sql: "UPDATE key_day SET used = MAX(used - 1, 0) WHERE key_id = ? AND day = ?")
                .execute(arguments: [row[3] as String, day])
        }
        return true
    }

    // MARK: Usage

    func accountUsage(_ account: String, at: EpochMillis) throws -> AccountUsage {
        let day = UTCDay.index(of: at)
        let window = try window(.account, account, at: at)
        return AccountUsage(account: account, day: day, usedToday: try dayCount(.account, account, day: day),
                            minuteWindow: window.times, tokensInMinute: window.total,
                            spentUntil: try spentUntil(account, at: at))
    }

    func keyUsage(_ keyId: String, at: EpochMillis) throws -> KeyUsage {
        let window = try window(.key, keyId, at: at)
        return KeyUsage(keyId: keyId, usedToday: try dayCount(.key, keyId, day: UTCDay.index(of: at)),
                        minuteWindow: window.times, tokensInMinute: window.total)
    }

    /// Whose counters: the table and column names differ, the logic does not.
    enum Owner {
        case account, key
    }

    func dayCount(_ owner: Owner, _ name: String, day: Int64) throws -> Int {
        let sql = switch owner {
        case .account: "SELECT used FROM account_day WHERE account = ? AND day = ?"
        case .key: "SELECT used FROM key_day WHERE key_id = ? AND day = ?"
        }
        return try Int.fetchOne(db.cachedStatement(sql: sql), arguments: [name, day]) ?? 0
    }

    func bump(_ owner: Owner, _ name: String, day: Int64) throws {
        let sql = switch owner {
        case .account: "INSERT INTO account_day (account, day, used) VALUES (?, ?, 1) ON CONFLICT (account, day) DO UPDATE SET used = used + 1"
        case .key: "INSERT INTO key_day (key_id, day, used) VALUES (?, ?, 1) ON CONFLICT (key_id, day) DO UPDATE SET used = used + 1"
        }
        try db.cachedStatement(sql: sql).execute(arguments: [name, day])
    }

    /// The WHERE terms repeat the partial indexes' verbatim, which is what lets SQLite use them.
    func window(_ owner: Owner, _ name: String, at: EpochMillis) throws -> Window {
        let sql = switch owner {
        case .account: """
            SELECT reserved_at, tokens FROM reservation
            WHERE account = ? AND reserved_at > ? AND scoped = 1 AND state <> 'released' ORDER BY reserved_at
            """
        case .key: """
            SELECT reserved_at, tokens FROM reservation
            WHERE key_id = ? AND reserved_at > ? AND scoped = 1 AND state <> 'released' ORDER BY reserved_at
            """
        }
        var window = Window()
        let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: [name, at - UTCDay.millisPerMinute])
        while let row = try rows.next() {
            let tokens: Int = row[1]
            window.times.append(row[0])
            window.tokens.append(tokens)
            window.total += tokens
        }
        return window
    }

    /// The stored spent-until, if still in force at `at`.
    func spentUntil(_ account: String, at: EpochMillis) throws -> EpochMillis? {
        let until = try EpochMillis.fetchOne(db.cachedStatement(sql: "SELECT spent_until FROM account_state WHERE account = ?"),
                                             arguments: [account])
        guard let until, until > at else { return nil }
        return until
    }
}
