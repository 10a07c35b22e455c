import ChimeraCore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera validate` as a user runs it: exit codes, the text on stderr, `--json` on stdout.
@Suite("chimera validate", .timeLimit(.minutes(1)))
struct ValidateCLITests {
    static var fixtures: String { Paths.packageRoot + "/Tests/Fixtures/pipelines" }

    /// A configuration with one custom handler, so that handler names come from it.
    static let config = """
    {"handlers": [{"name": "py.tool", "command": "python3", "args": ["tool.py"], "kinds": ["general"]}]}
    """

    func validate(_ arguments: [String], environment: [String: String] = [:]) throws -> CLIRun {
        let run = CLIRun()
        try run.run(["validate"] + arguments, environment: environment)
        return run
    }

    @Test func aValidFile_exitsZero_andSaysHowManySteps() throws {
        let run = try validate(["\(Self.fixtures)/valid/research.json"])
        #expect(run.status?.code == 0, "\(run.stderrText)")
        #expect(run.stdoutLines == ["\(Self.fixtures)/valid/research.json: valid (5 steps)"])
        #expect(run.stderrText.isEmpty)
    }

    @Test func anInvalidFile_exitsOne_withEveryDiagnosticOnStderr() throws {
        let file = "\(Self.fixtures)/invalid/cycles.json"
        let run = try validate([file])
        #expect(run.status?.code == 1)
        #expect(run.stdout.isEmpty)
        #expect(run.stderrText == """
        \(file):4:57: error: needs form a cycle: research → draft → critique → research (each step needs the one before it) (at $.steps[0].needs[0])
          hint: steps in a cycle can never start; remove one of these needs
        \(file):7:48: error: needs form a cycle: ping → pong → ping (each step needs the one before it) (at $.steps[3].needs)
          hint: steps in a cycle can never start; remove one of these needs
        \(file):10:43: error: needs form a cycle: x → y → x (each step needs the one before it) (at $.steps[6].needs[0])
          hint: steps in a cycle can never start; remove one of these needs
        \(file):12:43: error: needs form a cycle: z → y → z (each step needs the one before it) (at $.steps[8].needs[0])
          hint: steps in a cycle can never start; remove one of these needs
        \(file): invalid (4 errors)

        """)
    }

    @Test func twoFiles_oneValidOneInvalid_reportBoth_andExitOne() throws {
        let valid = "\(Self.fixtures)/valid/news-batch.json"
        let invalid = "\(Self.fixtures)/invalid/unknown-needs.json"
        let run = try validate([valid, invalid])
        #expect(run.status?.code == 1)
        #expect(run.stdoutLines == ["\(valid): valid (2 steps)"])
        #expect(run.stderrText.contains("\(invalid):5:82: error: step \"draft\" needs unknown step \"reserch\" (at $.steps[1].needs[0])\n  hint: did you mean \"research\"?\n"))
        #expect(run.stderrText.hasSuffix("\(invalid): invalid (4 errors)\n"))
    }

    @Test func json_printsOneObjectPerDiagnostic_onStdout() throws {
        let file = "\(Self.fixtures)/invalid/agents-handlers.json"
        let run = try validate(["--json", file])
        #expect(run.status?.code == 1)
        let objects = try run.stdoutLines.map { try JSONParser.parse($0) }
        #expect(objects.count == 4)
        #expect(objects.first == .object([
            JSONMember("file", .string(file)), JSONMember("line", .number(4)), JSONMember("column", .number(50)),
            JSONMember("path", .string("$.steps[0].agent")), JSONMember("severity", .string("error")),
            JSONMember("message", .string("unknown agent \"resoning\"")), JSONMember("hint", .string("did you mean \"reasoning\"?")),
        ]))
        #expect(objects.map { $0["path"]?.stringValue } == ["$.steps[0].agent", "$.steps[1].handler", "$.steps[2].agent", "$.steps[3].handler"])
        #expect(!run.stderrText.contains("error:"), "diagnostics go to stdout only")
    }

    @Test func handlersFromTheConfig_andAgentsFromTheDirectory_areKnown() throws {
        let config = TempFile(Self.config)
        defer { config.remove() }
        var template = Array("/tmp/chimera-agents-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let profile = "\(directory)/my-own.json"
        FileIO.writeAll(Array("{}".utf8), fd: open(profile, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600))
        defer {
            unlink(profile)
            rmdir(directory)
        }
        let run = try validate(["--config", config.path, "--agents", directory, "--json", "\(Self.fixtures)/invalid/agents-handlers.json"])
        // "my-own" (the directory) and "py.tool" (the config) are known; the two typos remain.
        let paths = try run.stdoutLines.map { try JSONParser.parse($0)["path"]?.stringValue }
        #expect(paths == ["$.steps[0].agent", "$.steps[1].handler", "$.steps[3].handler"])
        #expect(run.status?.code == 1)

        let viaEnvironment = try validate(["--config", config.path, "--json", "\(Self.fixtures)/invalid/agents-handlers.json"],
                                          environment: ["CHIMERA_AGENTS": directory])
        #expect(try viaEnvironment.stdoutLines.map { try JSONParser.parse($0)["path"]?.stringValue } == paths)
    }

    @Test func noFile_orAnUnreadableFile_isAUsageError() throws {
        let none = try validate([])
        #expect(none.status?.code == 2)
        #expect(none.stderrText.contains("no pipeline file given"))

        let missing = try validate(["/nonexistent/pipeline.json", "\(Self.fixtures)/valid/research.json"])
        #expect(missing.status?.code == 2)
        #expect(missing.stderrText.contains("error: /nonexistent/pipeline.json: cannot read the pipeline: No such file or directory"))
        #expect(missing.stdoutLines == ["\(Self.fixtures)/valid/research.json: valid (5 steps)"], "the other files are still checked")

        let badAgents = try validate(["--agents", "/nonexistent/agents", "\(Self.fixtures)/valid/research.json"])
        #expect(badAgents.status?.code == 2)
        #expect(badAgents.stderrText.contains("/nonexistent/agents: the agent profile directory (--agents) does not exist or is not a directory"))
    }
}
