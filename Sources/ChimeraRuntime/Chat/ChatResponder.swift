import ChimeraCore

/// What one chat message asks of whoever answers it: the session's settings, the prompt
/// (system message and remembered turns) and the message.
public struct ChatTurnRequest: Sendable {
    /// The session's name.
    public var session: String
    /// The agent profile's name.
    public var agent: String
    /// The session's route preference.
    public var route: RoutePreference
    /// The external chain; empty: free catalog models.
    public var models: [String]
    /// The system prompt with the session's summary (``ChatMemory/systemMessage(system:summary:)``).
    public var system: String?
    /// The remembered turns that fit the budget, oldest first.
    public var history: [ChatMessage]
    /// The new message.
    public var message: String
    /// The longest answer asked for, in tokens.
    public var maxTokens: Int?

    public init(session: String, agent: String, route: RoutePreference, models: [String], system: String?, history: [ChatMessage],
                message: String, maxTokens: Int? = nil) {
        self.session = session
        self.agent = agent
        self.route = route
        self.models = models
        self.system = system
        self.history = history
        self.message = message
        self.maxTokens = maxTokens
    }
}

/// How one chat message was answered, or why it was not.
public struct ChatReply: Sendable, Equatable {
    /// The answer; nil when there is none.
    public var answer: String?
    /// Why there is no answer.
    public var error: String?
    /// The arm that answered (`internal:NAME`, `external`).
    public var route: String?
    /// The handler or model that answered.
    public var target: String?
    /// The mediator's score of the answer, in [0, 1].
    public var score: Double?
    /// The routed task's id (`chimera explain ID`).
    public var taskId: String?
    /// Tokens the model reported (nil for handlers and unknown usage).
    public var tokens: Int?
    /// How long the answering candidate took.
    public var latencyMs: Int64?
    /// What it cost (nil: unknown).
    public var costUSD: Double?
    /// Whether the answer was streamed to the delta callback as it came.
    public var streamed = false

    public init(answer: String? = nil, error: String? = nil, route: String? = nil, target: String? = nil, score: Double? = nil,
                taskId: String? = nil, tokens: Int? = nil, latencyMs: Int64? = nil, costUSD: Double? = nil) {
        self.answer = answer
        self.error = error
        self.route = route
        self.target = target
        self.score = score
        self.taskId = taskId
        self.tokens = tokens
        self.latencyMs = latencyMs
        self.costUSD = costUSD
    }
}

/// The one seam between a chat and whatever answers its messages: given a turn, call
/// `onDelta` with streamed text (if any) and `completion` once, on the loop thread.
///
/// ``ChatResponders/jhade(router:kind:minQuality:newTaskId:)`` routes each message through
/// JHADE as a task of kind `chat`; an agent runner can take its place without the chat changing.
public typealias ChatResponder = (_ turn: ChatTurnRequest, _ onDelta: ((String) -> Void)?, _ completion: @escaping (ChatReply) -> Void) -> Void

/// Ready-made responders.
public enum ChatResponders {
    /// Each message becomes a ``RoutedTask`` of `kind` (the agent's bias, the session's route
    /// preference and chain, the remembered turns as history) run by `router`: decided,
    /// answered, scored, stored and learned from like `chimera task`. The chosen external
    /// candidate streams.
    public static func jhade(router: TaskRouter, kind: String = "chat", minQuality: Double, newTaskId: @escaping () -> String) -> ChatResponder {
        { turn, onDelta, completion in
            var task = routedTask(turn, kind: kind, minQuality: minQuality, id: newTaskId())
            task.agent = AgentBias.named(turn.agent)
            route(task, router: router, onDelta: onDelta, completion: completion)
        }
    }

    /// Each message is answered as the session's agent profile says (``AgentRunner``): the
    /// profile's system prompt, models and route apply, and its strategy runs — a `default`
    /// profile is one routed task whose external answer streams; the other strategies make
    /// several calls and answer whole. An unknown agent is an error reply naming the known ones.
    ///
    /// The quality bar is `minQuality` when given (`--min-quality`), else the profile's, else
    /// `defaultMinQuality` (the config's), as for `chimera task`.
    public static func agents(_ library: AgentLibrary, router: TaskRouter, kind: String = "chat", minQuality: Double?, defaultMinQuality: Double,
                              newTaskId: @escaping () -> String) -> ChatResponder {
        let runner = AgentRunner(router: router)
        return { turn, onDelta, completion in
            guard let profile = library.profile(named: turn.agent) else {
                return completion(ChatReply(error: library.unknownAgentMessage(turn.agent)))
            }
            var task = routedTask(turn, kind: kind, minQuality: minQuality ?? profile.minQuality ?? defaultMinQuality, id: newTaskId())
            guard profile.strategy != .default else {
                return route(AgentRunner.prepare(task, profile), router: router, onDelta: onDelta, completion: completion)
            }
            task.agent = profile.bias
            runner.run(task, agent: profile) { result in
                var reply = result.answer.map(Self.reply) ?? ChatReply()
                reply.answer = result.output
                reply.error = result.output == nil ? (result.error ?? "no answer") : nil
                reply.costUSD = result.costIsComplete || result.costUSD > 0 ? result.costUSD : nil
                completion(reply)
            }
        }
    }

    private static func routedTask(_ turn: ChatTurnRequest, kind: String, minQuality: Double, id: String) -> RoutedTask {
        var task = RoutedTask(id: id, kind: kind, prompt: turn.message)
        task.system = turn.system
        task.history = turn.history
        task.route = turn.route
        task.models = turn.models
        task.minQuality = minQuality
        task.maxTokens = turn.maxTokens
        return task
    }

    /// One routed task; the chosen external candidate streams to `onDelta`.
    private static func route(_ task: RoutedTask, router: TaskRouter, onDelta: ((String) -> Void)?, completion: @escaping (ChatReply) -> Void) {
        var streamed = false
        router.run(task, onDelta: onDelta.map { deliver in { (text: String) in streamed = true; deliver(text) } }) { result in
            var reply = Self.reply(result)
            reply.streamed = streamed
            completion(reply)
        }
    }

    /// A routed task's result as a reply: the merged answer and the chosen candidate's details.
    static func reply(_ result: RoutedTaskResult) -> ChatReply {
        let stored = result.task
        let chosen = result.answeringCandidate
        return ChatReply(answer: result.merged?.output, error: result.merged == nil ? (result.error ?? "no answer") : nil,
                         route: stored.arm, target: chosen?.candidate.target,
                         score: result.merged == nil ? nil : chosen?.score, taskId: stored.taskId,
                         tokens: chosen?.candidate.tokens, latencyMs: chosen?.candidate.latencyMs, costUSD: chosen?.candidate.costUSD)
    }
}
