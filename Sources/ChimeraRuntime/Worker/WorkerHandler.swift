import ChimeraCore

/// One task as a handler sees it.
public struct HandlerRequest: Sendable {
    /// The coordinator's task id, for logs.
    public let taskID: String
    /// The handler the task names (one worker may serve several).
    public let handler: String
    /// The task kind: what `chimera task --kind` said when JHADE routed it, else the handler name.
    public let kind: String
    /// The task input as raw JSON text.
    public let input: [UInt8]
    /// Milliseconds left before the coordinator cancels the task.
    public let deadlineMs: Int64
    /// 1 for the first run, 2 for the first retry, ...
    public let attempt: Int

    /// The input parsed as a JSON value.
    public func inputValue() throws -> JSONValue { try JSONParser.parse(input).value }

    /// The input as text: a JSON string, or the `text` member of an object.
    public func inputText() throws(TaskFailure) -> String {
        guard let value = try? inputValue() else { throw TaskFailure(.invalidInput, "input is not valid JSON") }
        if case .string(let s) = value { return s }
        if case .string(let s)? = value["text"] { return s }
        throw TaskFailure(.invalidInput, "expected a string or an object with a \"text\" string, found \(value.typeName)")
    }
}

/// A handler served by Chimera's built-in worker.
///
/// `run` is called on the worker's loop thread and must not block it for long (heartbeats are
/// answered on the same thread); slow work answers later through the responder, for example
/// from a ``Timer``.
public protocol WorkerHandler {
    /// The name tasks route by (`text.stats`).
    var name: String { get }
    /// Task kinds this handler serves.
    var kinds: [String] { get }
    /// Runs one task; answer exactly once through `responder`.
    func run(_ request: HandlerRequest, _ responder: HandlerResponder)
    /// The server is stopping (input ended, or shutdown): close loop handles the handler opened.
    func serverWillStop()
}

extension WorkerHandler {
    public func serverWillStop() {}
}

/// Answers one task. The first answer wins; later ones are ignored.
public final class HandlerResponder {
    let id: RPCEnvelope.ID
    unowned let server: WorkerServer
    /// Whether the task was answered already (or cancelled and answered).
    public private(set) var isFinished = false
    /// Set when the coordinator cancels the task; the server then answers "cancelled" itself.
    public var onCancel: (() -> Void)?
    /// The loop the worker runs on, for timers.
    public var loop: EventLoop { server.loop }

    init(id: RPCEnvelope.ID, server: WorkerServer) {
        self.id = id
        self.server = server
    }

    /// Answers with `output`, raw JSON text.
    public func succeed(rawJSON output: [UInt8]) {
        guard !isFinished else { return }
        output.withUnsafeBytes { bytes in server.stdout.withOutgoingBuffer { RPCWriter.taskOutput(id: id, output: bytes, to: &$0) } }
        finish()
    }

    /// Answers with `output`.
    public func succeed(_ output: JSONValue) {
        var bytes: [UInt8] = []
        output.write(to: &bytes)
        succeed(rawJSON: bytes)
    }

    /// Answers with a failure.
    public func fail(_ failure: TaskFailure) {
        guard !isFinished else { return }
        let code = failure.kind == .cancelled ? RPCErrorCode.cancelled : (failure.kind == .invalidInput ? RPCErrorCode.invalidParams : RPCErrorCode.handlerError)
        server.stdout.withOutgoingBuffer { RPCWriter.error(id: id, code: code, message: failure.message, kind: failure.kind.rawValue, to: &$0) }
        finish()
    }

    /// Streams a piece of output before the answer (`task/delta`).
    public func delta(_ text: String) {
        guard !isFinished, case .number(let n) = id else { return }
        server.stdout.withOutgoingBuffer { RPCWriter.taskDelta(id: n, text: text, to: &$0) }
    }

    /// Called after the answer is written: finishing may stop the server (input ended, last task).
    private func finish() {
        isFinished = true
        onCancel = nil
        server.taskFinished(id)
    }

    func cancel() {
        guard !isFinished else { return }
        let cancelled = onCancel
        fail(TaskFailure(.cancelled, "cancelled by the coordinator"))
        cancelled?()
    }
}
