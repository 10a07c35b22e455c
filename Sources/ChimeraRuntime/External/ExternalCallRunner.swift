import ChimeraCore
import ChimeraOpenRouter
import Logging

/// One external call as a caller asks for it.
public struct ExternalCall: Sendable, Equatable {
    public var messages: [ChatMessage]
    /// The model chain: the first is tried first; later ones on model-scoped failures. A model
    /// `NAME/model` goes to the provider NAME (see ``ProviderRoutes``). Empty: the runner picks
    /// free models from the catalog.
    public var models: [String]
    public var stream: Bool
    public var priority: TaskPriority
    public var maxTokens: Int?
    public var temperature: Double?

    public init(messages: [ChatMessage], models: [String], stream: Bool = false, priority: TaskPriority = .normal) {
        self.messages = messages
        self.models = models
        self.stream = stream
        self.priority = priority
    }

    /// A rough token estimate of the prompt (4 characters a token), for tokens-per-minute limits.
    var estimatedTokens: Int { messages.reduce(0) { $0 + $1.content.utf8.count } / 4 + 16 }
}

/// How an external call ended, after every retry.
public struct ExternalCallResult: Sendable {
    public var result: Result<ChatCompletion, ExternalError>
    /// HTTP attempts made (0 when no key could be leased).
    public var attempts: Int
    /// The key of the last attempt, masked (nil for a provider without keys).
    public var keyMasked: String?
    /// The model of the last attempt (the response's `model` on success), with its provider's
    /// prefix for a provider other than OpenRouter.
    public var model: String?
    /// Why models were skipped or chosen and why each retry happened, in order.
    public var retries: [String]
    public var latencyMs: Int64
}

/// Runs external calls through the whole path: the model chain planned against the catalog
/// (models too small for the prompt are skipped; no chain means the fastest free models that
/// fit) → for each attempt, the model's provider (``ProviderRoutes``) and a key lease from its
/// pool (``KeyBroker``, waiting or failing per policy) → an agent worker's `llm.chat` task (the
/// HTTP call) → the outcome back to the key pool and ledger, with a cost estimate when the
/// response had none → ``FailoverPolicy`` (another key, the next model, a backoff, or the end).
///
/// Lives on the coordinator's loop thread. A worker that dies mid-call is not retried by the
/// coordinator (`maxAttempts: 1`): the request may have been sent and counted, so the retry,
/// if any, takes a new lease here.
///
/// The chain is walked here, one model per request, rather than with OpenRouter's `models`
/// field: each attempt then draws on the quota of the model it names, and the ledger knows
/// which one that was before the request is sent.
public final class ExternalCallRunner {
    public let routes: ProviderRoutes
    public let policy: FailoverPolicy
    /// How many free models a call that names none may try, fastest first.
    public var autoChainLength = 3
    private let coordinator: Coordinator
    private let loop: EventLoop
    private let logger: Logger
    private let clock: any WallClock
    private var rng: SplitMix64
    /// Calls waiting out a backoff, with their timers.
    private var backoffs: [ObjectIdentifier: (timer: Timer, state: CallState)] = [:]
    /// Models whose cost could not be known or estimated, already warned about.
    private var costUnknownWarned: Set<String> = []

    public init(coordinator: Coordinator, routes: ProviderRoutes, loop: EventLoop, policy: FailoverPolicy = FailoverPolicy(),
                clock: any WallClock = SystemWallClock(), seed: UInt64 = 0xC0FFEE, logger: Logger = Logger(label: "chimera.external")) {
        self.coordinator = coordinator
        self.clock = clock
        self.routes = routes
        self.loop = loop
        self.policy = policy
        self.logger = logger
        rng = SplitMix64(seed: seed)
    }

    /// Starts `call`; `onDelta` gets streamed content; `completion` runs once, on the loop.
    public func run(_ call: ExternalCall, onDelta: ((String) -> Void)? = nil, completion: @escaping (ExternalCallResult) -> Void) {
        let state = CallState(call: call, onDelta: onDelta, completion: completion, started: loop.now)
        switch plan(call, notes: &state.retries) {
        case .success(let chain):
            state.chain = chain
            acquireLease(state)
        case .failure(let error):
            finish(state, .failure(error))
        }
    }

    /// The models to try, in order: the call's chain (a repeated model once) without the models
    /// whose catalog context cannot hold the prompt plus the completion — each skip is noted —
    /// or, when the call names no model, OpenRouter's fastest free models that fit.
    func plan(_ call: ExternalCall, notes: inout [String]) -> Result<[String], ExternalError> {
        let promptTokens = call.estimatedTokens
        if call.models.isEmpty {
            let route = routes.openRouter
            guard !route.catalog.isEmpty else {
                return .failure(ExternalError(kind: .badRequest, status: nil,
                                              message: "no model given, and no model catalog to choose a free one from: name a model, or fetch the catalog with `chimera models`"))
            }
            let chosen = ModelChooser.choose(chain: [], promptTokens: promptTokens, maxCompletionTokens: call.maxTokens,
                                             catalog: Array(route.catalog.values), latencyMs: route.latencyMs)
            guard !chosen.isEmpty else {
                return .failure(ExternalError(kind: .contextTooLong, status: nil,
                                              message: "no free model in the catalog has a context for a prompt of about \(promptTokens) tokens"))
            }
            let picked = Array(chosen.prefix(autoChainLength))
            notes.append("no model given: chose \(picked.joined(separator: ", ")) (free, fits the prompt, fastest first)")
            return .success(picked)
        }
        var chain: [String] = []
        var skipped: [String] = []
        for model in call.models where !chain.contains(model) && !skipped.contains(model) {
            let (route, upstream) = routes.resolve(model)
            let known = route.catalog[upstream].map { [$0] } ?? []
            if ModelChooser.choose(chain: [upstream], promptTokens: promptTokens, maxCompletionTokens: call.maxTokens, catalog: known).isEmpty {
                skipped.append(model)
                notes.append("skipped \(model): its context (\(known.first?.contextLength ?? 0) tokens) cannot hold about \(promptTokens) prompt tokens"
                             + (call.maxTokens.map { " plus \($0) completion tokens" } ?? " and an answer"))
            } else {
                chain.append(model)
            }
        }
        guard !chain.isEmpty else {
            return .failure(ExternalError(kind: .contextTooLong, status: nil,
                                          message: "the prompt (about \(promptTokens) tokens) does not fit the context of any model in the chain: \(skipped.joined(separator: ", "))"))
        }
        return .success(chain)
    }

    /// Ends calls waiting out a backoff (at shutdown): their timers close and they complete as cancelled.
    public func cancelPending() {
        let waiting = backoffs.values
        backoffs.removeAll()
        for (timer, state) in waiting {
            timer.close()
            finish(state, .failure(ExternalError(kind: .cancelled, status: nil, message: "cancelled while waiting to retry (shutdown)")))
        }
    }

    // MARK: Steps

    private func acquireLease(_ state: CallState) {
        let (route, upstream) = routes.resolve(state.chain[state.modelIndex])
        guard let broker = route.broker else { return send(state, route, upstream, lease: nil) }
        broker.acquire(KeyRequest(model: upstream, priority: state.call.priority, estimatedTokens: state.call.estimatedTokens)) { [self] grant in
            switch grant {
            case .success(let lease): send(state, route, upstream, lease: lease)
            case .failure(let failure):
                finish(state, .failure(ExternalError(kind: .quotaExhausted, status: nil, message: failure.description)))
            }
        }
    }

    private func send(_ state: CallState, _ route: ProviderRoute, _ upstream: String, lease: KeyLease?) {
        var key: APIKeySecret?
        state.keyMasked = nil
        if let lease, let broker = route.broker {
            guard let secret = broker.secret(for: lease) else {
                broker.release(lease)
                return finish(state, .failure(ExternalError(kind: .auth, status: nil, message: "the leased key has no secret (removed while running?)")))
            }
            key = secret
            state.keyMasked = broker.pool.entries[lease.keyIndex].masked
        }
        state.attempts += 1
        state.model = route.qualified(upstream)
        var request = ChatRequest(model: upstream, messages: state.call.messages, stream: state.call.stream)
        request.maxTokens = state.call.maxTokens
        request.temperature = state.call.temperature
        let t = route.timeouts
        // The body is compact JSON already: spliced into the task input as is, never re-parsed.
        let input = ExternalCallInput(baseURL: route.endpoint.baseURL, headers: route.endpoint.headers.map { (name: $0.name, value: $0.value) }, key: key,
                                      stream: state.call.stream, bodyJSON: request.body(), connectMs: t.connectMs, firstByteMs: t.firstByteMs,
                                      idleMs: t.idleMs, totalMs: t.totalMs)
        var task = TaskRequest(handler: ExternalChatHandler.handlerName, input: input.bytes, priority: state.call.priority)
        // The worker enforces the call's own timeouts; the coordinator's deadline is the backstop.
        task.timeoutMs = UInt64(t.totalMs) + 5_000
        task.maxAttempts = 1
        _ = coordinator.submit(task, onDelta: { [weak state] text in
            guard let state, !text.isEmpty else { return }
            state.sawDelta = true
            state.onDelta?(text)
        }) { [self] outcome in
            let output: ExternalCallOutput
            switch outcome.result {
            case .success(let bytes):
                output = bytes.withUnsafeBytes { ExternalCallOutput(raw: $0) }
            case .failure(let failure):
                // The worker died, timed out or refused the input: the request may have been sent.
                let kind: ExternalErrorKind = switch failure.kind {
                case .timeout: .timeout
                case .invalidInput: .badRequest
                case .cancelled, .shuttingDown: .cancelled
                default: .network
                }
                output = ExternalCallOutput(result: .failure(ExternalError(kind: kind, status: nil, message: "agent worker: \(failure.message)")),
                                            status: nil, latencyMs: Int64(outcome.elapsedMs), firstTokenMs: nil)
            }
            settle(state, route, upstream, lease, output)
        }
    }

    private func settle(_ state: CallState, _ route: ProviderRoute, _ upstream: String, _ lease: KeyLease?, _ output: ExternalCallOutput) {
        let now = clock.now()
        switch output.result {
        case .success(var completion):
            let served = completion.model ?? upstream
            state.model = route.qualified(served)
            completion.usage = costed(completion.usage, route: route, served: served, asked: upstream)
            // The answer goes out first; recording it (a ledger write) is not on the caller's path.
            finish(state, .success(completion))
            if let lease, let broker = route.broker {
                var report = KeyCallReport(status: output.status, outcome: .success, latencyMs: Int(output.latencyMs),
                                           tokens: completion.usage?.totalTokens, costUSD: completion.usage?.cost)
                report.costIsEstimate = completion.usage?.costIsEstimate ?? false
                report.servedModel = served
                broker.complete(lease, report)
            }
        case .failure(var error):
            if state.sawDelta { error.afterTokens = true }
            if let lease, let broker = route.broker {
                broker.complete(lease, KeyCallReport(status: error.status ?? output.status, outcome: error.keyOutcome,
                                                     accountSpentUntil: error.accountSpentUntil(now: now), latencyMs: Int(output.latencyMs)))
            }
            let decision = policy.decide(after: error, attempt: state.attempts, modelIndex: state.modelIndex, chainLength: state.chain.count,
                                         retriesOnModel: state.retriesOnModel, now: now, jitter: rng.unit(), canSwitchKey: route.broker != nil)
            switch decision {
            case .fail(let reason):
                // Say why the policy stopped when it is not obvious from the error alone.
                if state.attempts > 1 || error.afterTokens { error.message += " (\(reason))" }
                finish(state, .failure(error))
            case .retry(let modelIndex, let afterMs, let reason):
                logger.info("\(state.keyMasked ?? route.name) \(state.model ?? upstream): \(error.kind.rawValue): \(reason)")
                state.retries.append(reason)
                if modelIndex == state.modelIndex { state.retriesOnModel += 1 } else { state.retriesOnModel = 0 }
                state.modelIndex = modelIndex
                if afterMs <= 0 { return acquireLease(state) }
                let timer = Timer(loop: loop)
                let id = ObjectIdentifier(timer)
                backoffs[id] = (timer, state)
                timer.start(after: UInt64(afterMs)) { [weak self, weak timer] in
                    timer?.close()
                    guard self?.backoffs.removeValue(forKey: id) != nil else { return }
                    self?.acquireLease(state)
                }
            }
        }
    }

    /// `usage` with a cost: as reported, else estimated from the route's catalog prices (marked
    /// as an estimate). When neither is possible the cost stays unknown — never a silent zero —
    /// and a warning says so once per model.
    private func costed(_ usage: ChatUsage?, route: ProviderRoute, served: String, asked: String) -> ChatUsage? {
        guard let usage else {
            warnCostUnknown(route.qualified(served), "the response reported no usage")
            return nil
        }
        guard usage.cost == nil else { return usage }
        let estimated = CostEstimator.estimate(usage: usage, model: route.catalog[served] ?? route.catalog[asked])
        if estimated.cost == nil {
            warnCostUnknown(route.qualified(served), route.catalog.isEmpty
                ? "the response has no cost and there is no catalog to price it"
                : "the response has no cost and the catalog has no usable price for it")
        }
        return estimated
    }

    private func warnCostUnknown(_ model: String, _ why: String) {
        guard costUnknownWarned.insert(model).inserted else { return }
        logger.warning("cost of calls to \(model) is unknown: \(why); the ledger records it as unknown, not zero")
    }

    private func finish(_ state: CallState, _ result: Result<ChatCompletion, ExternalError>) {
        guard !state.finished else { return }
        state.finished = true
        state.completion(ExternalCallResult(result: result, attempts: state.attempts, keyMasked: state.keyMasked, model: state.model,
                                            retries: state.retries, latencyMs: Int64(loop.now - state.started)))
    }
}

/// The progress of one call through its retries.
private final class CallState {
    let call: ExternalCall
    let onDelta: ((String) -> Void)?
    let completion: (ExternalCallResult) -> Void
    let started: UInt64
    /// The planned chain (see ``ExternalCallRunner/plan(_:notes:)``).
    var chain: [String] = []
    var attempts = 0
    var modelIndex = 0
    var retriesOnModel = 0
    var keyMasked: String?
    var model: String?
    var retries: [String] = []
    var sawDelta = false
    var finished = false

    init(call: ExternalCall, onDelta: ((String) -> Void)?, completion: @escaping (ExternalCallResult) -> Void, started: UInt64) {
        self.call = call
        self.onDelta = onDelta
        self.completion = completion
        self.started = started
    }
}
