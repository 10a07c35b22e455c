import ChimeraCore
import ChimeraStore
import Logging

/// One task to route: what JHADE decides on and how the mediator judges the answers.
public struct RoutedTask: Sendable {
    public var id: String
    /// Task kind, e.g. `summarize`: selects the internal handlers that may serve it and the
    /// statistics learned about it.
    public var kind: String
    public var prompt: String
    public var system: String?
    /// Earlier messages of a conversation (`user` and `assistant`), oldest first: external
    /// models get them between the system message and the prompt, internal handlers as the
    /// input's `history` (`[{"role", "content"}]`). JHADE decides on the prompt alone.
    public var history: [ChatMessage] = []
    /// Material for external models, put before the prompt in the user message (a specialized
    /// agent's tool outputs). Internal handlers and the complexity estimate see the prompt alone.
    public var context: String?
    public var agent = AgentBias(name: "default")
    /// The quality bar in [0, 1]: a candidate passes when its score reaches it.
    public var minQuality = 0.6
    public var route = RoutePreference.auto
    /// The external chain; empty: the fastest free catalog models that fit.
    public var models: [String] = []
    public var latencyBudgetMs: Int64?
    public var costBudgetUSD: Double?
    public var priority = TaskPriority.normal
    public var maxTokens: Int?
    public var temperature: Double?
    /// For the `reference` scorer.
    public var reference: String?
    /// How several candidates of the chosen route become one answer.
    public var merge = MergeStrategy.best
    /// Candidates to ask the chosen external route for (internal handlers are asked once).
    public var samples = 1
    /// This task's synchronous scorers; nil: the router's.
    public var scorers: ScorerSet?
    /// This task's judge; nil: the router's.
    public var judge: JudgeSettings?

    public init(id: String, kind: String, prompt: String) {
        self.id = id
        self.kind = kind
        self.prompt = prompt
    }

    /// What an external model is sent: the system message, then the context and the prompt.
    var messages: [ChatMessage] {
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages += history
        messages.append(ChatMessage(role: "user", content: context.map { "\($0)\n\n\(prompt)" } ?? prompt))
        return messages
    }
}

/// The `judge` scorer: a model grades the answers through the normal external path. One answer
/// is graded alone (`Score: N/10`); several are compared in pairs, each pair in both orders.
public struct JudgeSettings: Sendable {
    public var weight: Double
    /// The judge's chain; empty: the task's external chain.
    public var models: [String] = []
    public var rubric = JudgePrompt.defaultRubric
    /// Answers judged at most (pairs grow quadratically: 4 answers are 12 calls).
    public var maxCandidates = 4

    public init(weight: Double) { self.weight = weight }
}

/// The `custom` scorer: a handler process (config `handlers[]`) scores each answer. Its input is
/// `{"task", "answer", "reference", "kind"}`; its output a number in [0, 1] or
/// `{"score": n, "explanation": "…"}`.
public struct CustomScorerSettings: Sendable {
    public var handler: String
    public var weight: Double

    public init(handler: String, weight: Double) {
        self.handler = handler
        self.weight = weight
    }
}

/// What became of a routed task: the stored record (decision, candidates with scores, answer).
public struct RoutedTaskResult: Sendable {
    public var task: StoredTask
    public var decision: Decision
    /// The answer, if any candidate qualified.
    public var merged: MergeResult?
    /// Why there is no answer, when there is none.
    public var error: String?
    /// Set when the task could not be stored (the answer is still given).
    public var storeError: String?
}

extension RoutedTaskResult {
    /// The chosen candidate that gave the answer; without an answer, the first chosen candidate.
    public var answeringCandidate: StoredCandidate? {
        task.candidates.first { $0.chosen && $0.candidate.output == merged?.output } ?? task.candidates.first { $0.chosen }
    }

    /// What the candidates cost in USD, and whether every cost is known (an external answer
    /// without usage accounting or catalog prices has none).
    public var cost: (usd: Double, complete: Bool) {
        var total = 0.0
        var complete = true
        for c in task.candidates {
            if let usd = c.candidate.costUSD { total += usd } else if c.candidate.arm == .external, c.candidate.succeeded { complete = false }
        }
        return (total, complete)
    }
}

/// Drives one task through JHADE and the mediator, on the coordinator's loop:
///
/// ```
/// learned stats + handlers + key pool + catalog ─▶ DecisionEngine ─▶ internal handler task
///                                                                 └▶ external call (chain)
///      (+ the shadow arm, + n samples)  ─▶ candidates ─▶ scorers ─▶ merge ─▶ answer
///                                                        └▶ observations ─▶ RunStore (one transaction)
/// ```
///
/// An external call that fails with `quota_exhausted` falls back to the best internal handler
/// (unless the task demands external only and no handler serves it), and the decision says so.
public final class TaskRouter {
    public let engine: DecisionEngine
    public let handlers: [HandlerCapability]
    public let scorers: ScorerSet
    public let judge: JudgeSettings?
    public let customScorer: CustomScorerSettings?
    /// Runs the internal handlers' tasks (and agents' tools).
    public let coordinator: Coordinator
    /// Makes the external calls; nil when no external route is configured.
    public let external: ExternalCallRunner?
    private let store: RunStore
    private let clock: any WallClock
    private let logger: Logger
    private var rng: SplitMix64

    public init(coordinator: Coordinator, external: ExternalCallRunner?, handlers: [HandlerCapability], store: RunStore,
                engine: DecisionEngine = DecisionEngine(), scorers: ScorerSet = ScorerSet(), judge: JudgeSettings? = nil,
                customScorer: CustomScorerSettings? = nil, seed: UInt64 = 0x4A48_4144,
                clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "chimera.jhade")) {
        self.judge = judge
        self.customScorer = customScorer
        self.coordinator = coordinator
        self.external = external
        self.handlers = handlers
        self.store = store
        self.engine = engine
        self.scorers = scorers
        self.clock = clock
        self.logger = logger
        rng = SplitMix64(seed: seed)
    }

    /// Decides, runs the candidates, scores, merges and stores `task`; `completion` runs once, on the loop.
    ///
    /// - Parameters:
    ///   - onDecision: runs once JHADE has chosen, with the external chain it planned, before
    ///     any candidate runs (for progress lines).
    ///   - onDelta: streamed content of the chosen external candidate as it arrives, when
    ///     exactly one is asked for (`samples` 1). Internal answers, shadow candidates and
    ///     several samples do not stream; the merged answer in the result is the whole text.
    public func run(_ task: RoutedTask, onDecision: ((Decision, [String]) -> Void)? = nil, onDelta: ((String) -> Void)? = nil,
                    completion: @escaping (RoutedTaskResult) -> Void) {
        let started = clock.now()
        let complexity = ComplexityEstimator.estimate(task.prompt)
        let bucket = complexity.bucket
        var learned: [RouteArm: RouteStats] = [:]
        do {
            learned = try store.learned(kind: task.kind, bucket: bucket)
        } catch {
            logger.warning("deciding without learned statistics: \(error)")
        }
        var notes: [String] = []
        let (option, chain) = externalOption(task, notes: &notes)
        var input = DecisionInput(taskId: task.id, kind: task.kind, prompt: task.prompt, agent: task.agent, minQuality: task.minQuality,
                                  latencyBudgetMs: task.latencyBudgetMs, costBudgetUSD: task.costBudgetUSD, priority: task.priority,
                                  route: task.route, handlers: handlers, external: option, learned: learned)
        input.complexity = complexity
        var decision = engine.decide(input, rng: &rng)
        decision.reasons += notes
        let state = RoutingState(task: task, input: input, decision: decision, chain: chain, started: started)
        onDecision?(decision, chain)

        switch decision.choice {
        case .fail(let reason):
            return finish(state, error: reason, completion)
        case .internal(let handler), .internalFallback(let handler, _):
            launch(state, arm: .internal(handler), shadow: false, completion)
        case .external, .wait:
            // `wait`: the key broker holds the call until a key frees (its queue, not a poll).
            let stream = task.samples <= 1 ? onDelta : nil
            for _ in 0..<max(1, task.samples) { launch(state, arm: .external, shadow: false, onDelta: stream, completion) }
        }
        if let shadow = decision.shadow { launch(state, arm: shadow, shadow: true, completion) }
    }

    // MARK: Candidates

    private func launch(_ state: RoutingState, arm: RouteArm, shadow: Bool, onDelta: ((String) -> Void)? = nil,
                        _ completion: @escaping (RoutedTaskResult) -> Void) {
        let slot = state.reserveSlot()
        let done: (Candidate, Bool, Int) -> Void = { [self] candidate, estimate, quota in
            state.fill(slot, candidate, costIsEstimate: estimate, quotaRequests: quota)
            // A chosen external call that found every key spent falls back to a handler.
            if !shadow, arm == .external, candidate.errorKind == ExternalErrorKind.quotaExhausted.rawValue,
               !state.fellBack, let fallback = bestInternalArm(state) {
                state.fellBack = true
                state.decision.choice = .internalFallback(handler: fallback, reason: "external call failed: \(candidate.errorMessage ?? "quota exhausted")")
                state.decision.reasons.append("the external call found no key (\(candidate.errorMessage ?? "quota exhausted")); falling back to internal:\(fallback)")
                launch(state, arm: .internal(fallback), shadow: false, completion)
            }
            if state.isComplete { complete(state, completion) }
        }
        if let handler = arm.handler {
            runInternal(state.task, handler: handler, shadow: shadow) { done($0, false, 0) }
        } else {
            runExternal(state, shadow: shadow, onDelta: onDelta) { done($0.0, $0.1, $0.2) }
        }
    }

    private func runInternal(_ task: RoutedTask, handler: String, shadow: Bool, _ done: @escaping (Candidate) -> Void) {
        var members = [JSONMember("kind", .string(task.kind)), JSONMember("text", .string(task.prompt)), JSONMember("prompt", .string(task.prompt))]
        if !task.history.isEmpty {
            members.append(JSONMember("history", .array(task.history.map {
                .object([JSONMember("role", .string($0.role)), JSONMember("content", .string($0.content))])
            })))
        }
        let input = JSONValue.object(members)
        var request = TaskRequest(handler: handler, value: input, priority: task.priority)
        request.kind = task.kind
        _ = coordinator.submit(request) { outcome in
            switch outcome.result {
            case .success:
                done(Candidate(arm: .internal(handler), target: handler, output: Self.text(of: outcome.output ?? .null),
                               latencyMs: Int64(outcome.elapsedMs), costUSD: 0, shadow: shadow))
            case .failure(let failure):
                done(Candidate(arm: .internal(handler), target: handler, output: "", errorKind: failure.kind.rawValue, errorMessage: failure.message,
                               latencyMs: Int64(outcome.elapsedMs), costUSD: 0, shadow: shadow))
            }
        }
    }

    private func runExternal(_ state: RoutingState, shadow: Bool, onDelta: ((String) -> Void)?, _ done: @escaping ((Candidate, Bool, Int)) -> Void) {
        guard let external else {
            return done((Candidate(arm: .external, target: "-", output: "", errorKind: "unavailable", errorMessage: "no external route is configured", shadow: shadow), false, 0))
        }
        let task = state.task
        var call = ExternalCall(messages: task.messages, models: state.chain, stream: onDelta != nil, priority: task.priority)
        call.maxTokens = task.maxTokens
        call.temperature = task.temperature ?? (task.samples > 1 ? 0.9 : nil)
        let free = state.input.external?.free ?? false
        external.run(call, onDelta: onDelta) { result in
            switch result.result {
            case .success(let completion):
                done((Candidate(arm: .external, target: result.model ?? "-", output: completion.content, latencyMs: result.latencyMs,
                                costUSD: completion.usage?.cost, tokens: completion.usage?.totalTokens, shadow: shadow),
                      completion.usage?.costIsEstimate ?? false, free ? result.attempts : 0))
            case .failure(let error):
                done((Candidate(arm: .external, target: result.model ?? "-", output: "", errorKind: error.kind.rawValue, errorMessage: error.message,
                                latencyMs: result.latencyMs, shadow: shadow), false, free ? result.attempts : 0))
            }
        }
    }

    /// A handler's answer as text: a string as is, `{"output"|"text"|"summary": string}`'s string,
    /// anything else as compact JSON.
    static func text(of value: JSONValue) -> String {
        if case .string(let s) = value { return s }
        for key in ["output", "text", "summary", "answer"] {
            if case .string(let s)? = value[key] { return s }
        }
        return value.serialized
    }

    private func bestInternalArm(_ state: RoutingState) -> String? {
        state.decision.arms.filter { $0.arm.kind == .internal && $0.ineligible == nil }.max { $0.utility < $1.utility }?.arm.handler
    }

    // MARK: Scoring, merging, learning

    /// Every candidate answered: the asynchronous scorers (judge, custom) run, then the rest.
    private func complete(_ state: RoutingState, _ completion: @escaping (RoutedTaskResult) -> Void) {
        let candidates = state.candidates
        var extra: [(scorer: any QualityScorer, weight: Double)] = []
        var pending = 2
        let next = { [self] in
            pending -= 1
            if pending == 0 { score(state, extra: extra, completion) }
        }
        runJudge(state, candidates) { scores in
            if let scores, let judge = state.task.judge ?? self.judge { extra.append((PrecomputedScorer(name: "judge", scores: scores), judge.weight)) }
            next()
        }
        runCustomScorer(state, candidates) { scores in
            if let scores, let custom = self.customScorer { extra.append((PrecomputedScorer(name: "custom", scores: scores), custom.weight)) }
            next()
        }
    }

    /// LLM-as-judge over the successful candidates: a single grade for one, every pair in both
    /// orders for several. Calls that fail or give no verdict leave the candidate without one.
    private func runJudge(_ state: RoutingState, _ candidates: [Candidate], _ done: @escaping ([Int: QualityScore]?) -> Void) {
        guard let judge = state.task.judge ?? judge, let external else { return done(nil) }
        let judged = Array(candidates.indices.filter { candidates[$0].succeeded && !candidates[$0].output.isEmpty }.prefix(judge.maxCandidates))
        guard !judged.isEmpty else { return done(nil) }
        let chain = judge.models.isEmpty ? state.chain : judge.models
        let task = state.task
        func ask(_ prompt: String, _ reply: @escaping (String?) -> Void) {
            var call = ExternalCall(messages: [ChatMessage(role: "user", content: prompt)], models: chain, priority: task.priority)
            call.maxTokens = 400
            call.temperature = 0
            external.run(call) { result in
                if case .success(let c) = result.result { reply(c.content) } else { reply(nil) }
            }
        }
        if judged.count == 1 {
            let i = judged[0]
            return ask(JudgePrompt.single(task: task.prompt, answer: candidates[i].output, rubric: judge.rubric)) { reply in
                guard let reply, let score = JudgeVerdict.score(from: reply) else {
                    return done([i: QualityScore(0.5, "the judge gave no score" + (reply == nil ? " (the call failed)" : ""))])
                }
                done([i: QualityScore(score, "graded \(Int((score * 10).rounded()))/10 by the judge")])
            }
        }
        var pairs: [PairwiseJudging.Pair] = []
        for a in 0..<judged.count { for b in (a + 1)..<judged.count { pairs.append(PairwiseJudging.Pair(i: judged[a], j: judged[b], forward: nil, backward: nil)) } }
        var outstanding = pairs.count * 2
        let finish = {
            outstanding -= 1
            guard outstanding == 0 else { return }
            var scores: [Int: QualityScore] = [:]
            let shares = PairwiseJudging.scores(count: candidates.count, pairs: pairs)
            for index in judged {
                // A candidate whose comparisons gave no readable verdict is neither rewarded nor penalised.
                scores[index] = shares[index] ?? QualityScore(0.5, "the judge gave no readable verdict ([[A]], [[B]] or [[C]])")
            }
            done(scores)
        }
        for (p, pair) in pairs.enumerated() {
            ask(JudgePrompt.pairwise(task: task.prompt, first: candidates[pair.i].output, second: candidates[pair.j].output, rubric: judge.rubric)) { reply in
                pairs[p].forward = reply.flatMap(JudgeVerdict.preference(from:))
                finish()
            }
            ask(JudgePrompt.pairwise(task: task.prompt, first: candidates[pair.j].output, second: candidates[pair.i].output, rubric: judge.rubric)) { reply in
                pairs[p].backward = reply.flatMap(JudgeVerdict.preference(from:))
                finish()
            }
        }
    }

    /// The custom scoring handler, once per successful candidate.
    private func runCustomScorer(_ state: RoutingState, _ candidates: [Candidate], _ done: @escaping ([Int: QualityScore]?) -> Void) {
        guard let custom = customScorer else { return done(nil) }
        let scored = candidates.indices.filter { candidates[$0].succeeded }
        guard !scored.isEmpty else { return done(nil) }
        var scores: [Int: QualityScore] = [:]
        var outstanding = scored.count
        for i in scored {
            var members = [JSONMember("task", .string(state.task.prompt)), JSONMember("answer", .string(candidates[i].output)),
                           JSONMember("kind", .string(state.task.kind))]
            if let reference = state.task.reference { members.append(JSONMember("reference", .string(reference))) }
            _ = coordinator.submit(TaskRequest(handler: custom.handler, value: .object(members), priority: state.task.priority)) { [self] outcome in
                switch outcome.output {
                case .number(let n)?:
                    scores[i] = QualityScore(n, "\(custom.handler) scored \(ComplexityEstimate.format(n))")
                case let value? where value["score"]?.numberValue != nil:
                    let n = value["score"]!.numberValue!
                    scores[i] = QualityScore(n, value["explanation"]?.stringValue ?? "\(custom.handler) scored \(ComplexityEstimate.format(n))")
                default:
                    let why: String = if case .failure(let f) = outcome.result { "\(f.kind.rawValue): \(f.message)" } else { "no score in its output" }
                    logger.warning("custom scorer \(custom.handler) gave no score for candidate \(i + 1) of task \(state.task.id): \(why)")
                }
                outstanding -= 1
                if outstanding == 0 { done(scores) }
            }
        }
    }

    private func score(_ state: RoutingState, extra: [(scorer: any QualityScorer, weight: Double)], _ completion: @escaping (RoutedTaskResult) -> Void) {
        let candidates = state.candidates
        let scorers = ScorerSet((state.task.scorers ?? self.scorers).entries + extra)
        let context = ScoringContext(candidates: candidates, reference: state.task.reference)
        var stored: [StoredCandidate] = []
        var observations: [StatsObservation] = []
        let bucket = state.decision.complexity.bucket
        for (i, candidate) in candidates.enumerated() {
            var entry = StoredCandidate(candidate: candidate, chosen: !candidate.shadow, costIsEstimate: state.estimates[i], quotaRequests: state.quota[i])
            // Availability failures say nothing about quality: they are stored, not learned from.
            let learnable = ![ExternalErrorKind.quotaExhausted.rawValue, ExternalErrorKind.cancelled.rawValue, "unavailable", "shutting_down"].contains(candidate.errorKind ?? "")
            if candidate.succeeded {
                let combined = scorers.score(i, in: context)
                entry.score = combined.score
                entry.passed = combined.score >= state.task.minQuality
                entry.scoreDetail = .object([
                    JSONMember("explanation", .string(combined.explanation)),
                    JSONMember("parts", .array(combined.parts.map { p in
                        .object([JSONMember("scorer", .string(p.scorer)), JSONMember("weight", .number(p.weight)),
                                 JSONMember("score", .number(p.score.score)), JSONMember("explanation", .string(p.score.explanation))])
                    })),
                ])
            } else if learnable {
                entry.score = 0
                entry.passed = false
                entry.scoreDetail = .object([JSONMember("explanation", .string("the call failed: \(candidate.errorKind ?? "?")"))])
            }
            if engine.learning, learnable, let score = entry.score, let passed = entry.passed {
                observations.append(StatsObservation(key: StatsKey(kind: state.task.kind, bucket: bucket, arm: candidate.arm), score: score,
                                                     passed: passed, latencyMs: candidate.latencyMs, costUSD: candidate.costUSD))
            }
            stored.append(entry)
        }
        let scores = stored.map(\.score)
        var merged: MergeResult?
        if state.task.merge == .synthesize, Merger.qualifying(candidates).count >= 2, external != nil {
            return synthesize(state, stored: stored, observations: observations, completion)
        }
        merged = Merger.merge(state.task.merge == .synthesize ? .best : state.task.merge, candidates, scores: scores)
        let error = merged == nil ? Self.failureSummary(candidates) : nil
        finish(state, stored: stored, observations: observations, merged: merged, error: error, completion)
    }

    /// Mixture-of-Agents style aggregation: one more external call fuses the candidates.
    private func synthesize(_ state: RoutingState, stored: [StoredCandidate], observations: [StatsObservation],
                            _ completion: @escaping (RoutedTaskResult) -> Void) {
        let candidates = state.candidates
        let used = Merger.qualifying(candidates)
        var call = ExternalCall(messages: [ChatMessage(role: "user", content: SynthesisPrompt.build(task: state.task.prompt, candidates: candidates))],
                                models: state.chain, priority: state.task.priority)
        call.maxTokens = state.task.maxTokens
        external?.run(call) { [self] result in
            var merged: MergeResult
            switch result.result {
            case .success(let c):
                merged = MergeResult(output: c.content, used: used, explanation: "synthesized from \(used.count) candidates by \(result.model ?? "the chain")")
            case .failure(let e):
                merged = Merger.merge(.best, candidates, scores: stored.map(\.score))
                    ?? MergeResult(output: "", used: [], explanation: "")
                merged.explanation += " (synthesis failed: \(e.kind.rawValue); best candidate instead)"
            }
            finish(state, stored: stored, observations: observations, merged: merged, error: nil, completion)
        }
    }

    private static func failureSummary(_ candidates: [Candidate]) -> String {
        let chosen = candidates.filter { !$0.shadow }
        guard !chosen.isEmpty else { return "no candidate ran" }
        return chosen.map { c in
            c.succeeded ? "\(c.arm) (\(c.target)): empty answer" : "\(c.arm) (\(c.target)): \(c.errorKind ?? "failed"): \(c.errorMessage ?? "")"
        }.joined(separator: "; ")
    }

    private func finish(_ state: RoutingState, error: String, _ completion: @escaping (RoutedTaskResult) -> Void) {
        finish(state, stored: [], observations: [], merged: nil, error: error, completion)
    }

    private func finish(_ state: RoutingState, stored: [StoredCandidate], observations: [StatsObservation], merged: MergeResult?, error: String?,
                        _ completion: @escaping (RoutedTaskResult) -> Void) {
        let decision = state.decision
        let answered = decision.choice.arm ?? (decision.choice.label == "wait" ? RouteArm.external : nil)
        let task = StoredTask(taskId: state.task.id, at: state.started, kind: state.task.kind, agent: state.task.agent.name, prompt: state.task.prompt,
                              complexity: decision.complexity.score, bucket: decision.complexity.bucket, minQuality: state.task.minQuality,
                              choice: decision.choice.label, arm: answered?.description, shadowArm: decision.shadow?.description,
                              learning: decision.learning, decision: decision.json(input: state.input), output: merged?.output,
                              merge: merged.map { _ in state.task.merge.rawValue }, status: merged == nil ? "failed" : "ok", candidates: stored)
        var storeError: String?
        do {
            try store.record(task, observations: observations)
        } catch {
            storeError = "\(error)"
            logger.error("task \(task.taskId) was answered but could not be stored: \(error)")
        }
        completion(RoutedTaskResult(task: task, decision: decision, merged: merged, error: error, storeError: storeError))
    }

    // MARK: External option

    /// The external route as JHADE sees it: the planned chain, whether a key can serve now, the
    /// expected cost from catalog prices, and quota pressure.
    private func externalOption(_ task: RoutedTask, notes: inout [String]) -> (ExternalOption?, [String]) {
        guard let external else { return (nil, []) }
        var call = ExternalCall(messages: task.messages, models: task.models, priority: task.priority)
        call.maxTokens = task.maxTokens
        var planNotes: [String] = []
        let chain: [String]
        switch external.plan(call, notes: &planNotes) {
        case .success(let planned): chain = planned
        case .failure(let error):
            return (ExternalOption(chain: task.models, availability: .unavailable(error.message)), task.models)
        }
        notes += planNotes.map { "external: \($0)" }
        let (route, upstream) = external.routes.resolve(chain[0])
        let availability = route.broker?.availability(model: upstream, priority: task.priority, estimatedTokens: call.estimatedTokens) ?? .now
        var free = true, strong = false
        var cost: Double? = 0
        for model in chain {
            let (r, id) = external.routes.resolve(model)
            let info = r.catalog[id]
            let isFree = info?.isFree ?? (id.hasSuffix(":free") || r.broker == nil)
            free = free && isFree
            if !isFree { strong = true }
        }
        if let info = route.catalog[upstream] {
            cost = CostEstimator.estimate(usage: ChatUsage(promptTokens: call.estimatedTokens, completionTokens: task.maxTokens ?? 256), model: info).cost
        } else if !free {
            cost = nil
        }
        return (ExternalOption(chain: chain, availability: availability, expectedCostUSD: cost, free: free,
                               quotaPressure: route.broker?.quotaPressure() ?? 0, strong: strong), chain)
    }
}

/// The candidates of one task as they arrive.
private final class RoutingState {
    let task: RoutedTask
    let input: DecisionInput
    var decision: Decision
    let chain: [String]
    let started: EpochMillis
    private var slots: [Candidate?] = []
    var estimates: [Bool] = []
    var quota: [Int] = []
    var fellBack = false
    private var completed = false

    init(task: RoutedTask, input: DecisionInput, decision: Decision, chain: [String], started: EpochMillis) {
        self.task = task
        self.input = input
        self.decision = decision
        self.chain = chain
        self.started = started
    }

    func reserveSlot() -> Int {
        slots.append(nil)
        estimates.append(false)
        quota.append(0)
        return slots.count - 1
    }

    func fill(_ slot: Int, _ candidate: Candidate, costIsEstimate: Bool, quotaRequests: Int) {
        slots[slot] = candidate
        estimates[slot] = costIsEstimate
        quota[slot] = quotaRequests
    }

    /// Every launched candidate answered (once: a fallback launched meanwhile keeps it open).
    var isComplete: Bool {
        guard !completed, slots.allSatisfy({ $0 != nil }) else { return false }
        completed = true
        return true
    }

    var candidates: [Candidate] { slots.compactMap { $0 } }
}
