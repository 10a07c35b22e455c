import ArgumentParser
import ChimeraCore
import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera exec`: run tasks through the full coordinator path (queue, worker process, result).
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run one task, or one task per line of a JSONL file, on a handler.",
        discussion: """
        Single task: the input is text (a JSON string, one final newline removed) read from \
        --input FILE, or from stdin with --input - or when stdin is not a terminal; --json-input \
        sends the file's JSON as is.
        Batch: each non-empty line of --batch FILE is one task's JSON input; one JSON line per task \
        is printed in input order: {"index":i,"ok":true,"output":...} or \
        {"index":i,"ok":false,"error":{"kind":...,"message":...}}.
        Exit status: 0 all tasks succeeded (or a SIGINT/SIGTERM drained cleanly), 1 a task failed, \
        2 usage or configuration error, 3 stopped by a signal before in-flight work finished.
        """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "The handler to run, e.g. echo or text.stats.")
    var handler: String

    @Option(help: "Input file, or - for stdin.")
    var input: String?

    @Flag(help: "Treat the input file as JSON instead of text.")
    var jsonInput = false

    @Option(help: "JSONL file: one task input per line.")
    var batch: String?

    @Option(help: "Tasks in flight at once in batch mode.")
    var concurrency = 64

    @Option(help: "Per-task timeout in milliseconds (default: the config's task_timeout_ms).")
    var timeoutMs: UInt64?

    @Option(help: "Priority: low, normal, high or critical.")
    var priority = "normal"

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        if let timeoutMs, timeoutMs < 1 { throw ValidationError("--timeout-ms must be at least 1") }
        guard TaskPriority(name: priority) != nil else { throw ValidationError("--priority must be low, normal, high or critical") }
        if batch != nil, input != nil { throw ValidationError("use --input or --batch, not both") }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        let loaded = try common.loadConfig()
        guard loaded.config.pool(serving: handler) != nil else {
            let known = loaded.config.pools.flatMap(\.handlers).sorted().joined(separator: ", ")
            printError("no pool serves handler \"\(handler)\" in \(loaded.sourceDescription); configured handlers: \(known)")
            throw ExitCode(ExitCodes.usage)
        }
        let inputs = try readInputs()
        let loop = try EventLoop()
        let coordinator = Coordinator(loop: loop, config: loaded.config, workerExecutable: FileIO.executablePath(), logger: logger)
        let run = BatchRun(inputs: inputs, handler: handler, priority: TaskPriority(name: priority)!, timeoutMs: timeoutMs,
                           window: batch == nil ? 1 : concurrency, jsonOutput: json || batch != nil, batchMode: batch != nil)
        var summary: ShutdownSummary?
        coordinator.onStopped = { summary = $0 }
        do {
            try coordinator.start(handleSignals: true)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        run.start(on: coordinator)
        loop.run()
        try loop.close()
        if let summary, summary.signal != nil {
            throw ExitCode(summary.isClean ? 0 : ExitCodes.interrupted)
        }
        if run.failures > 0 { throw ExitCode(ExitCodes.taskFailed) }
    }

    /// Raw JSON inputs (or a parse problem per input, reported as that task's failure).
    private func readInputs() throws -> [Result<[UInt8], TaskFailure>] {
        if let batch {
            let bytes: [UInt8]
            do { bytes = try FileIO.readAll(batch) } catch {
                printError("\(batch): cannot read the batch file: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
            var inputs: [Result<[UInt8], TaskFailure>] = []
            for (number, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
                let trimmed = Array(line.last == 0x0D ? line.dropLast() : line[...])
                if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                do {
                    _ = try JSONParser.parse(trimmed)
                    inputs.append(.success(trimmed))
                } catch {
                    inputs.append(.failure(TaskFailure(.invalidInput, "\(batch):\(number + 1): not valid JSON: \(error)")))
                }
            }
            return inputs
        }
        let source = input ?? "-"
        if input == nil, isatty(0) != 0 {
            throw ValidationError("no input: give --input FILE, --input - (stdin), or pipe the input in")
        }
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(source) } catch {
            printError("\(source == "-" ? "stdin" : source): cannot read the input: \(error)")
            throw ExitCode(ExitCodes.usage)
        }
        if jsonInput {
            do { _ = try JSONParser.parse(bytes) } catch {
                printError("\(source == "-" ? "stdin" : source): --json-input given, but the input is not valid JSON: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
            return [.success(bytes)]
        }
        guard UTF8Validation.isValid(bytes.withUnsafeBytes { $0 }) else {
            printError("\(source == "-" ? "stdin" : source): the input is not valid UTF-8 text")
            throw ExitCode(ExitCodes.usage)
        }
        // `echo text |` and most editors end the text with a newline that is not part of it.
        var text = bytes[...]
        if text.last == 0x0A { text = text.dropLast() }
        if text.last == 0x0D { text = text.dropLast() }
        var encoded: [UInt8] = []
        JSONValue.writeString(String(decoding: text, as: UTF8.self), to: &encoded)
        return [.success(encoded)]
    }
}

/// Feeds inputs to the coordinator with a bounded window and prints results in input order.
final class BatchRun {
    let inputs: [Result<[UInt8], TaskFailure>]
    let handler: String
    let priority: TaskPriority
    let timeoutMs: UInt64?
    let window: Int
    let jsonOutput: Bool
    let batchMode: Bool
    private var nextToSubmit = 0
    private var nextToPrint = 0
    private var inFlight = 0
    private var finished: [Int: [UInt8]] = [:]
    private(set) var failures = 0
    private unowned var coordinator: Coordinator!

    init(inputs: [Result<[UInt8], TaskFailure>], handler: String, priority: TaskPriority, timeoutMs: UInt64?, window: Int, jsonOutput: Bool, batchMode: Bool) {
        self.inputs = inputs
        self.handler = handler
        self.priority = priority
        self.timeoutMs = timeoutMs
        self.window = window
        self.jsonOutput = jsonOutput
        self.batchMode = batchMode
    }

    func start(on coordinator: Coordinator) {
        self.coordinator = coordinator
        refill()
        if inputs.isEmpty { coordinator.shutdown(reason: "nothing to do") }
    }

    private func refill() {
        while inFlight < window, nextToSubmit < inputs.count, !coordinator.isStopping {
            let index = nextToSubmit
            nextToSubmit += 1
            switch inputs[index] {
            case .failure(let failure):
                record(index, .failure(failure), worker: nil, attempts: 0, elapsed: 0, taskID: nil)
            case .success(let input):
                inFlight += 1
                var request = TaskRequest(handler: handler, input: input, priority: priority, timeoutMs: timeoutMs)
                request.id = batchMode ? "t-\(index)" : nil
                coordinator.submit(request) { [unowned self] outcome in
                    self.inFlight -= 1
                    self.record(index, outcome.result, worker: outcome.worker, attempts: outcome.attempts, elapsed: outcome.elapsedMs, taskID: outcome.taskID)
                    self.refill()
                }
            }
        }
        // After a signal, tasks never submitted are reported too, so every index gets a line.
        if coordinator.isStopping {
            while nextToSubmit < inputs.count {
                let index = nextToSubmit
                nextToSubmit += 1
                record(index, .failure(TaskFailure(.shuttingDown, "not started: the coordinator is shutting down")), worker: nil, attempts: 0, elapsed: 0, taskID: nil)
            }
        }
        if nextToPrint == inputs.count, inFlight == 0 { coordinator.shutdown(reason: "all tasks done") }
    }

    private func record(_ index: Int, _ result: Result<[UInt8], TaskFailure>, worker: String?, attempts: Int, elapsed: UInt64, taskID: String?) {
        var line: [UInt8] = []
        if case .failure = result { failures += 1 }
        if jsonOutput {
            line.append(UInt8(ascii: "{"))
            if batchMode {
                line.append(contentsOf: #""index":"#.utf8)
                RPCWriter.appendInteger(Int64(index), to: &line)
                line.append(UInt8(ascii: ","))
            }
            switch result {
            case .success(let output):
                line.append(contentsOf: #""ok":true,"output":"#.utf8)
                line.append(contentsOf: output)
            case .failure(let failure):
                line.append(contentsOf: #""ok":false,"error":{"kind":"#.utf8)
                JSONValue.writeString(failure.kind.rawValue, to: &line)
                line.append(contentsOf: #","message":"#.utf8)
                JSONValue.writeString(failure.message, to: &line)
                line.append(UInt8(ascii: "}"))
            }
            if !batchMode {
                line.append(contentsOf: #","task":"#.utf8)
                JSONValue.writeString(taskID ?? "", to: &line)
                line.append(contentsOf: #","worker":"#.utf8)
                if let worker { JSONValue.writeString(worker, to: &line) } else { line.append(contentsOf: "null".utf8) }
                line.append(contentsOf: #","attempts":"#.utf8)
                RPCWriter.appendInteger(Int64(attempts), to: &line)
                line.append(contentsOf: #","elapsed_ms":"#.utf8)
                RPCWriter.appendInteger(Int64(elapsed), to: &line)
            }
            line.append(contentsOf: "}\n".utf8)
        } else {
            switch result {
            case .success(let output):
                let text = output.withUnsafeBytes { JSONParser.decodeString($0) }
                line = text.map { Array($0.utf8) } ?? output
                if line.last != 0x0A { line.append(0x0A) }
            case .failure(let failure):
                printError("\(failure.kind): \(failure.message)")
            }
        }
        finished[index] = line
        while let ready = finished.removeValue(forKey: nextToPrint) {
            FileIO.writeAll(ready)
            nextToPrint += 1
        }
    }
}
