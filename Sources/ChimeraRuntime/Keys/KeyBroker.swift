#if canImport(Glibc)
import Glibc
#endif
import ChimeraCore
import ChimeraStore
import HeapModule
import Logging

/// Arms one wake-up at an absolute wall-clock time (nil disarms). The runtime uses a libuv timer
/// (``LoopWakeScheduler``); tests use a manual one and call ``KeyBroker/wake()`` themselves.
public protocol WakeScheduler: AnyObject {
    func schedule(at time: EpochMillis?)
}

/// What a caller asked for.
public struct KeyRequest: Sendable, Equatable {
    public var model: String
    public var priority: TaskPriority
    public var estimatedTokens: Int

    public init(model: String, priority: TaskPriority = .normal, estimatedTokens: Int = 0) {
        self.model = model
        self.priority = priority
        self.estimatedTokens = estimatedTokens
    }
}

/// What became of a sent request, as the key pool and ledger need it.
public struct KeyCallReport: Sendable, Equatable {
    public var status: Int?
    public var outcome: KeyOutcome
    /// A daily-cap 429 (or `GET /key` saying the day is used up): the account is spent until this time.
    public var accountSpentUntil: EpochMillis?
    public var latencyMs: Int?
    public var tokens: Int?
    public var costUSD: Double?
    /// `costUSD` is an estimate from catalog prices (the response had none).
    public var costIsEstimate = false
    /// The model that answered, when the response named it (a router picks one).
    public var servedModel: String?

    public init(status: Int?, outcome: KeyOutcome, accountSpentUntil: EpochMillis? = nil, latencyMs: Int? = nil, tokens: Int? = nil, costUSD: Double? = nil) {
        self.status = status
        self.outcome = outcome
        self.accountSpentUntil = accountSpentUntil
        self.latencyMs = latencyMs
        self.tokens = tokens
        self.costUSD = costUSD
    }

    /// A 2xx.
    public static func success(latencyMs: Int? = nil, tokens: Int? = nil) -> KeyCallReport {
        KeyCallReport(status: 200, outcome: .success, latencyMs: latencyMs, tokens: tokens)
    }
}

/// Why a lease could not be granted.
public enum KeyGrantFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// No key can serve now, and the policy is `fail` (or it never will by itself).
    case quotaExhausted(KeyShortage)
    /// The request waited `max_wait_ms` under the `wait` policy.
    case waitedTooLong(KeyShortage)
    /// The ledger could not be written; nothing was counted.
    case ledger(String)

    public var description: String {
        switch self {
        case .quotaExhausted(let s): "quota_exhausted: \(s.reason)"
        case .waitedTooLong(let s): "quota_exhausted: waited the longest allowed; \(s.reason)"
        case .ledger(let m): "ledger error: \(m)"
        }
    }
}

/// JOKRS on the coordinator's loop: the in-memory ``KeyPool`` for fast selection, the
/// ``QuotaLedger`` as the authority shared between processes, health transitions written to the
/// audit log, alerts as events, and a priority queue of requests waiting for a key.
///
/// Every lease is reserved twice, in memory and then durably; when the ledger refuses (another
/// process got there first, or another process cooled the key), the pool is resynced from what
/// the ledger returned and the next key is tried. Not thread-safe: one loop owns it.
public final class KeyBroker {
    public let pool: KeyPool
    public let ledger: QuotaLedger
    public let policy: ExhaustionPolicy
    public let maxWaitMs: UInt64
    private let secrets: [String: APIKeySecret]
    private let clock: any WallClock
    private let logger: Logger
    private weak var scheduler: (any WakeScheduler)?
    private var waiters = Heap<Waiter>()
    private var waiterSequence: UInt64 = 0
    private var armedAt: EpochMillis?

    public init(keys: ResolvedKeys, config: KeysConfig, ledger: QuotaLedger, clock: any WallClock, scheduler: (any WakeScheduler)? = nil,
                seed: UInt64 = 0x5EED, logger: Logger = Logger(label: "chimera.keys")) throws(KeyGrantFailure) {
        let now = clock.now()
        pool = KeyPool(accounts: keys.accounts, keys: keys.entries, settings: config.pool, seed: seed, now: now)
        self.ledger = ledger
        self.policy = config.onExhausted
        self.maxWaitMs = config.maxWaitMs
        self.secrets = keys.secrets
        self.clock = clock
        self.scheduler = scheduler
        self.logger = logger
        ledger.onDeferredWriteFailure { [logger] error in
            logger.error("could not record the outcomes of finished requests in the ledger (they stay counted): \(error)")
        }
        try resync(at: now)
    }

    /// The broker's wall clock (what its quotas and cooldowns are measured against).
    public func clockNow() -> EpochMillis { clock.now() }

    /// The key text for a lease: only the HTTP client should call this.
    public func secret(for lease: KeyLease) -> APIKeySecret? { secrets[lease.keyId] }

    /// The secret of a key of this pool, for calls made outside a lease (`GET /models`).
    public func secret(forKeyId id: String) -> APIKeySecret? { secrets[id] }

    /// Reloads every account's counters and every key's health from the ledger.
    public func resync(at now: EpochMillis) throws(KeyGrantFailure) {
        do {
            let health = try ledger.loadHealth()
            for (i, entry) in pool.entries.enumerated() {
                if let record = health[entry.id] { pool.adoptHealth(i, Self.state(record), at: now) }
                let usage = try ledger.keyUsage(entry.id, at: now)
                pool.syncKey(i, usedToday: usage.usedToday, window: Self.window(usage.minuteWindow, usage.tokensInMinute), at: now)
            }
            for account in pool.accounts {
                let usage = try ledger.accountUsage(account.name, at: now)
                _ = pool.syncAccount(account.name, usedToday: usage.usedToday, window: Self.window(usage.minuteWindow, usage.tokensInMinute), spentUntil: usage.spentUntil, at: now)
            }
        } catch {
            throw .ledger("\(error)")
        }
    }

    // MARK: Looking ahead (for JHADE)

    /// Whether a request for `model` could get a key now, would wait (and until when), or would
    /// fail — without reserving anything or moving the rotation.
    public func availability(model: String, priority: TaskPriority = .normal, estimatedTokens: Int = 0) -> ExternalAvailability {
        guard !pool.entries.isEmpty else { return .unavailable("no API keys") }
        let now = clock.now()
        let (acquisition, notices) = pool.peek(model: model, priority: priority, estimatedTokens: estimatedTokens, at: now)
        persist(notices)
        switch acquisition {
        case .leased: return .now
        case .unavailable(let shortage):
            if policy == .wait, scheduler != nil, let at = shortage.retryAt, at - now <= EpochMillis(maxWaitMs) { return .wait(eta: at) }
            return .exhausted(shortage.reason)
        }
    }

    /// The share of today's request quota already used, averaged over the accounts with a daily
    /// limit (0 when none has one): how much a free call now costs the rest of the day.
    public func quotaPressure() -> Double {
        let now = clock.now()
        var seen = Set<String>()
        var shares: [Double] = []
        for status in pool.status(at: now) where seen.insert(status.entry.account).inserted {
            guard let perDay = status.accountLimits.perDay, perDay > 0 else { continue }
            shares.append(min(1, Double(status.accountUsedToday) / Double(perDay)))
        }
        return shares.isEmpty ? 0 : shares.reduce(0, +) / Double(shares.count)
    }

    // MARK: Leasing

    /// A key now, reserved durably, or why not. Never waits.
    public func acquireNow(_ request: KeyRequest) -> Result<KeyLease, KeyGrantFailure> {
        let now = clock.now()
        if !pool.isScoped(request.model) {
            // No request quota to protect (a paid model): the lease is made in memory only and
            // the request is recorded in the ledger once it was sent (`complete`). Health written
            // by other processes is therefore seen only at start-up for these calls.
            let (acquisition, notices) = pool.acquire(model: request.model, priority: request.priority, estimatedTokens: request.estimatedTokens, at: now)
            persist(notices)
            switch acquisition {
            case .leased(let lease): return .success(lease)
            case .unavailable(let shortage): return .failure(.quotaExhausted(shortage))
            }
        }
        // Each refusal resyncs the refused key or account, so this ends within a few rounds;
        // the bound only guards against a ledger that keeps contradicting itself.
        for _ in 0..<(pool.entries.count + 2) {
            let (acquisition, notices) = pool.select(model: request.model, priority: request.priority, estimatedTokens: request.estimatedTokens, at: now)
            persist(notices)
            guard case .leased(var lease) = acquisition else {
                if case .unavailable(let shortage) = acquisition { return .failure(.quotaExhausted(shortage)) }
                break
            }
            let entry = pool.entries[lease.keyIndex]
            let account = pool.accounts.first { $0.name == lease.account }!
            let result: ReservationResult
            do {
                result = try ledger.reserve(ReservationRequest(
                    keyId: lease.keyId, account: lease.account, model: lease.model, scoped: lease.scoped, priority: lease.priority,
                    accountLimits: account.limits, keyLimits: entry.limits, reservedShare: pool.settings.reservedShare,
                    estimatedTokens: lease.estimatedTokens, at: now))
            } catch {
                return .failure(.ledger("\(error)"))
            }
            // Whatever the answer, the ledger's counts (which include other processes) win.
            apply(result, keyIndex: lease.keyIndex, at: now)
            switch result {
            case .reserved(let id, _, _):
                lease.reservationId = id
                persist(pool.take(lease, at: now, countingQuota: false))
                return .success(lease)
            case .refused(let reason, _, _):
                logger.debug("ledger refused \(entry.masked): \(reason); trying another key")
                if case .keyUnavailable(let state, let until) = reason {
                    pool.adoptHealth(lease.keyIndex, Self.state(KeyHealthRecord(keyId: lease.keyId, state: state, until: until, reason: "", updatedAt: now)), at: now)
                }
            }
        }
        return .failure(.quotaExhausted(KeyShortage(retryAt: pool.nextWakeup, reason: "the ledger refused every key (another process is using the same accounts)")))
    }

    /// A key now or, under the `wait` policy, as soon as one frees (woken by the scheduler, in
    /// priority order). `completion` runs exactly once, possibly before this returns.
    public func acquire(_ request: KeyRequest, completion: @escaping (Result<KeyLease, KeyGrantFailure>) -> Void) {
        let result = acquireNow(request)
        guard case .failure(.quotaExhausted(let shortage)) = result, policy == .wait, shortage.retryAt != nil, scheduler != nil else {
            completion(result)
            return
        }
        waiterSequence &+= 1
        let deadline = clock.now() + EpochMillis(maxWaitMs)
        waiters.insert(Waiter(request: request, sequence: waiterSequence, deadline: deadline, shortage: shortage, completion: completion))
        logger.info("waiting for a key for \(request.model): \(shortage.reason)")
        rearm()
    }

    /// Requests waiting for a key, and when the earliest may be served.
    public var waiting: (count: Int, eta: EpochMillis?) { (waiters.count, waiters.isEmpty ? nil : pool.nextWakeup) }

    /// The request was sent; record what happened. Its quota stays counted.
    public func complete(_ lease: KeyLease, _ report: KeyCallReport) {
        let now = clock.now()
        do {
            let outcome = ReservationOutcome(status: report.status, kind: Self.kind(report.outcome), tokens: report.tokens,
                                             latencyMs: report.latencyMs, costUSD: report.costUSD, costIsEstimate: report.costIsEstimate,
                                             model: report.servedModel ?? lease.model)
            // Written in a batch off this thread (QuotaLedger.commitLater): the reservation is
            // already counted, so nothing waits for it.
            if let id = lease.reservationId {
                ledger.commitLater(id, outcome: outcome, at: now)
            } else if !lease.scoped {
                ledger.recordLater(ReservationRequest(keyId: lease.keyId, account: lease.account, model: lease.model, scoped: false,
                                                      priority: lease.priority, accountLimits: .unlimited, estimatedTokens: lease.estimatedTokens,
                                                      at: lease.at), outcome: outcome, at: now)
            }
            if let until = report.accountSpentUntil {
                try ledger.markAccountSpent(lease.account, until: until, reason: "upstream daily limit (HTTP \(report.status.map(String.init) ?? "?"))", at: now)
                persist(pool.markAccountSpent(lease.account, until: until, at: now))
            }
        } catch {
            logger.error("could not record the outcome of a request with \(pool.entries[lease.keyIndex].masked) in the ledger: \(error)")
        }
        persist(pool.complete(lease, outcome: report.outcome, latencyMs: report.latencyMs, at: now))
        serveWaiters()
    }

    /// The request was never sent: refund its quota.
    public func release(_ lease: KeyLease) {
        let now = clock.now()
        do {
            if let id = lease.reservationId { _ = try ledger.release(id, at: now) }
        } catch {
            // Not refunded is the safe side: the quota stays counted.
            logger.error("could not refund a reservation in the ledger (it stays counted): \(error)")
        }
        persist(pool.release(lease, at: now))
        serveWaiters()
    }

    /// Upstream truth from `GET /key` (`free_model_daily_requests.used`).
    public func correctDailyUsage(account: String, used: Int) throws(KeyGrantFailure) {
        let now = clock.now()
        do {
            try ledger.correctDailyUsage(account, used: used, at: now)
            let usage = try ledger.accountUsage(account, at: now)
            persist(pool.syncAccount(account, usedToday: usage.usedToday, window: Self.window(usage.minuteWindow, usage.tokensInMinute), spentUntil: usage.spentUntil, at: now))
        } catch {
            throw .ledger("\(error)")
        }
    }

    // MARK: Operator actions

    public func disable(keyId: String, reason: String) throws(KeyGrantFailure) {
        guard let i = pool.index(ofKey: keyId) else { return }
        persist(pool.disable(i, reason: reason, at: clock.now()))
    }

    public func enable(keyId: String, reason: String) throws(KeyGrantFailure) {
        guard let i = pool.index(ofKey: keyId) else { return }
        let now = clock.now()
        // Another process may have disabled it: take the ledger's state first.
        if let record = (try? ledger.loadHealth())?[keyId] { pool.adoptHealth(i, Self.state(record), at: now) }
        persist(pool.enable(i, reason: reason, at: now))
        serveWaiters()
    }

    // MARK: Time

    /// The scheduler's callback: apply what ended, serve waiters, re-arm.
    public func wake() {
        armedAt = nil
        persist(pool.advance(to: clock.now()))
        serveWaiters()
    }

    private func serveWaiters() {
        let now = clock.now()
        var kept: [Waiter] = []
        while let waiter = waiters.popMax() {
            switch acquireNow(waiter.request) {
            case .success(let lease):
                waiter.completion(.success(lease))
            case .failure(.quotaExhausted(let shortage)) where now < waiter.deadline && shortage.retryAt != nil:
                kept.append(waiter)
            case .failure(.quotaExhausted(let shortage)):
                waiter.completion(.failure(now >= waiter.deadline ? .waitedTooLong(shortage) : .quotaExhausted(shortage)))
            case .failure(let other):
                waiter.completion(.failure(other))
            }
        }
        for w in kept { waiters.insert(w) }
        rearm()
    }

    private func rearm() {
        guard let scheduler else { return }
        guard !waiters.isEmpty else {
            if armedAt != nil { scheduler.schedule(at: nil); armedAt = nil }
            return
        }
        let deadline = waiters.unordered.map(\.deadline).min() ?? .max
        let at = min(pool.nextWakeup ?? .max, deadline)
        guard at != .max, at != armedAt else { return }
        armedAt = at
        scheduler.schedule(at: at)
    }

    // MARK: Ledger plumbing

    private func apply(_ result: ReservationResult, keyIndex: Int, at now: EpochMillis) {
        let a = result.account
        persist(pool.syncAccount(a.account, usedToday: a.usedToday, window: Self.window(a.minuteWindow, a.tokensInMinute), spentUntil: a.spentUntil, at: now))
        let k = result.key
        pool.syncKey(keyIndex, usedToday: k.usedToday, window: Self.window(k.minuteWindow, k.tokensInMinute), at: now)
    }

    /// Writes transitions to the key-health table and the audit log, and events to the event log.
    private func persist(_ notices: [KeyPoolNotice]) {
        for notice in notices {
            do {
                switch notice {
                case .transition(let i, let t):
                    let entry = pool.entries[i]
                    try ledger.saveHealth(KeyHealthRecord(keyId: entry.id, state: t.to.name, until: t.to.until, reason: t.reason, updatedAt: t.at))
                    try ledger.appendAudit(AuditEntry(at: t.at, keyId: entry.id, account: entry.account, action: "health", from: t.from.name, to: t.to.name, reason: t.reason))
                    logger.info("key \(entry.masked) (\(entry.label ?? entry.id)): \(t.from.name) → \(t.to.name): \(t.reason)")
                case .event(let kind, let i, let account, let message):
                    try ledger.appendEvent(KeyEvent(at: clock.now(), kind: kind, keyId: i.map { pool.entries[$0].id }, account: account, message: message))
                    logger.notice("\(kind): \(message)")
                }
            } catch {
                logger.error("could not write to the key ledger: \(error)")
            }
        }
    }

    static func window(_ stamps: [EpochMillis], _ tokens: Int) -> [(EpochMillis, Int)] {
        // The ledger gives the window's token total, not per request; putting it on the newest
        // stamp keeps it counted longest, which errs on the side of never overdrawing.
        stamps.enumerated().map { ($0.element, $0.offset == stamps.count - 1 ? tokens : 0) }
    }

    static func state(_ record: KeyHealthRecord) -> KeyHealth.State {
        switch record.state {
        case "cooling": .cooling(until: record.until ?? 0)
        case "disabled": .disabled(byOperator: record.reason.hasPrefix("operator"))
        case "no_credits": .noCredits(until: record.until ?? 0)
        case "suspended": .suspended(until: record.until ?? 0)
        case "half_open": .halfOpen(probing: false)
        default: .active
        }
    }

    static func kind(_ outcome: KeyOutcome) -> String {
        switch outcome {
        case .success: "ok"
        case .clientError: "client_error"
        case .unauthorized: "auth"
        case .paymentRequired: "payment"
        case .rateLimited: "rate_limited"
        case .failure: "failure"
        }
    }
}

private struct Waiter: Comparable {
    var request: KeyRequest
    var sequence: UInt64
    var deadline: EpochMillis
    var shortage: KeyShortage
    var completion: (Result<KeyLease, KeyGrantFailure>) -> Void

    // Max-heap order: higher priority first, then earlier arrival.
    static func < (l: Waiter, r: Waiter) -> Bool {
        l.request.priority != r.request.priority ? l.request.priority < r.request.priority : l.sequence > r.sequence
    }
    static func == (l: Waiter, r: Waiter) -> Bool { l.sequence == r.sequence }
}

/// Wakes a ``KeyBroker`` with a libuv timer on the coordinator's loop.
public final class LoopWakeScheduler: WakeScheduler {
    private let timer: Timer
    private let clock: any WallClock
    public var onWake: (() -> Void)?

    public init(loop: EventLoop, clock: any WallClock) {
        timer = Timer(loop: loop)
        self.clock = clock
    }

    public func schedule(at time: EpochMillis?) {
        guard let time else { timer.stop(); return }
        let delay = UInt64(max(0, time - clock.now()))
        timer.start(after: delay) { [weak self] in self?.onWake?() }
    }

    public func close() { timer.close() }
}

/// The system's wall clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> EpochMillis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return EpochMillis(ts.tv_sec) * 1000 + EpochMillis(ts.tv_nsec / 1_000_000)
    }
}
