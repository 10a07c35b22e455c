import ChimeraCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A pool of identical workers serving a set of handlers, with its own queue and restart policy.
///
/// Pool states: `serving` → `failed(reason)` when restart intensity is exceeded or a worker can
/// never work (the executable is missing, or it does not declare the handlers routed to it).
/// A failed pool fails its queued tasks and new submissions with `pool_failed` and that reason;
/// other pools are unaffected.
final class WorkerPool {
    let config: PoolConfig
    unowned let coordinator: Coordinator
    /// One entry per slot; `nil` while a slot waits for its restart.
    private(set) var workers: [WorkerConnection?]
    var queue: TaskQueue<TaskRecord>
    private var intensity: RestartIntensity
    private var restartTimers: [Int: Timer] = [:]
    private var generations: [Int]
    private(set) var failure: String?
    private var nextWorker = 0

    init(config: PoolConfig, coordinator: Coordinator) {
        self.config = config
        self.coordinator = coordinator
        workers = Array(repeating: nil, count: config.size)
        generations = Array(repeating: 0, count: config.size)
        queue = TaskQueue(capacity: coordinator.settings.queueCapacity)
        intensity = RestartIntensity(policy: config.restart)
    }

    var logger: Logger { coordinator.logger }
    var liveWorkers: [WorkerConnection] { workers.compactMap { $0 } }
    var inFlightCount: Int { liveWorkers.reduce(0) { $0 + $1.inFlight.count } }

    func startAll() {
        for slot in 0..<config.size where workers[slot] == nil && failure == nil { spawn(slot: slot) }
    }

    private func spawn(slot: Int) {
        let worker = WorkerConnection(pool: self, slot: slot, generation: generations[slot])
        generations[slot] += 1
        workers[slot] = worker
        do {
            try worker.start(options: coordinator.processOptions(for: config))
            logger.info("started worker pid \(worker.pid)", metadata: ["worker": "\(worker.name)"])
            coordinator.emit(.workerStarted(pool: config.name, worker: worker.name, pid: worker.pid))
        } catch {
            workers[slot] = nil
            if error.isPermanentSpawnFailure {
                // Trying again cannot help: say so now instead of after the restart budget.
                markFailed("cannot start worker: \(error)")
            } else {
                scheduleRestart(slot: slot, after: "spawn failed: \(error)")
            }
        }
    }

    /// Picks the ready worker with the most free slots and sends it tasks while it has room.
    func pump() {
        guard failure == nil, !queue.isEmpty else { return }
        let now = coordinator.loop.now
        let count = workers.count
        var idleRounds = 0
        while !queue.isEmpty, idleRounds < count {
            // Round-robin over workers keeps load even when many have free slots.
            let index = nextWorker % count
            nextWorker &+= 1
            guard let worker = workers[index], worker.freeSlots > 0,
                  worker.stdin.queuedBytes < Coordinator.writeHighWaterBytes else {
                idleRounds += 1
                continue
            }
            idleRounds = 0
            guard let task = queue.popFirst() else { break }
            coordinator.dispatch(task, to: worker, now: now)
        }
    }

    func slotFreed(_ worker: WorkerConnection) {
        if !queue.isEmpty { pump() }
    }

    /// A worker is gone: restart it within the policy, or fail the pool.
    func workerExited(_ worker: WorkerConnection, reason: String, expected: Bool) {
        guard workers[worker.slot] === worker else { return }
        workers[worker.slot] = nil
        coordinator.emit(.workerExited(pool: config.name, worker: worker.name, reason: reason))
        if expected || coordinator.isStopping || failure != nil { return }
        scheduleRestart(slot: worker.slot, after: reason)
    }

    private func scheduleRestart(slot: Int, after reason: String) {
        let now = coordinator.loop.now
        let recent = intensity.recentRestarts(at: now)
        guard intensity.admitRestart(at: now) else {
            markFailed("restart intensity exceeded: \(recent) restarts within \(config.restart.windowMs) ms (max_restarts \(config.restart.maxRestarts)); last worker \(reason)")
            return
        }
        let delay = config.restart.backoff(consecutiveFailures: recent + 1)
        logger.notice("restarting slot \(slot + 1) in \(delay) ms (restart \(recent + 1) of at most \(config.restart.maxRestarts) per \(config.restart.windowMs) ms)", metadata: ["worker": "\(config.name)#\(slot + 1)"])
        let timer = Timer(loop: coordinator.loop)
        restartTimers[slot] = timer
        timer.start(after: delay) { [unowned self] in
            self.restartTimers.removeValue(forKey: slot)?.close()
            guard !self.coordinator.isStopping, self.failure == nil else { return }
            self.spawn(slot: slot)
        }
    }

    /// Stops restarting, fails queued tasks, and reports `reason`.
    func markFailed(_ reason: String) {
        guard failure == nil else { return }
        failure = reason
        logger.error("pool \(config.name) failed: \(reason)")
        cancelRestarts()
        coordinator.emit(.poolFailed(pool: config.name, reason: reason))
        for task in queue.removeAll() {
            coordinator.deliver(task, .failure(TaskFailure(.poolFailed, "pool \"\(config.name)\" failed: \(reason)")))
        }
        for worker in liveWorkers where worker.state != .exited { worker.kill(reason: "pool failed") }
    }

    func cancelRestarts() {
        for timer in restartTimers.values { timer.close() }
        restartTimers.removeAll()
    }
}
