import ChimeraCore
import Foundation
import GRDB
import Testing
@testable import ChimeraStore

/// Every time is injected: `noon` is 12:00 UTC on an arbitrary day, nothing reads the clock.
private let day0: Int64 = 20_000
private let midnight0 = UTCDay.start(ofDay: day0)
private let noon = midnight0 + 12 * 3_600_000
private let minute = UTCDay.millisPerMinute

private func request(_ at: EpochMillis, key: String = "k1", account: String = "acct", model: String = "m:free",
                     scoped: Bool = true, priority: TaskPriority = .normal,
                     limits: QuotaLimits = QuotaLimits(perDay: 50), keyLimits: QuotaLimits = .unlimited,
                     share: Double = 0, tokens: Int = 0) -> ReservationRequest {
    ReservationRequest(keyId: key, account: account, model: model, scoped: scoped, priority: priority,
                       accountLimits: limits, keyLimits: keyLimits, reservedShare: share, estimatedTokens: tokens, at: at)
}

private let ok = ReservationOutcome(status: 200, kind: "ok")

@Suite struct LedgerTests {
    // MARK: Daily limits

    @Test func reserve_dailyLimitExactlyReached_refusesUntilNextMidnight() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(perDay: 5)
        for i in 0..<5 {
            let result = try ledger.reserve(request(noon + Int64(i), limits: limits))
            #expect(result.id != nil)
            #expect(result.account.usedToday == i + 1)
        }
        let refused = try ledger.reserve(request(noon + 10, limits: limits))
        let next = UTCDay.nextMidnight(after: noon)
        #expect(refused.refusal == .dailyLimit(used: 5, limit: 5, resetsAt: next, scope: .account))
        #expect(refused.refusal?.retryAt == next)
        #expect(refused.refusal?.scope == "account")
        #expect(refused.account.usedToday == 5)
        #expect(try ledger.accountUsage("acct", at: noon + 20).usedToday == 5)
    }

    @Test func reserve_acrossUTCMidnight_countsAFreshDay() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(perDay: 2)
        let nextMidnight = midnight0 + UTCDay.millisPerDay
        _ = try ledger.reserve(request(nextMidnight - 3_600_000, limits: limits))
        _ = try ledger.reserve(request(nextMidnight - 1_800_000, limits: limits))
        let late = try ledger.reserve(request(nextMidnight - 1, limits: limits))
        #expect(late.refusal == .dailyLimit(used: 2, limit: 2, resetsAt: nextMidnight, scope: .account))
        let fresh = try ledger.reserve(request(nextMidnight, limits: limits))
        #expect(fresh.id != nil)
        #expect(fresh.account.day == day0 + 1)
        #expect(fresh.account.usedToday == 1)
        #expect(try ledger.accountUsage("acct", at: nextMidnight - 1).usedToday == 2)
    }

    @Test func reserve_reservedShare_keepsTheLastTenPercentForHighPriority() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(perDay: 50)
        for i in 0..<45 {
            #expect(try ledger.reserve(request(noon + Int64(i), limits: limits, share: 0.1)).id != nil)
        }
        let resetsAt = UTCDay.nextMidnight(after: noon)
        let normal = try ledger.reserve(request(noon + 100, limits: limits, share: 0.1))
        #expect(normal.refusal == .reservedForHighPriority(used: 45, limit: 50, resetsAt: resetsAt, scope: .account))
        let low = try ledger.reserve(request(noon + 100, priority: .low, limits: limits, share: 0.1))
        #expect(low.refusal == .reservedForHighPriority(used: 45, limit: 50, resetsAt: resetsAt, scope: .account))
        for i in 0..<5 {
            let priority: TaskPriority = i.isMultiple(of: 2) ? .high : .critical
            #expect(try ledger.reserve(request(noon + 200 + Int64(i), priority: priority, limits: limits, share: 0.1)).id != nil)
        }
        let high = try ledger.reserve(request(noon + 300, priority: .high, limits: limits, share: 0.1))
        #expect(high.refusal == .dailyLimit(used: 50, limit: 50, resetsAt: resetsAt, scope: .account))
    }

    // MARK: Rolling minute

    @Test func reserve_rollingMinuteEdges_freeExactlySixtySecondsAfterTheOldest() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(perMinute: 3)
        let t = noon
        for offset: EpochMillis in [0, 10_000, 20_000] {
            #expect(try ledger.reserve(request(t + offset, limits: limits)).id != nil)
        }
        let early = try ledger.reserve(request(t + 59_999, limits: limits))
        #expect(early.refusal == .minuteLimit(count: 3, limit: 3, freesAt: t + 60_000, scope: .account))
        #expect(early.account.minuteWindow == [t, t + 10_000, t + 20_000])
        let onTime = try ledger.reserve(request(t + 60_000, limits: limits))
        #expect(onTime.id != nil)
        #expect(onTime.account.minuteWindow == [t + 10_000, t + 20_000, t + 60_000])
        // The next slot frees when the second-oldest leaves.
        let again = try ledger.reserve(request(t + 60_001, limits: limits))
        #expect(again.refusal?.retryAt == t + 70_000)
    }

    @Test func reserve_tokensPerMinute_refusesUntilEnoughTokensLeaveTheWindow() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(tokensPerMinute: 1_000)
        let t = noon
        let first = try #require(try ledger.reserve(request(t, limits: limits, tokens: 600)).id)
        _ = try ledger.reserve(request(t + 5_000, limits: limits, tokens: 300))
        let tooMany = try ledger.reserve(request(t + 10_000, limits: limits, tokens: 200))
        #expect(tooMany.refusal == .tokenLimit(tokens: 900, limit: 1_000, freesAt: t + 60_000, scope: .account))
        let fits = try ledger.reserve(request(t + 10_000, limits: limits, tokens: 100))
        #expect(fits.id != nil)
        #expect(fits.account.tokensInMinute == 1_000)
        // 700 more needs both the 600 and the 300 gone: frees when the second leaves.
        let big = try ledger.reserve(request(t + 11_000, limits: limits, tokens: 700))
        #expect(big.refusal == .tokenLimit(tokens: 1_000, limit: 1_000, freesAt: t + 65_000, scope: .account))
        // The actual count replaces the estimate.
        #expect(try ledger.commit(first, outcome: ReservationOutcome(status: 200, kind: "ok", tokens: 100), at: t + 12_000))
        #expect(try ledger.accountUsage("acct", at: t + 12_000).tokensInMinute == 500)
        #expect(try ledger.reserve(request(t + 12_000, limits: limits, tokens: 200)).id != nil)
        // An estimate above the limit on its own passes once the window is empty.
        let huge = try ledger.reserve(request(t + 200_000, limits: limits, tokens: 5_000))
        #expect(huge.id != nil)
    }

    // MARK: Settling

    @Test func release_refundsOnce_andNeverAfterCommit() throws {
        let ledger = try QuotaLedger.inMemory()
        let a = try #require(try ledger.reserve(request(noon)).id)
        let b = try #require(try ledger.reserve(request(noon + 1)).id)
        #expect(try ledger.release(a, at: noon + 2))
        var usage = try ledger.accountUsage("acct", at: noon + 3)
        #expect(usage.usedToday == 1)
        #expect(usage.minuteWindow == [noon + 1])
        #expect(try !ledger.release(a, at: noon + 4))
        #expect(try !ledger.commit(a, outcome: ok, at: noon + 4))
        #expect(try ledger.accountUsage("acct", at: noon + 5).usedToday == 1)
        #expect(try ledger.commit(b, outcome: ok, at: noon + 6))
        #expect(try !ledger.commit(b, outcome: ok, at: noon + 7))
        #expect(try !ledger.release(b, at: noon + 7))
        usage = try ledger.accountUsage("acct", at: noon + 8)
        #expect(usage.usedToday == 1)
        #expect(usage.minuteWindow == [noon + 1])
        #expect(try ledger.keyUsage("k1", at: noon + 8).usedToday == 1)
        #expect(try !ledger.release(9_999, at: noon + 9))
    }

    @Test func commit_keepsTheRequestCounted() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(perDay: 1)
        let id = try #require(try ledger.reserve(request(noon, limits: limits)).id)
        let outcome = ReservationOutcome(status: 429, kind: "rate_limited", tokens: 0, latencyMs: 120, costUSD: 0, model: "m:free")
        #expect(try ledger.commit(id, outcome: outcome, at: noon + 500))
        let next = try ledger.reserve(request(noon + 1_000, limits: limits))
        #expect(next.refusal == .dailyLimit(used: 1, limit: 1, resetsAt: UTCDay.nextMidnight(after: noon), scope: .account))
    }

    @Test func release_ofYesterdaysReservation_decrementsYesterdayNotToday() throws {
        let ledger = try QuotaLedger.inMemory()
        let today = midnight0 + UTCDay.millisPerDay
        let old = try #require(try ledger.reserve(request(today - 3_600_000)).id)
        _ = try ledger.reserve(request(today + 3_600_000))
        _ = try ledger.reserve(request(today + 3_600_001))
        #expect(try ledger.release(old, at: today + 3_600_002))
        #expect(try ledger.accountUsage("acct", at: today + 3_600_003).usedToday == 2)
        #expect(try ledger.accountUsage("acct", at: today - 1).usedToday == 0)
        #expect(try ledger.keyUsage("k1", at: today + 3_600_003).usedToday == 2)
        #expect(try ledger.dailyTotals(fromDay: day0) == [DailyTotal(account: "acct", day: day0 + 1, count: 2)])
    }

    // MARK: Upstream truth

    @Test func markAccountSpent_keepsTheLaterTime_andBlocksOnlyScopedRequests() throws {
        let ledger = try QuotaLedger.inMemory()
        let later = UTCDay.nextMidnight(after: noon)
        try ledger.markAccountSpent("acct", until: later, reason: "429 free-models-per-day", at: noon)
        try ledger.markAccountSpent("acct", until: noon + minute, reason: "stale", at: noon + 1)
        #expect(try ledger.accountUsage("acct", at: noon + 2).spentUntil == later)
        let refused = try ledger.reserve(request(noon + 3))
        #expect(refused.refusal == .accountSpent(until: later))
        #expect(refused.refusal?.retryAt == later)
        #expect(refused.refusal?.scope == "account")
        #expect(try ledger.reserve(request(noon + 4, model: "paid/model", scoped: false)).id != nil)
        let after = try ledger.reserve(request(later))
        #expect(after.id != nil)
        #expect(after.account.spentUntil == nil)
        try ledger.markAccountSpent("acct", until: later + minute, reason: "again", at: later + 1)
        #expect(try ledger.accountUsage("acct", at: later + 2).spentUntil == later + minute)
    }

    @Test func correctDailyUsage_setsUpstreamCountPlusPendingReservations() throws {
        let ledger = try QuotaLedger.inMemory()
        let limits = QuotaLimits(perDay: 12)
        let a = try #require(try ledger.reserve(request(noon, limits: limits)).id)
        let b = try #require(try ledger.reserve(request(noon + 1, limits: limits)).id)
        _ = try ledger.reserve(request(noon + 2, limits: limits))   // still in flight
        _ = try ledger.reserve(request(noon + 3, model: "paid", scoped: false, limits: limits))  // not counted
        #expect(try ledger.commit(a, outcome: ok, at: noon + 4))
        #expect(try ledger.release(b, at: noon + 5))
        try ledger.correctDailyUsage("acct", used: 10, at: noon + 6)
        #expect(try ledger.accountUsage("acct", at: noon + 7).usedToday == 11)
        #expect(try ledger.reserve(request(noon + 8, limits: limits)).id != nil)
        let refused = try ledger.reserve(request(noon + 9, limits: limits))
        #expect(refused.refusal == .dailyLimit(used: 12, limit: 12, resetsAt: UTCDay.nextMidnight(after: noon), scope: .account))
        // A correction on a day without reservations creates the day.
        try ledger.correctDailyUsage("other", used: 7, at: noon)
        #expect(try ledger.accountUsage("other", at: noon).usedToday == 7)
    }

    // MARK: Keys

    @Test func reserve_keyLimits_areIndependentOfTheAccount() throws {
        let ledger = try QuotaLedger.inMemory()
        let account = QuotaLimits(perDay: 10)
        let perKey = QuotaLimits(perDay: 2, perMinute: 5)
        for i in 0..<2 {
            #expect(try ledger.reserve(request(noon + Int64(i), key: "k1", limits: account, keyLimits: perKey)).id != nil)
        }
        let third = try ledger.reserve(request(noon + 2, key: "k1", limits: account, keyLimits: perKey))
        #expect(third.refusal == .dailyLimit(used: 2, limit: 2, resetsAt: UTCDay.nextMidnight(after: noon), scope: .key))
        #expect(third.refusal?.scope == "key")
        #expect(third.key.usedToday == 2)
        let other = try ledger.reserve(request(noon + 3, key: "k2", limits: account, keyLimits: perKey))
        #expect(other.id != nil)
        #expect(other.account.usedToday == 3)
        #expect(other.key.usedToday == 1)
        let minuteKey = QuotaLimits(perMinute: 1)
        let k3 = try ledger.reserve(request(noon + 4, key: "k3", limits: account, keyLimits: minuteKey))
        #expect(k3.id != nil)
        let k3Again = try ledger.reserve(request(noon + 5, key: "k3", limits: account, keyLimits: minuteKey))
        #expect(k3Again.refusal == .minuteLimit(count: 1, limit: 1, freesAt: noon + 4 + minute, scope: .key))
        #expect(try ledger.accountUsage("acct", at: noon + 6).usedToday == 4)
        #expect(try ledger.accountUsage("acct2", at: noon + 6).usedToday == 0)
    }

    @Test func reserve_unhealthyKey_isUnavailableUntilItsStateEnds() throws {
        let ledger = try QuotaLedger.inMemory()
        try ledger.saveHealth(KeyHealthRecord(keyId: "k1", state: "disabled", until: nil, reason: "HTTP 401", updatedAt: noon))
        let disabled = try ledger.reserve(request(noon + 1))
        #expect(disabled.refusal == .keyUnavailable(state: "disabled", until: nil))
        #expect(disabled.refusal?.retryAt == nil)
        #expect(disabled.refusal?.scope == "key")
        #expect(try ledger.reserve(request(noon + 1, scoped: false)).refusal == .keyUnavailable(state: "disabled", until: nil))

        try ledger.saveHealth(KeyHealthRecord(keyId: "k1", state: "cooling", until: noon + minute, reason: "429", updatedAt: noon + 2))
        let cooling = try ledger.reserve(request(noon + minute - 1))
        #expect(cooling.refusal == .keyUnavailable(state: "cooling", until: noon + minute))
        #expect(cooling.refusal?.retryAt == noon + minute)
        #expect(try ledger.reserve(request(noon + minute)).id != nil)

        try ledger.saveHealth(KeyHealthRecord(keyId: "k1", state: "half_open", until: nil, reason: "probe", updatedAt: noon + 3))
        #expect(try ledger.reserve(request(noon + minute + 1)).id != nil)
        #expect(try ledger.reserve(request(noon + minute + 2, key: "k2")).id != nil)  // no record: active
        let health = try ledger.loadHealth()
        #expect(health == ["k1": KeyHealthRecord(keyId: "k1", state: "half_open", until: nil, reason: "probe", updatedAt: noon + 3)])
    }

    // MARK: Logs

    @Test func auditAndEvents_roundTripNewestLast() throws {
        let ledger = try QuotaLedger.inMemory()
        let entries = [
            AuditEntry(at: noon + 30, keyId: "k1", action: "disable", from: "active", to: "disabled", reason: "operator"),
            AuditEntry(at: noon + 10, keyId: "k2", account: "acct", action: "health", from: "active", to: "cooling", reason: "429"),
            AuditEntry(at: noon + 20, keyId: "k1", action: "health", from: "active", to: "suspended", reason: "errors"),
            AuditEntry(at: noon + 20, action: "import", reason: "same time, appended later"),
        ]
        for entry in entries { try ledger.appendAudit(entry) }
        #expect(try ledger.audit(since: nil, keyId: nil, limit: 100) == [entries[1], entries[2], entries[3], entries[0]])
        #expect(try ledger.audit(since: nil, keyId: nil, limit: 2) == [entries[3], entries[0]])
        #expect(try ledger.audit(since: noon + 20, keyId: nil, limit: 100) == [entries[2], entries[3], entries[0]])
        #expect(try ledger.audit(since: nil, keyId: "k1", limit: 100) == [entries[2], entries[0]])
        #expect(try ledger.audit(since: noon + 21, keyId: "k1", limit: 1) == [entries[0]])
        #expect(try ledger.audit(since: nil, keyId: nil, limit: 0) == [])

        let events = [
            KeyEvent(at: noon + 5, kind: "quota_low", account: "acct", message: "5 left"),
            KeyEvent(at: noon + 1, kind: "key_disabled", keyId: "k1", message: "401"),
            KeyEvent(at: noon + 9, kind: "account_exhausted", account: "acct", message: "0 left"),
        ]
        for event in events { try ledger.appendEvent(event) }
        #expect(try ledger.events(since: nil, limit: 10) == [events[1], events[0], events[2]])
        #expect(try ledger.events(since: noon + 5, limit: 10) == [events[0], events[2]])
        #expect(try ledger.events(since: nil, limit: 1) == [events[2]])
    }

    @Test func dailyTotalsAndHourlyCounts_countOnlyCountedScopedRequests() throws {
        let ledger = try QuotaLedger.inMemory()
        let hour: EpochMillis = 3_600_000
        _ = try ledger.reserve(request(midnight0 + 1 * hour, account: "a"))
        _ = try ledger.reserve(request(midnight0 + 1 * hour + 5, account: "a"))
        _ = try ledger.reserve(request(midnight0 + 23 * hour + 59 * minute, account: "a"))
        _ = try ledger.reserve(request(midnight0 + 1 * hour + 9, account: "b"))
        let released = try #require(try ledger.reserve(request(midnight0 + 2 * hour, account: "b")).id)
        #expect(try ledger.release(released, at: midnight0 + 2 * hour + 1))
        _ = try ledger.reserve(request(midnight0 + 3 * hour, account: "b", scoped: false))
        _ = try ledger.reserve(request(midnight0 + UTCDay.millisPerDay, account: "a"))
        _ = try ledger.reserve(request(midnight0 - 1, account: "a"))  // the day before: not asked for

        #expect(try ledger.dailyTotals(fromDay: day0) == [
            DailyTotal(account: "a", day: day0, count: 3),
            DailyTotal(account: "b", day: day0, count: 1),
            DailyTotal(account: "a", day: day0 + 1, count: 1),
        ])
        var all = Array(repeating: 0, count: 24)
        all[1] = 3
        all[23] = 1
        #expect(try ledger.hourlyCounts(account: nil, day: day0) == all)
        var onlyB = Array(repeating: 0, count: 24)
        onlyB[1] = 1
        #expect(try ledger.hourlyCounts(account: "b", day: day0) == onlyB)
        #expect(try ledger.hourlyCounts(account: "nobody", day: day0) == Array(repeating: 0, count: 24))
    }

    // MARK: Batches

    @Test func reserveBatch_matchesSequentialReservations() throws {
        var rng = SplitMix64(seed: 7)
        var requests: [ReservationRequest] = []
        var at = noon
        for _ in 0..<120 {
            at += EpochMillis(rng.next() % 9_000)
            let priorities: [TaskPriority] = [.low, .normal, .high, .critical]
            requests.append(request(at, key: ["k1", "k2", "k3"][Int(rng.next() % 3)],
                                    account: ["a", "b"][Int(rng.next() % 2)],
                                    scoped: rng.next() % 5 != 0,
                                    priority: priorities[Int(rng.next() % 4)],
                                    limits: QuotaLimits(perDay: 40, perMinute: 6, tokensPerMinute: 3_000),
                                    keyLimits: QuotaLimits(perDay: 25),
                                    share: 0.2, tokens: Int(rng.next() % 900)))
        }
        let batched = try QuotaLedger.inMemory().reserveBatch(requests)
        let single = try QuotaLedger.inMemory()
        let sequential = try requests.map { try single.reserve($0) }
        #expect(batched == sequential)
        let reserved = batched.filter { $0.id != nil }.count
        #expect(reserved > 20 && reserved < 120)  // the limits did bite, and not everything was refused
    }

    // MARK: Files and processes

    @Test func file_isCreatedPrivateInWALMode() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let path = dir + "/home/nested/" + QuotaLedger.fileName
            let ledger = try QuotaLedger(path: path)
            #expect(ledger.path == path)
            #expect(try mode(of: path) == 0o600)
            #expect(try mode(of: dir + "/home") == 0o700)
            #expect(try mode(of: dir + "/home/nested") == 0o700)
            _ = try ledger.reserve(request(noon))
            #expect(try mode(of: path + "-wal") == 0o600)
            let pragmas = try ledger.dbQueue.read { db in
                [try String.fetchOne(db, sql: "PRAGMA journal_mode"), try String.fetchOne(db, sql: "PRAGMA synchronous"),
                 try String.fetchOne(db, sql: "PRAGMA foreign_keys"), try String.fetchOne(db, sql: "PRAGMA busy_timeout")]
            }
            #expect(pragmas == ["wal", "1", "1", "10000"])
            let migrations = try ledger.dbQueue.read { db in try LedgerSchema.migrator.appliedMigrations(db) }
            #expect(migrations == ["v1-ledger", "v2-cost-estimate"])
        }
    }

    @Test func file_loosePermissions_areTightenedOnOpen() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let path = dir + "/" + QuotaLedger.fileName
            #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]))
            _ = try QuotaLedger(path: path)
            #expect(try mode(of: path) == 0o600)
        }
    }

    @Test func file_countsSurviveClosingAndReopening() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let path = dir + "/" + QuotaLedger.fileName
            var pending: Int64 = 0
            do {
                let ledger = try QuotaLedger(path: path)
                let ids = try (0..<3).map { try #require(try ledger.reserve(request(noon + Int64($0), tokens: 10)).id) }
                #expect(try ledger.release(ids[0], at: noon + 5))
                #expect(try ledger.commit(ids[1], outcome: ok, at: noon + 5))
                pending = ids[2]
                try ledger.markAccountSpent("acct", until: noon + minute, reason: "429", at: noon + 6)
                try ledger.saveHealth(KeyHealthRecord(keyId: "k1", state: "cooling", until: noon + 2 * minute, reason: "429", updatedAt: noon))
            }
            let reopened = try QuotaLedger(path: path)
            let usage = try reopened.accountUsage("acct", at: noon + 10)
            #expect(usage == AccountUsage(account: "acct", day: day0, usedToday: 2, minuteWindow: [noon + 1, noon + 2],
                                          tokensInMinute: 20, spentUntil: noon + minute))
            #expect(try reopened.loadHealth()["k1"]?.state == "cooling")
            // The reservation left open by the "dead" instance stays counted and can still be settled.
            #expect(try reopened.commit(pending, outcome: ok, at: noon + 11))
        }
    }

    @Test func file_twoInstancesSeeEachOthersWritesAtOnce() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let path = dir + "/" + QuotaLedger.fileName
            let a = try QuotaLedger(path: path)
            let b = try QuotaLedger(path: path)
            let limits = QuotaLimits(perDay: 1)
            #expect(try a.reserve(request(noon, limits: limits)).id != nil)
            #expect(try b.accountUsage("acct", at: noon).usedToday == 1)
            #expect(try b.reserve(request(noon + 1, limits: limits)).refusal?.retryAt == UTCDay.nextMidnight(after: noon))
            try b.saveHealth(KeyHealthRecord(keyId: "k9", state: "disabled", until: nil, reason: "operator", updatedAt: noon))
            #expect(try a.loadHealth()["k9"]?.state == "disabled")
        }
    }

    // MARK: Outcomes written later

    @Test func outcomesWrittenLater_areReadBackAtOnceByTheSameLedger() throws {
        let ledger = try QuotaLedger.inMemory()
        let id = try #require(try ledger.reserve(request(noon)).id)
        let paid = ReservationOutcome(status: 200, kind: "ok", tokens: 12, latencyMs: 40, costUSD: 0.002, model: "openai/gpt-4o-mini")
        ledger.commitLater(id, outcome: ok, at: noon + 5)
        ledger.recordLater(request(noon + 6, key: "k2", model: "openai/gpt-4o-mini", scoped: false), outcome: paid, at: noon + 7)
        // Any synchronous use writes what is pending first.
        #expect(try ledger.committedCount(keyId: "k1") == 1)
        let calls = try ledger.settledCalls(since: noon)
        #expect(calls.map(\.keyId) == ["k2", "k1"])
        #expect(calls.first?.costUSD == 0.002)
        #expect(calls.first?.tokens == 12)
        // A committed reservation stays counted, and is never released afterwards.
        #expect(try ledger.accountUsage("acct", at: noon + 8).usedToday == 1)
        #expect(try ledger.release(id, at: noon + 9) == false)
    }

    @Test func outcomesWrittenLater_reachOtherConnectionsWhenFlushedOrWhenTheLedgerIsReleased() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let path = dir + "/" + QuotaLedger.fileName
            let observer = try QuotaLedger(path: path)
            var writer: QuotaLedger? = try QuotaLedger(path: path)
            writer?.recordLater(request(noon, scoped: false), outcome: ok, at: noon + 1)
            // Not written on the caller's thread (the batch waits up to 10 ms)…
            #expect(try observer.committedCount(keyId: "k1") == 0)
            try writer?.flushPendingOutcomes()
            #expect(try observer.committedCount(keyId: "k1") == 1)
            // …and written when the ledger goes away, with nothing else to trigger it.
            writer?.recordLater(request(noon + 2, scoped: false), outcome: ok, at: noon + 3)
            writer = nil
            #expect(try observer.committedCount(keyId: "k1") == 2)
        }
    }

    @Test func outcomesWrittenLater_aBatchThatCannotBeWrittenIsAnError_andIsNotRetriedForever() throws {
        let ledger = try QuotaLedger.inMemory()
        ledger.commitLater(999, outcome: ok, at: noon)  // no such reservation: changes nothing, not an error
        try ledger.flushPendingOutcomes()
        try ledger.dbQueue.write { db in try db.execute(sql: "DROP TABLE reservation") }
        ledger.recordLater(request(noon, scoped: false), outcome: ok, at: noon + 1)
        #expect { try ledger.flushPendingOutcomes() } throws: { ($0 as? LedgerError)?.operation == "record outcomes" }
        try ledger.flushPendingOutcomes()  // the failed batch was dropped, not left to fail every later use
    }

    @Test func file_threadsWithTheirOwnConnections_neverOverdrawTheAccount() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let path = dir + "/" + QuotaLedger.fileName
            let threads = 8
            let attemptsPerThread = 15
            let tally = Tally()
            let group = DispatchGroup()
            for t in 0..<threads {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    do {
                        // Each thread opens the new file itself, so opening and migrating race too.
                        let ledger = try QuotaLedger(path: path)
                        for i in 0..<attemptsPerThread {
                            let result = try ledger.reserve(request(noon + EpochMillis(t * 100 + i), key: "k\(t)",
                                                                    limits: QuotaLimits(perDay: 50)))
                            tally.add(reserved: result.id != nil)
                        }
                    } catch {
                        tally.fail("\(error)")
                    }
                }
                thread.start()
            }
            group.wait()
            #expect(tally.errors == [])
            #expect(tally.reserved == 50)
            #expect(tally.refused == threads * attemptsPerThread - 50)
            let ledger = try QuotaLedger(path: path)
            #expect(try ledger.accountUsage("acct", at: noon + 10_000).usedToday == 50)
            #expect(try ledger.dailyTotals(fromDay: day0) == [DailyTotal(account: "acct", day: day0, count: 50)])
        }
    }

    // MARK: Errors

    @Test func open_failures_nameTheFileAndWhatToDo() throws {
        try withTemporaryDirectory(prefix: "ledger") { dir in
            let blocker = dir + "/file"
            #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
            let underFile = blocker + "/" + QuotaLedger.fileName
            let error = try #require(throws: LedgerError.self) { try QuotaLedger(path: underFile) }
            #expect(error.kind == .cannotOpen)
            #expect(error.description.contains(underFile))
            #expect(error.description.contains("open"))

            let garbage = dir + "/garbage.sqlite"
            #expect(FileManager.default.createFile(atPath: garbage, contents: Data(repeating: 0x5A, count: 4_096)))
            let corrupt = try #require(throws: LedgerError.self) { try QuotaLedger(path: garbage) }
            #expect(corrupt.kind == .corrupt)
            #expect(corrupt.description.contains(garbage))
            #expect(corrupt.description.contains("move"))
        }
    }
}

/// Thread-safe counters for the concurrency test.
private final class Tally: @unchecked Sendable {
    // Unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var counts = (reserved: 0, refused: 0)
    private var failures: [String] = []

    func add(reserved: Bool) {
        lock.withLock { if reserved { counts.reserved += 1 } else { counts.refused += 1 } }
    }

    func fail(_ message: String) { lock.withLock { failures.append(message) } }

    var reserved: Int { lock.withLock { counts.reserved } }
    var refused: Int { lock.withLock { counts.refused } }
    var errors: [String] { lock.withLock { failures } }
}
