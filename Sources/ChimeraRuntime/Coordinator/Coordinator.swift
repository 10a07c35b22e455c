import ChimeraCore
import HeapModule
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Something that happened in the coordinator, for observers (the CLI's progress, tests).
public enum CoordinatorEvent: Sendable, Equatable {
    case workerStarted(pool: String, worker: String, pid: Int32)
    case workerReady(pool: String, worker: String, pid: Int32, maxConcurrency: Int)
    case workerExited(pool: String, worker: String, reason: String)
    case poolFailed(pool: String, reason: String)
    case taskDispatched(task: String, worker: String, pid: Int32, attempt: Int)
    case taskRequeued(task: String, reason: String)
    case shutdownStarted(reason: String)
    case stopped(ShutdownSummary)
}

/// How the coordinator stopped.
public struct ShutdownSummary: Sendable, Equatable {
    /// The signal (SIGINT or SIGTERM) that started the shutdown, or `nil` if the program asked.
    public var signal: Int32?
    /// Tasks still running when the drain grace ran out (failed with `shutting_down`).
    public var abandonedTasks = 0
    /// Tasks that were queued but not started when shutdown began (failed with `shutting_down`).
    public var unstartedTasks = 0
    /// Workers that had to be sent SIGTERM or SIGKILL because they did not exit on end of input.
    public var workersSignalled = 0
    /// True when every in-flight task finished and every worker exited on its own.
    public var isClean: Bool { abandonedTasks == 0 && workersSignalled == 0 }
}

/// Runs tasks on supervised worker pools, on one libuv loop.
///
/// Everything here runs on the loop's thread and nothing is locked: the coordinator owns the
/// queues, the workers and the deadlines. Submit with ``submit(_:onDelta:completion:)``; the
/// completion runs exactly once, on the loop thread.
///
/// ```swift
/// let loop = try EventLoop()
/// let coordinator = Coordinator(loop: loop, config: .builtinDefault, workerExecutable: path)
/// try coordinator.start()
/// coordinator.submit(TaskRequest(handler: "echo", value: .string("hi"))) { outcome in
///     print(outcome.result)
///     coordinator.shutdown(reason: "done")
/// }
/// loop.run()
/// try loop.close()
/// ```
public final class Coordinator {
    let loop: EventLoop
    let config: ChimeraConfig
    let settings: CoordinatorSettings
    let logger: Logger
    /// The `chimera` binary that built-in pools run as `chimera worker`.
    let workerExecutable: String
    private(set) var pools: [WorkerPool] = []
    private var poolByHandler: [String: WorkerPool] = [:]
    private var deadlines = Heap<Deadline>()
    private var deadlineTimer: Timer?
    private var armedDeadline: UInt64 = .max
    private var tickTimer: Timer?
    private var signalWatchers: [SignalWatcher] = []
    private var stopTimers: [Timer] = []
    private var nextTaskNumber: UInt64 = 0
    private var started = false
    /// True once shutdown has begun: new submissions fail with `shutting_down`.
    public private(set) var isStopping = false
    private var summary = ShutdownSummary()
    private var stoppedWorkers = false
    private var finished = false
    /// Receives every ``CoordinatorEvent``; set before `start()`.
    public var observer: ((CoordinatorEvent) -> Void)?
    /// Called once when the coordinator has stopped and closed all its handles.
    public var onStopped: ((ShutdownSummary) -> Void)?
    /// Start workers in sessions of their own (set before ``start(handleSignals:)``), so that a
    /// terminal's Ctrl-C reaches the coordinator only: for interactive commands that give
    /// Ctrl-C a meaning of their own (`chimera chat` cancels the answer being written). Workers
    /// still end when the coordinator does: their stdin closes.
    public var detachesWorkers = false
    /// Pipe bytes queued to one worker beyond which it gets no more tasks until it reads.
    static let writeHighWaterBytes = 4 << 20

    /// - Parameters:
    ///   - workerExecutable: path of the `chimera` binary for built-in pools.
    public init(loop: EventLoop, config: ChimeraConfig, workerExecutable: String, logger: Logger? = nil) {
        self.loop = loop
        self.config = config
        self.settings = config.coordinator
        self.workerExecutable = workerExecutable
        self.logger = logger ?? Logger(label: "chimera.coordinator")
    }

    /// Starts every pool's workers (handshakes complete asynchronously; tasks queue meanwhile).
    ///
    /// - Parameter handleSignals: stop gracefully on SIGINT/SIGTERM (a second signal stops at once).
    public func start(handleSignals: Bool = false) throws(UVError) {
        precondition(!started, "Coordinator started twice")
        started = true
        // A dead worker must show up as EPIPE on write, not kill the coordinator.
        signal(SIGPIPE, SIG_IGN)
        // Workers must inherit only stdin, stdout and stderr. libuv opens its own descriptors
        // close-on-exec, but not those this process inherited or other code opened.
        FileIO.markInheritedDescriptorsCloseOnExec()
        // The loop's cached time dates from its last turn, or its creation: set-up work since
        // (opening stores, fetching a catalog) would make every deadline armed now fire early.
        loop.updateTime()
        for poolConfig in config.pools {
            let pool = WorkerPool(config: poolConfig, coordinator: self)
            pools.append(pool)
            for handler in poolConfig.handlers { poolByHandler[handler] = pool }
        }
        deadlineTimer = Timer(loop: loop)
        let tick = Timer(loop: loop)
        tickTimer = tick
        let interval = max(5, min(settings.heartbeatIntervalMs, settings.handshakeTimeoutMs, settings.heartbeatTimeoutMs - settings.heartbeatIntervalMs) / 4)
        tick.start(after: interval, repeat: interval) { [unowned self] in self.checkWorkers() }
        // The tick must not keep a finished program alive; workers' pipes do that while they run.
        tick.keepsLoopAlive = false
        if handleSignals {
            for signum in [SIGINT, SIGTERM] {
                let watcher = SignalWatcher(loop: loop)
                try watcher.start(signal: signum) { [unowned self] signum in self.receivedSignal(signum) }
                watcher.keepsLoopAlive = false
                signalWatchers.append(watcher)
            }
        }
        for pool in pools { pool.startAll() }
    }

    /// Names of the pools and the handlers each serves, in config order.
    public var poolSummaries: [(name: String, handlers: [String], failure: String?, readyWorkers: Int)] {
        pools.map { pool in (pool.config.name, pool.config.handlers, pool.failure, pool.liveWorkers.filter { $0.state == .ready }.count) }
    }

    // MARK: Submitting

    /// Submits a task. `completion` runs exactly once on the loop thread, possibly before this
    /// returns (an unknown handler, a full queue or a stopping coordinator fail at once).
    ///
    /// - Returns: the task id.
    @discardableResult
    public func submit(_ request: TaskRequest, onDelta: ((String) -> Void)? = nil, completion: @escaping (TaskOutcome) -> Void) -> String {
        nextTaskNumber += 1
        let id = request.id ?? "t-\(nextTaskNumber)"
        let task = TaskRecord(id: id, request: request, timeoutMs: request.timeoutMs ?? settings.taskTimeoutMs, now: loop.now, completion: completion)
        task.onDelta = onDelta
        guard !isStopping else {
            deliver(task, .failure(TaskFailure(.shuttingDown, "the coordinator is shutting down and accepts no new tasks")))
            return id
        }
        guard let pool = poolByHandler[request.handler] else {
            let known = poolByHandler.keys.sorted().joined(separator: ", ")
            deliver(task, .failure(TaskFailure(.unknownHandler, "no pool serves handler \"\(request.handler)\" (configured handlers: \(known))")))
            return id
        }
        if let failure = pool.failure {
            deliver(task, .failure(TaskFailure(.poolFailed, "pool \"\(pool.config.name)\" failed: \(failure)")))
            return id
        }
        if let problem = request.input.withUnsafeBytes({ raw in Result { () throws(JSONSyntaxError) in try JSONParser.validate(raw) }.failure }) {
            deliver(task, .failure(TaskFailure(.invalidInput, "task input is not valid JSON: \(problem)")))
            return id
        }
        // Pretty-printed input has newlines between tokens, which would end the wire line early.
        if request.input.contains(0x0A) || request.input.contains(0x0D) {
            task.input = JSONParser.removingWhitespace(request.input)
        }
        guard pool.queue.push(task, priority: task.priority) else {
            deliver(task, .failure(TaskFailure(.queueFull, "pool \"\(pool.config.name)\" has \(pool.queue.count) tasks queued (queue_capacity \(settings.queueCapacity)); retry later")))
            return id
        }
        pool.pump()
        return id
    }

    /// Tasks waiting or running in all pools.
    public var pendingTaskCount: Int { pools.reduce(0) { $0 + $1.queue.count + $1.inFlightCount } }

    // MARK: Running tasks (called by pools and workers)

    func dispatch(_ task: TaskRecord, to worker: WorkerConnection, now: UInt64) {
        task.attempts += 1
        task.state = .running
        task.deadline = now + task.timeoutMs
        worker.send(task, now: now)
        pushDeadline(Deadline(at: task.deadline, task: task, kind: .timeout, rpcID: task.rpcID))
        if observer != nil {
            emit(.taskDispatched(task: task.id, worker: worker.name, pid: worker.pid, attempt: task.attempts))
        }
    }

    func taskSucceeded(_ task: TaskRecord, on worker: WorkerConnection, result: UnsafeRawBufferPointer) {
        guard task.state == .running else { return checkDrained() }  // A late answer after a timeout.
        var output: [UInt8]?
        try? JSONParser.forEachMember(of: result) { key, range in
            if let key, key.equals("output") { output = Array(result[range]) }
        }
        if let output {
            deliver(task, .success(output), worker: worker.name)
        } else {
            deliver(task, .failure(TaskFailure(.handlerError, "worker answered task/run without \"output\" in the result")), worker: worker.name)
        }
    }

    func taskFailed(_ task: TaskRecord, on worker: WorkerConnection, failure: TaskFailure) {
        guard task.state == .running else { return checkDrained() }
        deliver(task, .failure(failure), worker: worker.name)
    }

    /// Delivers the outcome of `task`, once; later calls are ignored.
    func deliver(_ task: TaskRecord, _ result: Result<[UInt8], TaskFailure>, worker: String? = nil) {
        guard !task.isDelivered else { return }
        task.isDelivered = true
        task.state = .finished
        let completion = task.completion
        task.completion = nil
        task.onDelta = nil
        completion?(TaskOutcome(taskID: task.id, result: result, attempts: task.attempts, worker: worker,
                                elapsedMs: loop.now &- task.submittedAt))
        if isStopping { checkDrained() }
    }

    func workerBecameReady(_ worker: WorkerConnection) {
        logger.info("ready: \(worker.declaredHandlers.count) handlers, max_concurrency \(worker.maxConcurrency)", metadata: ["worker": "\(worker.name)"])
        emit(.workerReady(pool: worker.pool.config.name, worker: worker.name, pid: worker.pid, maxConcurrency: worker.maxConcurrency))
        if isStopping { worker.beginStop(); return }
        worker.pool.pump()
    }

    func workerExited(_ worker: WorkerConnection, reason: String, orphans: [TaskRecord], expected: Bool) {
        let pool = worker.pool
        for task in orphans where task.state == .running {
            task.worker = nil
            if let failure = pool.failure {
                deliver(task, .failure(TaskFailure(.poolFailed, "pool \"\(pool.config.name)\" failed: \(failure)")), worker: worker.name)
            } else if isStopping {
                deliver(task, .failure(TaskFailure(.shuttingDown, "worker \(worker.name) \(reason) during shutdown")), worker: worker.name)
            } else if task.attempts >= (task.maxAttempts ?? settings.maxAttempts) {
                deliver(task, .failure(TaskFailure(.quarantined, "quarantined after \(task.attempts) attempts, each ended by its worker dying (last: \(worker.name) \(reason))")), worker: worker.name)
            } else {
                task.state = .queued
                logger.notice("requeued task \(task.id) (attempt \(task.attempts) of \(task.maxAttempts ?? settings.maxAttempts)): worker \(reason)", metadata: ["worker": "\(worker.name)"])
                emit(.taskRequeued(task: task.id, reason: reason))
                pool.queue.pushFront(task, priority: task.priority)
            }
        }
        pool.workerExited(worker, reason: reason, expected: expected)
        pool.pump()
        if isStopping { checkStopped() }
    }

    func emit(_ event: CoordinatorEvent) { observer?(event) }

    func processOptions(for pool: PoolConfig) -> ChildProcess.Options {
        if let command = pool.command {
            var options = ChildProcess.Options(executable: command, arguments: pool.arguments, environment: pool.environment,
                                               workingDirectory: pool.workingDirectory)
            options.detached = detachesWorkers
            return options
        }
        var arguments = ["worker", "--name", "chimera-builtin"]
        if pool.testHandlers { arguments.append("--test-handlers") }
        if let agent = pool.agent {
            arguments += ["--agent", agent]
            // A pool serving only external calls gets workers whose pipes run on the HTTP client's
            // event loop (NIOAgentWorker): no thread hop per call. CHIMERA_AGENT_IO=libuv keeps the
            // general worker, for comparison.
            if Set(pool.handlers) == Set(BuiltinHandlerNames.agent), !pool.testHandlers,
               ProcessEnvironment.current["CHIMERA_AGENT_IO"] != "libuv" {
                arguments.append("--nio")
            }
        }
        if let concurrency = pool.maxConcurrency { arguments += ["--max-concurrency", String(concurrency)] }
        arguments += ["--max-line-bytes", String(settings.maxLineBytes)]
        var options = ChildProcess.Options(executable: workerExecutable, arguments: arguments, environment: pool.environment)
        options.detached = detachesWorkers
        return options
    }

    // MARK: Deadlines, heartbeats, handshakes

    struct Deadline: Comparable {
        enum Kind { case timeout, cancelGrace }
        let at: UInt64
        let task: TaskRecord
        let kind: Kind
        let rpcID: Int64
        static func < (a: Deadline, b: Deadline) -> Bool { a.at < b.at }
        static func == (a: Deadline, b: Deadline) -> Bool { a.at == b.at && a.task === b.task && a.kind == b.kind }
    }

    private func pushDeadline(_ deadline: Deadline) {
        deadlines.insert(deadline)
        if deadline.at < armedDeadline { armDeadlineTimer() }
    }

    private func armDeadlineTimer() {
        guard let first = deadlines.min, let timer = deadlineTimer, !timer.isClosing else { return }
        armedDeadline = first.at
        let now = loop.now
        timer.start(after: first.at > now ? first.at - now : 0) { [unowned self] in self.deadlinesDue() }
        // Deadlines never keep the loop alive by themselves.
        timer.keepsLoopAlive = false
    }

    private func deadlinesDue() {
        armedDeadline = .max
        let now = loop.now
        while let first = deadlines.min, first.at <= now {
            deadlines.removeMin()
            let task = first.task
            // Stale entries (the task finished, or was retried with a new request id) are skipped.
            guard let worker = task.worker, task.rpcID == first.rpcID, worker.inFlight[first.rpcID] === task else { continue }
            switch first.kind {
            case .timeout:
                guard task.state == .running else { continue }
                logger.warning("task \(task.id) timed out after \(task.timeoutMs) ms; cancelling", metadata: ["worker": "\(worker.name)"])
                deliver(task, .failure(TaskFailure(.timeout, "no answer within \(task.timeoutMs) ms (attempt \(task.attempts), worker \(worker.name))")), worker: worker.name)
                worker.sendCancel(task, reason: "timeout")
                pushDeadline(Deadline(at: now + settings.cancelGraceMs, task: task, kind: .cancelGrace, rpcID: task.rpcID))
            case .cancelGrace:
                worker.kill(reason: "did not acknowledge the cancel of task \(task.id) within \(settings.cancelGraceMs) ms")
            }
        }
        armDeadlineTimer()
    }

    /// Periodic check: handshake timeouts, heartbeats, hung workers.
    private func checkWorkers() {
        let now = loop.now
        for pool in pools {
            for worker in pool.liveWorkers {
                switch worker.state {
                case .handshaking:
                    if now - worker.startedAt >= settings.handshakeTimeoutMs {
                        worker.kill(reason: "no answer to initialize within \(settings.handshakeTimeoutMs) ms (is it speaking docs/PROTOCOL.md on stdout?)")
                    }
                case .ready:
                    let silent = now &- worker.lastHeard
                    if silent >= settings.heartbeatTimeoutMs {
                        worker.kill(reason: "hung: silent for \(silent) ms, heartbeat unanswered (heartbeat_timeout_ms \(settings.heartbeatTimeoutMs))")
                    } else if silent >= settings.heartbeatIntervalMs, worker.heartbeatID == nil {
                        worker.sendHeartbeat()
                    }
                case .stopping, .exited:
                    break
                }
            }
        }
    }

    // MARK: Shutdown

    private func receivedSignal(_ signum: Int32) {
        let name = signum == SIGINT ? "SIGINT" : "SIGTERM"
        if summary.signal == nil { summary.signal = signum }
        if isStopping {
            logger.warning("second \(name): stopping now")
            forceStop()
        } else {
            logger.notice("\(name) received: draining (up to \(settings.drainGraceMs) ms; send again to stop at once)")
            shutdown(reason: name)
        }
    }

    /// Stops gracefully: refuse new tasks, fail queued ones, let running ones finish for
    /// `drain_grace_ms`, then end the workers' input, then SIGTERM, then SIGKILL.
    public func shutdown(reason: String) {
        guard !isStopping else { return }
        isStopping = true
        emit(.shutdownStarted(reason: reason))
        for pool in pools {
            pool.cancelRestarts()
            for task in pool.queue.removeAll() {
                summary.unstartedTasks += 1
                deliver(task, .failure(TaskFailure(.shuttingDown, "not started: the coordinator is shutting down (\(reason))")))
            }
        }
        if pools.allSatisfy({ $0.inFlightCount == 0 }) {
            stopWorkers()
            return
        }
        let timer = Timer(loop: loop)
        stopTimers.append(timer)
        timer.start(after: settings.drainGraceMs) { [unowned self] in
            self.abandonInFlight()
            self.stopWorkers()
        }
    }

    private func checkDrained() {
        guard isStopping, !stoppedWorkers else { return }
        if pools.allSatisfy({ pool in pool.liveWorkers.allSatisfy { $0.inFlight.values.allSatisfy { $0.state != .running } } }) {
            stopWorkers()
        }
    }

    private func abandonInFlight() {
        for pool in pools {
            for worker in pool.liveWorkers {
                for task in worker.inFlight.values where task.state == .running {
                    summary.abandonedTasks += 1
                    deliver(task, .failure(TaskFailure(.shuttingDown, "abandoned: still running after the \(settings.drainGraceMs) ms drain grace")), worker: worker.name)
                }
            }
        }
    }

    private func stopWorkers() {
        guard !stoppedWorkers else { return }
        stoppedWorkers = true
        for pool in pools { for worker in pool.liveWorkers { worker.beginStop() } }
        let terminate = Timer(loop: loop)
        stopTimers.append(terminate)
        terminate.start(after: settings.stopGraceMs) { [unowned self] in
            for worker in self.liveWorkers {
                self.summary.workersSignalled += 1
                self.logger.warning("did not exit after end of input; sending SIGTERM", metadata: ["worker": "\(worker.name)"])
                worker.signal(SIGTERM)
            }
            terminate.start(after: self.settings.stopGraceMs) { [unowned self] in
                for worker in self.liveWorkers {
                    self.logger.warning("did not exit after SIGTERM; sending SIGKILL", metadata: ["worker": "\(worker.name)"])
                    worker.signal(SIGKILL)
                }
            }
        }
        checkStopped()
    }

    private func forceStop() {
        if !stoppedWorkers { abandonInFlight(); stopWorkers() }
        for worker in liveWorkers {
            summary.workersSignalled += 1
            worker.signal(SIGKILL)
        }
    }

    private var liveWorkers: [WorkerConnection] { pools.flatMap { $0.liveWorkers } }

    private func checkStopped() {
        guard stoppedWorkers, !finished, liveWorkers.isEmpty else { return }
        finished = true
        for timer in stopTimers { timer.close() }
        stopTimers.removeAll()
        for watcher in signalWatchers { watcher.close() }
        signalWatchers.removeAll()
        deadlineTimer?.close()
        deadlineTimer = nil
        tickTimer?.close()
        tickTimer = nil
        deadlines = Heap()
        let summary = self.summary
        logger.info("stopped: \(summary.isClean ? "clean" : "forced") (abandoned \(summary.abandonedTasks), unstarted \(summary.unstartedTasks), signalled \(summary.workersSignalled))")
        emit(.stopped(summary))
        onStopped?(summary)
    }
}
