import ArgumentParser
import ChimeraRuntime
import Logging
#if canImport(Glibc)
import Glibc
#endif

@main
struct Chimera: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chimera",
        abstract: "Run LLM agent work on a supervised pool of worker processes.",
        subcommands: [ExecCommand.self, WorkersCommand.self, KeysCommand.self, AskCommand.self, TaskCommand.self, RunCommand.self, ValidateCommand.self,
                      ChatCommand.self, AgentsCommand.self, ExplainCommand.self, ReportCommand.self, ModelsCommand.self, BenchCommand.self,
                      WorkerCommand.self, SimCommand.self]
    )

    /// Runs the command. Usage errors the argument parser finds (a bad flag, a failed
    /// `validate()`) exit 2 like every other usage error of chimera (``ExitCodes/usage``),
    /// not the parser's 64, so scripts see one code for "called wrongly".
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileIO.writeAll(Array((fullMessage(for: error) + "\n").utf8), fd: 2)
                Glibc.exit(ExitCodes.usage)
            }
            exit(withError: error)
        }
    }
}

/// Exit codes shared by every command.
enum ExitCodes {
    /// At least one task failed, or a checked file (`chimera validate`) is invalid.
    static let taskFailed: Int32 = 1
    /// Bad usage or configuration.
    static let usage: Int32 = 2
    /// Stopped by a signal without a clean drain (tasks abandoned or workers killed).
    static let interrupted: Int32 = 3
}

/// Options every coordinator command takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $CHIMERA_CONFIG, else ./chimera.json, else built-in defaults).")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default: $CHIMERA_LOG or notice).")
    var logLevel: String?

    func bootstrapLogging() throws -> Logger {
        let name = logLevel ?? ProcessEnvironment.current["CHIMERA_LOG"] ?? "notice"
        guard let level = Logger.Level(rawValue: name) else {
            throw ValidationError("unknown log level \"\(name)\"; use trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level) }
        return Logger(label: "chimera")
    }

    func loadConfig() throws -> ConfigLoader.Loaded {
        do {
            return try ConfigLoader.load(explicitPath: config)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
    }
}

/// Options of the commands that route tasks through JHADE (`task`, `run`, `chat`).
struct RoutingOptions: ParsableArguments {
    @Option(help: "Agent profiles directory, one NAME.json each (default: $CHIMERA_AGENTS, else ./Agents when it exists).")
    var agents: String?

    @Flag(help: "Freeze learning: decide on posterior means, and do not update the statistics.")
    var noLearn = false

    @Option(help: "Seed of JHADE's sampling (Thompson draws, shadow choice).")
    var seed: UInt64 = 0x4A48_4144

    @Option(help: "API base URL (default: $OPENROUTER_BASE_URL, else the config's openrouter.base_url, else https://openrouter.ai/api/v1).")
    var baseURL: String?
}

func printError(_ message: String) {
    FileIO.writeAll(Array("error: \(message)\n".utf8), fd: 2)
}

func printLine(_ text: String) {
    FileIO.writeAll(Array((text + "\n").utf8), fd: 1)
}
