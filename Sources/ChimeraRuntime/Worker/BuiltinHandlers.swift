import ChimeraCore
#if canImport(Glibc)
import Glibc
#endif

/// The handlers of Chimera's built-in worker.
public enum BuiltinHandlers {
    /// `echo`, `noop` and the offline handlers of ``BuiltinTextHandlers`` (`text.summarize`,
    /// `text.stats`, `template.render`, …), in ``BuiltinHandlerNames/standard``'s order.
    public static var standard: [any WorkerHandler] {
        let basic: [any WorkerHandler] = [EchoHandler(), NoopHandler()]
        return basic + BuiltinTextHandlers.all.map { OfflineTextHandler(spec: $0) as any WorkerHandler }
    }

    /// Handlers that misbehave on purpose, for tests: never enable them in production.
    ///
    /// - Parameter inheritedDescriptors: the descriptors open when the process started, before
    ///   it opened any of its own; the `fds` handler reports them.
    public static func test(inheritedDescriptors: [Int32]) -> [any WorkerHandler] {
        [SleepHandler(), FailHandler(), CrashHandler(), HangHandler(), GarbageHandler(),
         FDsHandler(descriptors: inheritedDescriptors), StreamHandler()]
    }
}

/// Returns its input unchanged.
struct EchoHandler: WorkerHandler {
    let name = "echo"
    let kinds = ["echo"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) { responder.succeed(rawJSON: request.input) }
}

/// One of the offline handlers of ``BuiltinTextHandlers`` (`text.summarize`, `math.eval`, …):
/// parses the input and answers synchronously; bad input fails as `invalid_input`.
/// `template.render` is rendered here by ``TemplateRenderer``; the others are ChimeraCore's.
struct OfflineTextHandler: WorkerHandler, DescribedHandler {
    let spec: BuiltinHandlerSpec
    var name: String { spec.name }
    var kinds: [String] { spec.kinds }
    var handshakeMembers: [JSONMember] {
        [JSONMember("capability", .number(spec.capability)), JSONMember("max_input_tokens", .number(Double(spec.maxInputTokens)))]
    }

    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        guard let input = try? request.inputValue() else {
            return responder.fail(TaskFailure(.invalidInput, "input is not valid JSON"))
        }
        do {
            if spec.name == BuiltinTextHandlers.templateRender {
                responder.succeed(try TemplateRenderer.handle(input))
            } else {
                responder.succeed(try BuiltinTextHandlers.run(spec.name, input: input))
            }
        } catch {
            responder.fail(error)
        }
    }
}

/// Returns `null`; the benchmark's task.
struct NoopHandler: WorkerHandler {
    let name = "noop"
    let kinds = ["noop"]
    private static let null: [UInt8] = Array("null".utf8)
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) { responder.succeed(rawJSON: NoopHandler.null) }
}

/// Test: answers after `ms` milliseconds (input: a number or `{"ms": N, "output": ...}`); cancellable.
struct SleepHandler: WorkerHandler {
    let name = "sleep"
    let kinds = ["test.sleep"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        let value = (try? request.inputValue()) ?? .null
        var ms: Double = 0
        if case .number(let n) = value { ms = n } else if case .number(let n)? = value["ms"] { ms = n }
        let output = value["output"] ?? .string("slept \(Int(ms)) ms")
        let timer = Timer(loop: responder.loop)
        responder.onCancel = { timer.close() }
        timer.start(after: UInt64(max(0, ms))) {
            timer.close()
            responder.succeed(output)
        }
    }
}

/// Test: fails with the input as the message.
struct FailHandler: WorkerHandler {
    let name = "fail"
    let kinds = ["test.fail"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        let message = (try? request.inputValue())?.stringValue ?? "failed on purpose"
        responder.fail(TaskFailure(.handlerError, message))
    }
}

/// Test: the worker dies mid-task (input `{"signal": 9}` or `{"exit": 3}`; default SIGKILL).
struct CrashHandler: WorkerHandler {
    let name = "crash"
    let kinds = ["test.crash"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        let value = (try? request.inputValue()) ?? .null
        if case .number(let code)? = value["exit"] { exit(Int32(code)) }
        var signal = SIGKILL
        if case .number(let s)? = value["signal"] { signal = Int32(s) }
        kill(getpid(), signal)
    }
}

/// Test: blocks the worker's thread forever, so heartbeats go unanswered.
struct HangHandler: WorkerHandler {
    let name = "hang"
    let kinds = ["test.hang"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        while true { pause() }
    }
}

/// Test: writes raw bytes to stdout (input `{"hex": "ff0a"}` or `{"text": "...", "repeat": N}`),
/// then answers normally.
struct GarbageHandler: WorkerHandler {
    let name = "garbage"
    let kinds = ["test.garbage"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        let value = (try? request.inputValue()) ?? .null
        var bytes: [UInt8] = []
        if case .string(let hex)? = value["hex"] {
            var digits = Array(hex.utf8).filter { $0 != 0x20 }
            if digits.count % 2 == 1 { digits.append(0x30) }
            for i in stride(from: 0, to: digits.count, by: 2) {
                bytes.append(UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) ?? 0x3F)
            }
        } else if case .string(let text)? = value["text"] {
            var count = 1
            if case .number(let n)? = value["repeat"] { count = Int(n) }
            for _ in 0..<max(count, 0) { bytes.append(contentsOf: text.utf8) }
        }
        responder.server.stdout.write(bytes)
        responder.succeed(rawJSON: Array("\"wrote \(bytes.count) bytes\"".utf8))
    }
}

/// Test: lists the descriptors the worker inherited (to check none leaked from the coordinator).
struct FDsHandler: WorkerHandler {
    let name = "fds"
    let kinds = ["test.fds"]
    let descriptors: [Int32]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        responder.succeed(.array(descriptors.map { .number(Double($0)) }))
    }
}

/// Test: streams the words of its input as deltas, then answers with the whole text.
struct StreamHandler: WorkerHandler {
    let name = "stream"
    let kinds = ["test.stream"]
    func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        guard let text = try? request.inputText() else { return responder.fail(TaskFailure(.invalidInput, "expected text")) }
        for word in text.split(separator: " ") { responder.delta(String(word) + " ") }
        responder.succeed(.string(text))
    }
}
