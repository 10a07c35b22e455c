import ChimeraCore

/// What the simulated OpenRouter knows: accounts and their keys, models, and how it misbehaves.
///
/// Defaults follow OpenRouter's documented behaviour (docs in `openrouter-api.md`); the knobs are
/// only timing and fault rates, so that the wire stays faithful whatever the settings.
public struct SimulatorConfig: Sendable {
    /// One OpenRouter account. Free-model quotas are per account: every key of it shares them.
    public struct Account: Sendable {
        /// A name for stats and `--print-keys`; also the source of the account's `user_id`.
        public var name: String
        /// The account's API keys (`sk-or-v1-…`); any string works, they are only compared.
        public var keys: [String]
        /// Credits purchased all time (USD). At least 10 unlocks 1000 free-model requests a day
        /// instead of 50.
        public var creditsPurchased: Double
        /// The current balance (USD). Negative means 402 on every request, even on `:free` models.
        public var balance: Double
        /// Free-model requests allowed in any rolling 60 s: OpenRouter's is 20. Raise it to study
        /// the daily cap alone, lower it to provoke per-minute 429s.
        public var perMinute: Int

        public init(name: String, keys: [String], creditsPurchased: Double = 0, balance: Double = 0, perMinute: Int = 20) {
            self.name = name
            self.keys = keys
            self.creditsPurchased = creditsPurchased
            self.balance = balance
            self.perMinute = perMinute
        }
    }

    /// One model as `GET /models` lists it.
    public struct Model: Sendable {
        /// `author/slug` with an optional variant, e.g. `meta-llama/llama-3.3-70b-instruct:free`.
        public var id: String
        public var contextLength: Int
        /// USD per prompt token as a decimal string (`"0"` for `:free`, `"-1"` for routers).
        public var promptPrice: String
        /// USD per completion token as a decimal string.
        public var completionPrice: String
        /// An outage: requests to it fail with 502 "Provider returned error" (and a `models`
        /// fallback skips it).
        public var down: Bool
        /// A reasoning model: `GET /models` lists `reasoning` and `include_reasoning` among its
        /// `supported_parameters`.
        public var reasoning: Bool

        public init(id: String, contextLength: Int, promptPrice: String = "0", completionPrice: String = "0", down: Bool = false,
                    reasoning: Bool = false) {
            self.id = id
            self.contextLength = contextLength
            self.promptPrice = promptPrice
            self.completionPrice = completionPrice
            self.down = down
            self.reasoning = reasoning
        }
    }

    public var accounts: [Account]
    public var models: [Model]
    /// Milliseconds before a provider answers: before the JSON response, or before the first
    /// chunk of a stream (keep-alive comments are spread over it). Platform rejections (400, 401,
    /// 402, 404, 429) are immediate, as on OpenRouter.
    public var latencyMs: Int
    /// Milliseconds between stream chunks.
    public var chunkDelayMs: Int
    /// `: OPENROUTER PROCESSING` comments sent before the first chunk of a stream.
    public var keepAliveComments: Int
    /// Probability per attempt of an injected upstream failure, by HTTP status, e.g.
    /// `[502: 0.05, 503: 0.02]`; drawn from a generator seeded with ``seed``.
    public var errorRates: [Int: Double]
    /// Seed of the fault generator and of generation ids.
    public var seed: UInt64

    public init(accounts: [Account], models: [Model], latencyMs: Int = 0, chunkDelayMs: Int = 0,
                keepAliveComments: Int = 1, errorRates: [Int: Double] = [:], seed: UInt64 = 1) {
        self.accounts = accounts
        self.models = models
        self.latencyMs = latencyMs
        self.chunkDelayMs = chunkDelayMs
        self.keepAliveComments = keepAliveComments
        self.errorRates = errorRates
        self.seed = seed
    }

    /// Three accounts (two free, one that bought 10 credits), two keys each
    /// (`sk-or-v1-sim-a-0001` … `sk-or-v1-sim-c-0002`), several `:free` models, one paid model,
    /// the `openrouter/auto` and `openrouter/free` routers, and one model that is always down.
    public static var standard: SimulatorConfig {
        SimulatorConfig(
            accounts: [
                Account(name: "free-a", keys: ["sk-or-v1-sim-a-0001", "sk-or-v1-sim-a-0002"]),
                Account(name: "free-b", keys: ["sk-or-v1-sim-b-0001", "sk-or-v1-sim-b-0002"]),
                Account(name: "credits-c", keys: ["sk-or-v1-sim-c-0001", "sk-or-v1-sim-c-0002"], creditsPurchased: 10, balance: 10),
            ],
            models: [
                Model(id: "meta-llama/llama-3.3-70b-instruct:free", contextLength: 131_072),
                Model(id: "deepseek/deepseek-chat-v3-0324:free", contextLength: 163_840),
                Model(id: "google/gemma-3-27b-it:free", contextLength: 96_000),
                Model(id: "mistralai/mistral-small-3.2-24b-instruct:free", contextLength: 131_072),
                Model(id: "openai/gpt-4o-mini", contextLength: 128_000, promptPrice: "0.00000015", completionPrice: "0.0000006"),
                Model(id: "openrouter/auto", contextLength: 2_000_000, promptPrice: "-1", completionPrice: "-1"),
                Model(id: "openrouter/free", contextLength: 131_072),
                Model(id: "sim/always-down:free", contextLength: 8_192, down: true),
            ],
            latencyMs: 0, chunkDelayMs: 0, keepAliveComments: 1, errorRates: [:], seed: 1
        )
    }
}

extension SimulatorConfig.Model {
    /// `:free` variants and the `openrouter/free` router draw on the account's free quota.
    var isFree: Bool { id.hasSuffix(":free") || id == "openrouter/free" }
    /// Routers pick a concrete model; their prices are the sentinel `"-1"` or `"0"`.
    var isRouter: Bool { id == "openrouter/auto" || id == "openrouter/free" }
    var promptPerToken: Double { max(0, Double(promptPrice) ?? 0) }
    var completionPerToken: Double { max(0, Double(completionPrice) ?? 0) }

    /// "Meta Llama: Llama 3.3 70b Instruct (free)"-like display name derived from the id.
    var displayName: String {
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return id }
        func words(_ s: Substring) -> String {
            s.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
        }
        let variant = parts[1].split(separator: ":", maxSplits: 1)
        let suffix = variant.count == 2 ? " (\(variant[1]))" : ""
        return "\(words(Substring(parts[0]))): \(words(variant[0]))\(suffix)"
    }
}
