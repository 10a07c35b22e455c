import ChimeraCore
import ChimeraStore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Records what the broker asked for; the test decides when time passes and calls `wake()`.
final class ManualScheduler: WakeScheduler {
    var armedAt: EpochMillis?
    var calls = 0
    func schedule(at time: EpochMillis?) { armedAt = time; calls += 1 }
    /// What the timer does when it goes off: it is no longer armed, and the broker wakes.
    func fire(_ broker: KeyBroker) { armedAt = nil; broker.wake() }
}

/// 2026-11-29 12:00:00 UTC.
let noon: EpochMillis = 1_795_953_600_000

func makeKeys(_ specs: [(id: String, account: String)], accounts: [KeyPoolAccount]) -> ResolvedKeys {
    var keys = ResolvedKeys()
    keys.accounts = accounts
    for spec in specs {
        keys.entries.append(KeyPoolEntry(id: spec.id, label: spec.id, masked: "sk-or-…\(spec.id.suffix(4))", account: spec.account))
        keys.secrets[spec.id] = APIKeySecret("sk-or-v1-fake-\(spec.id)-000000000000")
    }
    return keys
}

/// A temporary directory holding one ledger file, removed with everything in it.
final class TempLedgerDirectory {
    let directory: String
    var path: String { directory + "/ledger.sqlite" }
    init() {
        var template = Array("/tmp/chimera-broker-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { _ = system("rm -rf '\(directory)'") }
}

@Suite("KeyBroker: pool + ledger + waiting, on an injected clock")
struct KeyBrokerTests {
    let freeModel = "meta-llama/llama-3.3-70b-instruct:free"

    func broker(perDay: Int? = 50, perMinute: Int? = nil, keys: Int = 1, policy: ExhaustionPolicy = .wait, ledger: QuotaLedger? = nil,
                clock: ManualClock, scheduler: ManualScheduler? = nil, reserve: Double = 0) throws -> KeyBroker {
        var config = KeysConfig()
        config.onExhausted = policy
        config.pool.reservedShare = reserve
        config.maxWaitMs = 3_600_000
        let accounts = (0..<keys).map { KeyPoolAccount(name: "acct\($0)", tier: .custom, limits: QuotaLimits(perDay: perDay, perMinute: perMinute)) }
        let resolved = makeKeys((0..<keys).map { (id: "k_000\($0)", account: "acct\($0)") }, accounts: accounts)
        return try KeyBroker(keys: resolved, config: config, ledger: ledger ?? QuotaLedger.inMemory(), clock: clock, scheduler: scheduler)
    }

    @Test func exhaustion_underWaitPolicy_queuesAndIsServedWhenTheWindowFrees() throws {
        let clock = ManualClock(noon)
        let scheduler = ManualScheduler()
        let b = try broker(perMinute: 2, clock: clock, scheduler: scheduler)
        for _ in 0..<2 { guard case .success = b.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("first two must lease"); return } }
        var result: Result<KeyLease, KeyGrantFailure>?
        b.acquire(KeyRequest(model: freeModel)) { result = $0 }
        #expect(result == nil, "must wait, not fail")
        #expect(b.waiting.count == 1)
        #expect(scheduler.armedAt == noon + 60_000, "woken exactly when the oldest request leaves the minute window")
        clock.set(noon + 59_999)
        scheduler.fire(b)
        #expect(result == nil)
        #expect(scheduler.armedAt == noon + 60_000, "re-armed after an early wake")
        clock.set(noon + 60_000)
        scheduler.fire(b)
        guard case .success(let lease)? = result else { Issue.record("expected a lease, got \(String(describing: result))"); return }
        #expect(lease.reservationId != nil)
        #expect(b.waiting.count == 0)
        #expect(scheduler.armedAt == nil, "nothing left to wait for")
    }

    @Test func waiters_areServedByPriority_thenArrival() throws {
        let clock = ManualClock(noon)
        let scheduler = ManualScheduler()
        let b = try broker(perMinute: 1, clock: clock, scheduler: scheduler)
        guard case .success = b.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("lease"); return }
        var order: [String] = []
        b.acquire(KeyRequest(model: freeModel, priority: .normal)) { if case .success = $0 { order.append("normal-1") } }
        b.acquire(KeyRequest(model: freeModel, priority: .low)) { if case .success = $0 { order.append("low") } }
        b.acquire(KeyRequest(model: freeModel, priority: .high)) { if case .success = $0 { order.append("high") } }
        b.acquire(KeyRequest(model: freeModel, priority: .normal)) { if case .success = $0 { order.append("normal-2") } }
        for minute in 1...4 {
            clock.set(noon + EpochMillis(minute) * 60_000)
            b.wake()
        }
        #expect(order == ["high", "normal-1", "normal-2", "low"])
    }

    @Test func failPolicy_returnsQuotaExhausted_withTheTimeItFrees() throws {
        let clock = ManualClock(noon)
        let b = try broker(perDay: 1, policy: .fail, clock: clock, scheduler: ManualScheduler())
        _ = b.acquireNow(KeyRequest(model: freeModel))
        var result: Result<KeyLease, KeyGrantFailure>?
        b.acquire(KeyRequest(model: freeModel)) { result = $0 }
        guard case .failure(.quotaExhausted(let shortage))? = result else { Issue.record("\(String(describing: result))"); return }
        #expect(shortage.retryAt == UTCDay.nextMidnight(after: noon))
        #expect(shortage.reason.contains("spent for today"), "\(shortage.reason)")
        // A paid model is not limited by the free quota.
        guard case .success = b.acquireNow(KeyRequest(model: "openai/gpt-4o")) else { Issue.record("paid model must lease"); return }
    }

    @Test func waitingPastMaxWait_failsWithWaitedTooLong() throws {
        let clock = ManualClock(noon)
        let scheduler = ManualScheduler()
        let b = try broker(perDay: 1, clock: clock, scheduler: scheduler)
        _ = b.acquireNow(KeyRequest(model: freeModel))
        var result: Result<KeyLease, KeyGrantFailure>?
        b.acquire(KeyRequest(model: freeModel)) { result = $0 }
        #expect(scheduler.armedAt == noon + 3_600_000, "max wait (1 h) comes before midnight")
        clock.set(noon + 3_600_000)
        b.wake()
        guard case .failure(.waitedTooLong)? = result else { Issue.record("\(String(describing: result))"); return }
    }

    @Test func release_refunds_andWakesAWaiter() throws {
        let clock = ManualClock(noon)
        let scheduler = ManualScheduler()
        let b = try broker(perDay: 1, clock: clock, scheduler: scheduler)
        guard case .success(let first) = b.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("lease"); return }
        var result: Result<KeyLease, KeyGrantFailure>?
        b.acquire(KeyRequest(model: freeModel)) { result = $0 }
        #expect(result == nil)
        b.release(first)
        guard case .success? = result else { Issue.record("the refund must go to the waiter: \(String(describing: result))"); return }
        #expect(try b.ledger.accountUsage("acct0", at: noon).usedToday == 1)
    }

    @Test func dailyCap429_marksTheAccountSpent_untilTheReset_acrossARestart() throws {
        let temp = TempLedgerDirectory()
        let path = temp.path
        let clock = ManualClock(noon)
        let b = try broker(perDay: 50, ledger: QuotaLedger(path: path), clock: clock)
        guard case .success(let lease) = b.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("lease"); return }
        let reset = UTCDay.nextMidnight(after: noon)
        b.complete(lease, KeyCallReport(status: 429, outcome: .rateLimited(resetAt: reset, retryAfterMs: nil), accountSpentUntil: reset))
        guard case .failure(.quotaExhausted(let s)) = b.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("must be spent"); return }
        #expect(s.retryAt == reset)
        // A new process (new broker, same file) knows it too.
        let restarted = try broker(perDay: 50, ledger: QuotaLedger(path: path), clock: clock)
        guard case .failure = restarted.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("restart forgot the 429"); return }
        clock.set(reset)
        guard case .success = restarted.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("usable after the reset"); return }
        let audit = try restarted.ledger.audit(since: nil, keyId: nil, limit: 100)
        #expect(audit.contains { $0.to == "cooling" && $0.reason.contains("X-RateLimit-Reset") })
        let events = try restarted.ledger.events(since: nil, limit: 100)
        #expect(events.contains { $0.kind == "account_exhausted" })
    }

    @Test func aCooldownWrittenByAnotherProcess_isHonoured() throws {
        let temp = TempLedgerDirectory()
        let path = temp.path
        let clock = ManualClock(noon)
        let one = try broker(keys: 2, ledger: QuotaLedger(path: path), clock: clock)
        let two = try broker(keys: 2, ledger: QuotaLedger(path: path), clock: clock)
        // Process one gets a 429 on key 0 with a 5-minute reset.
        var leased: KeyLease?
        for _ in 0..<2 {
            if case .success(let l) = one.acquireNow(KeyRequest(model: freeModel)), l.keyId == "k_0000" { leased = l } else { continue }
        }
        guard let lease = leased else { Issue.record("key 0 never leased"); return }
        one.complete(lease, KeyCallReport(status: 429, outcome: .rateLimited(resetAt: noon + 300_000, retryAfterMs: nil)))
        // Process two, whose memory still thinks key 0 is fine, must never lease it in that time.
        for _ in 0..<10 {
            guard case .success(let l) = two.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("key 1 should serve"); return }
            #expect(l.keyId == "k_0001")
            two.complete(l, .success())
        }
    }

    @Test func twoBrokersOnOneFile_interleaved_neverOverdraw() throws {
        let temp = TempLedgerDirectory()
        let path = temp.path
        let clock = ManualClock(noon)
        let brokers = try (0..<3).map { _ in try broker(perDay: 20, ledger: QuotaLedger(path: path), clock: clock) }
        var granted = 0
        for i in 0..<60 {
            clock.advance(by: 1)
            if case .success(let l) = brokers[i % 3].acquireNow(KeyRequest(model: freeModel)) {
                granted += 1
                brokers[i % 3].complete(l, .success())
            }
        }
        #expect(granted == 20)
    }

    @Test func reserveCapacity_isKeptForHighPriority_throughTheBroker() throws {
        let clock = ManualClock(noon)
        let b = try broker(perDay: 10, policy: .fail, clock: clock, reserve: 0.2)
        var normal = 0, high = 0
        while case .success = b.acquireNow(KeyRequest(model: freeModel, priority: .normal)) { normal += 1 }
        while case .success = b.acquireNow(KeyRequest(model: freeModel, priority: .high)) { high += 1 }
        #expect(normal == 8)
        #expect(high == 2)
    }

    @Test func healthTransitions_goToTheAuditLog_andAlertsToEvents() throws {
        let clock = ManualClock(noon)
        let b = try broker(perDay: nil, clock: clock)
        guard case .success(let lease) = b.acquireNow(KeyRequest(model: "openai/gpt-4o")) else { Issue.record("lease"); return }
        b.complete(lease, KeyCallReport(status: 401, outcome: .unauthorized(status: 401)))
        guard case .failure(.quotaExhausted(let s)) = b.acquireNow(KeyRequest(model: "openai/gpt-4o")) else { Issue.record("disabled key leased"); return }
        #expect(s.retryAt == nil, "a disabled key never recovers by itself")
        #expect(s.reason.contains("disabled"))
        let audit = try b.ledger.audit(since: nil, keyId: "k_0000", limit: 10)
        #expect(audit.last?.from == "active" && audit.last?.to == "disabled")
        #expect(try b.ledger.events(since: nil, limit: 10).contains { $0.kind == "key_disabled" })
        try b.enable(keyId: "k_0000", reason: "operator: rotated")
        guard case .success = b.acquireNow(KeyRequest(model: "openai/gpt-4o")) else { Issue.record("re-enabled key must lease"); return }
    }

    @Test func paidModelCalls_needNoReservation_andAreRecordedOnceSent() throws {
        let clock = ManualClock(noon)
        let b = try broker(perDay: 1, clock: clock)
        for _ in 0..<3 {
            guard case .success(let lease) = b.acquireNow(KeyRequest(model: "openai/gpt-4o")) else { Issue.record("paid model must lease"); return }
            #expect(lease.reservationId == nil)
            #expect(try b.ledger.committedCount(keyId: "k_0000") < 3)
            b.complete(lease, .success(latencyMs: 5, tokens: 12))
        }
        #expect(try b.ledger.committedCount(keyId: "k_0000") == 3)
        // A released (never sent) paid call leaves nothing behind.
        guard case .success(let unsent) = b.acquireNow(KeyRequest(model: "openai/gpt-4o")) else { Issue.record("lease"); return }
        b.release(unsent)
        #expect(try b.ledger.committedCount(keyId: "k_0000") == 3)
        // None of it touched the free quota (1 a day here).
        guard case .success = b.acquireNow(KeyRequest(model: freeModel)) else { Issue.record("the free quota must be intact"); return }
    }

    @Test func aRealLoopTimer_wakesTheWaiter() throws {
        let loop = try EventLoop()
        let clock = SystemWallClock()
        let scheduler = LoopWakeScheduler(loop: loop, clock: clock)
        var config = KeysConfig()
        config.pool.health.defaultCooldownMs = 30
        let resolved = makeKeys([(id: "k_0000", account: "a")], accounts: [KeyPoolAccount(name: "a", tier: .custom, limits: .unlimited)])
        let b = try KeyBroker(keys: resolved, config: config, ledger: QuotaLedger.inMemory(), clock: clock, scheduler: scheduler)
        scheduler.onWake = { b.wake() }
        guard case .success(let lease) = b.acquireNow(KeyRequest(model: "x")) else { Issue.record("lease"); return }
        b.complete(lease, KeyCallReport(status: 429, outcome: .rateLimited(resetAt: nil, retryAfterMs: nil)))
        var got: KeyLease?
        b.acquire(KeyRequest(model: "x")) { result in
            if case .success(let l) = result { got = l }
            scheduler.close()
        }
        #expect(got == nil)
        loop.run()
        #expect(got != nil, "the timer must wake the waiter once the 30 ms cooldown ends")
        try loop.close()
    }
}
