import ChimeraCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One supervised worker process and the protocol spoken with it.
///
/// Worker lifecycle (states are ``State``):
///
/// ```
///   start() ──▶ handshaking ── initialize answered ──▶ ready ── shutdown: stdin closed ──▶ stopping
///                   │                                   │                                   │
///                   │ handshake timeout, bad answer,    │ hung (no heartbeat answer),       │ SIGTERM, then
///                   │ malformed output → kill()         │ malformed output, cancel not      │ SIGKILL after
///                   ▼                                   ▼ acknowledged → kill()             ▼ stop_grace_ms
///                 ────────────────────────────▶ exited (exit status and EOF on stdout/stderr seen)
/// ```
///
/// `exited` is final: the pool decides whether a new connection replaces it. Invariants: the
/// process handle is closed only by ``ChildProcess`` after its exit callback; the three pipes are
/// closed exactly once, in ``finish()``; every task in `inFlight` is handed back to the
/// coordinator in ``finish()`` (requeued or quarantined), so no task is lost with its worker.
final class WorkerConnection {
    enum State: Equatable {
        case handshaking
        case ready
        case stopping
        case exited
    }

    let name: String
    let slot: Int
    unowned let pool: WorkerPool
    unowned let coordinator: Coordinator
    private(set) var state: State = .handshaking
    private(set) var process: ChildProcess?
    let stdin: PipeStream
    private let stdout: PipeStream
    private let stderr: PipeStream
    private var framer: LineFramer
    private var stderrFramer = LineFramer(maxLineBytes: 16 * 1024)
    /// Tasks sent and not yet answered, by request id. Includes timed-out tasks awaiting their
    /// cancel acknowledgement (state `.finished`): they still occupy a slot.
    var inFlight: [Int64: TaskRecord] = [:]
    private var nextRequestID: Int64 = 1
    private static let initializeID: Int64 = 0
    private(set) var maxConcurrency = 1
    let startedAt: UInt64
    var lastHeard: UInt64
    var heartbeatID: Int64?
    /// Why the coordinator killed the worker, for the log and for tasks that fail with it.
    private(set) var killReason: String?
    private var exitStatus: ChildExitStatus?
    private var stdoutOpen = true
    private var stderrOpen = true
    private var lingerTimer: Timer?
    private var sawFirstByte = false
    private(set) var declaredHandlers: [String] = []

    init(pool: WorkerPool, slot: Int, generation: Int) {
        self.pool = pool
        self.slot = slot
        self.coordinator = pool.coordinator
        self.name = "\(pool.config.name)#\(slot + 1)" + (generation > 0 ? ".\(generation)" : "")
        let loop = pool.coordinator.loop
        framer = LineFramer(maxLineBytes: pool.coordinator.settings.maxLineBytes)
        stdin = PipeStream(loop: loop, label: "\(name) stdin")
        stdout = PipeStream(loop: loop, label: "\(name) stdout")
        stderr = PipeStream(loop: loop, label: "\(name) stderr")
        startedAt = loop.now
        lastHeard = loop.now
    }

    var logger: Logger { coordinator.logger }
    var freeSlots: Int { state == .ready ? maxConcurrency - inFlight.count : 0 }
    var pid: Int32 { process?.pid ?? 0 }

    /// Spawns the process and sends `initialize`. On failure the connection is already finished.
    func start(options: ChildProcess.Options) throws(UVError) {
        do {
            process = try ChildProcess(loop: coordinator.loop, options: options, stdin: stdin, stdout: stdout, stderr: stderr) { [unowned self] status in
                self.exitStatus = status
                self.maybeFinish()
            }
        } catch {
            stdin.close()
            stdout.close()
            stderr.close()
            state = .exited
            throw error
        }
        stdin.onWriteError = { [unowned self] error in
            // The worker closed its stdin or died; its exit callback follows and decides.
            self.logger.debug("write failed: \(error)", metadata: ["worker": "\(self.name)"])
        }
        do {
            try stdout.startReading { [unowned self] event in
                switch event {
                case .data(let bytes): self.receive(bytes)
                case .eof, .error:
                    if self.framer.bufferedByteCount > 0, self.killReason == nil {
                        let tail = self.framer.bufferedBytes.withUnsafeBytes { WorkerConnection.printable($0, limit: 120) }
                        self.logger.error("output ended in the middle of a line (truncated message): \(tail)", metadata: ["worker": "\(self.name)"])
                    }
                    self.stdoutOpen = false
                    self.maybeFinish()
                }
            }
            try stderr.startReading { [unowned self] event in
                switch event {
                case .data(let bytes): self.receiveLog(bytes)
                case .eof, .error: self.stderrOpen = false; self.maybeFinish()
                }
            }
        } catch {
            // Without its output the worker cannot be supervised; say why instead of timing out.
            kill(reason: "cannot read its output: \(error)")
        }
        let params = JSONValue.object([
            JSONMember("protocol_version", .number(Double(RPCMethod.protocolVersion))),
            JSONMember("worker", .string(name)),
            JSONMember("pool", .string(pool.config.name)),
        ])
        var bytes: [UInt8] = []
        params.write(to: &bytes)
        stdin.withOutgoingBuffer { RPCWriter.request(id: WorkerConnection.initializeID, method: RPCMethod.initialize, params: bytes, to: &$0) }
    }

    // MARK: Sending

    /// Sends `task` as a `task/run` request. The caller checked `freeSlots > 0`.
    func send(_ task: TaskRecord, now: UInt64) {
        let id = nextRequestID
        nextRequestID += 1
        task.rpcID = id
        task.worker = self
        inFlight[id] = task
        let remaining = task.deadline > now ? Int64(task.deadline - now) : 0
        stdin.withOutgoingBuffer {
            RPCWriter.taskRun(id: id, task: task.id, handler: task.handler, kind: task.kind, input: task.input,
                              deadlineMs: remaining, attempt: task.attempts, to: &$0)
        }
    }

    func sendCancel(_ task: TaskRecord, reason: String) {
        var params: [UInt8] = Array(#"{"id":"#.utf8)
        RPCWriter.appendInteger(task.rpcID, to: &params)
        params.append(contentsOf: #","reason":"#.utf8)
        JSONValue.writeString(reason, to: &params)
        params.append(UInt8(ascii: "}"))
        stdin.withOutgoingBuffer { RPCWriter.notification(method: RPCMethod.taskCancel, params: params, to: &$0) }
    }

    func sendHeartbeat() {
        let id = nextRequestID
        nextRequestID += 1
        heartbeatID = id
        stdin.withOutgoingBuffer { RPCWriter.request(id: id, method: RPCMethod.heartbeat, params: nil, to: &$0) }
    }

    /// Asks the worker to exit: an `exit` notification, then end of input.
    func beginStop() {
        guard state != .exited, state != .stopping else { return }
        state = .stopping
        stdin.withOutgoingBuffer { RPCWriter.notification(method: RPCMethod.exit, params: nil, to: &$0) }
        if !stdin.isClosing { stdin.close() }
    }

    /// Sends a signal; used for escalation at shutdown.
    func signal(_ signal: Int32) { process?.kill(signal) }

    /// Kills the worker (SIGKILL) and records why; its tasks are handed back when it has exited.
    func kill(reason: String) {
        guard state != .exited else { return }
        if killReason == nil {
            killReason = reason
            logger.warning("killing worker: \(reason)", metadata: ["worker": "\(name)"])
        }
        process?.kill(SIGKILL)
    }

    // MARK: Receiving

    private func receive(_ bytes: UnsafeRawBufferPointer) {
        lastHeard = coordinator.loop.now
        if !sawFirstByte {
            sawFirstByte = true
            // An LSP-style peer waits for our headers and never sends a newline we could wait for.
            if bytes.hasPrefix("Content-Length:") {
                protocolViolation("wrote an LSP-style 'Content-Length:' header; Chimera workers write one JSON-RPC message per line with no headers (docs/PROTOCOL.md, Framing)", line: nil)
                return
            }
        }
        framer.append(bytes) { event in
            guard self.killReason == nil else { return }
            switch event {
            case .line(let line): self.handleLine(line)
            case .tooLong(let prefix, let cap):
                self.protocolViolation("wrote a line longer than max_line_bytes (\(cap) bytes)", line: prefix)
            }
        }
    }

    private func receiveLog(_ bytes: UnsafeRawBufferPointer) {
        stderrFramer.append(bytes) { event in
            switch event {
            case .line(let line):
                self.logger.notice("\(WorkerConnection.printable(line, limit: 16 * 1024))", metadata: ["worker": "\(self.name)"])
            case .tooLong(let prefix, let cap):
                let shown = prefix.withUnsafeBytes { WorkerConnection.printable($0, limit: 64) }
                self.logger.notice("\(shown)… (stderr line over \(cap) bytes, cut)", metadata: ["worker": "\(self.name)"])
            }
        }
    }

    private func handleLine(_ line: UnsafeRawBufferPointer) {
        if line.isEmpty { return }
        let envelope: RPCEnvelope
        do {
            envelope = try RPCEnvelope.parse(line)
        } catch {
            protocolViolation("wrote a malformed line: \(error.message)", line: Array(line.prefix(120)))
            return
        }
        switch envelope.kind {
        case .response:
            guard case .number(let id)? = envelope.id else {
                if let range = envelope.error {
                    // `id: null`: the worker could not read something Chimera sent.
                    let failure = WorkerConnection.failure(fromErrorObject: UnsafeRawBufferPointer(rebasing: line[range]))
                    logger.error("reported a protocol error: \(failure.message)", metadata: ["worker": "\(name)"])
                } else {
                    logger.warning("answered an id Chimera never sent: \(envelope.id.map { "\($0)" } ?? "none")", metadata: ["worker": "\(name)"])
                }
                return
            }
            handleResponse(id: id, envelope: envelope, line: line)
        case .notification:
            if envelope.method == RPCMethod.taskDelta, let params = envelope.params {
                handleDelta(UnsafeRawBufferPointer(rebasing: line[params]))
            }
        case .request:
            // Workers do not call the coordinator in protocol version 1.
            stdin.withOutgoingBuffer {
                RPCWriter.error(id: envelope.id, code: RPCErrorCode.methodNotFound,
                                message: "the coordinator serves no methods", kind: "protocol_error", to: &$0)
            }
        }
    }

    private func handleResponse(id: Int64, envelope: RPCEnvelope, line: UnsafeRawBufferPointer) {
        if id == WorkerConnection.initializeID {
            // Answered after shutdown began (state `.stopping`): nothing left to set up.
            if state == .handshaking { handshakeAnswered(envelope, line) }
            return
        }
        if id == heartbeatID {
            heartbeatID = nil
            return
        }
        guard let task = inFlight.removeValue(forKey: id) else {
            logger.warning("answered request \(id), which is not in flight", metadata: ["worker": "\(name)"])
            return
        }
        task.worker = nil
        if let range = envelope.result {
            coordinator.taskSucceeded(task, on: self, result: UnsafeRawBufferPointer(rebasing: line[range]))
        } else if let range = envelope.error {
            coordinator.taskFailed(task, on: self, failure: WorkerConnection.failure(fromErrorObject: UnsafeRawBufferPointer(rebasing: line[range])))
        }
        pool.slotFreed(self)
    }

    private func handleDelta(_ params: UnsafeRawBufferPointer) {
        guard let value = try? JSONParser.parse(Array(params)).value,
              case .number(let n)? = value["id"], case .string(let text)? = value["delta"],
              let task = inFlight[Int64(n)], task.state == .running else { return }
        task.onDelta?(text)
    }

    private func handshakeAnswered(_ envelope: RPCEnvelope, _ line: UnsafeRawBufferPointer) {
        guard let range = envelope.result else {
            let failure = envelope.error.map { WorkerConnection.failure(fromErrorObject: UnsafeRawBufferPointer(rebasing: line[$0])) }
            protocolViolation("refused the handshake: \(failure?.message ?? "no reason given")", line: nil)
            return
        }
        let result = (try? JSONParser.parse(Array(line[range])).value) ?? .null
        guard case .number(let version)? = result["protocol_version"], version == Double(RPCMethod.protocolVersion) else {
            protocolViolation("answered initialize without \"protocol_version\": \(RPCMethod.protocolVersion) (got \(result["protocol_version"]?.serialized ?? "none"))", line: nil)
            return
        }
        guard case .number(let declared)? = result["max_concurrency"], declared >= 1, declared == declared.rounded() else {
            protocolViolation("answered initialize without a positive integer \"max_concurrency\"", line: nil)
            return
        }
        guard case .array(let handlers)? = result["handlers"] else {
            protocolViolation("answered initialize without a \"handlers\" array", line: nil)
            return
        }
        declaredHandlers = handlers.compactMap { $0["name"]?.stringValue ?? $0.stringValue }
        let missing = pool.config.handlers.filter { !declaredHandlers.contains($0) }
        if !missing.isEmpty {
            let reason = "declares handlers [\(declaredHandlers.joined(separator: ", "))] but the config routes [\(missing.joined(separator: ", "))] to it"
            kill(reason: reason)
            pool.markFailed("worker \(name) \(reason)")
            return
        }
        maxConcurrency = min(Int(min(declared, 1_000_000)), pool.config.maxConcurrency ?? Int.max)
        state = .ready
        lastHeard = coordinator.loop.now
        coordinator.workerBecameReady(self)
    }

    /// A worker broke the protocol: log it plainly, and restart it if policy says so.
    private func protocolViolation(_ what: String, line: [UInt8]?) {
        let shown = line.map { bytes in
            " — line starts: " + bytes.withUnsafeBytes { WorkerConnection.printable($0, limit: 120) }
        } ?? ""
        if coordinator.settings.restartOnMalformedOutput || state == .handshaking {
            kill(reason: "\(what)\(shown)")
        } else {
            logger.error("\(what)\(shown) (ignored: on_malformed_output is \"log\")", metadata: ["worker": "\(name)"])
        }
    }

    static func failure(fromErrorObject raw: UnsafeRawBufferPointer) -> TaskFailure {
        let value = (try? JSONParser.parse(Array(raw)).value) ?? .null
        let message = value["message"]?.stringValue ?? "the worker reported an error without a message"
        var kind = TaskFailureKind.handlerError
        if let name = value["data"]?["kind"]?.stringValue, !name.isEmpty {
            kind = TaskFailureKind(rawValue: name)
        } else if case .number(let code)? = value["code"] {
            switch Int(code) {
            case RPCErrorCode.cancelled: kind = .cancelled
            case RPCErrorCode.invalidParams: kind = .invalidInput
            default: break
            }
        }
        return TaskFailure(kind, message)
    }

    /// Bytes as a log-safe string: invalid UTF-8 and control characters escaped, length capped.
    static func printable(_ bytes: UnsafeRawBufferPointer, limit: Int) -> String {
        let slice = UnsafeRawBufferPointer(rebasing: bytes.prefix(limit))
        var out = ""
        if UTF8Validation.isValid(slice) {
            for scalar in String(decoding: slice, as: UTF8.self).unicodeScalars {
                if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\x" + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
            }
        } else {
            for byte in slice {
                if byte >= 0x20 && byte < 0x7F { out.unicodeScalars.append(Unicode.Scalar(byte)) } else {
                    out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
                }
            }
            out += " (invalid UTF-8)"
        }
        return bytes.count > limit ? out + "…" : out
    }

    // MARK: Ending

    private func maybeFinish() {
        guard let status = exitStatus, state != .exited else { return }
        if !stdoutOpen && !stderrOpen {
            finish(status)
        } else if lingerTimer == nil {
            // A grandchild that inherited stdout can keep the pipe open after the worker died.
            let timer = Timer(loop: coordinator.loop)
            lingerTimer = timer
            timer.start(after: 500) { [unowned self] in self.finish(status) }
        }
    }

    private func finish(_ status: ChildExitStatus) {
        guard state != .exited else { return }
        let wasStopping = state == .stopping
        state = .exited
        lingerTimer?.close()
        lingerTimer = nil
        for pipe in [stdin, stdout, stderr] where !pipe.isClosing { pipe.close() }
        let orphans = inFlight.values.sorted { $0.rpcID < $1.rpcID }
        inFlight.removeAll()
        let reason = killReason.map { "\(status) after Chimera killed it: \($0)" } ?? "\(status)"
        if !wasStopping { logger.error("worker exited unexpectedly: \(reason)", metadata: ["worker": "\(name)"]) }
        coordinator.workerExited(self, reason: reason, orphans: orphans, expected: wasStopping)
    }
}
