import ArgumentParser
import ChimeraCore
import ChimeraRuntime

/// `chimera agents`: the agent profiles a task, pipeline step or chat can use.
struct AgentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "List the agent profiles (built-in and from the profile directory), or show one.",
        discussion: """
        Profiles are JSON files, one per agent, in --agents DIR, else $CHIMERA_AGENTS, else ./Agents when it \
        exists; a file replaces the built-in profile of the same name. Agents/README.md documents the format \
        and the strategies: default, specialized, creative, reasoning, cost-aware.
        Exit status: 0 ok, 2 a profile cannot be loaded or the name is unknown.
        """,
        subcommands: [AgentsList.self, AgentsShow.self],
        defaultSubcommand: AgentsList.self
    )
}

/// The options every `agents` subcommand shares.
struct AgentsOptions: ParsableArguments {
    @Option(help: "Directory of agent profiles, *.json (default: $CHIMERA_AGENTS, else ./Agents when it exists).")
    var agents: String?

    @Flag(help: "Print JSON.")
    var json = false

    /// The library, or every problem of every bad file and exit 2.
    func library() throws -> AgentLibrary {
        do {
            return try AgentLibrary.load(directory: agents, environment: ProcessEnvironment.current)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
    }
}

struct AgentsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the agent profiles: name, strategy, source, description.")

    @OptionGroup var options: AgentsOptions

    func run() throws {
        let library = try options.library()
        let profiles = library.names.compactMap(library.profile(named:))
        if options.json {
            printLine(JSONValue.object([
                JSONMember("directory", library.directory.map { .string($0) } ?? .null),
                JSONMember("agents", .array(profiles.map { p in
                    .object([JSONMember("name", .string(p.name)), JSONMember("strategy", .string(p.strategy.rawValue)),
                             JSONMember("source", p.source.map { .string($0) } ?? .string("built-in")),
                             JSONMember("description", .string(p.description))])
                })),
            ]).serialized)
            return
        }
        let rows = [["NAME", "STRATEGY", "SOURCE", "DESCRIPTION"]] + profiles.map { [$0.name, $0.strategy.rawValue, $0.source ?? "built-in", $0.description] }
        let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let padded = (0..<3).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count) }
            printLine((padded + [row[3]]).joined(separator: "  ").trimmingTrailingSpaces)
        }
    }
}

struct AgentsShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one agent profile with every default spelled out.")

    @OptionGroup var options: AgentsOptions

    @Argument(help: "The agent's name.")
    var name: String

    func run() throws {
        let library = try options.library()
        guard let profile = library.profile(named: name) else {
            printError(library.unknownAgentMessage(name))
            throw ExitCode(ExitCodes.usage)
        }
        if options.json {
            printLine(profile.json.serialized)
            return
        }
        printLine("agent \(profile.name) (\(profile.strategy.rawValue)), \(profile.source ?? "built-in")")
        if !profile.description.isEmpty { printLine("  \(profile.description)") }
        guard case .object(let members) = profile.json else { return }
        for member in members where !["name", "strategy", "description", "source"].contains(member.key) {
            let value: String = if case .string(let text) = member.value { text } else { member.value.serialized }
            printLine("  \(member.key): \(value)")
        }
    }
}

extension String {
    /// Without trailing spaces.
    fileprivate var trimmingTrailingSpaces: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
