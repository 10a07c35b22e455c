import ArgumentParser
import ChimeraCore
import ChimeraRuntime
import ChimeraStore
#if canImport(Glibc)
import Glibc
#endif

/// `chimera chat`: a conversation with an agent, remembered per session in `runs.sqlite`; each
/// message routed by JHADE (internal handler or external model), external answers streamed.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk to an agent: streamed answers, memory per session, routed by JHADE.",
        discussion: """
        On a terminal: type a message after `you> `; commands: \(ChatCommand.helpList). Ctrl-C cancels the answer being \
        written; Ctrl-D or /exit leaves.
        For scripts (stdin not a terminal, or --script): one message per input line, one answer per output line, in \
        order (newlines inside an answer written as \\n; --json: one JSON object per line with ok, answer, route, target, \
        score, task_id, error). Lines starting with / are commands and print one line of acknowledgement; blank lines \
        are skipped. A line starting with // is a message starting with /.
        Memory: each message is sent with the session's summary and as many recent turns as fit --context-tokens; when \
        they overflow, the oldest are folded into the summary by the offline summarizer (text.summarize).
        Internal answers come from the config's handlers that list the kind "chat".
        Exit status: 0 every message answered, 1 (script mode) a message got no answer or a command was invalid, 2 usage \
        or configuration error.
        """
    )

    static var helpList: String { ChatSlashCommand.usage.joined(separator: ", ") }

    /// The task kind of chat messages: JHADE's statistics and the internal handlers that may answer.
    static let kind = "chat"
    /// The prompt budget when neither --context-tokens nor the catalog says.
    static let defaultContextTokens = 4_096
    /// Room kept for the answer when the budget comes from a model's context.
    static let answerReserveTokens = 1_024
    static let defaultSystem = "You are Chimera, a helpful assistant. Answer clearly and concisely."

    @OptionGroup var common: CommonOptions
    @OptionGroup var routing: RoutingOptions

    @Option(help: "Agent profile answering (default: the session's, else default).")
    var agent: String?

    @Option(help: "Session to resume or create.")
    var session = "default"

    @Flag(name: .customLong("new"), help: "Start the session afresh (the previous one is archived, not deleted).")
    var fresh = false

    @Option(help: "auto (JHADE decides), internal or external (default: the session's, else auto).")
    var route: String?

    @Option(name: .customLong("model"), help: "External model; repeat for a chain (default: the session's, else the fastest free catalog models).")
    var models: [String] = []

    @Option(help: "The system prompt.")
    var system = ChatCommand.defaultSystem

    @Option(help: "Tokens a message's prompt may take (system, summary, recent turns, message); default: the first model's catalog context less \(ChatCommand.answerReserveTokens), else \(ChatCommand.defaultContextTokens).")
    var contextTokens: Int?

    @Option(help: "Largest answer in tokens (external).")
    var maxTokens: Int?

    @Option(help: "The quality bar in [0, 1] (default: the config's jhade.min_quality, else 0.6).")
    var minQuality: Double?

    @Flag(help: "Script mode even on a terminal: one message per line in, one answer per line out.")
    var script = false

    @Flag(help: "Script mode with one JSON object per answer.")
    var json = false

    @Option(help: "Agent workers to start for external calls.")
    var workers = 1

    func validate() throws {
        if let route, RoutePreference(rawValue: route) == nil { throw ValidationError("--route must be auto, internal or external") }
        if let contextTokens, contextTokens < 64 { throw ValidationError("--context-tokens must be at least 64") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let minQuality, !(0...1).contains(minQuality) { throw ValidationError("--min-quality must be from 0 to 1") }
        guard workers >= 1, workers <= 16 else { throw ValidationError("--workers must be from 1 to 16") }
        guard !session.isEmpty, !session.contains(where: \.isNewline) else { throw ValidationError("--session must be a non-empty name on one line") }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        var config = try common.loadConfig().config
        let handlers = config.handlerCapabilities.filter { $0.kinds.contains(Self.kind) }
        let summarizer = "text.summarize"
        // Only what chat uses runs: handlers of kind chat, the summarizer, and agent workers.
        let used = Set(handlers.map(\.handler) + [summarizer, ExternalChatHandler.handlerName])
        config.pools.removeAll { pool in !pool.handlers.contains { used.contains($0) } }
        if config.pool(serving: summarizer) == nil {
            config.pools.append(PoolConfig(name: "summarizer", handlers: [summarizer]))
        }
        let environment = ProcessEnvironment.current
        let library: AgentLibrary
        do {
            library = try AgentLibrary.load(directory: routing.agents, environment: environment)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        if let agent, library.profile(named: agent) == nil {
            printError("--agent: \(library.unknownAgentMessage(agent))")
            throw ExitCode(ExitCodes.usage)
        }
        // Specialized agents' tools (built-in handlers) get a pool; a tool nothing serves is left
        // out by the agent when it runs, and said so in its trace.
        for profile in library.profiles.values { _ = config.addPools(forToolsOf: profile) }
        config.ensureAgentPool(size: workers)

        let home = ConfigLoader.homeDirectory(environment: environment)
        let clock = SystemWallClock()
        let store: RunStore
        let opened: (session: ChatSessionRecord, resumed: Bool)
        do {
            store = try RunStore(path: home + "/" + RunStore.fileName)
            opened = try store.openChatSession(named: session, fresh: fresh, agent: agent ?? "default", route: route ?? "auto",
                                               models: models, now: clock.now())
        } catch {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        var chatSession = opened.session
        // Options given now override what the session remembers, and are remembered.
        if let agent { chatSession.agent = agent }
        if let route { chatSession.route = route }
        if !models.isEmpty { chatSession.models = models }

        let loop = try EventLoop()
        let external: ExternalSetup
        do {
            external = try ExternalSetup.open(config: config, baseURL: routing.baseURL, chain: chatSession.models, loop: loop, clock: clock,
                                              environment: environment, logger: logger, requireKeys: chatSession.route == "external")
        } catch {
            try? loop.close()
            throw error
        }
        let coordinator = Coordinator(loop: loop, config: config, workerExecutable: FileIO.executablePath(), logger: logger)
        let runner = ExternalCallRunner(coordinator: coordinator, routes: external.routes, loop: loop, clock: clock, logger: logger)
        let engine = DecisionEngine(config.jhade, noLearn: routing.noLearn, shadow: 0)
        let router = TaskRouter(coordinator: coordinator, external: runner, handlers: handlers, store: store, engine: engine,
                                scorers: ScorerSet([(FormatScorer(), 1)]), seed: routing.seed, clock: clock, logger: logger)
        let responder = ChatResponders.agents(library, router: router, kind: Self.kind, minQuality: minQuality,
                                              defaultMinQuality: config.jhade.minQuality, newTaskId: TaskCommand.newTaskId)
        let budget: ([String]) -> Int = { [contextTokens] chain in
            if let contextTokens { return contextTokens }
            guard let first = chain.first else { return Self.defaultContextTokens }
            let (route, upstream) = external.routes.resolve(first)
            guard let context = route.catalog[upstream]?.contextLength else { return Self.defaultContextTokens }
            return max(256, context - (maxTokens ?? Self.answerReserveTokens))
        }
        let conversation = ChatConversation(session: chatSession, store: store, coordinator: coordinator, responder: responder,
                                            contextTokens: budget(chatSession.models), clock: clock, logger: logger)
        conversation.system = system.isEmpty ? nil : system
        conversation.maxTokens = maxTokens
        conversation.summarizer = summarizer
        if chatSession != opened.session {
            do { try store.saveChatSettings(chatSession, now: clock.now()) } catch { logger.warning("could not save the session's settings: \(error)") }
        }

        let interactive = isatty(0) == 1 && !script && !json
        let repl = ChatREPL(conversation: conversation, coordinator: coordinator, loop: loop, handlers: handlers.map(\.handler),
                            interactive: interactive, json: json, budget: budget)
        repl.onShutdown = {
            runner.cancelPending()
            external.close()
        }
        if interactive {
            let turns = (try? store.chatTurns(sessionId: chatSession.id).count) ?? 0
            let state = opened.resumed ? "resumed, \(turns / 2) exchange\(turns / 2 == 1 ? "" : "s")" : "new"
            printLine("chimera chat · session \(chatSession.name) (\(state)) · agent \(chatSession.agent) · route \(chatSession.route) · /help for commands")
        }
        try repl.run()
    }
}
