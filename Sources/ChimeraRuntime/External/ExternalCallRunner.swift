import ChimeraCore
import ChimeraOpenRouter
import Logging

/// One external call as a caller asks for it.
public struct ExternalCall: Sendable, Equatable {
    public var messages: [ChatMessage]
    /// The model chain: the first is tried first; later ones on model-scoped failures.
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
    /// The key of the last attempt, masked.
    public var keyMasked: String?
    /// The model of the last attempt (the response's `model` on success).
    public var model: String?
    /// Why each retry happened, in order.
    public var retries: [String]
    public var latencyMs: Int64
}

/// Runs external calls through the whole path: key lease (``KeyBroker``, waiting or failing per
/// policy) → an agent worker's `llm.chat` task (the HTTP call) → the outcome back to the key pool
/// and ledger → ``FailoverPolicy`` (another key, the next model, a backoff, or the end).
///
/// Lives on the coordinator's loop thread. A worker that dies mid-call is not retried by the
/// coordinator (`maxAttempts: 1`): the request may have been sent and counted, so the retry,
/// if any, takes a new lease here.
public final class ExternalCallRunner {
    public let endpoint: ProviderEndpoint
    public let timeouts: CallTimeouts
    public let policy: FailoverPolicy
    private let coordinator: Coordinator
    private let broker: KeyBroker
    private let loop: EventLoop
    private let logger: Logger
    private var rng: SplitMix64
    /// Calls waiting out a backoff, with their timers.
    private var backoffs: [ObjectIdentifier: (timer: Timer, state: CallState)] = [:]

    public init(coordinator: Coordinator, broker: KeyBroker, loop: EventLoop, endpoint: ProviderEndpoint,
                timeouts: CallTimeouts = CallTimeouts(), policy: FailoverPolicy = FailoverPolicy(), seed: UInt64 = 0xC0FFEE,
                logger: Logger = Logger(label: "chimera.external")) {
        self.coordinator = coordinator
        self.broker = broker
        self.loop = loop
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.policy = policy
        self.logger = logger
        rng = SplitMix64(seed: seed)
    }

    /// Starts `call`; `onDelta` gets streamed content; `completion` runs once, on the loop.
    public func run(_ call: ExternalCall, onDelta: ((String) -> Void)? = nil, completion: @escaping (ExternalCallResult) -> Void) {
        let state = CallState(call: call, onDelta: onDelta, completion: completion, started: loop.now)
        guard !call.models.isEmpty else {
            return finish(state, .failure(ExternalError(kind: .badRequest, status: nil, message: "no model given")))
        }
        acquireLease(state)
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
        let model = state.call.models[state.modelIndex]
        broker.acquire(KeyRequest(model: model, priority: state.call.priority, estimatedTokens: state.call.estimatedTokens)) { [self] grant in
            switch grant {
            case .success(let lease): send(state, lease)
            case .failure(let failure):
                let kind: ExternalErrorKind = .quotaExhausted
                finish(state, .failure(ExternalError(kind: kind, status: nil, message: failure.description)))
            }
        }
    }

    private func send(_ state: CallState, _ lease: KeyLease) {
        guard let key = broker.secret(for: lease) else {
            broker.release(lease)
            return finish(state, .failure(ExternalError(kind: .auth, status: nil, message: "the leased key has no secret (removed while running?)")))
        }
        state.attempts += 1
        state.keyMasked = broker.pool.entries[lease.keyIndex].masked
        state.model = lease.model
        var request = ChatRequest(model: lease.model, messages: state.call.messages, stream: state.call.stream)
        request.maxTokens = state.call.maxTokens
        request.temperature = state.call.temperature
        let body = (try? JSONParser.parse(request.body()).value) ?? .object([])
        let input = ExternalCallInput(baseURL: endpoint.baseURL, headers: endpoint.headers.map { (name: $0.name, value: $0.value) }, key: key,
                                      stream: state.call.stream, body: body, connectMs: timeouts.connectMs, firstByteMs: timeouts.firstByteMs,
                                      idleMs: timeouts.idleMs, totalMs: timeouts.totalMs)
        var task = TaskRequest(handler: ExternalChatHandler.handlerName, value: input.json, priority: state.call.priority)
        // The worker enforces the call's own timeouts; the coordinator's deadline is the backstop.
        task.timeoutMs = UInt64(timeouts.totalMs) + 5_000
        task.maxAttempts = 1
        _ = coordinator.submit(task, onDelta: { [weak state] text in
            guard let state, !text.isEmpty else { return }
            state.sawDelta = true
            state.onDelta?(text)
        }) { [self] outcome in
            let output: ExternalCallOutput
            switch outcome.result {
            case .success(let bytes):
                output = ExternalCallOutput(json: (try? JSONParser.parse(bytes).value) ?? .null)
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
            settle(state, lease, output)
        }
    }

    private func settle(_ state: CallState, _ lease: KeyLease, _ output: ExternalCallOutput) {
        let now = broker.clockNow()
        switch output.result {
        case .success(let completion):
            if let served = completion.model { state.model = served }
            // The answer goes out first; recording it (a ledger write) is not on the caller's path.
            finish(state, .success(completion))
            broker.complete(lease, KeyCallReport(status: output.status, outcome: .success, latencyMs: Int(output.latencyMs),
                                                 tokens: completion.usage?.totalTokens, costUSD: completion.usage?.cost))
        case .failure(var error):
            if state.sawDelta { error.afterTokens = true }
            broker.complete(lease, KeyCallReport(status: error.status ?? output.status, outcome: error.keyOutcome,
                                                 accountSpentUntil: error.accountSpentUntil(now: now), latencyMs: Int(output.latencyMs)))
            let decision = policy.decide(after: error, attempt: state.attempts, modelIndex: state.modelIndex, chainLength: state.call.models.count,
                                         retriesOnModel: state.retriesOnModel, now: now, jitter: rng.unit())
            switch decision {
            case .fail(let reason):
                // Say why the policy stopped when it is not obvious from the error alone.
                if state.attempts > 1 || error.afterTokens { error.message += " (\(reason))" }
                finish(state, .failure(error))
            case .retry(let modelIndex, let afterMs, let reason):
                logger.info("\(state.keyMasked ?? "?") \(lease.model): \(error.kind.rawValue): \(reason)")
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
