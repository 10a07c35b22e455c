extension ChimeraConfig {
    /// Makes sure every tool of `profile` has a pool: a built-in handler (`text.keywords`…) that
    /// no pool serves gets a one-worker built-in pool, `agent-tools`.
    ///
    /// - Returns: the first tool that is neither served nor built in (a configuration error for
    ///   the caller to report), or nil when every tool is served.
    public mutating func addPools(forToolsOf profile: AgentProfile) -> String? {
        let unserved = profile.tools.filter { pool(serving: $0) == nil }
        if let missing = unserved.first(where: { !BuiltinHandlerNames.standard.contains($0) }) { return missing }
        if !unserved.isEmpty {
            var pool = PoolConfig(name: "agent-tools", handlers: unserved)
            pool.size = 1
            pools.append(pool)
        }
        return nil
    }
}
