import Testing
@testable import ChimeraCore

/// The in-memory key pool (KeyPool.swift). Every time is an explicit epoch-millisecond value:
/// no clocks, no sleeps.
@Suite struct KeyPoolTests {
    /// 2026-11-29T00:00:00Z.
    static let day: EpochMillis = 1_795_910_400_000
    /// 2026-11-29T12:00:00Z.
    static let t0: EpochMillis = day + 12 * 3_600_000
    /// 2026-11-30T00:00:00Z.
    static let midnight: EpochMillis = day + UTCDay.millisPerDay

    static let freeModel = "meta-llama/llama-3.3-70b-instruct:free"
    static let paidModel = "openai/gpt-4o"

    // MARK: Helpers

    /// `n` keys, key `i` in account `account(i)` (by default its own, `acct<i>`).
    static func entries(_ n: Int, account: (Int) -> String = { "acct\($0)" }, limits: (Int) -> QuotaLimits = { _ in .unlimited }) -> [KeyPoolEntry] {
        (0..<n).map { KeyPoolEntry(id: "k\($0)", label: "key\($0)", masked: "sk-or-…\(1000 + $0)", account: account($0), limits: limits($0)) }
    }

    static func settings(_ strategy: KeySelectionStrategy = .roundRobin, reserve: Double = 0.1) -> KeyPoolSettings {
        var s = KeyPoolSettings()
        s.strategy = strategy
        s.reservedShare = reserve
        return s
    }

    /// A pool of `n` keys, each its own account with `limits` (default: none).
    static func pool(_ n: Int, limits: QuotaLimits = .unlimited, strategy: KeySelectionStrategy = .roundRobin, reserve: Double = 0.1, seed: UInt64 = 0x5EED, at now: EpochMillis = t0) -> KeyPool {
        let accounts = (0..<n).map { KeyPoolAccount(name: "acct\($0)", tier: .custom, limits: limits) }
        return KeyPool(accounts: accounts, keys: entries(n), settings: settings(strategy, reserve: reserve), seed: seed, now: now)
    }

    /// A lease for a chosen key, as ``KeyPool/select(model:priority:estimatedTokens:at:)`` would build it.
    static func lease(_ pool: KeyPool, key: Int, model: String = paidModel, priority: TaskPriority = .normal, tokens: Int = 0, at now: EpochMillis) -> KeyLease {
        KeyLease(keyIndex: key, keyId: pool.entries[key].id, account: pool.entries[key].account, model: model,
                 scoped: pool.isScoped(model), priority: priority, estimatedTokens: tokens, at: now)
    }

    /// Feeds `outcome` for key `key` as a sent request.
    @discardableResult
    static func feed(_ pool: KeyPool, key: Int, _ outcome: KeyOutcome, latencyMs: Int? = nil, at now: EpochMillis) -> [KeyPoolNotice] {
        let l = lease(pool, key: key, at: now)
        return pool.take(l, at: now) + pool.complete(l, outcome: outcome, latencyMs: latencyMs, at: now)
    }
}

/// Result helpers.
fileprivate extension KeyAcquisition {
    var lease: KeyLease? { if case .leased(let l) = self { l } else { nil } }
    var shortage: KeyShortage? { if case .unavailable(let s) = self { s } else { nil } }
}

fileprivate extension [KeyPoolNotice] {
    func events(_ kind: String) -> [String] {
        compactMap { if case .event(kind, _, _, let message) = $0 { message } else { nil } }
    }
}

fileprivate extension KeyPool {
    /// Acquires and returns the lease's key index, or nil.
    func key(_ model: String = KeyPoolTests.paidModel, priority: TaskPriority = .normal, tokens: Int = 0, at now: EpochMillis) -> Int? {
        acquire(model: model, priority: priority, estimatedTokens: tokens, at: now).0.lease?.keyIndex
    }
}

extension KeyPoolTests {
    // MARK: UTC day

    @Test func pool_utcMidnight_spentAtLastMillisecond_usableAtMidnightWithDailyReset() {
        let accounts = [KeyPoolAccount(name: "acct0", tier: .free)]
        let pool = KeyPool(accounts: accounts, keys: Self.entries(1), settings: Self.settings(reserve: 0), now: Self.day + 23 * 3_600_000)
        // 50 free-model requests, 4 s apart (15 per rolling minute, under the 20 limit).
        for i in 0..<50 {
            let at = Self.day + 23 * 3_600_000 + EpochMillis(i) * 4_000
            #expect(pool.key(Self.freeModel, at: at) == 0, "request \(i)")
        }
        let lastMs = Self.midnight - 1
        let (refused, _) = pool.acquire(model: Self.freeModel, at: lastMs)
        #expect(refused.shortage?.retryAt == Self.midnight)
        #expect(refused.shortage?.reason.contains("1 spent for today") == true)
        #expect(pool.status(at: lastMs)[0].accountUsedToday == 50)

        let (granted, notices) = pool.acquire(model: Self.freeModel, at: Self.midnight)
        #expect(granted.lease?.keyIndex == 0)
        let resets = notices.events("daily_reset")
        #expect(resets.count == 1)
        #expect(resets.first?.contains("2026-11-30") == true)
        #expect(pool.status(at: Self.midnight)[0].accountUsedToday == 1)
        #expect(pool.status(at: Self.midnight)[0].requestsToday == 1)
    }

    @Test func pool_advance_acrossMidnight_emitsOneDailyReset() {
        let pool = Self.pool(2)
        #expect(pool.advance(to: Self.midnight - 1).events("daily_reset").isEmpty)
        #expect(pool.advance(to: Self.midnight).events("daily_reset").count == 1)
        #expect(pool.advance(to: Self.midnight + 5).events("daily_reset").isEmpty)
        // Two days later in one step: one reset, dated the new day.
        #expect(pool.advance(to: Self.midnight + 2 * UTCDay.millisPerDay).events("daily_reset") == ["UTC day 2026-12-02 began; daily counts reset"])
    }

    @Test func pool_nextWakeup_isTheEarliestEndOfABlock() {
        let pool = Self.pool(3, limits: QuotaLimits(perDay: 1))
        Self.feed(pool, key: 0, .rateLimited(resetAt: Self.t0 + 90_000, retryAfterMs: nil), at: Self.t0)
        Self.feed(pool, key: 1, .rateLimited(resetAt: Self.t0 + 30_000, retryAfterMs: nil), at: Self.t0)
        #expect(pool.nextWakeup == Self.t0 + 30_000)
        pool.advance(to: Self.t0 + 30_000)
        #expect(pool.nextWakeup == Self.t0 + 90_000)
        pool.advance(to: Self.t0 + 90_000)
        // Key 2 is blocked for normal priority by the reserve (perDay 1 keeps 1): midnight.
        #expect(pool.nextWakeup == Self.midnight)
    }

    // MARK: Rolling minute

    @Test func pool_perMinute3_fourthAtT59999Refused_retryAtT60000_usableThen() {
        let pool = Self.pool(1, limits: QuotaLimits(perMinute: 3))
        let t = Self.t0
        for _ in 0..<3 { #expect(pool.key(Self.freeModel, at: t) == 0) }
        let refused = pool.acquire(model: Self.freeModel, at: t + 59_999).0.shortage
        #expect(refused?.retryAt == t + 60_000)
        #expect(refused?.reason.contains("1 at the per-minute limit") == true)
        #expect(pool.key(Self.freeModel, at: t + 60_000) == 0)
        // The three at t left the window together: two more fit, the fourth does not.
        #expect(pool.key(Self.freeModel, at: t + 60_000) == 0)
        #expect(pool.key(Self.freeModel, at: t + 60_000) == 0)
        #expect(pool.acquire(model: Self.freeModel, at: t + 60_001).0.shortage?.retryAt == t + 120_000)
    }

    @Test func pool_perMinute_staggered_eachSlotFreesSixtySecondsAfterItsRequest() {
        let pool = Self.pool(1, limits: QuotaLimits(perMinute: 3))
        let t = Self.t0
        for i in 0..<3 { #expect(pool.key(Self.freeModel, at: t + EpochMillis(i) * 10_000) == 0) }
        #expect(pool.acquire(model: Self.freeModel, at: t + 30_000).0.shortage?.retryAt == t + 60_000)
        #expect(pool.key(Self.freeModel, at: t + 60_000) == 0)
        #expect(pool.acquire(model: Self.freeModel, at: t + 60_000).0.shortage?.retryAt == t + 70_000)
        #expect(pool.acquire(model: Self.freeModel, at: t + 69_999).0.shortage?.retryAt == t + 70_000)
        #expect(pool.key(Self.freeModel, at: t + 70_000) == 0)
    }

    @Test func pool_perMinute_unscopedRequestsDoNotCount() {
        let pool = Self.pool(1, limits: QuotaLimits(perMinute: 3))
        for _ in 0..<100 { #expect(pool.key(Self.paidModel, at: Self.t0) == 0) }
        for _ in 0..<3 { #expect(pool.key(Self.freeModel, at: Self.t0) == 0) }
        #expect(pool.key(Self.freeModel, at: Self.t0) == nil)
        #expect(pool.key(Self.paidModel, at: Self.t0) == 0)
    }

    // MARK: Tokens per minute

    @Test func pool_tokensPerMinute_requestThatDoesNotFitWaitsForTheWindow() {
        let pool = Self.pool(1, limits: QuotaLimits(tokensPerMinute: 1_000))
        let t = Self.t0
        #expect(pool.key(Self.freeModel, tokens: 600, at: t) == 0)
        // 600 + 600 > 1000: refused until the first request leaves the window.
        let refused = pool.acquire(model: Self.freeModel, estimatedTokens: 600, at: t + 1).0.shortage
        #expect(refused?.retryAt == t + 60_000)
        #expect(refused?.reason == "no key can serve \(Self.freeModel) now (1 key: 1 without room for 600 tokens this minute); next change in 1m 0s")
        // 600 + 400 = 1000 fits exactly; then the window is full for any request.
        #expect(pool.key(Self.freeModel, tokens: 400, at: t + 2) == 0)
        let full = pool.acquire(model: Self.freeModel, estimatedTokens: 0, at: t + 3).0.shortage
        #expect(full?.retryAt == t + 60_000)
        // At t + 60 s the 600 are gone: 400 + 600 fits.
        #expect(pool.key(Self.freeModel, tokens: 600, at: t + 60_000) == 0)
        // Unscoped requests never count tokens.
        #expect(pool.key(Self.paidModel, tokens: 1_000_000, at: t + 60_000) == 0)
    }

    @Test func pool_tokensPerMinute_expiredTokensFreeRoom_withoutOtherActivity() {
        // The key never filled its window, so nothing re-evaluated it; its old tokens must still expire.
        let pool = Self.pool(1, limits: QuotaLimits(tokensPerMinute: 1_000))
        let t = Self.t0
        #expect(pool.key(Self.freeModel, tokens: 600, at: t) == 0)
        #expect(pool.key(Self.freeModel, tokens: 600, at: t + 59_999) == nil)
        #expect(pool.key(Self.freeModel, tokens: 600, at: t + 60_000) == 0)
        #expect(pool.key(Self.freeModel, tokens: 600, at: t + 180_000) == 0)
        #expect(pool.key(Self.freeModel, tokens: 400, at: t + 180_001) == 0)
        #expect(pool.key(Self.freeModel, tokens: 1, at: t + 180_002) == nil)
    }

    @Test func pool_tokensPerMinute_selectionFindsAKeyWithRoom() {
        // Round robin would pick key 0 next, but only key 1 has room for 500 tokens.
        let pool = Self.pool(2, limits: QuotaLimits(tokensPerMinute: 1_000))
        let t = Self.t0
        #expect(pool.key(Self.freeModel, tokens: 800, at: t) == 0)
        #expect(pool.key(Self.freeModel, tokens: 100, at: t) == 1)
        #expect(pool.key(Self.freeModel, tokens: 500, at: t) == 1)
        #expect(pool.acquire(model: Self.freeModel, estimatedTokens: 500, at: t).0.shortage?.retryAt == t + 60_000)
        #expect(pool.key(Self.freeModel, tokens: 200, at: t) == 0)
    }

    // MARK: Reserve

    @Test func pool_reserve_normalGets45_highTheLast5_thenBothRefusedUntilMidnight() {
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acct0", tier: .free)], keys: Self.entries(1),
                           settings: Self.settings(reserve: 0.1), now: Self.t0)
        var t = Self.t0
        func next() -> EpochMillis { t += 4_000; return t }
        for i in 0..<45 { #expect(pool.key(Self.freeModel, priority: i % 2 == 0 ? .normal : .low, at: next()) == 0, "request \(i)") }
        for priority in [TaskPriority.low, .normal] {
            let refused = pool.acquire(model: Self.freeModel, priority: priority, at: next()).0.shortage
            #expect(refused?.retryAt == Self.midnight)
            #expect(refused?.reason.contains("1 holding the reserve for high priority") == true)
        }
        #expect(pool.usableCounts == (any: 1, scoped: 0, scopedHigh: 1))
        for i in 0..<5 { #expect(pool.key(Self.freeModel, priority: i == 4 ? .critical : .high, at: next()) == 0, "reserved \(i)") }
        for priority in [TaskPriority.normal, .high, .critical] {
            let refused = pool.acquire(model: Self.freeModel, priority: priority, at: next()).0.shortage
            #expect(refused?.retryAt == Self.midnight)
            #expect(refused?.reason.contains("1 spent for today") == true)
        }
        #expect(pool.status(at: t)[0].accountUsedToday == 50)
        // Paid models are not held back.
        #expect(pool.key(Self.paidModel, at: next()) == 0)
    }

    @Test func pool_reserveZero_normalPriorityGetsEverything() {
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acct0", tier: .free)], keys: Self.entries(1), settings: Self.settings(reserve: 0), now: Self.t0)
        for i in 0..<50 { #expect(pool.key(Self.freeModel, at: Self.t0 + EpochMillis(i) * 4_000) == 0) }
        #expect(pool.key(Self.freeModel, priority: .critical, at: Self.t0 + 200_000) == nil)
    }

    // MARK: Strategies

    @Test func pool_roundRobin_fiveKeys1000Requests_exactly200Each_inTurn() {
        for model in [Self.freeModel, Self.paidModel] {
            let pool = Self.pool(5)
            var counts = [Int](repeating: 0, count: 5)
            for i in 0..<1_000 {
                guard let k = pool.key(model, at: Self.t0 + EpochMillis(i)) else { Issue.record("no key at \(i)"); return }
                #expect(k == i % 5)
                counts[k] += 1
            }
            #expect(counts == [200, 200, 200, 200, 200])
        }
    }

    @Test func pool_peek_answersLikeSelect_withoutMovingTheRotation() {
        // JHADE asks whether a key could serve before every call; asking must not skip keys.
        let pool = Self.pool(2)
        var counts = [0, 0]
        for i in 0..<10 {
            guard case .leased = pool.peek(model: Self.freeModel, at: Self.t0 + EpochMillis(i)).0,
                  let k = pool.key(Self.freeModel, at: Self.t0 + EpochMillis(i)) else { Issue.record("no key at \(i)"); return }
            counts[k] += 1
        }
        #expect(counts == [5, 5])
    }

    @Test func pool_leastUsed_picksFewestRequests_andBalancesUnevenPreload() {
        let pool = Self.pool(5, strategy: .leastUsed)
        let preload = [10, 0, 5, 2, 7]
        var t = Self.t0
        for (k, n) in preload.enumerated() {
            for _ in 0..<n { t += 1; _ = pool.take(Self.lease(pool, key: k, at: t), at: t) }
        }
        #expect(pool.status(at: t).map(\.requestsToday) == preload)
        for i in 0..<100 {
            t += 1
            let before = pool.status(at: t).map(\.requestsToday)
            guard let k = pool.key(Self.freeModel, at: t) else { Issue.record("no key at \(i)"); return }
            #expect(before[k] == before.min(), "request \(i) took key \(k) with \(before[k]) requests; counts \(before)")
        }
        let after = pool.status(at: t).map(\.requestsToday)
        #expect(after.reduce(0, +) == 124)
        #expect(after.max()! - after.min()! <= 1, "\(after)")
    }

    @Test func pool_leastUsed_releaseMakesKeyLeastUsedAgain() {
        let pool = Self.pool(3, strategy: .leastUsed)
        let t = Self.t0
        let leases = (0..<3).compactMap { _ in pool.acquire(model: Self.paidModel, at: t).0.lease }
        #expect(Set(leases.map(\.keyIndex)) == [0, 1, 2])
        _ = pool.release(leases[1], at: t + 1)
        #expect(pool.key(at: t + 2) == leases[1].keyIndex)
    }

    @Test func pool_performance_prefersFastSuccessfulKey_butStillSpreads() {
        let pool = Self.pool(8, strategy: .performance, seed: 7)
        var counts = [Int](repeating: 0, count: 8)
        var t = Self.t0
        for i in 0..<2_000 {
            t += 1_000
            guard let l = pool.acquire(model: Self.paidModel, at: t).0.lease else { Issue.record("no key at \(i)"); return }
            if i >= 500 { counts[l.keyIndex] += 1 }
            _ = pool.complete(l, outcome: .success, latencyMs: l.keyIndex == 0 ? 100 : 1_500, at: t + 1)
        }
        let share = Double(counts[0]) / 1_500
        // Key 0 wins whenever it is among the 4 sampled (about 41 %), far above 1/8 but not all.
        #expect(share > 0.3 && share < 0.6, "key 0 share \(share), counts \(counts)")
        #expect(counts.allSatisfy { $0 > 0 }, "\(counts)")
    }

    @Test func pool_performance_prefersKeyWithBetterSuccessRate() {
        var settings = Self.settings(.performance)
        settings.health.errorWindow = 10_000  // keep every key selectable: this is about preference, not suspension
        let pool = KeyPool(accounts: [], keys: Self.entries(8), settings: settings, seed: 11, now: Self.t0)
        var rng = SplitMix64(seed: 99)
        var counts = [Int](repeating: 0, count: 8)
        var t = Self.t0
        for i in 0..<2_000 {
            t += 1_000
            guard let l = pool.acquire(model: Self.paidModel, at: t).0.lease else { Issue.record("no key at \(i)"); return }
            if i >= 500 { counts[l.keyIndex] += 1 }
            let fails = l.keyIndex != 0 && rng.chance(2, in: 5)
            _ = pool.complete(l, outcome: fails ? .failure("HTTP 500") : .success, latencyMs: 300, at: t + 1)
        }
        let share = Double(counts[0]) / 1_500
        #expect(share > 0.3 && share < 0.9, "key 0 share \(share), counts \(counts)")
        #expect(counts[1...].allSatisfy { $0 < counts[0] }, "\(counts)")
        #expect(counts.filter { $0 > 0 }.count >= 5, "\(counts)")
    }

    @Test func pool_performance_smallPool_keyWithA429StillGetsSomeTraffic() {
        // Two keys, fewer than the sample size: the better key must not take every request,
        // or the other's success rate could never recover.
        let pool = Self.pool(2, strategy: .performance, seed: 13)
        Self.feed(pool, key: 1, .rateLimited(resetAt: nil, retryAfterMs: nil), at: Self.t0)
        Self.feed(pool, key: 0, .success, at: Self.t0)
        let after = Self.t0 + KeyHealthPolicy().defaultCooldownMs
        var counts = [0, 0]
        for i in 0..<400 {
            if case .leased(let l) = pool.select(model: Self.paidModel, at: after + EpochMillis(i)).0 { counts[l.keyIndex] += 1 }
        }
        #expect(counts[0] + counts[1] == 400)
        #expect(counts[0] > counts[1], "\(counts)")
        #expect(counts[1] > 0, "\(counts)")
    }

    @Test func pool_adaptive_prefersSuccessfulKeys() {
        var settings = Self.settings(.adaptive)
        settings.health.errorWindow = 10_000
        let pool = KeyPool(accounts: [], keys: Self.entries(2), settings: settings, seed: 3, now: Self.t0)
        var t = Self.t0
        for _ in 0..<30 {
            t += 1
            Self.feed(pool, key: 0, .success, at: t)
            Self.feed(pool, key: 1, .failure("HTTP 502"), at: t)
        }
        var counts = [0, 0]
        for _ in 0..<400 {
            t += 1
            if case .leased(let l) = pool.select(model: Self.paidModel, at: t).0 { counts[l.keyIndex] += 1 }
        }
        #expect(counts[0] + counts[1] == 400)
        #expect(counts[0] >= 380, "\(counts)")
    }

    @Test func pool_adaptive_prefersAccountsWithMoreUnusedQuota() {
        let limits = QuotaLimits(perDay: 1_000)
        let accounts = [KeyPoolAccount(name: "acct0", tier: .custom, limits: limits), KeyPoolAccount(name: "acct1", tier: .custom, limits: limits)]
        let pool = KeyPool(accounts: accounts, keys: Self.entries(2), settings: Self.settings(.adaptive), seed: 5, now: Self.t0)
        _ = pool.syncAccount("acct0", usedToday: 800, window: [], spentUntil: nil, at: Self.t0)
        var counts = [0, 0]
        for i in 0..<400 {
            if case .leased(let l) = pool.select(model: Self.freeModel, at: Self.t0 + EpochMillis(i)).0 { counts[l.keyIndex] += 1 }
        }
        #expect(counts[0] + counts[1] == 400)
        // acct0 has 200 of 1000 left, acct1 all 1000: acct1 is drawn most of the time (about 90 %), acct0 still sometimes.
        #expect(counts[1] >= 320, "\(counts)")
        #expect(counts[0] > 0, "\(counts)")
        // For unscoped models the quota does not matter: with equal history both are drawn alike.
        var paid = [0, 0]
        for i in 0..<400 {
            if case .leased(let l) = pool.select(model: Self.paidModel, at: Self.t0 + EpochMillis(i)).0 { paid[l.keyIndex] += 1 }
        }
        #expect(paid.allSatisfy { $0 > 120 }, "\(paid)")
    }

    // MARK: Skipping

    @Test(arguments: KeySelectionStrategy.allCases)
    func pool_coolingAndDisabledKeys_neverChosenWhileOthersAre(strategy: KeySelectionStrategy) {
        let pool = Self.pool(4, strategy: strategy)
        let t = Self.t0
        Self.feed(pool, key: 1, .rateLimited(resetAt: t + 600_000, retryAfterMs: nil), at: t)
        _ = pool.disable(2, reason: "test", at: t)
        #expect(pool.usableCounts == (any: 2, scoped: 2, scopedHigh: 2))
        var seen: Set<Int> = []
        for i in 0..<200 {
            let model = i % 2 == 0 ? Self.freeModel : Self.paidModel
            guard let k = pool.key(model, at: t + 1 + EpochMillis(i) * 1_000) else { Issue.record("no key at \(i)"); return }
            seen.insert(k)
        }
        #expect(seen == [0, 3])
        // After the cooldown key 1 is back; key 2 stays disabled.
        #expect(pool.status(at: t + 600_000).map(\.state.name) == ["active", "active", "disabled", "active"])
        #expect(pool.usableCounts == (any: 3, scoped: 3, scopedHigh: 3))
        var later: Set<Int> = []
        for i in 0..<200 { if let k = pool.key(at: t + 600_000 + EpochMillis(i)) { later.insert(k) } }
        // `performance` and `adaptive` may still prefer the keys without a 429 on record.
        #expect(later.isSubset(of: [0, 1, 3]) && later.isSuperset(of: [0, 3]), "\(later)")
        if strategy == .roundRobin || strategy == .leastUsed { #expect(later == [0, 1, 3]) }
    }

    @Test func pool_spentKeys_skipped_othersServe() {
        let accounts = (0..<3).map { KeyPoolAccount(name: "acct\($0)", tier: .free) }
        let pool = KeyPool(accounts: accounts, keys: Self.entries(3), settings: Self.settings(reserve: 0), now: Self.t0)
        _ = pool.syncAccount("acct1", usedToday: 50, window: [], spentUntil: nil, at: Self.t0)
        var seen: Set<Int> = []
        for i in 0..<20 { if let k = pool.key(Self.freeModel, at: Self.t0 + EpochMillis(i) * 4_000) { seen.insert(k) } }
        #expect(seen == [0, 2])
    }

    // MARK: Exhaustion

    @Test func pool_exhaustion_reasonCountsEachCause_retryAtEarliestRecovery() {
        let accounts = (0..<3).map { KeyPoolAccount(name: "acct\($0)", tier: .free) }
        let pool = KeyPool(accounts: accounts, keys: Self.entries(3), settings: Self.settings(), now: Self.t0)
        let t = Self.t0
        _ = pool.disable(0, reason: "test", at: t)
        Self.feed(pool, key: 1, .rateLimited(resetAt: nil, retryAfterMs: 30_000), at: t)
        _ = pool.syncAccount("acct2", usedToday: 50, window: [], spentUntil: nil, at: t)
        let shortage = pool.acquire(model: Self.freeModel, at: t).0.shortage
        #expect(shortage?.retryAt == t + 30_000)
        #expect(shortage?.reason == "no key can serve \(Self.freeModel) now (3 keys: 1 cooling, 1 disabled, 1 spent for today); next change in 30s")
        #expect(shortage?.description == shortage?.reason)
        // Once key 1 cools down, it serves.
        #expect(pool.key(Self.freeModel, at: t + 30_000) == 1)
    }

    @Test func pool_exhaustion_allKeysDisabled_noRetryAt() {
        let pool = Self.pool(2)
        _ = pool.disable(0, reason: "test", at: Self.t0)
        Self.feed(pool, key: 1, .unauthorized(status: 401), at: Self.t0)
        let shortage = pool.acquire(model: Self.paidModel, at: Self.t0 + 1).0.shortage
        #expect(shortage != nil)
        // Nothing recovers by itself: no time to wait for.
        #expect(shortage?.retryAt == nil)
        #expect(shortage?.reason == "no key can serve \(Self.paidModel) now (2 keys: 2 disabled); none will recover by itself")
    }

    @Test func pool_exhaustion_noKeysConfigured() {
        let pool = KeyPool(accounts: [], keys: [], now: Self.t0)
        let shortage = pool.acquire(model: Self.paidModel, at: Self.t0).0.shortage
        #expect(shortage?.reason == "no API keys are configured")
        #expect(shortage?.retryAt == nil)
    }

    @Test func pool_halfOpenProbe_oneLeaseAtATime_releaseReopens_successRestores() {
        let pool = Self.pool(1)
        var t = Self.t0
        for _ in 0..<10 { t += 1; Self.feed(pool, key: 0, .failure("HTTP 500"), at: t) }
        let until = t + KeyHealthPolicy().suspendMs
        #expect(pool.status(at: t)[0].state == .suspended(until: until))
        #expect(pool.acquire(model: Self.paidModel, at: until - 1).0.shortage?.retryAt == until)
        guard let probe = pool.acquire(model: Self.paidModel, at: until).0.lease else { Issue.record("no probe"); return }
        let second = pool.acquire(model: Self.paidModel, at: until + 1).0.shortage
        #expect(second?.reason.contains("1 probing") == true)
        _ = pool.release(probe, at: until + 2)
        guard let probe2 = pool.acquire(model: Self.paidModel, at: until + 3).0.lease else { Issue.record("slot did not reopen"); return }
        #expect(pool.acquire(model: Self.paidModel, at: until + 4).0.lease == nil)
        let notices = pool.complete(probe2, outcome: .success, at: until + 5)
        #expect(notices.events("key_enabled").count == 1)
        #expect(pool.key(at: until + 6) == 0)
        #expect(pool.key(at: until + 7) == 0)
    }

    // MARK: Unscoped models

    @Test func pool_unscopedModels_ignoreRequestQuotas_butRespectHealth() {
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acct0", tier: .free), KeyPoolAccount(name: "acct1", tier: .free)],
                           keys: Self.entries(2), settings: Self.settings(), now: Self.t0)
        _ = pool.syncAccount("acct0", usedToday: 50, window: [], spentUntil: nil, at: Self.t0)
        _ = pool.markAccountSpent("acct1", until: Self.midnight, at: Self.t0)
        #expect(pool.key(Self.freeModel, at: Self.t0) == nil)
        var seen: Set<Int> = []
        for i in 0..<200 { if let k = pool.key(Self.paidModel, at: Self.t0 + EpochMillis(i)) { seen.insert(k) } }
        #expect(seen == [0, 1])
        #expect(pool.status(at: Self.t0 + 200).map(\.accountUsedToday) == [50, 0])
        #expect(pool.status(at: Self.t0 + 200).map(\.requestsToday) == [100, 100])
        // Health still applies.
        Self.feed(pool, key: 0, .paymentRequired, at: Self.t0 + 300)
        _ = pool.disable(1, reason: "test", at: Self.t0 + 300)
        let shortage = pool.acquire(model: Self.paidModel, at: Self.t0 + 301).0.shortage
        #expect(shortage?.reason.contains("1 disabled, 1 no_credits") == true)
        #expect(shortage?.retryAt == Self.midnight)
    }

    @Test func pool_quotaModelPatterns_decideWhatIsScoped() {
        var settings = Self.settings(reserve: 0)
        settings.quotaModels = QuotaModelPatterns(["acme/*"])
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acct0", tier: .custom, limits: QuotaLimits(perDay: 1))], keys: Self.entries(1), settings: settings, now: Self.t0)
        #expect(pool.isScoped("acme/model"))
        #expect(!pool.isScoped(Self.freeModel))
        #expect(pool.key("acme/model", at: Self.t0) == 0)
        #expect(pool.key("acme/model", at: Self.t0) == nil)
        #expect(pool.key(Self.freeModel, at: Self.t0) == 0)
    }

    // MARK: Release

    @Test func pool_release_refundsCountAndWindow_keyUsableAgain() {
        let pool = Self.pool(1, limits: QuotaLimits(perDay: 5, perMinute: 3), reserve: 0)
        let t = Self.t0
        var leases: [KeyLease] = []
        for i in 0..<3 { if let l = pool.acquire(model: Self.freeModel, estimatedTokens: 10, at: t + EpochMillis(i)).0.lease { leases.append(l) } }
        #expect(leases.count == 3)
        #expect(pool.acquire(model: Self.freeModel, at: t + 3).0.lease == nil)
        #expect(pool.status(at: t + 3)[0].minuteCount == 3)
        _ = pool.release(leases[1], at: t + 4)
        let s = pool.status(at: t + 4)[0]
        #expect(s.accountUsedToday == 2)
        #expect(s.minuteCount == 2)
        #expect(s.requestsToday == 2)
        #expect(pool.key(Self.freeModel, at: t + 5) == 0)
        // Daily: two more reach 5 (with the refund), the sixth is refused.
        #expect(pool.key(Self.freeModel, at: t + 120_000) == 0)
        #expect(pool.key(Self.freeModel, at: t + 120_001) == 0)
        #expect(pool.acquire(model: Self.freeModel, at: t + 120_002).0.shortage?.retryAt == Self.midnight)
        #expect(pool.status(at: t + 120_002)[0].accountUsedToday == 5)
    }

    @Test func pool_release_ofUnscopedLease_refundsOnlyTheRequestCount() {
        let pool = Self.pool(1, limits: QuotaLimits(perDay: 5), reserve: 0)
        guard let l = pool.acquire(model: Self.paidModel, at: Self.t0).0.lease else { Issue.record("no lease"); return }
        #expect(!l.scoped)
        _ = pool.release(l, at: Self.t0 + 1)
        #expect(pool.status(at: Self.t0 + 1)[0].requestsToday == 0)
        #expect(pool.status(at: Self.t0 + 1)[0].accountUsedToday == 0)
    }

    @Test func pool_selectThenTake_countingQuotaFalse_doesNotDoubleCount() {
        let pool = Self.pool(1, limits: QuotaLimits(perDay: 10), reserve: 0)
        guard case .leased(let l) = pool.select(model: Self.freeModel, at: Self.t0).0 else { Issue.record("no lease"); return }
        #expect(pool.status(at: Self.t0)[0].accountUsedToday == 0)
        _ = pool.syncAccount("acct0", usedToday: 1, window: [(Self.t0, 0)], spentUntil: nil, at: Self.t0)
        _ = pool.take(l, at: Self.t0, countingQuota: false)
        let s = pool.status(at: Self.t0)[0]
        #expect(s.accountUsedToday == 1)
        #expect(s.minuteCount == 1)
        #expect(s.requestsToday == 1)
    }

    // MARK: Accounts

    @Test func pool_sharedAccount_twoKeysShareItsFiftyPerDay() {
        let entries = Self.entries(2, account: { _ in "acme" })
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acme", tier: .free)], keys: entries, settings: Self.settings(reserve: 0.1), now: Self.t0)
        var counts = [0, 0]
        var t = Self.t0
        for _ in 0..<45 {
            t += 4_000
            if let k = pool.key(Self.freeModel, at: t) { counts[k] += 1 }
        }
        #expect(counts == [23, 22])
        #expect(pool.key(Self.freeModel, at: t + 4_000) == nil)
        for _ in 0..<5 { t += 4_000; #expect(pool.key(Self.freeModel, priority: .high, at: t) != nil) }
        let shortage = pool.acquire(model: Self.freeModel, priority: .high, at: t + 4_000).0.shortage
        #expect(shortage?.reason.contains("2 spent for today") == true)
        let status = pool.status(at: t + 4_000)
        #expect(status.map(\.accountUsedToday) == [50, 50])
        #expect(status.map(\.requestsToday).reduce(0, +) == 50)
    }

    @Test func pool_sharedAccount_perMinuteIsSharedToo() {
        let entries = Self.entries(3, account: { _ in "acme" })
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acme", tier: .free)], keys: entries, settings: Self.settings(), now: Self.t0)
        for _ in 0..<20 { #expect(pool.key(Self.freeModel, at: Self.t0) != nil) }
        #expect(pool.acquire(model: Self.freeModel, at: Self.t0 + 1).0.shortage?.retryAt == Self.t0 + 60_000)
    }

    @Test func pool_perKeyLimits_insideAnAccount() {
        let entries = Self.entries(2, account: { _ in "acme" }, limits: { $0 == 0 ? QuotaLimits(perDay: 10) : .unlimited })
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acme", tier: .free)], keys: entries, settings: Self.settings(reserve: 0), now: Self.t0)
        var counts = [0, 0]
        var t = Self.t0
        for _ in 0..<50 {
            t += 4_000
            guard let k = pool.key(Self.freeModel, at: t) else { Issue.record("refused at \(t)"); return }
            counts[k] += 1
        }
        #expect(counts == [10, 40])
        let shortage = pool.acquire(model: Self.freeModel, at: t + 4_000).0.shortage
        #expect(shortage?.retryAt == Self.midnight)
        #expect(shortage?.reason.contains("2 spent for today") == true)
    }

    @Test func pool_perKeyLimits_keySpentWhileAccountHasRoom_reasonAndRetry() {
        let entries = Self.entries(1, account: { _ in "acme" }, limits: { _ in QuotaLimits(perDay: 2) })
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acme", tier: .free)], keys: entries, settings: Self.settings(reserve: 0), now: Self.t0)
        #expect(pool.key(Self.freeModel, at: Self.t0) == 0)
        #expect(pool.key(Self.freeModel, at: Self.t0 + 1) == 0)
        let shortage = pool.acquire(model: Self.freeModel, at: Self.t0 + 2).0.shortage
        #expect(shortage?.retryAt == Self.midnight)
        #expect(shortage?.reason.contains("1 spent for today") == true)
    }

    @Test func pool_syncAccount_ledgerWithHigherCounts_makesKeysUnavailable() {
        let entries = Self.entries(2, account: { _ in "acme" })
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acme", tier: .free)], keys: entries, settings: Self.settings(), now: Self.t0)
        #expect(pool.key(Self.freeModel, at: Self.t0) != nil)
        // Another process used 39 more: 40 of 50 is the low-quota mark (20 % left).
        let low = pool.syncAccount("acme", usedToday: 40, window: [], spentUntil: nil, at: Self.t0 + 1)
        #expect(low.events("quota_low") == ["account acme has 10 of 50 requests left today"])
        let exhausted = pool.syncAccount("acme", usedToday: 50, window: [], spentUntil: nil, at: Self.t0 + 2)
        #expect(exhausted.events("account_exhausted") == ["account acme used all 50 requests for today; resets at 00:00 UTC"])
        #expect(pool.usableCounts == (any: 2, scoped: 0, scopedHigh: 0))
        #expect(pool.acquire(model: Self.freeModel, priority: .critical, at: Self.t0 + 3).0.shortage?.retryAt == Self.midnight)
        // A window full from the ledger blocks until its oldest entry is a minute old.
        _ = pool.syncAccount("acme", usedToday: 10, window: (0..<20).map { (Self.t0 + 10 + EpochMillis($0), 0) }, spentUntil: nil, at: Self.t0 + 30)
        #expect(pool.acquire(model: Self.freeModel, at: Self.t0 + 31).0.shortage?.retryAt == Self.t0 + 60_010)
        #expect(pool.key(Self.freeModel, at: Self.t0 + 60_010) != nil)
        // Unknown accounts are ignored.
        #expect(pool.syncAccount("nobody", usedToday: 99, window: [], spentUntil: nil, at: Self.t0).isEmpty)
    }

    @Test func pool_syncKey_perKeyLimitFromLedger() {
        let entries = Self.entries(2, limits: { $0 == 0 ? QuotaLimits(perDay: 5) : .unlimited })
        let pool = KeyPool(accounts: [], keys: entries, settings: Self.settings(.roundRobin, reserve: 0), now: Self.t0)
        pool.syncKey(0, usedToday: 5, window: [], at: Self.t0)
        for i in 0..<10 { #expect(pool.key(Self.freeModel, at: Self.t0 + 1 + EpochMillis(i) * 4_000) == 1) }
    }

    @Test func pool_markAccountSpent_untilATime_neverShortened() {
        let pool = KeyPool(accounts: [KeyPoolAccount(name: "acct0", tier: .credits)], keys: Self.entries(1), now: Self.t0)
        let until = Self.t0 + 2 * 3_600_000
        let notices = pool.markAccountSpent("acct0", until: until, at: Self.t0)
        #expect(notices.events("account_exhausted").first?.contains("2026-11-29T14:00:00Z") == true)
        let shortage = pool.acquire(model: Self.freeModel, priority: .critical, at: Self.t0 + 1).0.shortage
        #expect(shortage?.retryAt == until)
        #expect(shortage?.reason.contains("1 spent (upstream)") == true)
        #expect(pool.status(at: Self.t0 + 1)[0].spentUntil == until)
        // An earlier time does not shorten it.
        #expect(pool.markAccountSpent("acct0", until: Self.t0 + 60_000, at: Self.t0 + 2).isEmpty)
        #expect(pool.acquire(model: Self.freeModel, at: Self.t0 + 60_000).0.shortage?.retryAt == until)
        // Paid models still work.
        #expect(pool.key(Self.paidModel, at: Self.t0 + 3) == 0)
        #expect(pool.key(Self.freeModel, at: until - 1) == nil)
        #expect(pool.key(Self.freeModel, at: until) == 0)
        #expect(pool.status(at: until)[0].spentUntil == nil)
        #expect(pool.markAccountSpent("nobody", until: until, at: Self.t0).isEmpty)
    }

    // MARK: Status

    @Test func pool_status_reportsEveryKeysStateAndCounts() {
        let accounts = [KeyPoolAccount(name: "acme", tier: .credits), KeyPoolAccount(name: "solo", tier: .free)]
        let entries = [
            KeyPoolEntry(id: "k_a", label: "a", masked: "sk-or-…aaaa", account: "acme"),
            KeyPoolEntry(id: "k_b", label: nil, masked: "sk-or-…bbbb", account: "acme", limits: QuotaLimits(perDay: 7)),
            KeyPoolEntry(id: "k_c", label: "c", masked: "sk-or-…cccc", account: "solo"),
            KeyPoolEntry(id: "k_d", label: "d", masked: "sk-or-…dddd", account: "implicit"),
        ]
        let pool = KeyPool(accounts: accounts, keys: entries, settings: Self.settings(), now: Self.t0)
        #expect(pool.accounts.map(\.name) == ["acme", "solo", "implicit"])
        #expect(pool.index(ofKey: "k_c") == 2)
        #expect(pool.index(ofKey: "k_zzz") == nil)
        let t = Self.t0
        for i in 0..<3 { _ = pool.take(Self.lease(pool, key: 0, model: Self.freeModel, at: t + EpochMillis(i)), at: t + EpochMillis(i)) }
        _ = pool.take(Self.lease(pool, key: 1, model: Self.paidModel, at: t + 5), at: t + 5)
        Self.feed(pool, key: 2, .rateLimited(resetAt: t + 90_000, retryAfterMs: nil), at: t + 6)
        _ = pool.disable(3, reason: "test", at: t + 7)
        _ = pool.markAccountSpent("solo", until: t + 3_600_000, at: t + 8)

        let s = pool.status(at: t + 10)
        #expect(s.map(\.entry) == entries)
        #expect(s.map(\.tier) == [.credits, .credits, .free, .free])
        #expect(s.map(\.state) == [.active, .active, .cooling(until: t + 90_000), .disabled(byOperator: true)])
        #expect(s.map(\.accountUsedToday) == [3, 3, 0, 0])
        #expect(s.map(\.accountLimits) == [QuotaLimits(perDay: 1_000, perMinute: 20), QuotaLimits(perDay: 1_000, perMinute: 20), QuotaLimits(perDay: 50, perMinute: 20), QuotaLimits(perDay: 50, perMinute: 20)])
        #expect(s.map(\.minuteCount) == [3, 3, 0, 0])
        #expect(s.map(\.spentUntil) == [nil, nil, t + 3_600_000, nil])
        #expect(s.map(\.requestsToday) == [3, 1, 1, 0])
        // A minute later the window is empty; the next day everything daily is zero.
        #expect(pool.status(at: t + 60_002).map(\.minuteCount) == [0, 0, 0, 0])
        let tomorrow = pool.status(at: Self.midnight + 1)
        #expect(tomorrow.map(\.accountUsedToday) == [0, 0, 0, 0])
        #expect(tomorrow.map(\.requestsToday) == [0, 0, 0, 0])
        #expect(tomorrow.map(\.state) == [.active, .active, .active, .disabled(byOperator: true)])
    }

    // MARK: Scale

    @Test(arguments: KeySelectionStrategy.allCases)
    func pool_thousandKeys_mostBlocked_selectsOnlyUsableOnes(strategy: KeySelectionStrategy) {
        let n = 1_000
        let accounts = (0..<n).map { KeyPoolAccount(name: "acct\($0)", tier: .free) }
        let pool = KeyPool(accounts: accounts, keys: Self.entries(n), settings: Self.settings(strategy), seed: 42, now: Self.t0)
        let t = Self.t0
        let usable: Set<Int> = [3, 64, 65, 127, 128, 500, 998]
        var rng = SplitMix64(seed: 1)
        for k in 0..<n where !usable.contains(k) {
            switch rng.int(in: 0...3) {
            case 0: _ = pool.disable(k, reason: "test", at: t)
            case 1: Self.feed(pool, key: k, .rateLimited(resetAt: t + 3_600_000, retryAfterMs: nil), at: t)
            case 2: _ = pool.syncAccount("acct\(k)", usedToday: 50, window: [], spentUntil: nil, at: t)
            default: _ = pool.markAccountSpent("acct\(k)", until: t + 7_200_000, at: t)
            }
        }
        #expect(pool.usableCounts.scoped == usable.count)
        var counts: [Int: Int] = [:]
        for i in 0..<140 {
            guard let k = pool.key(Self.freeModel, at: t + 1 + EpochMillis(i) * 4_000) else { Issue.record("no key at \(i)"); return }
            counts[k, default: 0] += 1
        }
        #expect(Set(counts.keys).isSubset(of: usable), "\(counts)")
        if strategy == .roundRobin || strategy == .leastUsed {
            #expect(counts == Dictionary(uniqueKeysWithValues: usable.map { ($0, 20) }))
        } else {
            #expect(counts.count >= 4, "\(counts)")
        }
    }
}
