import ChimeraCore
import ChimeraStore
import Logging

/// How one message of a chat ended.
public struct ChatExchange: Sendable, Equatable {
    /// The responder's reply (its `error` says why there is no answer).
    public var reply: ChatReply
    /// Cancelled before the answer came (Ctrl-C): nothing was stored for it.
    public var cancelled = false
    /// Turns folded into the summary before answering.
    public var folded = 0
    /// The turns sent with the message (after any fold).
    public var contextTurns = 0
    /// Set when the answer could not be stored (it was still given).
    public var storeError: String?

    /// An exchange with nothing folded, sent without context.
    public init(reply: ChatReply) { self.reply = reply }
}

/// A message in flight; ``cancel()`` gives up on it.
public final class ChatPendingAnswer {
    private var completion: ((ChatExchange) -> Void)?
    /// Whether ``cancel()`` was called before the answer came.
    public private(set) var isCancelled = false

    init(_ completion: @escaping (ChatExchange) -> Void) { self.completion = completion }

    /// Completes the message as cancelled at once: no more deltas, and the answer, when it
    /// comes, is neither shown nor stored (the routed task itself is still recorded). Does
    /// nothing once the message completed.
    public func cancel() {
        guard completion != nil else { return }
        isCancelled = true
        var exchange = ChatExchange(reply: ChatReply(error: "cancelled"))
        exchange.cancelled = true
        finish(exchange)
    }

    var isOpen: Bool { completion != nil }

    func finish(_ exchange: ChatExchange) {
        let completion = self.completion
        self.completion = nil
        completion?(exchange)
    }
}

/// One chat session on the coordinator's loop: it remembers, folds old turns into the summary,
/// asks the ``ChatResponder`` and stores each answered message.
///
/// ```
/// message ─▶ unsummarized turns (RunStore) ─▶ ChatMemory.plan(budget)
///              └ overflow ─▶ text.summarize on the coordinator ─▶ new summary (stored)
///          ─▶ responder(system + summary, recent turns, message) ─▶ deltas … reply
///          ─▶ user and assistant turns stored in one transaction
/// ```
///
/// Not thread-safe: use it on the loop thread only, like the coordinator.
public final class ChatConversation {
    /// The session: settings, summary and how far it reaches.
    public private(set) var session: ChatSessionRecord
    /// The system prompt (the summary is appended to it).
    public var system: String?
    /// The tokens a turn's prompt may take.
    public var contextTokens: Int
    /// The longest answer asked for, in tokens.
    public var maxTokens: Int?
    /// The handler that folds old turns: the offline extractive summarizer by default.
    public var summarizer = "text.summarize"
    /// Sentences the summarizer keeps from the summary and the folded turns.
    public var summarySentences = 6
    private let store: RunStore
    private let coordinator: Coordinator
    private let respond: ChatResponder
    private let clock: any WallClock
    private let logger: Logger

    /// - Parameters:
    ///   - session: the session to continue (from ``RunStore/openChatSession(named:fresh:agent:route:models:now:)``).
    ///   - coordinator: runs the summarizer handler; it must serve ``summarizer``.
    ///   - responder: answers each message (``ChatResponders/jhade(router:kind:minQuality:newTaskId:)``).
    ///   - contextTokens: the prompt budget in tokens.
    public init(session: ChatSessionRecord, store: RunStore, coordinator: Coordinator, responder: @escaping ChatResponder,
                contextTokens: Int, clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "chimera.chat")) {
        self.session = session
        self.store = store
        self.coordinator = coordinator
        self.respond = responder
        self.contextTokens = contextTokens
        self.clock = clock
        self.logger = logger
    }

    /// The summary may take at most this many tokens of the budget (a quarter, at least 32).
    public var summaryTokens: Int { max(32, contextTokens / 4) }

    // MARK: Messages

    /// Answers `message`: folds old turns if the prompt would overflow, asks the responder,
    /// stores the exchange. `onDelta` gets streamed text; `completion` runs once, on the loop.
    @discardableResult
    public func send(_ message: String, onDelta: ((String) -> Void)? = nil, completion: @escaping (ChatExchange) -> Void) -> ChatPendingAnswer {
        let pending = ChatPendingAnswer(completion)
        let turns: [ChatMemoryTurn]
        do {
            turns = try store.chatTurns(sessionId: session.id, after: session.summarizedThrough).map(\.memory)
        } catch {
            pending.finish(ChatExchange(reply: ChatReply(error: "\(error)")))
            return pending
        }
        let plan = ChatMemory.plan(system: system, summary: session.summary, turns: turns, message: message, budget: contextTokens)
        guard !plan.fold.isEmpty else {
            answer(message, plan.included, folded: 0, pending, onDelta)
            return pending
        }
        fold(plan.fold) { [self] in
            guard pending.isOpen else { return }
            // The new summary may be longer than the old one: what no longer fits waits for the next fold.
            let again = ChatMemory.plan(system: system, summary: session.summary, turns: plan.included, message: message, budget: contextTokens)
            answer(message, again.included, folded: plan.fold.count, pending, onDelta)
        }
        return pending
    }

    private func answer(_ message: String, _ included: [ChatMemoryTurn], folded: Int, _ pending: ChatPendingAnswer, _ onDelta: ((String) -> Void)?) {
        let request = ChatTurnRequest(session: session.name, agent: session.agent, route: RoutePreference(rawValue: session.route) ?? .auto,
                                      models: session.models, system: ChatMemory.systemMessage(system: system, summary: session.summary),
                                      history: included.map { ChatMessage(role: $0.role, content: $0.text) }, message: message, maxTokens: maxTokens)
        let asked = clock.now()
        let sessionId = session.id
        let deltas = onDelta.map { deliver in { (text: String) in if pending.isOpen { deliver(text) } } }
        respond(request, deltas) { [self] reply in
            guard pending.isOpen else { return }
            var exchange = ChatExchange(reply: reply)
            exchange.folded = folded
            exchange.contextTurns = included.count
            if let answer = reply.answer {
                let turns = [ChatTurnRecord(role: "user", text: message, at: asked),
                             ChatTurnRecord(role: "assistant", text: answer, route: reply.route, target: reply.target, taskId: reply.taskId,
                                            tokens: reply.tokens, latencyMs: reply.latencyMs, costUSD: reply.costUSD, score: reply.score, at: clock.now())]
                do {
                    try store.appendChatTurns(sessionId: sessionId, turns)
                } catch {
                    exchange.storeError = "\(error)"
                    logger.error("the answer was given but could not be stored in session \(session.name): \(error)")
                }
            }
            pending.finish(exchange)
        }
    }

    /// Folds `turns` and the current summary into a new summary with the summarizer handler,
    /// through the coordinator like any internal task, and stores it. A summarizer that fails
    /// leaves the old summary (the turns are still marked folded: they would not fit anyway).
    private func fold(_ turns: [ChatMemoryTurn], then next: @escaping () -> Void) {
        let through = turns.last?.seq ?? session.summarizedThrough
        let text = ChatMemory.foldText(summary: session.summary, turns: turns)
        let save = { [self] (summary: String) in
            session.summary = summary
            session.summarizedThrough = through
            do {
                try store.saveChatSummary(sessionId: session.id, summary: summary, through: through, now: clock.now())
            } catch {
                logger.error("could not store the summary of session \(session.name): \(error)")
            }
            next()
        }
        guard text.contains(where: { $0.isLetter || $0.isNumber }) else { return save(session.summary) }
        var request = TaskRequest(handler: summarizer, value: .object([
            JSONMember("text", .string(text)), JSONMember("sentences", .number(Double(summarySentences))), JSONMember("style", .string("paragraph")),
        ]))
        request.kind = "summarize"
        let cap = summaryTokens
        coordinator.submit(request) { [self] outcome in
            switch outcome.result {
            case .success:
                save(ChatMemory.clip(TaskRouter.text(of: outcome.output ?? .null), tokens: cap))
            case .failure(let failure):
                logger.warning("could not fold \(turns.count) older turns into the summary (\(summarizer): \(failure.kind.rawValue): \(failure.message)); keeping the previous summary")
                save(session.summary)
            }
        }
    }

    // MARK: Settings and views

    /// Sets the agent profile for the next messages (stored with the session).
    public func setAgent(_ name: String) throws(RunStoreError) {
        session.agent = name
        try store.saveChatSettings(session, now: clock.now())
    }

    /// Sets the route preference for the next messages (stored with the session).
    public func setRoute(_ route: RoutePreference) throws(RunStoreError) {
        session.route = route.rawValue
        try store.saveChatSettings(session, now: clock.now())
    }

    /// Sets the external chain (empty: free catalog models) for the next messages (stored).
    public func setModels(_ models: [String]) throws(RunStoreError) {
        session.models = models
        try store.saveChatSettings(session, now: clock.now())
    }

    /// Archives this session and opens a new one of the same name and settings.
    public func startNew() throws(RunStoreError) {
        session = try store.openChatSession(named: session.name, fresh: true, agent: session.agent, route: session.route,
                                            models: session.models, now: clock.now()).session
    }

    /// Totals over this session's answers.
    public func stats() throws(RunStoreError) -> ChatStats {
        ChatStats(try store.chatTurns(sessionId: session.id))
    }

    /// The last `exchanges` questions and answers (summarized ones included), oldest first.
    public func history(_ exchanges: Int) throws(RunStoreError) -> [ChatTurnRecord] {
        Array(try store.chatTurns(sessionId: session.id).suffix(max(0, exchanges) * 2))
    }
}
