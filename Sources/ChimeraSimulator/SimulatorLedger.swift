import ChimeraCore
import Synchronization

/// OpenRouter's free-model limits (openrouter-api.md §5.1).
enum FreeTier {
    static let windowMillis: EpochMillis = 60_000
    static let creditsThreshold = 10.0

    static func dailyLimit(creditsPurchased: Double) -> Int { creditsPurchased >= creditsThreshold ? 1000 : 50 }
}

/// The outcome of counting one free-model request against its account.
enum FreeAdmission: Equatable {
    case admitted
    /// The daily cap is reached; it resets at `reset` (the next 00:00 UTC).
    case daily(limit: Int, reset: EpochMillis)
    /// 20 requests in the last 60 s; a slot frees at `reset`.
    case minute(limit: Int, reset: EpochMillis)
}

/// A generation the simulator produced, for `GET /generation`.
struct GenerationRecord: Sendable {
    var id: String
    var model: String
    var account: Int
    var key: String
    var created: EpochMillis
    var promptTokens: Int
    var completionTokens: Int
    var cost: Double
    var finishReason: String
    var streamed: Bool
    var latencyMs: Int
    var user: String?
}

/// Which counter of ``SimulatorStats/Counters`` an outcome bumps.
enum Outcome {
    case request, served, rateLimitedDaily, rateLimitedMinute, paymentRequired, fault, failed
}

/// All mutable simulator state, behind one mutex: every check-and-count is one critical section,
/// so concurrent requests can never overshoot a limit.
final class SimulatorLedger: Sendable {
    struct AccountState {
        var day: Int64 = .min
        var dailyUsed = 0
        /// Times of the free requests counted in the last minute, oldest first.
        var window: [EpochMillis] = []
        var counters = SimulatorStats.Counters()
    }

    struct KeyState {
        var counters = SimulatorStats.Counters()
        var costByDay: [Int64: Double] = [:]
    }

    struct State {
        var accounts: [AccountState]
        var keys: [String: KeyState] = [:]
        var unauthorized = 0
        var faultRNG: SplitMix64
        var idRNG: SplitMix64
        var generations: [String: GenerationRecord] = [:]
        /// Generation ids, oldest first from `generationStart`, to bound memory.
        var generationOrder: [String] = []
        var generationStart = 0
        var clockOffset: EpochMillis = 0
        /// `replies=…` turns served, by prompt.
        var replyTurns: [String: Int] = [:]
    }

    let config: SimulatorConfig
    let clock: any WallClock
    /// Key → index into `config.accounts` (the first account wins if a key repeats).
    let accountOfKey: [String: Int]
    let modelsById: [String: SimulatorConfig.Model]
    private let state: Mutex<State>

    init(config: SimulatorConfig, clock: any WallClock) {
        self.config = config
        self.clock = clock
        var byKey: [String: Int] = [:]
        for (i, account) in config.accounts.enumerated() {
            for key in account.keys where byKey[key] == nil { byKey[key] = i }
        }
        accountOfKey = byKey
        var models: [String: SimulatorConfig.Model] = [:]
        for model in config.models where models[model.id] == nil { models[model.id] = model }
        modelsById = models
        state = Mutex(Self.initialState(config))
    }

    private static func initialState(_ config: SimulatorConfig) -> State {
        State(accounts: Array(repeating: AccountState(), count: config.accounts.count),
              faultRNG: SplitMix64(seed: config.seed),
              idRNG: SplitMix64(seed: config.seed ^ 0x5EED_0F_1D5))
    }

    // MARK: clock

    func now() -> EpochMillis { state.withLock { clock.now() + $0.clockOffset } }

    func setTime(_ time: EpochMillis) {
        state.withLock { $0.clockOffset = time - clock.now() }
    }

    // MARK: accounting

    /// Counts one free-model request for `account` unless a limit is reached: atomically.
    func admitFree(account: Int, key: String) -> FreeAdmission {
        state.withLock { s in
            let now = clock.now() + s.clockOffset
            let limit = FreeTier.dailyLimit(creditsPurchased: config.accounts[account].creditsPurchased)
            let perMinute = max(1, config.accounts[account].perMinute)
            var a = s.accounts[account]
            let day = UTCDay.index(of: now)
            if a.day != day {
                a.day = day
                a.dailyUsed = 0
            }
            a.window.removeAll { $0 <= now - FreeTier.windowMillis || $0 > now }
            let outcome: FreeAdmission
            if a.dailyUsed >= limit {
                outcome = .daily(limit: limit, reset: UTCDay.nextMidnight(after: now))
                a.counters.rateLimitedDaily += 1
                s.keys[key, default: KeyState()].counters.rateLimitedDaily += 1
            } else if a.window.count >= perMinute {
                outcome = .minute(limit: perMinute, reset: a.window[a.window.count - perMinute] + FreeTier.windowMillis)
                a.counters.rateLimitedMinute += 1
                s.keys[key, default: KeyState()].counters.rateLimitedMinute += 1
            } else {
                a.dailyUsed += 1
                a.window.append(now)
                a.counters.freeCounted += 1
                s.keys[key, default: KeyState()].counters.freeCounted += 1
                outcome = .admitted
            }
            s.accounts[account] = a
            return outcome
        }
    }

    /// `(limit, used)` of the account's free-model quota today.
    func freeUsage(account: Int) -> (limit: Int, used: Int) {
        state.withLock { s in
            let now = clock.now() + s.clockOffset
            let a = s.accounts[account]
            let used = a.day == UTCDay.index(of: now) ? a.dailyUsed : 0
            return (FreeTier.dailyLimit(creditsPurchased: config.accounts[account].creditsPurchased), used)
        }
    }

    func record(_ outcome: Outcome, account: Int, key: String) {
        state.withLock { s in
            func bump(_ c: inout SimulatorStats.Counters) {
                switch outcome {
                case .request: c.requests += 1
                case .served: c.served += 1
                case .rateLimitedDaily: c.rateLimitedDaily += 1
                case .rateLimitedMinute: c.rateLimitedMinute += 1
                case .paymentRequired: c.paymentRequired += 1
                case .fault: c.faultsInjected += 1
                case .failed: c.failed += 1
                }
            }
            bump(&s.accounts[account].counters)
            bump(&s.keys[key, default: KeyState()].counters)
        }
    }

    func recordUnauthorized() {
        state.withLock { $0.unauthorized += 1 }
    }

    /// A status drawn from `config.errorRates`, or nil (the common case).
    func drawFault() -> Int? {
        guard !config.errorRates.isEmpty else { return nil }
        return state.withLock { s in
            let u = s.faultRNG.unit()
            var cumulative = 0.0
            for status in config.errorRates.keys.sorted() {
                cumulative += config.errorRates[status] ?? 0
                if u < cumulative { return status }
            }
            return nil
        }
    }

    // MARK: generations

    /// `gen-<unix seconds>-<20 alphanumerics>`, from a seeded generator.
    func newGenerationId(at now: EpochMillis) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        let suffix: String = state.withLock { s in
            String((0..<20).map { _ in alphabet[Int(s.idRNG.next() % UInt64(alphabet.count))] })
        }
        return "gen-\(now / 1000)-\(suffix)"
    }

    /// How many generations `GET /generation` remembers (the oldest are forgotten first).
    static let generationsKept = 100_000

    func store(_ generation: GenerationRecord) {
        state.withLock { s in
            s.generations[generation.id] = generation
            s.generationOrder.append(generation.id)
            if s.generationOrder.count - s.generationStart > Self.generationsKept {
                s.generations[s.generationOrder[s.generationStart]] = nil
                s.generationStart += 1
                if s.generationStart >= Self.generationsKept {
                    s.generationOrder.removeFirst(s.generationStart)
                    s.generationStart = 0
                }
            }
            let day = UTCDay.index(of: generation.created)
            s.keys[generation.key, default: KeyState()].costByDay[day, default: 0] += generation.cost
        }
    }

    func generation(_ id: String) -> GenerationRecord? { state.withLock { $0.generations[id] } }

    /// USD spent by `key`: all time, today, this Monday-start week, this month (UTC).
    func keyUsage(_ key: String) -> (total: Double, daily: Double, weekly: Double, monthly: Double) {
        state.withLock { s in
            let now = clock.now() + s.clockOffset
            let today = UTCDay.index(of: now)
            // 1970-01-01 was a Thursday: shifting by 3 makes weeks start on Monday.
            func week(_ day: Int64) -> Int64 { let (q, r) = (day + 3).quotientAndRemainder(dividingBy: 7); return r < 0 ? q - 1 : q }
            let month = UTCDay.dateString(of: now).prefix(7)
            var usage = (total: 0.0, daily: 0.0, weekly: 0.0, monthly: 0.0)
            for (day, cost) in s.keys[key]?.costByDay ?? [:] {
                usage.total += cost
                if day == today { usage.daily += cost }
                if week(day) == week(today) { usage.weekly += cost }
                if UTCDay.dateString(of: UTCDay.start(ofDay: day)).prefix(7) == month { usage.monthly += cost }
            }
            return usage
        }
    }

    // MARK: stats

    func stats() -> SimulatorStats {
        state.withLock { s in
            let now = clock.now() + s.clockOffset
            var stats = SimulatorStats(unauthorized: s.unauthorized)
            for (i, account) in config.accounts.enumerated() {
                stats.accounts[account.name] = s.accounts[i].counters
                stats.freeUsedToday[account.name] = s.accounts[i].day == UTCDay.index(of: now) ? s.accounts[i].dailyUsed : 0
            }
            for (key, k) in s.keys { stats.keys[key] = k.counters }
            return stats
        }
    }

    /// The turn (0, 1, 2…) of this request among those with the same `replies=…` prompt.
    func nextReplyTurn(for prompt: String) -> Int {
        state.withLock { s in
            defer { s.replyTurns[prompt, default: 0] += 1 }
            return s.replyTurns[prompt, default: 0]
        }
    }

    /// Clears counters, quotas, spend and generations; keeps the clock where it is.
    func reset() {
        state.withLock { s in
            let offset = s.clockOffset
            s = Self.initialState(config)
            s.clockOffset = offset
        }
    }
}
