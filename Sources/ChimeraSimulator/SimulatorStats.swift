import ChimeraCore

/// What the simulator has seen since it started (or since the last reset), per account and per
/// key. `GET /_sim/stats` returns the same as JSON (``json``).
public struct SimulatorStats: Sendable, Equatable {
    /// Counts of `POST /chat/completions` outcomes.
    public struct Counters: Sendable, Equatable {
        /// Authenticated chat-completion requests.
        public var requests = 0
        /// Requests answered with a generation (status 200, no injected in-band error).
        public var served = 0
        /// Requests counted against the free-model quota (including ones that then failed).
        public var freeCounted = 0
        /// 429s for the daily free-model cap.
        public var rateLimitedDaily = 0
        /// 429s for the 20-per-minute free-model cap.
        public var rateLimitedMinute = 0
        /// 402s (negative balance).
        public var paymentRequired = 0
        /// Injected failures: `[[sim:…]]` directives and `errorRates` draws (one per attempt).
        public var faultsInjected = 0
        /// Other failures, one per attempt: bad bodies and malformed or unknown models (400/404),
        /// models that are down (502).
        public var failed = 0

        public init() {}

        var json: JSONValue {
            .object([
                JSONMember("requests", .number(Double(requests))),
                JSONMember("served", .number(Double(served))),
                JSONMember("free_counted", .number(Double(freeCounted))),
                JSONMember("rate_limited_daily", .number(Double(rateLimitedDaily))),
                JSONMember("rate_limited_minute", .number(Double(rateLimitedMinute))),
                JSONMember("payment_required", .number(Double(paymentRequired))),
                JSONMember("faults_injected", .number(Double(faultsInjected))),
                JSONMember("failed", .number(Double(failed))),
            ])
        }
    }

    /// By account name.
    public var accounts: [String: Counters]
    /// By API key (the simulator's keys are fake, so they are shown in full).
    public var keys: [String: Counters]
    /// Free-model requests counted today (simulator clock, UTC day) by account name.
    public var freeUsedToday: [String: Int]
    /// 401s (no credentials or an unknown key); they belong to no account.
    public var unauthorized: Int

    public init(accounts: [String: Counters] = [:], keys: [String: Counters] = [:], freeUsedToday: [String: Int] = [:], unauthorized: Int = 0) {
        self.accounts = accounts
        self.keys = keys
        self.freeUsedToday = freeUsedToday
        self.unauthorized = unauthorized
    }

    /// `{"accounts": {name: {…, "free_used_today": n}}, "keys": {key: {…}}, "unauthorized": n}`, sorted by name.
    public var json: JSONValue {
        let accountMembers = accounts.keys.sorted().map { name -> JSONMember in
            var value = accounts[name, default: Counters()].json
            if case .object(var members) = value {
                members.append(JSONMember("free_used_today", .number(Double(freeUsedToday[name] ?? 0))))
                value = .object(members)
            }
            return JSONMember(name, value)
        }
        return .object([
            JSONMember("accounts", .object(accountMembers)),
            JSONMember("keys", .object(keys.keys.sorted().map { JSONMember($0, keys[$0, default: Counters()].json) })),
            JSONMember("unauthorized", .number(Double(unauthorized))),
        ])
    }
}
