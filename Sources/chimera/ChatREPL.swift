import ArgumentParser
import ChimeraCore
import ChimeraRuntime
import ChimeraStore
import Foundation

/// The read-answer loop of `chimera chat` on the coordinator's loop: lines from stdin (read by
/// a thread, handed over through a ``LoopInbox``), one message at a time in order, commands
/// executed between messages. Interactive on a terminal (prompt, streamed answer, a dim status
/// line, Ctrl-C cancels the answer); one line out per line in otherwise.
final class ChatREPL {
    private enum Input: Sendable {
        case line(String)
        case end
    }

    /// Runs once when the coordinator starts shutting down, to end what keeps the loop alive.
    var onShutdown: () -> Void = {}
    private let conversation: ChatConversation
    private let coordinator: Coordinator
    private let loop: EventLoop
    private let handlers: [String]
    private let interactive: Bool
    private let json: Bool
    private let budget: ([String]) -> Int
    private let colour: Bool
    private var inbox: LoopInbox<Input>?
    private var signals: [SignalWatcher] = []
    private var queue: [String] = []
    private var inputEnded = false
    private var busy = false
    private var finished = false
    private var pending: ChatPendingAnswer?
    private var failures = 0

    init(conversation: ChatConversation, coordinator: Coordinator, loop: EventLoop, handlers: [String], interactive: Bool, json: Bool,
         budget: @escaping ([String]) -> Int) {
        self.conversation = conversation
        self.coordinator = coordinator
        self.loop = loop
        self.handlers = handlers
        self.interactive = interactive
        self.json = json
        self.budget = budget
        colour = interactive && isatty(1) == 1
    }

    /// Runs until the input ends or `/exit`; throws the exit code: in script mode 1 when a
    /// message got no answer or a command was invalid; 3 after a signal that did not drain cleanly.
    func run() throws {
        var summary: ShutdownSummary?
        coordinator.onStopped = { summary = $0 }
        var released = false
        coordinator.observer = { [unowned self] event in
            guard case .shutdownStarted = event, !released else { return }
            released = true
            finished = true
            pending?.cancel()
            inbox?.close()
            inbox = nil
            for watcher in signals { watcher.close() }
            signals.removeAll()
            onShutdown()
        }
        inbox = try LoopInbox(loop: loop) { [unowned self] batch in
            for input in batch {
                switch input {
                case .line(let line): queue.append(line)
                case .end: inputEnded = true
                }
            }
            pump()
        }
        do {
            // A script stops on SIGINT/SIGTERM; a terminal chat keeps Ctrl-C for the answer being
            // written, and its workers out of the terminal's reach.
            coordinator.detachesWorkers = interactive
            try coordinator.start(handleSignals: !interactive)
            if interactive { try watchSignals() }
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        startReader()
        if interactive { write("you> ") }
        loop.run()
        try loop.close()
        if let summary, summary.signal != nil { throw ExitCode(summary.isClean ? 0 : ExitCodes.interrupted) }
        if failures > 0 { throw ExitCode(ExitCodes.taskFailed) }
    }

    // MARK: Input

    /// Reads stdin on a thread of its own (plain blocking reads work for terminals, pipes and
    /// files alike) and posts each line; the thread ends at end of input. A thread still
    /// blocked in `read` when the chat ends goes away with the process.
    private func startReader() {
        guard let inbox else { return }
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var partial: [UInt8] = []
            while true {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { break }
                for byte in buffer[0..<n] {
                    if byte == 0x0A {
                        if partial.last == 0x0D { partial.removeLast() }
                        inbox.post(.line(String(decoding: partial, as: UTF8.self)))
                        partial.removeAll(keepingCapacity: true)
                    } else {
                        partial.append(byte)
                    }
                }
            }
            if !partial.isEmpty { inbox.post(.line(String(decoding: partial, as: UTF8.self))) }
            inbox.post(.end)
        }
        thread.start()
    }

    private func watchSignals() throws(UVError) {
        let interrupt = SignalWatcher(loop: loop)
        try interrupt.start(signal: SIGINT) { [unowned self] _ in
            if let pending {
                pending.cancel()
            } else {
                write("\n(/exit or Ctrl-D to leave)\nyou> ")
            }
        }
        let terminate = SignalWatcher(loop: loop)
        try terminate.start(signal: SIGTERM) { [unowned self] _ in end(reason: "SIGTERM") }
        for watcher in [interrupt, terminate] {
            watcher.keepsLoopAlive = false
            signals.append(watcher)
        }
    }

    /// Takes queued lines while no answer is being written.
    private func pump() {
        while !busy, !finished, !queue.isEmpty {
            let line = queue.removeFirst()
            switch ChatLine.parse(line) {
            case .message(let text) where text.isEmpty:
                if interactive { write("you> ") }
            case .message(let text):
                ask(text)
            case .command(let command):
                execute(command)
                if interactive, !finished { write("you> ") }
            case .invalid(let problem):
                if !interactive { failures += 1 }
                report(problem)
                if interactive { write("you> ") }
            }
        }
        if !busy, queue.isEmpty, inputEnded {
            if interactive, !finished { write("\n") }
            end(reason: "end of input")
        }
    }

    private func end(reason: String) {
        guard !finished else { return }
        finished = true
        coordinator.shutdown(reason: reason)
    }

    // MARK: Messages

    private func ask(_ text: String) {
        busy = true
        let started = loop.now
        var streamed = false
        if interactive { write("\(speaker)> ") }
        // Terminal: deltas as they come. Script: the same, on the answer's one line (JSON waits for the whole answer).
        let onDelta: ((String) -> Void)? = json ? nil : { [unowned self] delta in
            streamed = true
            write(interactive ? delta : Self.oneLine(delta))
        }
        pending = conversation.send(text, onDelta: onDelta) { [unowned self] exchange in
            pending = nil
            busy = false
            answered(exchange, streamed: streamed, elapsedMs: loop.now - started)
            if interactive, !finished { write("you> ") }
            pump()
        }
    }

    private func answered(_ exchange: ChatExchange, streamed: Bool, elapsedMs: UInt64) {
        let reply = exchange.reply
        if exchange.cancelled {
            if interactive { write(streamed ? " [cancelled]\n" : "[cancelled]\n") }
            return
        }
        guard let answer = reply.answer else {
            if !interactive { failures += 1 }
            if json { return printLine(jsonLine(reply)) }
            if streamed || !interactive { write("\n") }
            printError((reply.error ?? "no answer") + (reply.taskId.map { " (chimera explain \($0))" } ?? ""))
            return
        }
        if json { return printLine(jsonLine(reply)) }
        if interactive {
            write((streamed ? "" : answer) + "\n")
            var parts = [Self.routeLabel(reply)]
            if let score = reply.score { parts.append("score " + ComplexityEstimate.format(score)) }
            parts.append("\(elapsedMs) ms")
            if exchange.folded > 0 { parts.append("\(exchange.folded) older turns summarized") }
            let status = "[" + parts.joined(separator: " · ") + "]"
            write((colour ? "\u{1B}[2m" + status + "\u{1B}[0m" : status) + "\n")
        } else {
            write((streamed ? "" : Self.oneLine(answer)) + "\n")
        }
    }

    private func jsonLine(_ reply: ChatReply) -> String {
        JSONValue.object([
            JSONMember("ok", .bool(reply.answer != nil)),
            JSONMember("answer", reply.answer.map { .string($0) } ?? .null),
            JSONMember("route", reply.route.map { .string($0) } ?? .null),
            JSONMember("target", reply.target.map { .string($0) } ?? .null),
            JSONMember("score", reply.score.map { .number($0) } ?? .null),
            JSONMember("task_id", reply.taskId.map { .string($0) } ?? .null),
            JSONMember("error", reply.answer == nil ? .string(reply.error ?? "no answer") : .null),
        ]).serialized
    }

    // MARK: Commands

    private func execute(_ command: ChatSlashCommand) {
        do {
            switch command {
            case .agent(let name?):
                try conversation.setAgent(name)
                acknowledge("agent", "agent: \(name)")
            case .agent(nil):
                acknowledge("agent", "agent: \(conversation.session.agent)")
            case .route(let route?):
                try conversation.setRoute(route)
                let warning = route == .internal && handlers.isEmpty
                    ? " (no handler in the config serves kind \"\(ChatCommand.kind)\": messages will get no answer)" : ""
                acknowledge("route", "route: \(route.rawValue)\(warning)")
            case .route(nil):
                acknowledge("route", "route: \(conversation.session.route)")
            case .model(let chain?):
                try conversation.setModels(chain)
                conversation.contextTokens = budget(chain)
                acknowledge("model", "model: " + Self.chainLabel(chain))
            case .model(nil):
                acknowledge("model", "model: " + Self.chainLabel(conversation.session.models))
            case .stats:
                let stats = try conversation.stats()
                acknowledge("stats", Self.statsLine(stats), data: JSONMember("stats", Self.statsJSON(stats)))
            case .history(let n):
                let turns = try conversation.history(n)
                let lines = turns.map { ($0.role == "user" ? "you: " : "\(speaker): ") + $0.text }
                let text = lines.isEmpty ? "(no turns yet)" : lines.joined(separator: "\n")
                acknowledge("history", text, data: JSONMember("turns", .array(turns.map { t in
                    .object([JSONMember("seq", .number(Double(t.seq))), JSONMember("role", .string(t.role)), JSONMember("text", .string(t.text)),
                             JSONMember("route", t.route.map { .string($0) } ?? .null), JSONMember("task_id", t.taskId.map { .string($0) } ?? .null)])
                })))
            case .new:
                try conversation.startNew()
                acknowledge("new", "new session \(conversation.session.name) (the previous one is archived)")
            case .help:
                acknowledge("help", "commands: " + ChatCommand.helpList + (interactive ? "; Ctrl-C cancels an answer, Ctrl-D leaves" : ""))
            case .exit:
                acknowledge("exit", "bye")
                queue.removeAll()
                end(reason: "/exit")
            }
        } catch {
            if !interactive { failures += 1 }
            report("\(error)")
        }
    }

    private func acknowledge(_ command: String, _ text: String, data: JSONMember? = nil) {
        if json {
            var members = [JSONMember("ok", .bool(true)), JSONMember("command", .string(command)), JSONMember("message", .string(text))]
            if let data { members.append(data) }
            printLine(JSONValue.object(members).serialized)
        } else {
            printLine(interactive ? text : Self.oneLine(text))
        }
    }

    /// An invalid command: on stderr, with the output line kept (empty, or a JSON failure) in script mode.
    private func report(_ problem: String) {
        if json {
            printLine(JSONValue.object([JSONMember("ok", .bool(false)), JSONMember("error", .string(problem))]).serialized)
        } else if !interactive {
            printLine("")
        }
        printError(problem)
    }

    // MARK: Formatting

    private func write(_ text: String) { FileIO.writeAll(Array(text.utf8), fd: 1) }

    /// Who answers, as the prompt shows it: the agent's name, `chimera` for the default one.
    private var speaker: String { conversation.session.agent == "default" ? "chimera" : conversation.session.agent }

    /// `text` on one line: line breaks written as `\n`.
    static func oneLine(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\n")
    }

    static func routeLabel(_ reply: ChatReply) -> String {
        let route = reply.route.map { $0.hasPrefix("internal:") ? "internal" : $0 } ?? "-"
        return "\(route) \(reply.target ?? "-")"
    }

    static func chainLabel(_ chain: [String]) -> String {
        chain.isEmpty ? "auto (the fastest free catalog models)" : chain.joined(separator: ", ")
    }

    static func statsLine(_ s: ChatStats) -> String {
        let routes = s.routes.isEmpty ? "none" : s.routes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let cost = "$" + String(format: "%.6f", s.costUSD) + (s.unknownCosts > 0 ? " (+\(s.unknownCosts) unknown)" : "")
        let score = s.meanScore.map { ComplexityEstimate.format($0) } ?? "-"
        return "turns \(s.turns) · routes \(routes) · tokens \(s.tokens) · cost \(cost) · mean score \(score)"
    }

    static func statsJSON(_ s: ChatStats) -> JSONValue {
        .object([
            JSONMember("turns", .number(Double(s.turns))),
            JSONMember("routes", .object(s.routes.sorted { $0.key < $1.key }.map { JSONMember($0.key, .number(Double($0.value))) })),
            JSONMember("tokens", .number(Double(s.tokens))),
            JSONMember("cost_usd", .number(s.costUSD)),
            JSONMember("unknown_costs", .number(Double(s.unknownCosts))),
            JSONMember("mean_score", s.meanScore.map { .number($0) } ?? .null),
        ])
    }
}
