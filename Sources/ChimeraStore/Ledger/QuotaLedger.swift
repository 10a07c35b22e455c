import ChimeraCore
import Foundation
import GRDB

/// The persistent, cross-process authority for request quotas, key health, the audit log and
/// alert events: one SQLite file under `CHIMERA_HOME`.
///
/// The coordinator keeps a cached copy of the counters for fast key selection, but every
/// reservation is decided here, inside one write transaction (`BEGIN IMMEDIATE`, GRDB's default
/// for writes): it reads the counters, checks every limit and records the reservation before any
/// other connection may write. So several processes sharing the file can never overdraw an
/// account between them (OpenRouter's free limits are per account, shared/openrouter-api.md §5).
///
/// Reservation lifecycle:
/// ```
/// reserve ─▶ reserved ─commit─▶ committed   (sent: stays counted, outcome recorded)
///               └─────release─▶ released    (never sent: refunded from its own day's counters)
/// ```
/// A process that dies between reserve and commit leaves its rows `reserved`, counted forever:
/// OpenRouter counts failed attempts too, so assuming the request went out is the safe side.
///
/// Every method runs synchronously on the calling thread (GRDB serialises one connection's
/// uses), except ``commitLater(_:outcome:at:)`` and ``recordLater(_:outcome:at:)``, which write
/// in batches off the caller's thread (`DeferredOutcomes`); share one instance per process.
public final class QuotaLedger: Sendable {
    /// The ledger's file name inside `CHIMERA_HOME`.
    public static let fileName = "ledger.sqlite"
    /// How long a write waits for another process's transaction before failing with `.busy`.
    /// Transactions last well under a millisecond, so only a hung process reaches it.
    public static let busyTimeoutSeconds: Double = 10

    /// The file; nil for an in-memory ledger.
    public let path: String?
    let dbQueue: DatabaseQueue
    /// Outcomes recorded after the fact, written in batches.
    let deferred: DeferredOutcomes

    /// Opens (creating if needed, parent directories 0700, file mode 0600) the ledger at `path`:
    /// WAL journal, `synchronous=NORMAL`, busy timeout ``busyTimeoutSeconds``, foreign keys on,
    /// migrations applied by name.
    ///
    /// `synchronous=NORMAL` in WAL mode can lose the last transactions on power loss (never on a
    /// process crash) but never corrupts the file; the counts are re-anchored from upstream by
    /// ``correctDailyUsage(_:used:at:)``, so that is a fair price for saving an fsync per reservation.
    public init(path: String) throws(LedgerError) {
        self.path = path
        try Self.prepareFile(at: path)
        dbQueue = try Self.openQueue(path: path)
        deferred = Self.deferredOutcomes(dbQueue, path: path)
        LedgerRegistry.add(self)
    }

    private init(inMemory queue: DatabaseQueue) {
        path = nil
        dbQueue = queue
        deferred = Self.deferredOutcomes(queue, path: nil)
        LedgerRegistry.add(self)
    }

    deinit {
        deferred.flushReportingFailure()
    }

    private static func deferredOutcomes(_ dbQueue: DatabaseQueue, path: String?) -> DeferredOutcomes {
        DeferredOutcomes { items throws(LedgerError) in
            do {
                try dbQueue.write { db in
                    let sql = LedgerSQL(db)
                    for item in items {
                        switch item {
                        case .commit(let id, let outcome, let at): _ = try sql.commit(id, outcome: outcome, at: at)
                        case .record(let request, let outcome, let at): _ = try Self.insertRecord(db, request, outcome: outcome, at: at)
                        }
                    }
                }
            } catch {
                throw LedgerError(error, path: path, operation: "record outcomes")
            }
        }
    }

    /// A private in-memory ledger, for tests and benchmarks.
    public static func inMemory() throws(LedgerError) -> QuotaLedger {
        do {
            let queue = try DatabaseQueue(configuration: configuration())
            try LedgerSchema.migrator.migrate(queue)
            return QuotaLedger(inMemory: queue)
        } catch {
            throw LedgerError(error, path: nil, operation: "open")
        }
    }

    // MARK: Reservations

    /// Atomically checks every limit and, if all pass, records a reservation.
    ///
    /// Checks in order, the first failing one is returned: the key's health (every request),
    /// then only for scoped requests the account's spent-until, the account's per-day limit,
    /// its high-priority share, per-minute and tokens-per-minute limits, then the same limits of
    /// the key. The rolling minute holds the counted scoped reservations with
    /// `reserved_at > at - 60000` (stamps later than `at`, from a process whose clock runs a
    /// little ahead, count too: upstream saw them).
    public func reserve(_ request: ReservationRequest) throws(LedgerError) -> ReservationResult {
        try write("reserve") { db in try LedgerSQL(db).reserve(request) }
    }

    /// ``reserve(_:)`` for many requests in ONE transaction: later ones see earlier ones'
    /// counts, exactly as if reserved one after the other, at the cost of a single commit.
    public func reserveBatch(_ requests: [ReservationRequest]) throws(LedgerError) -> [ReservationResult] {
        try write("reserveBatch") { db in
            let sql = LedgerSQL(db)
            return try requests.map { try sql.reserve($0) }
        }
    }

    /// The request was sent: it stays counted, and its outcome is recorded (actual tokens, when
    /// given, replace the estimate in the tokens-per-minute window).
    /// - Returns: false, changing nothing, if the reservation is not in state `reserved`
    ///   (unknown, already committed or released): commit is idempotent.
    @discardableResult
    public func commit(_ id: Int64, outcome: ReservationOutcome, at: EpochMillis) throws(LedgerError) -> Bool {
        try write("commit") { db in try LedgerSQL(db).commit(id, outcome: outcome, at: at) }
    }

    /// The request was never sent: refund it, from the daily counters of the day it was
    /// reserved on (not today's), and drop it from the minute windows.
    /// - Returns: false, changing nothing, if the reservation is not in state `reserved`: a
    ///   reservation is never refunded twice, and a committed one never.
    @discardableResult
    public func release(_ id: Int64, at: EpochMillis) throws(LedgerError) -> Bool {
        try write("release") { db in try LedgerSQL(db).release(id, at: at) }
    }

    /// Records a request that needed no reservation — its model draws on no request quota (a
    /// paid model) — once it was sent, with its outcome. It counts toward no limit; it is kept
    /// for usage, cost and history. Keeping it off the path before the request is sent is what
    /// lets paid calls skip a transaction there.
    /// - Returns: the row id.
    @discardableResult
    public func record(_ request: ReservationRequest, outcome: ReservationOutcome, at: EpochMillis) throws(LedgerError) -> Int64 {
        try write("record") { db in try Self.insertRecord(db, request, outcome: outcome, at: at) }
    }

    /// ``commit(_:outcome:at:)`` without waiting for it: written with the next batch (within
    /// about 10 ms) or before any other use of the ledger by this process. Errors go to
    /// ``onDeferredWriteFailure(_:)``.
    public func commitLater(_ id: Int64, outcome: ReservationOutcome, at: EpochMillis) {
        deferred.add(.commit(id: id, outcome: outcome, at: at))
    }

    /// ``record(_:outcome:at:)`` without waiting for it, as ``commitLater(_:outcome:at:)``.
    public func recordLater(_ request: ReservationRequest, outcome: ReservationOutcome, at: EpochMillis) {
        deferred.add(.record(request, outcome: outcome, at: at))
    }

    /// Writes the outcomes recorded with `commitLater` and `recordLater` that are still pending.
    public func flushPendingOutcomes() throws(LedgerError) {
        try deferred.flush()
    }

    /// Where a failed background write of outcomes is reported (its outcomes are lost; their
    /// reservations stay counted).
    public func onDeferredWriteFailure(_ handler: @escaping @Sendable (LedgerError) -> Void) {
        deferred.onFailure(handler)
    }

    private static func insertRecord(_ db: Database, _ request: ReservationRequest, outcome: ReservationOutcome, at: EpochMillis) throws -> Int64 {
            try db.cachedStatement(sql: """
                INSERT INTO reservation (key_id, account, model, scoped, priority, state, day, reserved_at, tokens, pid,
                                         settled_at, status, outcome, latency_ms, cost_usd, cost_is_estimate, served_model)
                VALUES (?, ?, ?, 0, ?, 'committed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [request.keyId, request.account, request.model, request.priority.rawValue,
                                         UTCDay.index(of: request.at), request.at, max(outcome.tokens ?? request.estimatedTokens, 0),
                                         request.pid, at, outcome.status, outcome.kind, outcome.latencyMs, outcome.costUSD,
                                         outcome.costIsEstimate, outcome.model])
            return db.lastInsertedRowID
    }

    /// Mean latency in milliseconds of the successful requests sent since `since`, by the model
    /// asked for: what "fastest" means when a model must be chosen (the catalog has no speeds).
    public func meanLatencyByModel(since: EpochMillis) throws(LedgerError) -> [String: Double] {
        try read("meanLatencyByModel") { db in
            var result: [String: Double] = [:]
            let rows = try Row.fetchAll(db, sql: """
                SELECT model, AVG(latency_ms) FROM reservation
                WHERE state = 'committed' AND outcome = 'ok' AND latency_ms IS NOT NULL AND reserved_at >= ?
                GROUP BY model
                """, arguments: [since])
            for row in rows {
                let model: String = row[0]
                let mean: Double = row[1]
                result[model] = mean
            }
            return result
        }
    }

    /// The most recent settled requests (newest first), with what each cost: for reports, audits and tests.
    public func settledCalls(since: EpochMillis, limit: Int = 1_000) throws(LedgerError) -> [SettledCall] {
        try read("settledCalls") { db in
            try Row.fetchAll(db, sql: """
                SELECT key_id, account, model, served_model, outcome, status, latency_ms, tokens, cost_usd, cost_is_estimate, reserved_at
                FROM reservation WHERE state = 'committed' AND reserved_at >= ? ORDER BY id DESC LIMIT ?
                """, arguments: [since, limit]).map { row in
                SettledCall(keyId: row[0], account: row[1], model: row[2], servedModel: row[3], outcome: row[4] ?? "", status: row[5],
                            latencyMs: row[6], tokens: row[7], costUSD: row[8], costIsEstimate: row[9], at: row[10])
            }
        }
    }

    /// Settled requests of one key (committed, any model), for tests and reports.
    public func committedCount(keyId: String) throws(LedgerError) -> Int {
        try read("committedCount") { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reservation WHERE key_id = ? AND state = 'committed'", arguments: [keyId]) ?? 0
        }
    }

    // MARK: Upstream truth

    /// Upstream said the account's daily quota is spent until `until` (a daily-cap 429's
    /// `X-RateLimit-Reset`): scoped reservations are refused until then. Keeps the later of the
    /// stored and the new time, so a stale or shorter answer never shortens the block.
    public func markAccountSpent(_ account: String, until: EpochMillis, reason: String, at: EpochMillis) throws(LedgerError) {
        try write("markAccountSpent") { db in
            try db.cachedStatement(sql: """
                INSERT INTO account_state (account, spent_until, spent_reason, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (account) DO UPDATE SET
                    spent_reason = CASE WHEN excluded.spent_until >= spent_until THEN excluded.spent_reason ELSE spent_reason END,
                    spent_until = MAX(spent_until, excluded.spent_until),
                    updated_at = excluded.updated_at
                """).execute(arguments: [account, until, reason, at])
        }
    }

    /// Upstream truth (`GET /key` `free_model_daily_requests.used`): today's count for the
    /// account becomes `used` plus its reservations still in state `reserved` today, which
    /// upstream may not have seen yet.
    public func correctDailyUsage(_ account: String, used: Int, at: EpochMillis) throws(LedgerError) {
        try write("correctDailyUsage") { db in
            let day = UTCDay.index(of: at)
            let pending = try Int.fetchOne(db.cachedStatement(sql: """
                SELECT COUNT(*) FROM reservation
                WHERE day = ? AND account = ? AND scoped = 1 AND state <> 'released' AND state = 'reserved'
                """), arguments: [day, account]) ?? 0
            try db.cachedStatement(sql: """
                INSERT INTO account_day (account, day, used) VALUES (?, ?, ?)
                ON CONFLICT (account, day) DO UPDATE SET used = excluded.used
                """).execute(arguments: [account, day, max(used, 0) + pending])
        }
    }

    /// What the cache needs to resync one account at `at`: today's count, the rolling minute's
    /// reservation times and tokens, and spent-until (nil when not in force at `at`).
    public func accountUsage(_ account: String, at: EpochMillis) throws(LedgerError) -> AccountUsage {
        try read("accountUsage") { db in try LedgerSQL(db).accountUsage(account, at: at) }
    }

    /// A key's own counters at `at`, for per-key limits.
    public func keyUsage(_ keyId: String, at: EpochMillis) throws(LedgerError) -> KeyUsage {
        try read("keyUsage") { db in try LedgerSQL(db).keyUsage(keyId, at: at) }
    }

    // MARK: Key health

    /// Stores a key's health, replacing the previous record; written on every transition so
    /// that other processes adopt it.
    public func saveHealth(_ record: KeyHealthRecord) throws(LedgerError) {
        try write("saveHealth") { db in
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO key_health (key_id, state, until, reason, updated_at) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [record.keyId, record.state, record.until, record.reason, record.updatedAt])
        }
    }

    /// Every stored health record, by key id.
    public func loadHealth() throws(LedgerError) -> [String: KeyHealthRecord] {
        try read("loadHealth") { db in
            var records: [String: KeyHealthRecord] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT key_id, state, until, reason, updated_at FROM key_health")
            while let row = try rows.next() {
                let record = KeyHealthRecord(keyId: row[0], state: row[1], until: row[2], reason: row[3], updatedAt: row[4])
                records[record.keyId] = record
            }
            return records
        }
    }

    // MARK: Audit log and events

    /// Appends one line to the audit log.
    public func appendAudit(_ entry: AuditEntry) throws(LedgerError) {
        try write("appendAudit") { db in
            try db.cachedStatement(sql: """
                INSERT INTO audit (at, key_id, account, action, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [entry.at, entry.keyId, entry.account, entry.action, entry.from, entry.to, entry.reason])
        }
    }

    /// The newest `limit` audit entries at or after `since` (all if nil), optionally of one key,
    /// oldest first (newest last, as a log reads). Ties in time keep insertion order.
    public func audit(since: EpochMillis?, keyId: String?, limit: Int) throws(LedgerError) -> [AuditEntry] {
        try read("audit") { db in
            var filters: [String] = []
            var arguments: StatementArguments = []
            if let since { filters.append("at >= ?"); arguments += [since] }
            if let keyId { filters.append("key_id = ?"); arguments += [keyId] }
            arguments += [max(limit, 0)]
            let sql = """
                SELECT at, key_id, account, action, from_state, to_state, reason FROM (
                    SELECT * FROM audit \(filters.isEmpty ? "" : "WHERE " + filters.joined(separator: " AND "))
                    ORDER BY at DESC, id DESC LIMIT ?
                ) ORDER BY at, id
                """
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditEntry(at: row[0], keyId: row[1], account: row[2], action: row[3], from: row[4], to: row[5], reason: row[6])
            }
        }
    }

    /// Appends one alert event.
    public func appendEvent(_ event: KeyEvent) throws(LedgerError) {
        try write("appendEvent") { db in
            try db.cachedStatement(sql: """
                INSERT INTO event (at, kind, key_id, account, message) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [event.at, event.kind, event.keyId, event.account, event.message])
        }
    }

    /// The newest `limit` events at or after `since` (all if nil), newest last.
    public func events(since: EpochMillis?, limit: Int) throws(LedgerError) -> [KeyEvent] {
        try read("events") { db in
            let sql = """
                SELECT at, kind, key_id, account, message FROM (
                    SELECT * FROM event \(since == nil ? "" : "WHERE at >= ?") ORDER BY at DESC, id DESC LIMIT ?
                ) ORDER BY at, id
                """
            var arguments: StatementArguments = []
            if let since { arguments += [since] }
            arguments += [max(limit, 0)]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                KeyEvent(at: row[0], kind: row[1], keyId: row[2], account: row[3], message: row[4])
            }
        }
    }

    // MARK: Forecast

    /// Counted (not released) scoped requests per account per UTC day, for days >= `fromDay`,
    /// ordered by day then account. Counts rows, so an upstream correction does not show here.
    public func dailyTotals(fromDay: Int64) throws(LedgerError) -> [DailyTotal] {
        try read("dailyTotals") { db in
            try Row.fetchAll(db, sql: """
                SELECT account, day, COUNT(*) FROM reservation
                WHERE day >= ? AND scoped = 1 AND state <> 'released'
                GROUP BY day, account ORDER BY day, account
                """, arguments: [fromDay]).map { DailyTotal(account: $0[0], day: $0[1], count: $0[2]) }
        }
    }

    /// Counted scoped requests per UTC hour (24 entries) of `day`, of one account or all.
    public func hourlyCounts(account: String?, day: Int64) throws(LedgerError) -> [Int] {
        try read("hourlyCounts") { db in
            var counts = Array(repeating: 0, count: 24)
            var arguments: StatementArguments = [UTCDay.start(ofDay: day), day]
            if let account { arguments += [account] }
            let rows = try Row.fetchCursor(db, sql: """
                SELECT (reserved_at - ?) / 3600000 AS hour, COUNT(*) FROM reservation
                WHERE day = ? \(account == nil ? "" : "AND account = ?") AND scoped = 1 AND state <> 'released'
                GROUP BY hour
                """, arguments: arguments)
            while let row = try rows.next() {
                let hour: Int = row[0]
                if counts.indices.contains(hour) { counts[hour] += row[1] }
            }
            return counts
        }
    }

    // MARK: Plumbing

    static func configuration() -> Configuration {
        var config = Configuration()
        config.busyMode = .timeout(busyTimeoutSeconds)
        config.foreignKeysEnabled = true
        config.label = "ChimeraStore.QuotaLedger"
        return config
    }

    /// Opens the file in WAL mode and migrates it (see `SQLiteFile.openQueue`).
    static func openQueue(path: String) throws(LedgerError) -> DatabaseQueue {
        do {
            return try SQLiteFile.openQueue(path: path, configuration: configuration(), migrator: LedgerSchema.migrator)
        } catch {
            throw LedgerError(error, path: path, operation: "open")
        }
    }

    /// Creates missing parent directories (0700) and the file (0600) before SQLite opens it:
    /// SQLite would create the file with the process umask, typically world-readable, and the
    /// ledger reveals account usage. The -wal and -shm files inherit the file's mode from SQLite.
    static func prepareFile(at path: String) throws(LedgerError) {
        func failure(_ what: String, _ code: Int32) -> LedgerError {
            let kind: LedgerError.Kind = (code == EACCES || code == EPERM || code == EROFS) ? .readOnly : .cannotOpen
            return LedgerError(kind: kind, path: path, operation: "open",
                               message: "\(what): \(String(cString: strerror(code)))")
        }
        guard !path.isEmpty else {
            throw LedgerError(kind: .cannotOpen, path: path, operation: "open", message: "empty path")
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
        var directory = path.hasPrefix("/") ? "/" : ""
        for part in parts {
            directory += part
            var info = stat()
            if stat(directory, &info) != 0 {
                if mkdir(directory, 0o700) != 0, errno != EEXIST { throw failure("cannot create directory \(directory)", errno) }
            }
            directory += "/"
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot open", errno) }
        defer { close(fd) }
        // A file created by hand or by an older version may be group or world readable: tighten
        // it. Best effort: a file owned by someone else keeps its mode, and SQLite then reports
        // whatever access problem there is.
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0 {
            _ = fchmod(fd, 0o600)
        }
    }

    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(LedgerError) -> T {
        // Outcomes recorded earlier are written first: this process reads its own writes.
        if !deferred.isEmpty { deferred.flushReportingFailure() }
        do {
            return try dbQueue.write(body)
        } catch {
            throw LedgerError(error, path: path, operation: operation)
        }
    }

    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(LedgerError) -> T {
        if !deferred.isEmpty { deferred.flushReportingFailure() }
        do {
            return try dbQueue.read(body)
        } catch {
            throw LedgerError(error, path: path, operation: operation)
        }
    }
}
