/// Coordinator-wide settings. Durations are milliseconds; every field has a default.
public struct CoordinatorSettings: Sendable, Equatable {
    /// Tasks that may wait in the queue across all pools before submissions are refused.
    public var queueCapacity = 65_536
    /// Default per-task deadline.
    public var taskTimeoutMs: UInt64 = 60_000
    /// After a timeout, how long the worker has to acknowledge the cancel before it is killed.
    public var cancelGraceMs: UInt64 = 2_000
    /// How often an idle worker is asked for a heartbeat.
    public var heartbeatIntervalMs: UInt64 = 5_000
    /// A worker silent for this long is considered hung and is killed.
    public var heartbeatTimeoutMs: UInt64 = 15_000
    /// Time from spawn to a completed `initialize` handshake.
    public var handshakeTimeoutMs: UInt64 = 10_000
    /// How many times a task may be started before it is quarantined (workers died each time).
    public var maxAttempts = 2
    /// On SIGINT/SIGTERM, how long in-flight work may take to finish.
    public var drainGraceMs: UInt64 = 10_000
    /// At shutdown, how long each step (stdin closed, then SIGTERM) waits before the next.
    public var stopGraceMs: UInt64 = 2_000
    /// The longest line accepted from a worker, in bytes.
    public var maxLineBytes = 8 << 20
    /// What a malformed line from a worker causes: restart the worker, or only log it.
    public var restartOnMalformedOutput = true

    public init() {}
}

/// One pool of identical worker processes.
public struct PoolConfig: Sendable, Equatable {
    /// Unique name, used in logs (`builtin#2`) and `chimera workers`.
    public var name: String
    /// The executable; `nil` means Chimera's own built-in worker (`chimera worker`).
    public var command: String?
    /// Arguments for `command`.
    public var arguments: [String] = []
    /// Working directory of the workers; custom handlers default to the config file's folder,
    /// so relative script paths in `args` mean the same wherever `chimera` is run from.
    public var workingDirectory: String?
    /// Extra environment variables for the workers.
    public var environment: [String: String] = [:]
    /// Handlers this pool serves (tasks are routed by handler name).
    public var handlers: [String]
    /// Task kinds this pool's handler serves: JHADE may route tasks of these kinds to it (for a
    /// pool of one handler: every custom handler, or a built-in pool serving a single handler).
    public var kinds: [String] = []
    /// Custom handlers: the prior probability, in [0, 1], that an answer to a simple task of its
    /// kinds passes the quality bar (JHADE's cold start); nil means 0.5.
    public var capability: Double?
    /// Custom handlers: the largest prompt they take, in estimated tokens.
    public var maxInputTokens: Int?
    /// Number of worker processes.
    public var size = 1
    /// Concurrency limit per worker; `nil` takes what the worker declares in its handshake.
    public var maxConcurrency: Int?
    /// Restart backoff and intensity.
    public var restart = RestartPolicy()
    /// Built-in pools only: also serve the test handlers (`sleep`, `fail`, `crash`, ...).
    public var testHandlers = false
    /// Built-in pools only: run agent workers (`chimera worker --agent NAME`), which make external
    /// calls (`llm.chat`) for that agent profile.
    public var agent: String?

    public init(name: String, command: String? = nil, handlers: [String]) {
        self.name = name
        self.command = command
        self.handlers = handlers
    }

    /// Whether this pool runs Chimera's own worker.
    public var isBuiltin: Bool { command == nil }
}

/// A whole configuration: coordinator settings, worker pools and the API key pool.
public struct ChimeraConfig: Sendable, Equatable {
    public var coordinator = CoordinatorSettings()
    public var pools: [PoolConfig]
    public var keys = KeysConfig()
    public var openrouter = OpenRouterSettings()
    /// Other OpenAI-compatible providers (a local llama.cpp or Ollama server, OpenAI…), each with
    /// its own key pool. A model id `NAME/model` goes to the provider called NAME.
    public var providers: [ProviderSettings] = []
    /// JHADE's objective weights, shadow share, learning strategy and default quality bar.
    public var jhade = JHADESettings()

    public init(coordinator: CoordinatorSettings = CoordinatorSettings(), pools: [PoolConfig]) {
        self.coordinator = coordinator
        self.pools = pools
    }

    /// What Chimera runs with no config file: one pool of two built-in workers.
    public static var builtinDefault: ChimeraConfig {
        var pool = PoolConfig(name: "builtin", handlers: BuiltinHandlerNames.standard)
        pool.size = 2
        return ChimeraConfig(pools: [pool])
    }

    /// What internal handlers declare to JHADE: the offline built-in handlers that a built-in
    /// pool serves (``BuiltinTextHandlers``, with their own kinds and capability), and each pool
    /// of one handler that lists `kinds` (a custom handler's `kinds` and `capability`).
    public var handlerCapabilities: [HandlerCapability] {
        var result: [HandlerCapability] = []
        for pool in pools where pool.agent == nil {
            if pool.isBuiltin {
                result += BuiltinTextHandlers.all.filter { pool.handlers.contains($0.name) }.map(\.handlerCapability)
            } else if pool.handlers.count == 1, !pool.kinds.isEmpty {
                result.append(HandlerCapability(handler: pool.handlers[0], kinds: pool.kinds, prior: pool.capability ?? 0.5,
                                                maxInputTokens: pool.maxInputTokens))
            }
        }
        return result
    }

    /// The pool that serves `handler`, if any.
    public func pool(serving handler: String) -> PoolConfig? {
        pools.first { $0.handlers.contains(handler) }
    }
}

/// Names of the handlers the built-in worker serves.
public enum BuiltinHandlerNames {
    /// Always available: `echo`, `noop` and the offline handlers of ``BuiltinTextHandlers``
    /// (`text.summarize`, `math.eval`, `text.stats`, `template.render`, …).
    public static let standard = ["echo", "noop"] + BuiltinTextHandlers.names
    /// Served by agent workers (`agent: "NAME"`, or `chimera worker --agent NAME`): external calls.
    public static let agent = ["llm.chat"]
    /// Only with `test_handlers: true` (or `chimera worker --test-handlers`): they misbehave on purpose.
    public static let test = ["sleep", "fail", "crash", "hang", "garbage", "fds", "stream"]
}

/// Call timeouts in milliseconds, as configured: connection, response head, idle between body
/// reads, total.
public struct TimeoutSettings: Sendable, Equatable {
    public var connectMs: UInt64 = 10_000
    public var firstByteMs: UInt64 = 60_000
    public var idleMs: UInt64 = 60_000
    public var totalMs: UInt64 = 600_000

    public init() {}
}

/// The `openrouter` section: where external calls go and how they identify themselves.
public struct OpenRouterSettings: Sendable, Equatable {
    /// The API root; `--base-url` and `$OPENROUTER_BASE_URL` take precedence.
    public var baseURL: String?
    /// Sent as `HTTP-Referer` (OpenRouter's app attribution), when set.
    public var referer: String?
    /// Sent as `X-OpenRouter-Title`.
    public var title = "Chimera"
    public var timeouts = TimeoutSettings()

    public init() {}
}

/// One entry of `providers`: another OpenAI-compatible API (`POST {base_url}/chat/completions`).
public struct ProviderSettings: Sendable, Equatable {
    /// What model ids are prefixed with to reach this provider (`local/llama3.2:3b`).
    public var name: String
    /// The API root, e.g. `http://127.0.0.1:11434/v1`.
    public var baseURL: String
    /// Extra headers sent with every request, in order.
    public var headers: [(name: String, value: String)] = []
    /// The provider's own key pool (the `keys` section's format; environment variables are named
    /// per key in `entries`). `nil`: the provider takes requests without an API key.
    public var keys: KeysConfig?
    public var timeouts = TimeoutSettings()

    public init(name: String, baseURL: String) {
        self.name = name
        self.baseURL = baseURL
    }

    /// Lowercase letters, digits, `-` and `_`, and not `openrouter` (the built-in provider).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name != "openrouter"
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.name == r.name && l.baseURL == r.baseURL && l.headers.map { [$0.name, $0.value] } == r.headers.map { [$0.name, $0.value] }
            && l.keys == r.keys && l.timeouts == r.timeouts
    }
}
