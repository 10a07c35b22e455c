import ArgumentParser
import ChimeraCore
import ChimeraRuntime

/// `chimera validate FILE…`: decodes and checks pipeline files without running them, reporting
/// every problem of every file at once.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files without running them, reporting every problem at once.",
        discussion: """
        Each problem is reported as FILE:LINE:COL: error: MESSAGE (at JSON.PATH), with a hint line when \
        there is a fix to suggest. Agents are checked against the built-in profiles and the agents \
        directory (--agents, else $CHIMERA_AGENTS, else ./Agents); handlers against the configuration's \
        pools and handlers plus the built-in worker's. The format is documented in docs/PIPELINES.md.
        Exit status: 0 every file is valid (warnings allowed), 1 a file is invalid, 2 usage error \
        (no file, an unreadable file or agents directory, a bad configuration).
        """
    )

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print one JSON object per diagnostic on stdout ({file, line, column, path, severity, message, hint}).")
    var json = false

    @Option(help: "Directory of agent profiles, one NAME.json each (default: $CHIMERA_AGENTS, else ./Agents).")
    var agents: String?

    @Argument(help: "Pipeline files to check.")
    var files: [String] = []

    func run() throws {
        guard !files.isEmpty else {
            printError("no pipeline file given; usage: chimera validate FILE… [--json] [--config FILE] [--agents DIR]")
            throw ExitCode(ExitCodes.usage)
        }
        let loaded = try common.loadConfig()
        let knownAgents: Set<String>
        do {
            knownAgents = Set(try AgentLibrary.load(directory: agents, environment: ProcessEnvironment.current).names)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        let handlers = Set(loaded.config.pools.flatMap(\.handlers) + BuiltinHandlerNames.standard)
        let context = PipelineValidationContext(knownAgents: knownAgents, knownHandlers: handlers)

        var unreadable = false
        var invalid = false
        for file in files {
            let bytes: [UInt8]
            do {
                bytes = try FileIO.readAll(file)
            } catch {
                printError("\(file): cannot read the pipeline: \(error)")
                unreadable = true
                continue
            }
            let result = PipelineDecoder.decode(bytes, file: file, context: context)
            let errors = result.errors.count
            let warnings = result.diagnostics.count - errors
            if json {
                for diagnostic in result.diagnostics { printLine(diagnostic.jsonValue.serialized) }
            } else {
                for diagnostic in result.diagnostics { FileIO.writeAll(Array("\(diagnostic)\n".utf8), fd: 2) }
            }
            let counts = [errors > 0 ? plural(errors, "error") : nil, warnings > 0 ? plural(warnings, "warning") : nil].compactMap { $0 }
            if let pipeline = result.pipeline {
                let summary = "\(file): valid (\(([plural(pipeline.steps.count, "step")] + counts).joined(separator: ", ")))"
                // With --json, stdout holds only diagnostics.
                if json { FileIO.writeAll(Array((summary + "\n").utf8), fd: 2) } else { printLine(summary) }
            } else {
                invalid = true
                FileIO.writeAll(Array("\(file): invalid (\(counts.joined(separator: ", ")))\n".utf8), fd: 2)
            }
        }
        if unreadable { throw ExitCode(ExitCodes.usage) }
        if invalid { throw ExitCode(ExitCodes.taskFailed) }
    }

    private func plural(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }
}
