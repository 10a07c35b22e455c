import ChimeraRuntime

/// Which agent profiles exist: the built-ins and one `NAME.json` per profile in the agents
/// directory. Only names for now (`chimera validate` checks a step's `agent` against them); the
/// agent loader will replace this with the profiles themselves.
enum AgentDirectory {
    /// A directory that cannot be listed, named in the description.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The profiles every installation has.
    static let builtins: Set<String> = ["default", "specialized", "creative", "reasoning", "cost-aware"]

    /// The agents directory: `explicit` (`--agents`), else `$CHIMERA_AGENTS`, else `./Agents` when
    /// it exists, else none.
    static func directory(explicit: String?, environment: [String: String] = ProcessEnvironment.current) -> String? {
        if let explicit { return explicit }
        if let fromEnv = environment["CHIMERA_AGENTS"], !fromEnv.isEmpty { return fromEnv }
        return FileIO.exists("Agents") ? "Agents" : nil
    }

    /// The built-ins plus `NAME` for each `NAME.json` in `directory`.
    ///
    /// - Throws: ``Failure`` naming the directory when it cannot be listed.
    static func names(in directory: String?) throws(Failure) -> Set<String> {
        guard let directory else { return builtins }
        let entries: [String]
        do {
            entries = try FileIO.directoryEntries(directory)
        } catch {
            throw Failure(description: "\(directory): cannot list the agents directory: \(error)")
        }
        return builtins.union(entries.filter { $0.hasSuffix(".json") && $0.count > 5 }.map { String($0.dropLast(5)) })
    }
}
