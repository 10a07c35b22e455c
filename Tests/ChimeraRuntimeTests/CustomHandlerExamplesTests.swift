import ChimeraCore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

extension Paths {
    /// The Swift example worker (`examples/handlers/swift`), built beside `chimera`.
    static var exampleWorker: String {
        String(chimera.dropLast("chimera".count)) + "chimera-example-worker"
    }
}

/// The two ways to add a handler, each run as a user would: the Python example scripts and the
/// Swift example worker binary, declared in a config's `handlers[]` and driven through
/// `chimera exec` and `chimera task --route internal`. Also the built-in handlers JHADE routes to.
@Suite("custom handler examples, end to end", .serialized, .timeLimit(.minutes(2)))
struct CustomHandlerExamplesTests {
    /// Only the example handlers (`pools: []`: no built-in pool), as examples/handlers/README.md declares them.
    static var config: String {
        """
        {"pools": [],
         "handlers": [
           {"name": "lead_summary", "command": "python3", "args": ["\(Paths.packageRoot)/examples/handlers/python/lead_summary.py"],
            "kinds": ["summarize"], "capability": 0.8},
           {"name": "acme.slugify", "command": "\(Paths.exampleWorker)", "kinds": ["slugify"], "capability": 0.9},
           {"name": "acme.wordfreq", "command": "\(Paths.exampleWorker)", "kinds": ["wordfreq"], "capability": 0.8}]}
        """
    }

    static let article = "Summarize: Tea is a drink made from leaves. It comes from China. People drink it hot or cold."

    func json(_ line: String?) throws -> JSONValue { try JSONParser.parse(try #require(line)) }

    func write(_ text: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        FileIO.writeAll(Array(text.utf8), fd: fd)
        close(fd)
    }

    @Test func pythonExample_answersExec_andJHADERoutesItsKindToIt() throws {
        let box = KeysSandbox(config: Self.config)
        let exec = try box.run(["exec", "--handler", "lead_summary"], input: Self.article + "\n")
        #expect(exec.status == ChildExitStatus(code: 0, signal: 0), "\(exec.stderrText)")
        #expect(exec.stdoutLines == ["Tea is a drink made from leaves. It comes from China."])

        let task = try box.run(["task", "--kind", "summarize", "--route", "internal", "--json", "--no-learn", Self.article])
        #expect(task.status == ChildExitStatus(code: 0, signal: 0), "\(task.stderrText)")
        let line = try json(task.stdoutLines.first)
        #expect(line["route"]?.stringValue == "internal:lead_summary")
        #expect(line["output"]?.stringValue == "Tea is a drink made from leaves. It comes from China.")
    }

    @Test func swiftExample_answersExec_andJHADERoutesItsKindsToIt() throws {
        let box = KeysSandbox(config: Self.config)
        let slug = try box.run(["exec", "--handler", "acme.slugify"], input: "Crème Brûlée: 10 Tips!\n")
        #expect(slug.status == ChildExitStatus(code: 0, signal: 0), "\(slug.stderrText)")
        #expect(slug.stdoutLines == ["creme-brulee-10-tips"])

        let freq = try box.run(["exec", "--handler", "acme.wordfreq", "--json-input"], input: #"{"text": "The cat and the hat and THE bat", "top": 2}"#)
        #expect(freq.status == ChildExitStatus(code: 0, signal: 0), "\(freq.stderrText)")
        #expect(try json(freq.stdoutLines.first) == JSONParser.parse(
            #"{"output": "the: 3\nand: 2", "words": [{"word": "the", "count": 3}, {"word": "and", "count": 2}], "total": 8}"#))

        let routed = try box.run(["task", "--kind", "wordfreq", "--route", "internal", "--json", "--no-learn", "the cat and the hat"])
        #expect(routed.status == ChildExitStatus(code: 0, signal: 0), "\(routed.stderrText)")
        let line = try json(routed.stdoutLines.first)
        #expect(line["route"]?.stringValue == "internal:acme.wordfreq")
        #expect(line["output"]?.stringValue == "the: 2\nand: 1\ncat: 1\nhat: 1")
        let slugTask = try box.run(["task", "--kind", "slugify", "--route", "internal", "--json", "--no-learn", "Hello, World"])
        #expect(try json(slugTask.stdoutLines.first)["output"]?.stringValue == "hello-world", "\(slugTask.stderrText)")
    }

    @Test func swiftExample_timedOutTask_cancelsItsSwiftTask_andTheWorkerServesOn() throws {
        let box = KeysSandbox(config: Self.config)
        let batch = box.root + "/batch.jsonl"
        write(#"{"text": "never counted", "delay_ms": 600000}"# + "\n" + #"{"text": "b a b"}"# + "\n", to: batch)
        let run = try box.run(["exec", "--handler", "acme.wordfreq", "--batch", batch, "--concurrency", "1", "--timeout-ms", "300"],
                              environment: ["CHIMERA_LOG": "notice"])
        #expect(run.status == ChildExitStatus(code: 1, signal: 0), "\(run.stderrText)")
        let lines = try run.stdoutLines.map { try JSONParser.parse($0) }
        #expect(lines.count == 2)
        #expect(lines.first?["error"]?["kind"]?.stringValue == "timeout", "\(run.stdoutText)")
        #expect(lines.last?["output"]?["output"]?.stringValue == "b: 2\na: 1", "the same worker answers the next task")
        // The handler's Swift task saw the cancellation (its sleep threw); the worker was not killed or restarted.
        #expect(run.stderrText.contains("[acme.wordfreq#1] acme.wordfreq: task t-0 cancelled while waiting"), "\(run.stderrText)")
        #expect(!run.stderrText.contains("killing") && !run.stderrText.contains("acme.wordfreq#1.1"), "\(run.stderrText)")
    }

    @Test func swiftExample_thrownErrors_reachTheCallerWithTheirKind() throws {
        let box = KeysSandbox(config: Self.config)
        let slugs = box.root + "/slugs.jsonl"
        write("\"!!!\"\n\"" + String(repeating: "a", count: 10_001) + "\"\n", to: slugs)
        let slug = try box.run(["exec", "--handler", "acme.slugify", "--batch", slugs])
        #expect(slug.status == ChildExitStatus(code: 1, signal: 0))
        let s = try slug.stdoutLines.map { try JSONParser.parse($0)["error"] }
        #expect(s.first??["kind"]?.stringValue == "invalid_input")
        #expect(s.first??["message"]?.stringValue == #""text": nothing to slugify (no letters or digits)"#)
        #expect(s.last??["kind"]?.stringValue == "too_long", "a TaskFailureKind of the handler's own")
        #expect(s.last??["message"]?.stringValue == #""text" has 10001 characters; acme.slugify takes at most 10000"#)

        let freqs = box.root + "/freqs.jsonl"
        write(#"{"path": "no-such-file.txt"}"# + "\n" + #"{"text": "x", "top": 0}"# + "\n", to: freqs)
        let freq = try box.run(["exec", "--handler", "acme.wordfreq", "--batch", freqs])
        let f = try freq.stdoutLines.map { try JSONParser.parse($0)["error"] }
        #expect(f.first??["kind"]?.stringValue == "handler_error", "another error thrown becomes handler_error")
        #expect(f.first??["message"]?.stringValue?.hasPrefix("acme.wordfreq: ") == true, "\(freq.stdoutText)")
        #expect(f.last??["kind"]?.stringValue == "invalid_input")
        #expect(f.last??["message"]?.stringValue == #""top": expected a whole number from 1 to 100, found 0"#)
    }

    @Test func swiftExample_handshakeDeclaresHandlers_describePrintsTheConfig_andATerminalIsRefused() throws {
        // The protocol by hand, as docs/PROTOCOL.md shows it.
        let session = CLIRun()
        try session.run([], input: """
            {"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocol_version":1,"worker":"acme#1","pool":"acme"}}
            {"jsonrpc":"2.0","id":1,"method":"task/run","params":{"task":"t-1","handler":"acme.slugify","kind":"slugify","input":"Ünïcode Ok","deadline_ms":60000,"attempt":1}}
            {"jsonrpc":"2.0","id":2,"method":"heartbeat"}

            """, executable: Paths.exampleWorker)
        #expect(session.status == ChildExitStatus(code: 0, signal: 0), "\(session.stderrText)")
        let answers = try session.stdoutLines.map { try JSONParser.parse($0) }
        #expect(answers.count == 3)
        let handshake = try #require(answers.first { $0["id"] == .number(0) })
        #expect(handshake["result"]?["name"]?.stringValue == "chimera-example-worker")
        #expect(handshake["result"]?["handlers"]?.serialized.hasPrefix(#"[{"name":"acme.slugify","kinds":["slugify"],"capability":0.9,"docs":"Text to a URL slug."#) == true)
        #expect(answers.first { $0["id"] == .number(1) }?["result"]?["output"]?.stringValue == "unicode-ok")
        #expect(answers.first { $0["id"] == .number(2) }?["result"] == .object([]))

        let describe = CLIRun()
        try describe.run(["--describe"], executable: Paths.exampleWorker)
        #expect(try json(describe.stdoutLines.first) == JSONParser.parse("""
            {"handlers": [{"name": "acme.slugify", "command": "\(Paths.exampleWorker)", "kinds": ["slugify"], "capability": 0.9},
                          {"name": "acme.wordfreq", "command": "\(Paths.exampleWorker)", "kinds": ["wordfreq"], "capability": 0.8}]}
            """))

        // stdin from a file (as from a terminal): not a pipe, so the worker refuses and says why.
        let box = KeysSandbox(config: "{}")
        let status = system("'\(Paths.exampleWorker)' </dev/null >'\(box.root)/out' 2>'\(box.root)/err'")
        #expect(status == 2 << 8)
        let err = String(decoding: try FileIO.readAll(box.root + "/err"), as: UTF8.self)
        #expect(err.hasPrefix("chimera-example-worker: stdin is not a pipe or socket"), "\(err)")
        #expect(err.contains("the Chimera coordinator starts this worker"))
    }

    @Test func builtinStatsAndTemplate_areRoutedByJHADE_andServedByExec() throws {
        let box = KeysSandbox(config: "{}")  // The built-in pool only.
        let stats = try box.run(["task", "--kind", "stats", "--route", "internal", "--json", "--no-learn", "One short sentence. Two!"])
        #expect(stats.status == ChildExitStatus(code: 0, signal: 0), "\(stats.stderrText)")
        let line = try json(stats.stdoutLines.first)
        #expect(line["route"]?.stringValue == "internal:text.stats")
        #expect(try JSONParser.parse(line["output"]?.stringValue ?? "")["words"] == .number(4))

        let template = try box.run(["exec", "--handler", "template.render", "--json-input"],
                                   input: #"{"template": "{{#steps}}{{n}}. {{text}}\n{{/steps}}", "data": {"steps": [{"n": 1, "text": "Mix <A> & B"}, {"n": 2, "text": "Bake"}]}}"#)
        #expect(template.status == ChildExitStatus(code: 0, signal: 0), "\(template.stderrText)")
        #expect(try json(template.stdoutLines.first)["output"]?.stringValue == "1. Mix <A> & B\n2. Bake\n")
        let routed = try box.run(["task", "--kind", "template", "--route", "internal", "--json", "--no-learn", "Dear {{name}}"])
        #expect(try json(routed.stdoutLines.first)["route"]?.stringValue == "internal:template.render", "\(routed.stderrText)")
    }
}
