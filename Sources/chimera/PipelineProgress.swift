import ChimeraCore
import ChimeraRuntime
import ChimeraStore

/// Progress of a pipeline run on stderr. On a terminal: finished steps scroll as lines, and
/// below them one live line per running step (agent, route, handler or model, elapsed, the ETA
/// while waiting for quota), redrawn four times a second. Elsewhere: one plain line per event,
/// for logs.
final class PipelineProgress {
    private struct Running {
        var agent: String
        var route = "deciding"
        var target = ""
        var attempt = 1
        var started: EpochMillis
        var waitingUntil: EpochMillis?
    }

    private let clock: any WallClock
    private let enabled: Bool
    private let live: Bool
    private var timer: Timer?
    private var running: [(key: String, state: Running)] = []
    private var drawnLines = 0

    init(loop: EventLoop, clock: any WallClock, enabled: Bool, live: Bool) {
        self.clock = clock
        self.enabled = enabled
        self.live = enabled && live
        if self.live {
            let timer = Timer(loop: loop)
            timer.start(after: 250, repeat: 250) { [weak self] in self?.redraw() }
            self.timer = timer
        }
    }

    /// Stops redrawing (the run ended, or the coordinator is shutting down).
    func close() {
        guard let timer else { return }
        self.timer = nil
        timer.close()
        running.removeAll()
        redraw()
    }

    func handle(_ event: PipelineEvent) {
        guard enabled else { return }
        switch event {
        case .started(let key, let step, let attempt):
            let state = Running(agent: step.agent ?? "default", attempt: attempt, started: clock.now())
            if let i = running.firstIndex(where: { $0.key == key }) { running[i].state = state } else { running.append((key, state)) }
            if !live { emit("\(key): started (agent \(state.agent)\(attempt > 1 ? ", attempt \(attempt)" : ""))") }
        case .progress(let key, let progress):
            guard let i = running.firstIndex(where: { $0.key == key }) else { return }
            switch progress {
            case .routed(let route, let target):
                running[i].state.route = route
                running[i].state.target = target
                running[i].state.waitingUntil = nil
                if !live { emit("\(key): \(route) → \(target)") }
            case .note(let line):
                running[i].state.route = line.count > 60 ? String(line.prefix(59)) + "…" : line
                running[i].state.target = ""
                if !live { emit("\(key): \(line)") }
            case .waitingForQuota(let eta):
                running[i].state.waitingUntil = eta
                if !live { emit("\(key): waiting for quota" + (eta.map { " (a key frees in \(Self.duration($0 - clock.now())))" } ?? "")) }
            }
        case .retrying(let key, let attempt, let error, let delayMs):
            emit("\(key): attempt \(attempt) failed (\(error)); retrying in \(Self.duration(delayMs))")
        case .finished(let step):
            running.removeAll { $0.key == step.key }
            emit(Self.line(step, reused: false))
        case .reused(let step):
            emit(Self.line(step, reused: true))
        }
        // Live lines are redrawn by the timer: a burst of events does not flood the terminal,
        // and a step shorter than a tick never gets one.
    }

    static func line(_ step: StoredPipelineStep, reused: Bool) -> String {
        var parts: [String] = []
        switch step.status {
        case "succeeded":
            parts.append("\(step.key): done" + (reused ? " (checkpoint)" : ""))
            if let route = step.route { parts.append(route + (step.target.map { " → \($0)" } ?? "")) }
            if let score = step.score { parts.append("score \(ComplexityEstimate.format(score))") }
            if let tokens = step.tokens { parts.append("\(tokens) tokens") }
            if !reused { parts.append(duration(step.finishedAt - step.startedAt)) }
            if step.attempts > 1 { parts.append("\(step.attempts) attempts") }
        case "skipped":
            parts.append("\(step.key): skipped" + (step.error.map { " (\($0))" } ?? ""))
        default:
            parts.append("\(step.key): FAILED" + (step.error.map { ": \($0)" } ?? ""))
        }
        return parts.joined(separator: " · ")
    }

    static func duration(_ ms: Int64) -> String {
        if ms < 1_000 { return "\(max(0, ms)) ms" }
        if ms < 60_000 { return "\(ComplexityEstimate.format(Double(ms) / 1_000)) s" }
        return "\(ms / 60_000) min \(ms % 60_000 / 1_000) s"
    }

    // MARK: Drawing

    /// A line that stays: on a terminal it replaces the live block, which the next tick draws
    /// again below it.
    private func emit(_ line: String) {
        if live { clearLive() }
        FileIO.writeAll(Array((line + "\n").utf8), fd: 2)
    }

    private func clearLive() {
        guard drawnLines > 0 else { return }
        FileIO.writeAll(Array("\u{1B}[\(drawnLines)A\u{1B}[J".utf8), fd: 2)
        drawnLines = 0
    }

    /// The terminal's width ($COLUMNS when set, else 80).
    private let width = max(20, Int(ProcessEnvironment.current["COLUMNS"] ?? "") ?? 80)

    private func redraw() {
        guard live else { return }
        clearLive()
        let now = clock.now()
        var text = ""
        for (key, state) in running {
            // Elapsed first: a line cut to the terminal's width keeps it.
            var line = "  ⋯ \(key) · \(Self.duration(now - state.started))"
            if state.attempt > 1 { line += " · attempt \(state.attempt)" }
            if let until = state.waitingUntil { line += " · waiting for quota, ETA \(Self.duration(until - now))" }
            line += " · \(state.agent) · \(state.route)"
            if !state.target.isEmpty { line += " → \(state.target)" }
            // A wrapped line would break the cursor arithmetic that redraws the block.
            if line.count >= width { line = String(line.prefix(width - 2)) + "…" }
            text += line + "\n"
        }
        drawnLines = running.count
        if !text.isEmpty { FileIO.writeAll(Array(text.utf8), fd: 2) }
    }
}
