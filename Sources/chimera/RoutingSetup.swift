import ChimeraCore
import ChimeraRuntime

extension ChimeraConfig {
    /// Adds a pool of `size` agent workers for external calls (`llm.chat`), unless a pool
    /// already serves them. `ask`, `task` and `chat` share it.
    mutating func ensureAgentPool(size: Int) {
        guard pool(serving: ExternalChatHandler.handlerName) == nil else { return }
        var agents = PoolConfig(name: "agents", handlers: BuiltinHandlerNames.agent)
        agents.agent = "default"
        agents.size = size
        agents.maxConcurrency = 256
        pools.append(agents)
    }
}

extension DecisionEngine {
    /// The engine as the config's `jhade` section sets it up, with a command's `--no-learn`
    /// and `--shadow` (nil: the config's share).
    init(_ settings: JHADESettings, noLearn: Bool, shadow: Double?) {
        self.init()
        weights = settings.weights
        strategy = settings.strategy
        learning = settings.learning && !noLearn
        shadowFraction = shadow ?? settings.shadow
    }
}
