import ChimeraCore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `chimera` binary as a child process, on a loop of its own.
final class CLIRun {
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var status: ChildExitStatus?
    var onStdoutLine: ((String, CLIRun) -> Void)?
    var onStderrLine: ((String, CLIRun) -> Void)?
    private(set) var pid: Int32 = 0

    var stdoutLines: [String] { String(decoding: stdout, as: UTF8.self).split(separator: "\n").map(String.init) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    func run(_ arguments: [String], input: String = "", environment: [String: String] = [:], executable: String = Paths.chimera) throws {
        let loop = try EventLoop()
        let inPipe = PipeStream(loop: loop, label: "stdin")
        let outPipe = PipeStream(loop: loop, label: "stdout")
        let errPipe = PipeStream(loop: loop, label: "stderr")
        let child = try ChildProcess(loop: loop, options: .init(executable: executable, arguments: arguments, environment: environment),
                                     stdin: inPipe, stdout: outPipe, stderr: errPipe) { [unowned self] in self.status = $0 }
        pid = child.pid
        var seenLines = 0
        try outPipe.startReading { [unowned self] event in
            guard case .data(let bytes) = event else { return outPipe.close() }
            self.stdout += bytes
            let lines = self.stdoutLines
            let complete = self.stdout.last == 0x0A ? lines.count : lines.count - 1
            while seenLines < complete {
                self.onStdoutLine?(lines[seenLines], self)
                seenLines += 1
            }
        }
        var seenErrorLines = 0
        try errPipe.startReading { [unowned self] event in
            guard case .data(let bytes) = event else { return errPipe.close() }
            self.stderr += bytes
            guard let onStderrLine = self.onStderrLine else { return }
            let lines = self.stderrText.split(separator: "\n").map(String.init)
            let complete = self.stderr.last == 0x0A ? lines.count : lines.count - 1
            while seenErrorLines < complete {
                onStderrLine(lines[seenErrorLines], self)
                seenErrorLines += 1
            }
        }
        inPipe.write(Array(input.utf8))
        inPipe.close()
        loop.run()
        try loop.close()
    }
}

/// A temporary file that removes itself.
struct TempFile {
    let path: String
    init(_ contents: String, suffix: String = ".json") {
        var template = Array("/tmp/chimera-test-XXXXXX\(suffix)".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count)) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // (mkostemps is not visible from Swift here)
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        FileIO.writeAll(Array(contents.utf8), fd: fd)
        close(fd)
    }
    func remove() { unlink(path) }
}

@Suite("chimera CLI, as a user runs it", .timeLimit(.minutes(1)))
struct CLITests {
    static let testConfig = """
    {"coordinator": {"drain_grace_ms": 10000, "stop_grace_ms": 2000},
     "pools": [{"name": "builtin", "size": 2, "max_concurrency": 4, "test_handlers": true}]}
    """

    @Test func batch_printsOneLinePerTask_inInputOrder() throws {
        let batch = TempFile("\"first\"\n{\"k\": [1, 2]}\n\nnot json\n\"last\"\n", suffix: ".jsonl")
        defer { batch.remove() }
        let run = CLIRun()
        try run.run(["exec", "--handler", "echo", "--batch", batch.path, "--concurrency", "2"])
        #expect(run.stdoutLines == [
            #"{"index":0,"ok":true,"output":"first"}"#,
            #"{"index":1,"ok":true,"output":{"k": [1, 2]}}"#,  // echo returns the input bytes as given
            #"{"index":2,"ok":false,"error":{"kind":"invalid_input","message":"\#(batch.path):4: not valid JSON: invalid literal (expected null) at byte 1"}}"#,
            #"{"index":3,"ok":true,"output":"last"}"#,
        ])
        #expect(run.status?.code == 1, "one task failed")
    }

    @Test func singleTask_readsTextFromStdin() throws {
        let run = CLIRun()
        try run.run(["exec", "--handler", "text.stats"], input: "Chimera runs tasks. It supervises workers!\n")
        #expect(run.stdoutLines == [#"{"characters":42,"words":6,"sentences":2,"paragraphs":1,"reading_time_seconds":2,"average_sentence_words":3,"syllables":12,"flesch_reading_ease":34.6}"#])
        #expect(run.status?.code == 0)
    }

    @Test func badConfig_namesFileLineAndPath_exitsTwo() throws {
        let config = TempFile("{\n  \"pools\": [\n    {\"name\": \"builtin\", \"size\": \"two\", \"sise\": 2}\n  ]\n}\n")
        defer { config.remove() }
        let run = CLIRun()
        try run.run(["exec", "--config", config.path, "--handler", "echo"], input: "x")
        #expect(run.status?.code == 2)
        #expect(run.stderrText.contains("\(config.path):3:33: $.pools[0].size: expected an integer from 1 to 256, found \"two\""))
        #expect(run.stderrText.contains("$.pools[0].sise: unknown field \"sise\" (did you mean \"size\"?)"))
    }

    @Test func workerWithAFileOnStdin_refusesClearly_insteadOfAborting() throws {
        let request = TempFile(#"{"jsonrpc":"2.0","id":1,"method":"heartbeat"}"# + "\n")
        defer { request.remove() }
        let loop = try EventLoop()
        let pipes = (0..<3).map { PipeStream(loop: loop, label: "p\($0)") }
        var status: ChildExitStatus?
        var stderr: [UInt8] = []
        _ = try ChildProcess(loop: loop, options: .init(executable: "/bin/sh", arguments: ["-c", "exec \"$0\" worker < \"$1\"", Paths.chimera, request.path]),
                             stdin: pipes[0], stdout: pipes[1], stderr: pipes[2]) { status = $0 }
        pipes[0].close()
        try pipes[1].startReading { if case .data = $0 {} else { pipes[1].close() } }
        try pipes[2].startReading { event in
            if case .data(let bytes) = event { stderr += bytes } else { pipes[2].close() }
        }
        loop.run()
        try loop.close()
        #expect(status == ChildExitStatus(code: 2, signal: 0))
        #expect(String(decoding: stderr, as: UTF8.self).contains("stdin is not a pipe or socket"))
    }

    @Test func sigtermUnderLoad_drainsInFlight_leavesNoProcess_exitsZero() throws {
        let config = TempFile(CLITests.testConfig)
        let inputs = (0..<60).map { _ in #"{"ms": 150, "output": "slept"}"# }.joined(separator: "\n")
        let batch = TempFile(inputs + "\n", suffix: ".jsonl")
        defer { config.remove(); batch.remove() }
        let run = CLIRun()
        var signalled = false
        run.onStdoutLine = { _, run in
            if !signalled {
                signalled = true
                kill(run.pid, SIGTERM)
            }
        }
        try run.run(["exec", "--config", config.path, "--log-level", "info", "--handler", "sleep", "--batch", batch.path, "--concurrency", "8"])
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "stderr: \(run.stderrText)")
        let lines = run.stdoutLines
        #expect(lines.count == 60, "every task gets a line, in order")
        let succeeded = lines.filter { $0.contains(#""ok":true"#) }.count
        let refused = lines.filter { $0.contains(#""kind":"shutting_down""#) }.count
        #expect(succeeded >= 8 && succeeded < 60)
        #expect(succeeded + refused == 60)
        // The workers it started are gone (exited and reaped), not left behind.
        let pids = run.stderrText.split(separator: "\n").compactMap { line -> Int32? in
            let words = line.split(separator: " ")
            guard let at = words.firstIndex(of: "pid"), at > 1, words[at - 1] == "worker", at + 1 < words.count else { return nil }
            return Int32(words[at + 1])
        }
        #expect(pids.count == 2)
        for pid in pids { #expect(kill(pid, 0) == -1 && errno == ESRCH, "worker \(pid) still exists") }
    }
}
