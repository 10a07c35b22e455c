import ChimeraCore
import ChimeraOpenRouter

/// `llm.chat`: one external chat call, run by an agent worker (`chimera worker --agent NAME`).
///
/// The coordinator decides (key, model chain, timeouts) and sends them in the task input
/// (``ExternalCallInput``); this handler only makes the HTTP call with ``OpenRouterClient`` and
/// answers with ``ExternalCallOutput`` — success or the classified upstream failure. Content
/// fragments of a stream go back as `task/delta` as they arrive.
///
/// Per call: the input is read in place (the request body is passed on as the bytes the
/// coordinator sent), the call is handed to the client's one NIO event loop (one thread hop, no
/// Swift task), the response is read and the answer serialized there, and the answer comes back
/// to the worker's loop through a ``LoopInbox`` (one `uv_async_send`), which writes it. Both
/// threads are kept on one CPU (``CPUAffinity``), so these two hops are cheap context switches.
public final class ExternalChatHandler: WorkerHandler {
    /// The handler name external-call tasks route by.
    public static let handlerName = "llm.chat"
    public let name = ExternalChatHandler.handlerName
    public let kinds = [ExternalChatHandler.handlerName]

    private enum Message: Sendable {
        case delta(Int, String)
        case done(Int, [UInt8], GatewayTrace.Call?)
    }

    private let loop: EventLoop
    private var inbox: LoopInbox<Message>?
    private var responders: [Int: HandlerResponder] = [:]
    private var calls: [Int: ChatCall] = [:]
    /// One client (one connection pool) per base URL, header set and timeouts; a worker talks to
    /// a handful of endpoints at most, so a list searched in order is the cheapest lookup.
    private var clients: [(key: ClientKey, client: OpenRouterClient)] = []
    private var nextCall = 0
    /// Whether the loop thread was pinned to a CPU (``CPUAffinity``), once, before the first call.
    private var pinned = false
    private let trace = GatewayTrace.fromEnvironment()

    public init(loop: EventLoop) {
        self.loop = loop
    }

    public func run(_ request: HandlerRequest, _ responder: HandlerResponder) {
        var stamps = trace.map { _ in GatewayTrace.Call(task: request.taskID) }
        stamps?.received = ChatCallTiming.now()
        let input: ExternalCallInput
        do {
            // The body stays the bytes the coordinator sent; only the small members are parsed.
            input = try request.input.withUnsafeBytes { raw throws(TaskFailure) in try ExternalCallInput(raw: raw) }
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
        if !pinned {
            // Before the first client starts NIO's threads, which inherit the loop thread's CPU.
            pinned = true
            CPUAffinity.pinCallingThread(slot: CPUAffinity.slot(workerName: responder.server.workerName))
        }
        let client = self.client(for: input)
        nextCall += 1
        let id = nextCall
        responders[id] = responder
        stamps?.started = ChatCallTiming.now()
        // The call runs on the client's event loop; its outcome comes back through the inbox.
        calls[id] = client.startChat(body: input.bodyJSON, stream: input.stream, key: input.key, onDelta: { text in inbox.post(.delta(id, text)) }) { [stamps] report in
            let output = ExternalCallOutput(result: report.result, status: report.status, latencyMs: report.latencyMs, firstTokenMs: report.firstTokenMs).bytes
            var stamps = stamps
            if stamps != nil {
                stamps?.sent = report.timing.sent
                stamps?.head = report.timing.head
                stamps?.end = report.timing.end
                stamps?.serialized = ChatCallTiming.now()
            }
            inbox.post(.done(id, output, stamps))
        }
        // Cancelling the call closes the HTTP connection, which tells OpenRouter to stop.
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
        trace?.write()
        for entry in clients { entry.client.shutdownNow() }
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
            case .done(let id, let output, var stamps):
                stamps?.looped = ChatCallTiming.now()
                calls.removeValue(forKey: id)
                let responder = responders.removeValue(forKey: id)
                if var stamps {
                    // Recorded before the answer: answering the last task may stop the server.
                    stamps.written = ChatCallTiming.now()
                    trace?.record(stamps)
                }
                responder?.succeed(rawJSON: output)
            }
        }
        updateKeepAlive()
    }

    /// The inbox keeps the loop alive only while calls are in flight, so an idle worker exits
    /// when its input ends.
    private func updateKeepAlive() {
        inbox?.keepsLoopAlive = !calls.isEmpty
    }

    /// The client for `input`'s endpoint and timeouts, made on first use.
    private func client(for input: ExternalCallInput) -> OpenRouterClient {
        if let entry = clients.first(where: { $0.key.matches(input) }) { return entry.client }
        var timeouts = CallTimeouts()
        timeouts.connectMs = input.connectMs
        timeouts.firstByteMs = input.firstByteMs
        timeouts.idleMs = input.idleMs
        timeouts.totalMs = input.totalMs
        let endpoint = ProviderEndpoint(name: "external", baseURL: input.baseURL, headers: input.headers.map { HTTPHeaderPair($0.name, $0.value) })
        let client = OpenRouterClient(endpoint: endpoint, timeouts: timeouts)
        clients.append((ClientKey(input), client))
        return client
    }

    /// What one client (one connection pool) is made for: base URL, headers, timeouts.
    struct ClientKey {
        let baseURL: String
        let headers: [(name: String, value: String)]
        let timeouts: (Int64, Int64, Int64, Int64)

        init(_ input: ExternalCallInput) {
            baseURL = input.baseURL
            headers = input.headers
            timeouts = (input.connectMs, input.firstByteMs, input.idleMs, input.totalMs)
        }

        func matches(_ input: ExternalCallInput) -> Bool {
            baseURL == input.baseURL && timeouts == (input.connectMs, input.firstByteMs, input.idleMs, input.totalMs)
                && headers.elementsEqual(input.headers) { $0.name == $1.name && $0.value == $1.value }
        }
    }
}
