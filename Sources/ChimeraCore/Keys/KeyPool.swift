#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule
import HeapModule

/// One API key as the pool sees it: an id (a fingerprint, never the key), where it came from,
/// its account and its own limits.
public struct KeyPoolEntry: Sendable, Equatable {
    /// Stable id, e.g. `k_1a2b…` (a fingerprint of the key).
    public var id: String
    public var label: String?
    /// The masked key, `sk-or-…a1b2`, for output.
    public var masked: String
    /// The account whose quota this key draws on.
    public var account: String
    /// Limits on this key on top of its account's (usually none).
    public var limits: QuotaLimits

    public init(id: String, label: String? = nil, masked: String, account: String, limits: QuotaLimits = .unlimited) {
        self.id = id
        self.label = label
        self.masked = masked
        self.account = account
        self.limits = limits
    }
}

/// An account: the unit OpenRouter counts free-model requests by.
public struct KeyPoolAccount: Sendable, Equatable {
    public var name: String
    public var tier: KeyTier
    public var limits: QuotaLimits

    public init(name: String, tier: KeyTier = .free, limits: QuotaLimits? = nil) {
        self.name = name
        self.tier = tier
        self.limits = limits ?? tier.defaultLimits
    }
}

/// How the pool picks among the keys that can serve a request.
public enum KeySelectionStrategy: String, Sendable, Equatable, CaseIterable {
    /// Each eligible key in turn.
    case roundRobin = "round_robin"
    /// The eligible key with the fewest requests today (ties: the one used longest ago).
    case leastUsed = "least_used"
    /// The best of a few sampled keys by success-rate and latency EWMAs (power of k choices,
    /// so that the best key is not hammered).
    case performance
    /// Thompson sampling on success over a few sampled keys, weighted by the share of the
    /// account's daily quota still unused, so accounts whose quota would expire unused at the
    /// next UTC reset are drawn first.
    case adaptive
}

/// Settings of one key pool (config `keys`).
public struct KeyPoolSettings: Sendable, Equatable {
    public var strategy: KeySelectionStrategy = .roundRobin
    /// Share of each daily limit kept for requests of priority `high` and above.
    public var reservedShare = 0.1
    public var health = KeyHealthPolicy()
    /// Which models draw on the request quotas.
    public var quotaModels = QuotaModelPatterns()
    /// A `quota_low` event fires when an account's unused share of the day falls to this.
    public var lowQuotaThreshold = 0.2
    /// Keys sampled per selection by `performance` and `adaptive`.
    public var sampleSize = 4

    public init() {}
}

/// A key handed to one request. It must come back through ``KeyPool/complete(_:outcome:at:)``
/// (the request was sent: it stays counted) or ``KeyPool/release(_:at:)`` (never sent: refunded).
public struct KeyLease: Sendable, Equatable {
    public let keyIndex: Int
    public let keyId: String
    public let account: String
    public let model: String
    /// Whether the request counts toward request quotas (the model matched `quota_models`).
    public let scoped: Bool
    public let priority: TaskPriority
    public let estimatedTokens: Int
    public let at: EpochMillis
    /// The ledger's reservation id, once the durable reservation is made.
    public var reservationId: Int64?
}

/// Why no key can serve a request now, and when one may.
public struct KeyShortage: Sendable, Equatable, CustomStringConvertible {
    /// The earliest time a key may become usable; nil when none will by itself (all disabled).
    public var retryAt: EpochMillis?
    public var reason: String
    public var description: String { reason }

    public init(retryAt: EpochMillis?, reason: String) {
        self.retryAt = retryAt
        self.reason = reason
    }
}

public enum KeyAcquisition: Sendable, Equatable {
    case leased(KeyLease)
    case unavailable(KeyShortage)
}

/// Something the owner should persist or show: a health transition (audit log) or an alert.
public enum KeyPoolNotice: Sendable, Equatable {
    case transition(keyIndex: Int, HealthTransition)
    case event(kind: String, keyIndex: Int?, account: String?, message: String)
}

/// One key's state for `chimera keys list`.
public struct KeyStatus: Sendable, Equatable {
    public var entry: KeyPoolEntry
    public var tier: KeyTier
    public var state: KeyHealth.State
    public var accountUsedToday: Int
    public var accountLimits: QuotaLimits
    public var minuteCount: Int
    public var spentUntil: EpochMillis?
    public var requestsToday: Int
}

/// The in-memory key pool: selection and reservation in a few microseconds.
///
/// It is a cache of the ledger (which is the authority across processes): the owner reserves
/// here first, then durably in the ledger, and feeds back what the ledger says with
/// ``syncAccount(_:usedToday:window:spentUntil:at:)``. Owned by one thread; not `Sendable`.
///
/// Selection never walks the whole pool: three bit sets hold the keys usable by unscoped
/// requests, by scoped requests of any priority, and by scoped requests of priority ≥ high
/// (which may dip into the reserve). Keys leave them when they cool down, run out or hit a
/// window, and a min-heap of wake-up times brings them back when that ends.
public final class KeyPool {
    public let settings: KeyPoolSettings
    public private(set) var entries: [KeyPoolEntry]
    public private(set) var accounts: [KeyPoolAccount]

    private var keys: [KeyRuntime]
    private var accountState: [AccountRuntime]
    private var accountIndex: [String: Int] = [:]
    private var keysOfAccount: [[Int]]

    /// Usable for unscoped requests (health only); for scoped requests below the reserve; for scoped high priority.
    private var healthyBits: KeyBitSet
    private var openBits: KeyBitSet
    private var highBits: KeyBitSet
    private var wakeups = Heap<Wakeup>()
    private var leastUsed: [Heap<UsageRank>] = [Heap(), Heap(), Heap()]
    private var cursor = 0
    private var sequence: UInt64 = 0
    private var currentDay: Int64
    private var rng: SplitMix64

    public init(accounts: [KeyPoolAccount], keys entries: [KeyPoolEntry], settings: KeyPoolSettings = KeyPoolSettings(), seed: UInt64 = 0x5EED, now: EpochMillis) {
        self.settings = settings
        self.entries = entries
        var accounts = accounts
        for (i, a) in accounts.enumerated() { accountIndex[a.name] = i }
        for e in entries where accountIndex[e.account] == nil {
            accountIndex[e.account] = accounts.count
            accounts.append(KeyPoolAccount(name: e.account))
        }
        self.accounts = accounts
        let day = UTCDay.index(of: now)
        currentDay = day
        accountState = accounts.map { _ in AccountRuntime(day: day) }
        keysOfAccount = Array(repeating: [], count: accounts.count)
        keys = []
        for (i, e) in entries.enumerated() {
            let a = accountIndex[e.account]!
            keysOfAccount[a].append(i)
            keys.append(KeyRuntime(account: a, day: day))
        }
        healthyBits = KeyBitSet(capacity: entries.count)
        openBits = KeyBitSet(capacity: entries.count)
        highBits = KeyBitSet(capacity: entries.count)
        rng = SplitMix64(seed: seed)
        for i in entries.indices { _ = evaluate(i, now: now) }
    }

    /// The index of the key with id `id`.
    public func index(ofKey id: String) -> Int? { entries.firstIndex { $0.id == id } }

    /// Whether requests for `model` count toward the request quotas.
    public func isScoped(_ model: String) -> Bool { settings.quotaModels.matches(model) }

    // MARK: Selection

    /// Picks a key for one request to `model` and reserves its quota in memory.
    public func acquire(model: String, priority: TaskPriority = .normal, estimatedTokens: Int = 0, at now: EpochMillis) -> (KeyAcquisition, [KeyPoolNotice]) {
        var (acquisition, notices) = select(model: model, priority: priority, estimatedTokens: estimatedTokens, at: now)
        if case .leased(let lease) = acquisition { notices += take(lease, at: now) }
        return (acquisition, notices)
    }

    /// Picks a key without reserving anything: the first half of ``acquire(model:priority:estimatedTokens:at:)``,
    /// for an owner that reserves in the ledger before calling ``take(_:at:countingQuota:)``.
    public func select(model: String, priority: TaskPriority = .normal, estimatedTokens: Int = 0, at now: EpochMillis) -> (KeyAcquisition, [KeyPoolNotice]) {
        let notices = advance(to: now)
        let scoped = isScoped(model)
        let klass = scoped ? (priority >= .high ? 2 : 1) : 0
        guard let chosen = choose(klass: klass, scoped: scoped, tokens: estimatedTokens, now: now) else {
            return (.unavailable(shortage(model: model, scoped: scoped, priority: priority, estimatedTokens: estimatedTokens, now: now)), notices)
        }
        let lease = KeyLease(keyIndex: chosen, keyId: entries[chosen].id, account: accounts[keys[chosen].account].name,
                             model: model, scoped: scoped, priority: priority, estimatedTokens: estimatedTokens, at: now)
        return (.leased(lease), notices)
    }

    /// What ``select(model:priority:estimatedTokens:at:)`` would answer, without moving the
    /// round-robin rotation: for asking whether a key could serve before deciding to call.
    public func peek(model: String, priority: TaskPriority = .normal, estimatedTokens: Int = 0, at now: EpochMillis) -> (KeyAcquisition, [KeyPoolNotice]) {
        let saved = cursor
        defer { cursor = saved }
        return select(model: model, priority: priority, estimatedTokens: estimatedTokens, at: now)
    }

    /// Hands out a selected key: counts the request (unless the counts were just synced from a
    /// ledger that already includes it), and makes it the probe if the key is half-open.
    public func take(_ lease: KeyLease, at now: EpochMillis, countingQuota: Bool = true) -> [KeyPoolNotice] {
        var notices: [KeyPoolNotice] = []
        apply(lease, countingQuota: countingQuota, now: now, notices: &notices)
        return notices
    }

    /// The request was never sent: its quota comes back (and a half-open probe slot reopens).
    public func release(_ lease: KeyLease, at now: EpochMillis) -> [KeyPoolNotice] {
        var notices: [KeyPoolNotice] = []
        let k = lease.keyIndex
        let a = keys[k].account
        if lease.scoped {
            if UTCDay.index(of: lease.at) == accountState[a].day { accountState[a].used = max(0, accountState[a].used - 1) }
            if UTCDay.index(of: lease.at) == keys[k].day { keys[k].used = max(0, keys[k].used - 1) }
            accountState[a].window.removeStamp(lease.at, tokens: lease.estimatedTokens)
            keys[k].window.removeStamp(lease.at, tokens: lease.estimatedTokens)
        }
        if UTCDay.index(of: lease.at) == keys[k].day { keys[k].requests = max(0, keys[k].requests - 1); keys[k].version &+= 1 }
        if let t = keys[k].health.didRelease(at: now) { notices.append(.transition(keyIndex: k, t)) }
        reevaluateAccount(a, now: now)
        return notices
    }

    /// The request was sent and this is what happened. Quota stays counted; health learns.
    public func complete(_ lease: KeyLease, outcome: KeyOutcome, latencyMs: Int? = nil, at now: EpochMillis) -> [KeyPoolNotice] {
        var notices: [KeyPoolNotice] = []
        let k = lease.keyIndex
        keys[k].learn(outcome, latencyMs: latencyMs)
        if let t = keys[k].health.record(outcome, at: now, policy: settings.health) {
            notices.append(.transition(keyIndex: k, t))
            notices += alerts(for: t, key: k)
        }
        reevaluateAccount(keys[k].account, now: now)
        return notices
    }

    // MARK: Facts from the ledger and from upstream

    /// Replaces the cached counters of `account` with the ledger's (which include other processes).
    public func syncAccount(_ account: String, usedToday: Int, window: [(EpochMillis, Int)], spentUntil: EpochMillis?, at now: EpochMillis) -> [KeyPoolNotice] {
        guard let a = accountIndex[account] else { return [] }
        let before = accountState[a].used
        accountState[a].day = UTCDay.index(of: now)
        accountState[a].used = usedToday
        accountState[a].window = SlidingWindow(window)
        accountState[a].spentUntil = spentUntil
        reevaluateAccount(a, now: now)
        return quotaAlerts(account: a, before: before)
    }

    /// Replaces the cached counters of one key with the ledger's.
    public func syncKey(_ index: Int, usedToday: Int, window: [(EpochMillis, Int)], at now: EpochMillis) {
        keys[index].day = UTCDay.index(of: now)
        keys[index].used = usedToday
        keys[index].window = SlidingWindow(window)
        _ = evaluate(index, now: now)
    }

    /// Takes a health state another process wrote to the ledger.
    public func adoptHealth(_ index: Int, _ state: KeyHealth.State, at now: EpochMillis) {
        keys[index].health.adopt(state)
        _ = evaluate(index, now: now)
    }

    /// Upstream said the account's daily quota is spent until `until` (a daily-cap 429).
    public func markAccountSpent(_ account: String, until: EpochMillis, at now: EpochMillis) -> [KeyPoolNotice] {
        guard let a = accountIndex[account] else { return [] }
        let previous = accountState[a].spentUntil ?? .min
        guard until > previous else { return [] }
        accountState[a].spentUntil = until
        reevaluateAccount(a, now: now)
        return [.event(kind: "account_exhausted", keyIndex: nil, account: account,
                       message: "account \(account) is spent until \(UTCDay.timestamp(until)) (upstream daily limit)")]
    }

    /// Operator: disable a key until re-enabled.
    public func disable(_ index: Int, reason: String, at now: EpochMillis) -> [KeyPoolNotice] {
        guard let t = keys[index].health.disable(at: now, reason: reason) else { return [] }
        _ = evaluate(index, now: now)
        return [.transition(keyIndex: index, t), .event(kind: "key_disabled", keyIndex: index, account: entries[index].account, message: "key \(entries[index].masked) disabled: \(reason)")]
    }

    /// Operator: enable a key (from any state).
    public func enable(_ index: Int, reason: String, at now: EpochMillis) -> [KeyPoolNotice] {
        guard let t = keys[index].health.enable(at: now, reason: reason) else { return [] }
        _ = evaluate(index, now: now)
        return [.transition(keyIndex: index, t), .event(kind: "key_enabled", keyIndex: index, account: entries[index].account, message: "key \(entries[index].masked) re-enabled: \(reason)")]
    }

    // MARK: Time

    /// The earliest time something blocked becomes usable again (for the owner's timer).
    public var nextWakeup: EpochMillis? {
        wakeups.min?.at
    }

    /// Applies everything that ended by `now`: cooldowns, windows, the UTC day.
    @discardableResult
    public func advance(to now: EpochMillis) -> [KeyPoolNotice] {
        var notices: [KeyPoolNotice] = []
        let today = UTCDay.index(of: now)
        if today != currentDay {
            currentDay = today
            notices.append(.event(kind: "daily_reset", keyIndex: nil, account: nil, message: "UTC day \(UTCDay.dateString(of: now)) began; daily counts reset"))
            for i in keys.indices { notices += evaluate(i, now: now) }
        }
        while let top = wakeups.min, top.at <= now {
            wakeups.removeMin()
            guard keys[top.key].wakeAt == top.at else { continue }  // superseded
            keys[top.key].wakeAt = nil
            notices += evaluate(top.key, now: now)
        }
        return notices
    }

    // MARK: Inspection

    public func status(at now: EpochMillis) -> [KeyStatus] {
        advance(to: now)
        return entries.indices.map { i in
            let a = keys[i].account
            var window = accountState[a].window
            window.prune(before: now - UTCDay.millisPerMinute)
            return KeyStatus(entry: entries[i], tier: accounts[a].tier, state: keys[i].health.state,
                             accountUsedToday: accountState[a].day == currentDay ? accountState[a].used : 0,
                             accountLimits: accounts[a].limits, minuteCount: window.count,
                             spentUntil: accountState[a].spentUntil.flatMap { $0 > now ? $0 : nil },
                             requestsToday: keys[i].day == currentDay ? keys[i].requests : 0)
        }
    }

    /// How many keys are usable right now by an unscoped request, a scoped one, a scoped high-priority one.
    public var usableCounts: (any: Int, scoped: Int, scopedHigh: Int) { (healthyBits.count, openBits.count, highBits.count) }

    // MARK: Internals

    private func bits(_ klass: Int) -> KeyBitSet { klass == 0 ? healthyBits : (klass == 1 ? openBits : highBits) }

    private func choose(klass: Int, scoped: Bool, tokens: Int, now: EpochMillis) -> Int? {
        let set = bits(klass)
        guard set.count > 0 else { return nil }
        var pick: Int?
        switch settings.strategy {
        case .roundRobin:
            pick = set.next(from: cursor)
            if let p = pick { cursor = p + 1 }
        case .leastUsed:
            pick = leastUsedKey(klass: klass)
        case .performance, .adaptive:
            pick = sampledBest(set, scoped: scoped, adaptive: settings.strategy == .adaptive, now: now)
        }
        guard let first = pick else { return nil }
        if tokens == 0 || fitsTokens(first, tokens, scoped: scoped, now: now) { return first }
        // Rare: the chosen key's token window cannot take this request; find one that can.
        return set.members().first { fitsTokens($0, tokens, scoped: scoped, now: now) }
    }

    private func fitsTokens(_ k: Int, _ tokens: Int, scoped: Bool, now: EpochMillis) -> Bool {
        guard scoped else { return true }
        let a = keys[k].account
        // An open key gets no wake-up, so its windows may still hold entries older than a minute.
        accountState[a].window.prune(before: now - UTCDay.millisPerMinute)
        keys[k].window.prune(before: now - UTCDay.millisPerMinute)
        if let tpm = accounts[a].limits.tokensPerMinute, accountState[a].window.tokens + tokens > tpm { return false }
        if let tpm = entries[k].limits.tokensPerMinute, keys[k].window.tokens + tokens > tpm { return false }
        return true
    }

    private func leastUsedKey(klass: Int) -> Int? {
        let set = bits(klass)
        while let top = leastUsed[klass].min {
            let k = top.key
            if set.contains(k), top.version == keys[k].version { return k }
            leastUsed[klass].removeMin()
            if keys[k].ranked[klass] == top.version { keys[k].ranked[klass] = nil }
        }
        return nil
    }

    private func sampledBest(_ set: KeyBitSet, scoped: Bool, adaptive: Bool, now: EpochMillis) -> Int? {
        var candidates: [Int] = []
        // Thompson sampling explores by itself; `performance` always samples, or in a pool no larger
        // than the sample the best key would take every request and the others never recover.
        if adaptive, set.count <= settings.sampleSize {
            candidates = set.members()
        } else {
            for _ in 0..<settings.sampleSize {
                if let k = set.next(from: Int(rng.next() % UInt64(set.capacity))), !candidates.contains(k) { candidates.append(k) }
            }
        }
        var best: Int?
        var bestScore = -Double.infinity
        for k in candidates {
            var score: Double
            if adaptive {
                score = Beta.sample(alpha: 1 + keys[k].successes, beta: 1 + keys[k].failures, using: &rng)
                if scoped, let perDay = accounts[keys[k].account].limits.perDay, perDay > 0 {
                    let unused = Double(max(0, perDay - accountState[keys[k].account].used))
                    score *= (unused + 1) / (Double(perDay) + 1)
                }
            } else {
                score = keys[k].successRate / (1 + (keys[k].latencyMs ?? 0) / 2_000)
            }
            // Ties go to the key with fewer requests today, so equal keys share the load.
            score -= Double(keys[k].requests) * 1e-9
            if score > bestScore { bestScore = score; best = k }
        }
        return best
    }

    private func apply(_ lease: KeyLease, countingQuota: Bool, now: EpochMillis, notices: inout [KeyPoolNotice]) {
        let k = lease.keyIndex
        let a = keys[k].account
        if lease.scoped && countingQuota {
            let before = accountState[a].used
            accountState[a].used += 1
            keys[k].used += 1
            accountState[a].window.append(now, tokens: lease.estimatedTokens)
            keys[k].window.append(now, tokens: lease.estimatedTokens)
            notices += quotaAlerts(account: a, before: before)
        }
        keys[k].requests += 1
        sequence &+= 1
        keys[k].lastUsed = sequence
        keys[k].version &+= 1
        if let t = keys[k].health.didLease(at: now) { notices.append(.transition(keyIndex: k, t)) }
        if keysOfAccount[a].count == 1 { _ = evaluate(k, now: now) } else { reevaluateAccount(a, now: now) }
    }

    private func reevaluateAccount(_ a: Int, now: EpochMillis) {
        for k in keysOfAccount[a] { _ = evaluate(k, now: now) }
    }

    /// Recomputes which sets key `k` belongs to at `now`, and when to look at it again.
    private func evaluate(_ k: Int, now: EpochMillis) -> [KeyPoolNotice] {
        var notices: [KeyPoolNotice] = []
        if let t = keys[k].health.advance(to: now) { notices.append(.transition(keyIndex: k, t)) }
        let a = keys[k].account
        let today = UTCDay.index(of: now)
        if accountState[a].day != today { accountState[a].day = today; accountState[a].used = 0 }
        if keys[k].day != today { keys[k].day = today; keys[k].used = 0; keys[k].requests = 0; keys[k].version &+= 1 }
        let horizon = now - UTCDay.millisPerMinute
        accountState[a].window.prune(before: horizon)
        keys[k].window.prune(before: horizon)

        var open = true, high = true
        var wake: EpochMillis = .max
        if let spent = accountState[a].spentUntil, spent > now { open = false; high = false; wake = min(wake, spent) }
        let midnight = UTCDay.nextMidnight(after: now)
        for (limits, used, window) in [(accounts[a].limits, accountState[a].used, accountState[a].window), (entries[k].limits, keys[k].used, keys[k].window)] {
            if let perDay = limits.perDay {
                let reserve = Int((Double(perDay) * settings.reservedShare).rounded(.up))
                if used >= perDay { open = false; high = false; wake = min(wake, midnight) }
                else if used >= perDay - reserve { open = false; wake = min(wake, midnight) }
            }
            if let perMinute = limits.perMinute, window.count >= perMinute {
                open = false; high = false
                wake = min(wake, window.stamp(at: window.count - perMinute) + UTCDay.millisPerMinute)
            }
            if let tpm = limits.tokensPerMinute, window.tokens >= tpm, let first = window.first {
                open = false; high = false; wake = min(wake, first + UTCDay.millisPerMinute)
            }
        }
        let healthy = keys[k].health.isSelectable
        if let until = keys[k].health.state.until { wake = min(wake, until) }
        healthyBits.set(k, healthy)
        openBits.set(k, healthy && open)
        highBits.set(k, healthy && high)
        if settings.strategy == .leastUsed {
            for klass in 0..<3 where bits(klass).contains(k) && keys[k].ranked[klass] != keys[k].version {
                leastUsed[klass].insert(UsageRank(requests: keys[k].requests, lastUsed: keys[k].lastUsed, key: k, version: keys[k].version))
                keys[k].ranked[klass] = keys[k].version
            }
        }
        if wake != .max, keys[k].wakeAt.map({ wake < $0 || $0 <= now }) ?? true {
            keys[k].wakeAt = wake
            wakeups.insert(Wakeup(at: wake, key: k))
        }
        return notices
    }

    private func quotaAlerts(account a: Int, before: Int) -> [KeyPoolNotice] {
        guard let perDay = accounts[a].limits.perDay, perDay > 0 else { return [] }
        let used = accountState[a].used
        let name = accounts[a].name
        if before < perDay, used >= perDay {
            return [.event(kind: "account_exhausted", keyIndex: nil, account: name, message: "account \(name) used all \(perDay) requests for today; resets at 00:00 UTC")]
        }
        let lowMark = Double(perDay) * (1 - settings.lowQuotaThreshold)
        if Double(before) < lowMark, Double(used) >= lowMark, used < perDay {
            return [.event(kind: "quota_low", keyIndex: nil, account: name, message: "account \(name) has \(perDay - used) of \(perDay) requests left today")]
        }
        return []
    }

    private func alerts(for t: HealthTransition, key k: Int) -> [KeyPoolNotice] {
        let masked = entries[k].masked
        switch t.to {
        case .disabled: return [.event(kind: "key_disabled", keyIndex: k, account: entries[k].account, message: "key \(masked) disabled: \(t.reason)")]
        case .suspended: return [
            .event(kind: "error_rate_high", keyIndex: k, account: entries[k].account, message: "key \(masked): \(t.reason)"),
            .event(kind: "key_suspended", keyIndex: k, account: entries[k].account, message: "key \(masked) suspended until \(UTCDay.timestamp(t.to.until ?? t.at))"),
        ]
        case .active where t.from != .active: return [.event(kind: "key_enabled", keyIndex: k, account: entries[k].account, message: "key \(masked) is active again: \(t.reason)")]
        default: return []
        }
    }

    private func shortage(model: String, scoped: Bool, priority: TaskPriority, estimatedTokens: Int, now: EpochMillis) -> KeyShortage {
        var counts: [String: Int] = [:]
        var reserved = 0
        let klass = scoped ? (priority >= .high ? 2 : 1) : 0
        var tokenRetry: EpochMillis = .max
        for k in keys.indices {
            let state = keys[k].health.state
            if !keys[k].health.isSelectable {
                counts[state == .halfOpen(probing: true) ? "probing" : state.name, default: 0] += 1
            } else if scoped {
                let a = keys[k].account
                if bits(klass).contains(k) {
                    // Open, but this request's tokens do not fit until the oldest entries leave the minute.
                    counts["without room for \(estimatedTokens) tokens this minute", default: 0] += 1
                    if accounts[a].limits.tokensPerMinute != nil, let f = accountState[a].window.first { tokenRetry = min(tokenRetry, f + UTCDay.millisPerMinute) }
                    if entries[k].limits.tokensPerMinute != nil, let f = keys[k].window.first { tokenRetry = min(tokenRetry, f + UTCDay.millisPerMinute) }
                }
                else if let s = accountState[a].spentUntil, s > now { counts["spent (upstream)", default: 0] += 1 }
                else if highBits.contains(k) { reserved += 1 }
                else if accountState[a].used >= accounts[a].limits.perDay ?? .max || keys[k].used >= entries[k].limits.perDay ?? .max {
                    counts["spent for today", default: 0] += 1
                }
                else { counts["at the per-minute limit", default: 0] += 1 }
            }
        }
        if reserved > 0 { counts["holding the reserve for high priority", default: 0] += reserved }
        let parts = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        // A probe in flight ends when its outcome arrives, which the owner reports; until then the
        // suspension length is a safe upper bound to wait for.
        let probeRetry = counts["probing"] != nil ? now + settings.health.suspendMs : nil
        let retry = [nextWakeup, tokenRetry == .max ? nil : tokenRetry, probeRetry].compactMap { $0 }.min().map { max($0, now + 1) }
        var reason = entries.isEmpty ? "no API keys are configured" : "no key can serve \(model) now (\(entries.count) key\(entries.count == 1 ? "" : "s"): \(parts.joined(separator: ", ")))"
        if let retry { reason += "; next change in \(UTCDay.duration(retry - now))" } else if !entries.isEmpty { reason += "; none will recover by itself" }
        return KeyShortage(retryAt: retry, reason: reason)
    }
}

// MARK: - Private state

private struct KeyRuntime {
    var account: Int
    var day: Int64
    var health = KeyHealth()
    var used = 0           // scoped requests today (counts toward quotas)
    var requests = 0       // all requests today (least_used)
    var window = SlidingWindow()
    var lastUsed: UInt64 = 0
    var version: UInt64 = 0
    var ranked: [UInt64?] = [nil, nil, nil]
    var wakeAt: EpochMillis?
    // Learning: EWMAs for `performance`, decayed counts for `adaptive`.
    var successRate = 1.0
    var latencyMs: Double?
    var successes = 0.0
    var failures = 0.0

    init(account: Int, day: Int64) { self.account = account; self.day = day }

    mutating func learn(_ outcome: KeyOutcome, latencyMs latency: Int?) {
        let ok: Bool
        switch outcome {
        case .success, .clientError: ok = true
        case .failure, .unauthorized, .paymentRequired, .rateLimited: ok = false
        }
        successRate = 0.8 * successRate + 0.2 * (ok ? 1 : 0)
        if let latency, ok { latencyMs = latencyMs.map { 0.8 * $0 + 0.2 * Double(latency) } ?? Double(latency) }
        // Decay old evidence so a key that recovers is trusted again.
        successes *= 0.98; failures *= 0.98
        if ok { successes += 1 } else { failures += 1 }
    }
}

private struct AccountRuntime {
    var day: Int64
    var used = 0
    var window = SlidingWindow()
    var spentUntil: EpochMillis?
    init(day: Int64) { self.day = day }
}

/// Request times (and tokens) within the last minute, oldest first.
struct SlidingWindow {
    private var stamps = Deque<(EpochMillis, Int)>()
    private(set) var tokens = 0

    init() {}
    init(_ entries: [(EpochMillis, Int)]) {
        stamps = Deque(entries.sorted { $0.0 < $1.0 })
        tokens = entries.reduce(0) { $0 + $1.1 }
    }

    var count: Int { stamps.count }
    var first: EpochMillis? { stamps.first?.0 }
    func stamp(at i: Int) -> EpochMillis { stamps[i].0 }

    mutating func append(_ t: EpochMillis, tokens n: Int) {
        // Stamps arrive in time order from one clock; keep order if a synced window is ahead.
        if let last = stamps.last?.0, last > t {
            let i = stamps.firstIndex { $0.0 > t } ?? stamps.count
            stamps.insert((t, n), at: i)
        } else {
            stamps.append((t, n))
        }
        tokens += n
    }

    /// Drops entries at or before `horizon` (the window is (now - 60 s, now]).
    mutating func prune(before horizon: EpochMillis) {
        while let f = stamps.first, f.0 <= horizon { tokens -= f.1; stamps.removeFirst() }
    }

    mutating func removeStamp(_ t: EpochMillis, tokens n: Int) {
        if let i = stamps.lastIndex(where: { $0.0 == t }) { tokens -= stamps[i].1; stamps.remove(at: i) }
    }
}

private struct Wakeup: Comparable {
    var at: EpochMillis
    var key: Int
    static func < (l: Wakeup, r: Wakeup) -> Bool { l.at < r.at || (l.at == r.at && l.key < r.key) }
}

private struct UsageRank: Comparable {
    var requests: Int
    var lastUsed: UInt64
    var key: Int
    var version: UInt64
    static func < (l: UsageRank, r: UsageRank) -> Bool {
        (l.requests, l.lastUsed, l.key) < (r.requests, r.lastUsed, r.key)
    }
}
