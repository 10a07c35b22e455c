import ChimeraCore
#if canImport(Glibc)
import Glibc
#endif

/// The worker side of the protocol: reads requests from stdin, runs handlers, writes answers to
/// stdout, all on one libuv loop. `chimera worker` is this plus the built-in handlers.
public final class WorkerServer {
    /// Settings of one worker process.
    public struct Options: Sendable {
        /// Name reported in the handshake.
        public var name = "chimera-builtin"
        /// Tasks this worker accepts at once (declared in the handshake).
        public var maxConcurrency = 128
        public var maxLineBytes = 8 << 20
        /// The descriptor answers are written to: 1, or a duplicate of it when ``ChimeraWorker``
        /// points descriptor 1 at stderr so that a handler's stray `print` cannot corrupt the protocol.
        var outputDescriptor: Int32 = 1
        public init() {}
    }

    let loop: EventLoop
    let stdin: PipeStream
    let stdout: PipeStream
    private let options: Options
    private var handlers: [String: any WorkerHandler] = [:]
    private var handlerOrder: [String] = []
    private var framer: LineFramer
    private var running: [RPCEnvelope.ID: HandlerResponder] = [:]
    private var shuttingDown = false
    private var inputEnded = false
    private var closed = false
    /// The name the coordinator gave this worker in `initialize` (`agents#2`), if it did.
    private(set) var workerName: String?

    public init(loop: EventLoop, handlers: [any WorkerHandler], options: Options = Options()) throws(UVError) {
        self.loop = loop
        self.options = options
        framer = LineFramer(maxLineBytes: options.maxLineBytes)
        stdin = PipeStream(loop: loop, label: "stdin")
        stdout = PipeStream(loop: loop, label: "stdout")
        for handler in handlers {
            if self.handlers[handler.name] == nil { handlerOrder.append(handler.name) }
            self.handlers[handler.name] = handler
        }
        do throws(UVError) {
            // libuv polls pipes and sockets; a regular file or a terminal cannot be polled
            // (epoll refuses files, and libuv aborts on that), so refuse them up front.
            for (fd, name) in [(Int32(0), "stdin"), (options.outputDescriptor, "stdout")] where !PipeStream.isPollable(fd: fd) {
                throw UVError(code: -EINVAL, operation: "\(name) is not a pipe or socket")
            }
            try stdin.open(fd: 0)
            try stdout.open(fd: options.outputDescriptor)
        } catch {
            stdin.close()
            stdout.close()
            throw error
        }
        // Exiting coordinator: nothing more to say, and nobody to say it to.
        stdout.onWriteError = { [unowned self] _ in self.stop() }
    }

    /// Serves until stdin ends or `exit` arrives, then returns.
    public func run() throws(UVError) {
        try stdin.startReading { [unowned self] event in
            switch event {
            case .data(let bytes): self.receive(bytes)
            case .eof, .error: self.inputEnded = true; self.stopIfIdle()
            }
        }
        loop.run()
    }

    private func receive(_ bytes: UnsafeRawBufferPointer) {
        framer.append(bytes) { event in
            switch event {
            case .line(let line): self.handleLine(line)
            case .tooLong(_, let cap):
                self.reply(error: nil, RPCErrorCode.invalidRequest, "message longer than \(cap) bytes", kind: "protocol_error")
            }
        }
    }

    private func handleLine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty { return }
        let envelope: RPCEnvelope
        do {
            envelope = try RPCEnvelope.parse(line)
        } catch {
            reply(error: nil, RPCErrorCode.parseError, error.message, kind: "protocol_error")
            return
        }
        guard let method = envelope.method else { return }  // Responses: the coordinator sends none we await.
        let params = envelope.params.map { UnsafeRawBufferPointer(rebasing: line[$0]) }
        switch (method, envelope.id) {
        case (RPCMethod.taskRun, let id?): runTask(id: id, params: params)
        case (RPCMethod.heartbeat, let id?): result(id: id, "{}")
        case (RPCMethod.initialize, let id?): initialize(id: id, params: params)
        case (RPCMethod.taskCancel, nil): cancel(params: params)
        case (RPCMethod.shutdown, let id?):
            shuttingDown = true
            result(id: id, "null")
        case (RPCMethod.exit, nil): stop()
        case (_, let id?): reply(error: id, RPCErrorCode.methodNotFound, "unknown method \"\(method)\"", kind: "protocol_error")
        case (_, nil): break  // Unknown notifications are ignored, as JSON-RPC asks.
        }
    }

    private func initialize(id: RPCEnvelope.ID, params: UnsafeRawBufferPointer?) {
        if let params {
            try? JSONParser.forEachMember(of: params) { key, range in
                if let key, key.equals("worker") { workerName = JSONParser.decodeString(UnsafeRawBufferPointer(rebasing: params[range])) }
            }
        }
        let described = handlerOrder.map { name in
            let handler = handlers[name]!
            return (name: name, kinds: handler.kinds, extra: (handler as? any DescribedHandler)?.handshakeMembers ?? [])
        }
        result(id: id, RPCWriter.handshake(name: options.name, handlers: described, maxConcurrency: options.maxConcurrency))
    }

    private func runTask(id: RPCEnvelope.ID, params: UnsafeRawBufferPointer?) {
        guard let params else {
            reply(error: id, RPCErrorCode.invalidParams, "task/run needs params", kind: "invalid_input")
            return
        }
        if shuttingDown {
            reply(error: id, RPCErrorCode.handlerError, "worker is shutting down", kind: "shutting_down")
            return
        }
        var taskID = ""
        var handlerName: String?
        var kind = ""
        var input: Range<Int>?
        var deadline: Int64 = 0
        var attempt = 1
        do {
            try JSONParser.forEachMember(of: params) { key, range in
                guard let key else { return }
                let value = UnsafeRawBufferPointer(rebasing: params[range])
                if key.equals("handler") { handlerName = JSONParser.decodeString(value) }
                else if key.equals("input") { input = range }
                else if key.equals("task") { taskID = JSONParser.decodeString(value) ?? "" }
                else if key.equals("kind") { kind = JSONParser.decodeString(value) ?? "" }
                else if key.equals("deadline_ms") { deadline = Int64(String(decoding: value, as: UTF8.self)) ?? 0 }
                else if key.equals("attempt") { attempt = Int(String(decoding: value, as: UTF8.self)) ?? 1 }
            }
        } catch {
            reply(error: id, RPCErrorCode.invalidParams, "task/run params: \(error)", kind: "invalid_input")
            return
        }
        guard let handlerName, let handler = handlers[handlerName] else {
            let known = handlerOrder.joined(separator: ", ")
            reply(error: id, RPCErrorCode.invalidParams, "no handler \"\(handlerName ?? "")\" in this worker (it has: \(known))", kind: "unknown_handler")
            return
        }
        guard let input else {
            reply(error: id, RPCErrorCode.invalidParams, "task/run params need \"input\"", kind: "invalid_input")
            return
        }
        let request = HandlerRequest(taskID: taskID, handler: handlerName, kind: kind.isEmpty ? handlerName : kind,
                                     input: Array(params[input]), deadlineMs: deadline, attempt: attempt)
        let responder = HandlerResponder(id: id, server: self)
        running[id] = responder
        handler.run(request, responder)
    }

    private func cancel(params: UnsafeRawBufferPointer?) {
        guard let params, let value = try? JSONParser.parse(Array(params)).value, case .number(let n)? = value["id"] else { return }
        running[.number(Int64(n))]?.cancel()
    }

    func taskFinished(_ id: RPCEnvelope.ID) {
        running[id] = nil
        if inputEnded { stopIfIdle() }
    }

    private func result(id: RPCEnvelope.ID, _ json: String) {
        var json = json
        json.withUTF8 { bytes in
            stdout.withOutgoingBuffer { RPCWriter.result(id: id, result: UnsafeRawBufferPointer(bytes), to: &$0) }
        }
    }

    private func reply(error id: RPCEnvelope.ID?, _ code: Int, _ message: String, kind: String) {
        stdout.withOutgoingBuffer { RPCWriter.error(id: id, code: code, message: message, kind: kind, to: &$0) }
    }

    private func stopIfIdle() {
        if running.isEmpty { stop() }
    }

    /// Flushes what was written and closes the pipes; `run()` then returns.
    public func stop() {
        guard !closed else { return }
        closed = true
        for responder in running.values { responder.onCancel?() }
        running.removeAll()
        for name in handlerOrder { handlers[name]?.serverWillStop() }
        loop.flushDirtyStreams()
        stdin.close()
        stdout.close()
        loop.stop()
    }
}
