import ChimeraCore

/// The agent profiles a process can use: the five built-in ones (one per strategy, named after
/// it) and the user's `*.json` files from a directory, which replace built-in profiles of the
/// same name.
///
/// ```swift
/// let library = try AgentLibrary.load(directory: options.agents, environment: ProcessEnvironment.current)
/// guard let agent = library.profile(named: "news-analyst") else { print(library.unknownAgentMessage("news-analyst")) }
/// ```
public struct AgentLibrary: Sendable {
    /// The environment variable naming the profile directory when none is given.
    public static let environmentVariable = "CHIMERA_AGENTS"
    /// The directory used when neither is given, if it exists.
    public static let defaultDirectory = "Agents"

    /// Profiles by name.
    public let profiles: [String: AgentProfile]
    /// The directory profiles were read from; nil when only built-in profiles are known.
    public let directory: String?

    /// A library of `profiles` (later ones replace earlier ones of the same name).
    public init(profiles: [AgentProfile], directory: String? = nil) {
        var byName: [String: AgentProfile] = [:]
        for profile in profiles { byName[profile.name] = profile }
        self.profiles = byName
        self.directory = directory
    }

    /// Every profile name, sorted.
    public var names: [String] { profiles.keys.sorted() }

    /// The profile named `name`, if any.
    public func profile(named name: String) -> AgentProfile? { profiles[name] }

    /// "unknown agent "x" (did you mean "y"?); known agents: a, b, c" for a name not in the library.
    public func unknownAgentMessage(_ name: String) -> String {
        let hint = Suggestion.closest(to: name, in: names).map { " (did you mean \"\($0)\"?)" } ?? ""
        let from = directory.map { " (built-in and from \($0))" } ?? " (built-in)"
        return "unknown agent \"\(name)\"\(hint); known agents\(from): \(names.joined(separator: ", "))"
    }

    /// The built-in profiles and those of the profile directory: `directory` when given, else
    /// `$CHIMERA_AGENTS` when set, else `./Agents` when it exists. Each `*.json` file there is one
    /// profile; other files, and JSON Schemas (`*.schema.json`, such as `agent.schema.json`), are
    /// ignored.
    ///
    /// - Throws: ``AgentLibraryError`` when a directory that was asked for explicitly (argument
    ///   or environment) cannot be read, and with every problem of every bad file (file,
    ///   line:column, JSON path) — a bad profile is never skipped silently.
    public static func load(directory: String?, environment: [String: String]) throws(AgentLibraryError) -> AgentLibrary {
        let chosen: String?
        if let directory {
            chosen = directory
        } else if let variable = environment[environmentVariable], !variable.isEmpty {
            chosen = variable
        } else {
            chosen = FileIO.isDirectory(defaultDirectory) ? defaultDirectory : nil
        }
        guard let chosen else { return AgentLibrary(profiles: AgentProfile.builtins) }
        let origin = directory != nil ? "--agents" : environment[environmentVariable].map { _ in "$\(environmentVariable)" } ?? "the default"
        guard FileIO.isDirectory(chosen) else {
            throw AgentLibraryError(problems: ["\(chosen): the agent profile directory (\(origin)) does not exist or is not a directory"])
        }
        let entries: [String]
        do { entries = try FileIO.directoryEntries(chosen) } catch {
            throw AgentLibraryError(problems: ["\(chosen): cannot list the agent profile directory: \(error)"])
        }
        var profiles = AgentProfile.builtins
        var fromFile: [String: String] = [:]
        var problems: [String] = []
        for entry in entries where entry.hasSuffix(".json") && !entry.hasSuffix(".schema.json") {
            let path = chosen.hasSuffix("/") ? chosen + entry : chosen + "/" + entry
            let bytes: [UInt8]
            do { bytes = try FileIO.readAll(path) } catch {
                problems.append("\(path): cannot read the agent profile: \(error)")
                continue
            }
            do {
                let profile = try AgentProfileDecoder.decode(bytes, file: path)
                if let other = fromFile[profile.name] {
                    problems.append("\(path): agent \"\(profile.name)\" is already defined by \(other); agent names must be unique")
                    continue
                }
                fromFile[profile.name] = path
                profiles.append(profile)
            } catch {
                problems.append(error.description)
            }
        }
        if !problems.isEmpty { throw AgentLibraryError(problems: problems) }
        return AgentLibrary(profiles: profiles, directory: chosen)
    }
}

/// Agent profiles that cannot be loaded: every problem, one per entry (an entry may span lines).
public struct AgentLibraryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One message per problem, each naming its file (a file's problems stay in one message).
    public var problems: [String]

    /// An error with `problems`.
    public init(problems: [String]) { self.problems = problems }

    /// Every problem, one after another.
    public var description: String { problems.joined(separator: "\n") }
}
