import ChimeraCore
import ChimeraOpenRouter

/// `llm.chat`: one external chat call, run by an agent worker (`chimera worker --agent NAME`).
///
/// The coordinator decides (key, model chain, timeouts) and sends them in the task input
/// (``ExternalCallInput``); this handler only makes the HTTP call with ``OpenRouterClient`` and
/// answers with ``ExternalCallOutput`` — success or the classified upstream failure. Content
/// fragments of a stream go back as `task/delta` as they arrive. The HTTP call runs on
/// AsyncHTTPClient's threads; results come back to the worker's loop through a ``LoopInbox``.
public final class ExternalChatHandler: WorkerHandler {
    /// The handler name external-call tasks route by.
    public static let handlerName = "llm.chat"
    public let name = ExternalChatHandler.handlerName
    public let kinds = [ExternalChatHandler.handlerName]

    private enum Message: Sendable {
        case delta(Int, String)
        case done(Int, [UInt8])
    }

    private let loop: EventLoop
    private var inbox: LoopInbox<Message>?
    private var responders: [Int: HandlerResponder] = [:]
    private var calls: [Int: Task<Void, Never>] = [:]
    private var clients: [String: OpenRouterClient] = [:]
    private var nextCall = 0

    public init(loop: EventLoop) {
        self.loop = loop
    }

    public func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        let input: ExternalCallInput
        do {
            input = try ExternalCallInput(json: request.inputValue())
        } catch let failure as TaskFailure {
            return responder.fail(failure)
        } catch {
            return responder.fail(TaskFailure(.invalidInput, "input is not valid JSON"))
        }
        let inbox: LoopInbox<Message>
        do {
            inbox = try self.inbox ?? makeInbox()
        } catch {
            return responder.fail(TaskFailure(.handlerError, "cannot wake the worker loop: \(error)"))
        }
        inbox.keepsLoopAlive = true
        let client = self.client(for: input)
        nextCall += 1
        let id = nextCall
        responders[id] = responder
        var body: [UInt8] = []
        input.body.write(to: &body)
        let stream = input.stream
        let key = input.key
        calls[id] = Task {
            let report = await client.chat(body: body, stream: stream, key: key) { text in inbox.post(.delta(id, text)) }
            var output: [UInt8] = []
            ExternalCallOutput(result: report.result, status: report.status, latencyMs: report.latencyMs, firstTokenMs: report.firstTokenMs).json.write(to: &output)
            inbox.post(.done(id, output))
        }
        // Cancelling the task closes the HTTP connection, which tells OpenRouter to stop.
        responder.onCancel = { [weak self] in
            self?.calls.removeValue(forKey: id)?.cancel()
            self?.responders.removeValue(forKey: id)
            self?.updateKeepAlive()
        }
    }

    public func serverWillStop() {
        for call in calls.values { call.cancel() }
        calls.removeAll()
        responders.removeAll()
        inbox?.close()
        inbox = nil
        for client in clients.values { client.shutdownNow() }
        clients.removeAll()
    }

    private func makeInbox() throws(UVError) -> LoopInbox<Message> {
        let inbox = try LoopInbox<Message>(loop: loop) { [weak self] batch in self?.receive(batch) }
        self.inbox = inbox
        return inbox
    }

    private func receive(_ batch: [Message]) {
        for message in batch {
            switch message {
            case .delta(let id, let text):
                responders[id]?.delta(text)
            case .done(let id, let output):
                calls.removeValue(forKey: id)
                responders.removeValue(forKey: id)?.succeed(rawJSON: output)
            }
        }
        updateKeepAlive()
    }

    /// The inbox keeps the loop alive only while calls are in flight, so an idle worker exits
    /// when its input ends.
    private func updateKeepAlive() {
        inbox?.keepsLoopAlive = !calls.isEmpty
    }

    /// One client (one connection pool) per base URL and header set, reused across calls.
    private func client(for input: ExternalCallInput) -> OpenRouterClient {
        let id = ([input.baseURL] + input.headers.flatMap { [$0.name, $0.value] }).joined(separator: "\u{1}")
            + "\u{1}\(input.connectMs)/\(input.firstByteMs)/\(input.idleMs)/\(input.totalMs)"
        if let client = clients[id] { return client }
        var timeouts = CallTimeouts()
        timeouts.connectMs = input.connectMs
        timeouts.firstByteMs = input.firstByteMs
        timeouts.idleMs = input.idleMs
        timeouts.totalMs = input.totalMs
        let endpoint = ProviderEndpoint(name: "external", baseURL: input.baseURL, headers: input.headers.map { HTTPHeaderPair($0.name, $0.value) })
        let client = OpenRouterClient(endpoint: endpoint, timeouts: timeouts)
        clients[id] = client
        return client
    }
}
