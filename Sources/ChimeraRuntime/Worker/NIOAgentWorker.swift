import ChimeraCore
import ChimeraOpenRouter
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// An agent worker that serves only `llm.chat` with its protocol I/O on the HTTP client's NIO
/// event loop: stdin, stdout, the HTTP connection and the call's callbacks all run on one thread,
/// so a call crosses no thread inside the worker (``WorkerServer`` plus ``ExternalChatHandler``
/// cross two: libuv loop → NIO loop → libuv loop). Same protocol, same answers; the coordinator
/// starts agent pools that serve only `llm.chat` this way (docs/BENCHMARKS.md, Gateway).
public enum NIOAgentWorker {
    /// Serves stdin/stdout until input ends or `exit` arrives. Throws when stdin or stdout is
    /// not a pipe or socket (or the pipes cannot be taken over).
    public static func run(name: String, maxConcurrency: Int, maxLineBytes: Int) throws {
        for (fd, label) in [(Int32(0), "stdin"), (Int32(1), "stdout")] where !PipeStream.isPollable(fd: fd) {
            throw UVError(code: -EINVAL, operation: "\(label) is not a pipe or socket")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = AgentProtocolHandler(name: name, maxConcurrency: maxConcurrency, maxLineBytes: maxLineBytes, group: group)
        let channel = try NIOPipeBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(server) }
            }
            .takingOwnershipOfDescriptors(input: 0, output: 1)
            .wait()
        try channel.closeFuture.wait()
        // Pools are closed from this thread: a synchronous shutdown on the loop would wait for itself.
        for client in try group.next().submit({ server.takeClients() }).wait() { client.shutdownNow() }
    }
}

/// The worker protocol (docs/PROTOCOL.md) for `llm.chat`, on one channel's event loop.
private final class AgentProtocolHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every member is touched only on the channel's one event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let name: String
    private let maxConcurrency: Int
    private let group: MultiThreadedEventLoopGroup
    private var framer: LineFramer
    private var context: ChannelHandlerContext?
    private var calls: [RPCEnvelope.ID: ChatCall] = [:]
    private var clients: [(key: ExternalChatHandler.ClientKey, client: OpenRouterClient)] = []
    private var shuttingDown = false
    private var inputEnded = false
    private var closing = false
    private var pinned = false
    private var workerName: String?
    private var pending: [UInt8] = []
    private let trace = GatewayTrace.fromEnvironment()

    init(name: String, maxConcurrency: Int, maxLineBytes: Int, group: MultiThreadedEventLoopGroup) {
        self.name = name
        self.maxConcurrency = maxConcurrency
        self.group = group
        framer = LineFramer(maxLineBytes: maxLineBytes)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            framer.append(bytes) { event in
                switch event {
                case .line(let line): handleLine(line)
                case .tooLong(_, let cap): error(nil, RPCErrorCode.invalidRequest, "message longer than \(cap) bytes", kind: "protocol_error")
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { flush() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputEnded = true
            closeIfIdle()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for call in calls.values { call.cancel() }
        calls.removeAll()
        trace?.write()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A broken pipe: the coordinator is gone, and nobody is left to answer.
        close()
    }

    // MARK: Protocol

    private func handleLine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty { return }
        let envelope: RPCEnvelope
        do {
            envelope = try RPCEnvelope.parse(line)
        } catch {
            self.error(nil, RPCErrorCode.parseError, error.message, kind: "protocol_error")
            return
        }
        guard let method = envelope.method else { return }
        let params = envelope.params.map { UnsafeRawBufferPointer(rebasing: line[$0]) }
        switch (method, envelope.id) {
        case (RPCMethod.taskRun, let id?): runTask(id: id, params: params)
        case (RPCMethod.heartbeat, let id?): result(id, "{}")
        case (RPCMethod.initialize, let id?): initialize(id: id, params: params)
        case (RPCMethod.taskCancel, nil): cancel(params: params)
        case (RPCMethod.shutdown, let id?):
            shuttingDown = true
            result(id, "null")
        case (RPCMethod.exit, nil): close()
        case (_, let id?): error(id, RPCErrorCode.methodNotFound, "unknown method \"\(method)\"", kind: "protocol_error")
        case (_, nil): break
        }
    }

    private func initialize(id: RPCEnvelope.ID, params: UnsafeRawBufferPointer?) {
        if let params {
            try? JSONParser.forEachMember(of: params) { key, range in
                if let key, key.equals("worker") { workerName = JSONParser.decodeString(UnsafeRawBufferPointer(rebasing: params[range])) }
            }
        }
        if !pinned {
            // This thread carries the whole call; keep it on one CPU (see CPUAffinity).
            pinned = true
            CPUAffinity.pinCallingThread(slot: CPUAffinity.slot(workerName: workerName))
        }
        result(id, RPCWriter.handshake(name: name, handlers: [(ExternalChatHandler.handlerName, [ExternalChatHandler.handlerName], [])],
                                       maxConcurrency: maxConcurrency))
    }

    private func runTask(id: RPCEnvelope.ID, params: UnsafeRawBufferPointer?) {
        var stamps = trace.map { _ in GatewayTrace.Call(task: "") }
        stamps?.received = ChatCallTiming.now()
        guard let params else { return error(id, RPCErrorCode.invalidParams, "task/run needs params", kind: "invalid_input") }
        if shuttingDown { return error(id, RPCErrorCode.handlerError, "worker is shutting down", kind: "shutting_down") }
        var handlerName: String?
        var input: Range<Int>?
        do {
            try JSONParser.forEachMember(of: params) { key, range in
                guard let key else { return }
                if key.equals("handler") { handlerName = JSONParser.decodeString(UnsafeRawBufferPointer(rebasing: params[range])) }
                else if key.equals("input") { input = range }
                else if key.equals("task") { stamps?.task = JSONParser.decodeString(UnsafeRawBufferPointer(rebasing: params[range])) ?? "" }
            }
        } catch {
            return self.error(id, RPCErrorCode.invalidParams, "task/run params: \(error)", kind: "invalid_input")
        }
        guard handlerName == ExternalChatHandler.handlerName else {
            return error(id, RPCErrorCode.invalidParams, "no handler \"\(handlerName ?? "")\" in this worker (it has: \(ExternalChatHandler.handlerName))",
                         kind: "unknown_handler")
        }
        guard let input else { return error(id, RPCErrorCode.invalidParams, "task/run params need \"input\"", kind: "invalid_input") }
        let call: ExternalCallInput
        do {
            call = try ExternalCallInput(raw: UnsafeRawBufferPointer(rebasing: params[input]))
        } catch {
            return self.error(id, RPCErrorCode.invalidParams, error.message, kind: error.kind.rawValue)
        }
        stamps?.started = ChatCallTiming.now()
        let loop = context?.eventLoop
        // Everything below runs on this loop: the client shares it, so the call starts here,
        // and its deltas and completion arrive here.
        calls[id] = client(for: call).startChat(body: call.bodyJSON, stream: call.stream, key: call.key, onDelta: { [weak self] text in
            loop?.assertInEventLoop()
            self?.delta(id, text)
        }) { [weak self, stamps] report in
            loop?.assertInEventLoop()
            guard let self, self.calls.removeValue(forKey: id) != nil else { return }
            let output = ExternalCallOutput(result: report.result, status: report.status, latencyMs: report.latencyMs, firstTokenMs: report.firstTokenMs).bytes
            if var stamps {
                stamps.sent = report.timing.sent
                stamps.head = report.timing.head
                stamps.end = report.timing.end
                stamps.serialized = ChatCallTiming.now()
                stamps.looped = stamps.serialized
                stamps.written = stamps.serialized
                self.trace?.record(stamps)
            }
            output.withUnsafeBytes { bytes in RPCWriter.taskOutput(id: id, output: bytes, to: &self.pending) }
            self.flush()
            self.closeIfIdle()
        }
    }

    private func cancel(params: UnsafeRawBufferPointer?) {
        guard let params, let value = try? JSONParser.parse(Array(params)).value, case .number(let n)? = value["id"] else { return }
        let id = RPCEnvelope.ID.number(Int64(n))
        guard let call = calls.removeValue(forKey: id) else { return }
        call.cancel()
        error(id, RPCErrorCode.cancelled, "cancelled by the coordinator", kind: "cancelled")
        flush()
        closeIfIdle()
    }

    // MARK: Output

    private func delta(_ id: RPCEnvelope.ID, _ text: String) {
        guard calls[id] != nil, case .number(let n) = id else { return }
        RPCWriter.taskDelta(id: n, text: text, to: &pending)
        flush()
    }

    private func result(_ id: RPCEnvelope.ID, _ json: String) {
        var json = json
        json.withUTF8 { RPCWriter.result(id: id, result: UnsafeRawBufferPointer($0), to: &pending) }
    }

    private func error(_ id: RPCEnvelope.ID?, _ code: Int, _ message: String, kind: String) {
        RPCWriter.error(id: id, code: code, message: message, kind: kind, to: &pending)
    }

    /// Writes what is pending in one write (answers made while reading go out at read-complete).
    private func flush() {
        guard !pending.isEmpty, let context, !closing else { return }
        var buffer = context.channel.allocator.buffer(capacity: pending.count)
        buffer.writeBytes(pending)
        pending.removeAll(keepingCapacity: true)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func closeIfIdle() {
        if inputEnded, calls.isEmpty { close() }
    }

    private func close() {
        guard !closing, let context else { return }
        flush()
        closing = true
        for call in calls.values { call.cancel() }
        calls.removeAll()
        context.close(promise: nil)
    }

    /// The HTTP clients, handed over to be shut down once the channel is closed.
    func takeClients() -> [OpenRouterClient] {
        defer { clients.removeAll() }
        return clients.map(\.client)
    }

    // MARK: Clients

    private func client(for input: ExternalCallInput) -> OpenRouterClient {
        if let entry = clients.first(where: { $0.key.matches(input) }) { return entry.client }
        var timeouts = CallTimeouts()
        timeouts.connectMs = input.connectMs
        timeouts.firstByteMs = input.firstByteMs
        timeouts.idleMs = input.idleMs
        timeouts.totalMs = input.totalMs
        let endpoint = ProviderEndpoint(name: "external", baseURL: input.baseURL, headers: input.headers.map { HTTPHeaderPair($0.name, $0.value) })
        let client = OpenRouterClient(endpoint: endpoint, timeouts: timeouts, sharing: group)
        clients.append((ExternalChatHandler.ClientKey(input), client))
        return client
    }
}
