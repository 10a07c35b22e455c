import ChimeraCore

/// Runs pipeline steps the real way: a `prompt` step is a task routed by JHADE (``TaskRouter``:
/// internal handler or external model, scored, stored, learned from); a `handler` step is one
/// task on that handler's pool.
public final class RoutedStepRunner: PipelineStepRunner {
    private let router: TaskRouter
    private let coordinator: Coordinator
    /// The quality bar of steps that set none (the config's `jhade.min_quality`).
    public var defaultMinQuality = 0.6
    /// The agent profiles steps name (`agent`); a step without one runs as `default`.
    public var agents: AgentLibrary
    private let agentRunner: AgentRunner

    public init(router: TaskRouter, coordinator: Coordinator, agents: AgentLibrary = AgentLibrary(profiles: AgentProfile.builtins)) {
        self.router = router
        self.coordinator = coordinator
        self.agents = agents
        agentRunner = AgentRunner(router: router)
    }

    public func run(_ request: PipelineStepRequest, progress: @escaping (PipelineStepProgress) -> Void,
                    completion: @escaping (PipelineStepAnswer) -> Void) {
        let step = request.step
        let key = request.item.map { "\(step.id)[\($0)]" } ?? step.id
        let taskId = "\(request.runId).\(key).\(request.attempt)"
        if let handler = step.handler {
            var task = TaskRequest(handler: handler, value: request.input ?? .string(request.prompt ?? ""))
            task.kind = step.kind
            task.id = taskId
            progress(.routed(route: "handler", target: handler))
            coordinator.submit(task) { outcome in
                var answer: PipelineStepAnswer
                switch outcome.result {
                case .success: answer = PipelineStepAnswer(output: TaskRouter.text(of: outcome.output ?? .null))
                case .failure(let failure): answer = PipelineStepAnswer(output: nil, error: "\(failure.kind.rawValue): \(failure.message)")
                }
                answer.route = "handler"
                answer.target = handler
                completion(answer)
            }
            return
        }
        let agentName = step.agent ?? "default"
        guard let profile = agents.profile(named: agentName) else {
            return completion(PipelineStepAnswer(output: nil, error: agents.unknownAgentMessage(agentName)))
        }
        var task = RoutedTask(id: taskId, kind: step.kind, prompt: request.prompt ?? "")
        task.system = request.system
        task.agent = profile.bias
        task.minQuality = step.quality?.minScore ?? profile.minQuality ?? defaultMinQuality
        task.route = step.route
        task.models = step.models
        task.reference = request.reference
        task.maxTokens = step.maxTokens
        task.temperature = step.temperature
        if let merge = step.merge, step.foreach == nil { task.merge = merge }
        (task.scorers, task.judge) = Self.scorers(for: step, hasReference: request.reference != nil)
        let onDecision: (Decision, [String]) -> Void = { decision, chain in
            switch decision.choice {
            case .wait(let eta): progress(.waitingForQuota(etaMs: eta))
            case .internal(let handler), .internalFallback(let handler, _): progress(.routed(route: "internal", target: handler))
            case .external: progress(.routed(route: "external", target: chain.first ?? "-"))
            case .fail: break
            }
        }
        guard profile.strategy != .default else {
            // One routed task: JHADE's decision shows in the progress line as soon as it is made.
            return router.run(task, onDecision: onDecision) { result in completion(Self.answer(result)) }
        }
        agentRunner.run(task, agent: profile, progress: { line in progress(.note(line)) }) { result in
            completion(Self.answer(result))
        }
    }

    /// An agent's result as a step answer: its output, every task it made, and the answering
    /// task's route, target and score; the cost of all of them.
    static func answer(_ result: AgentRunResult) -> PipelineStepAnswer {
        var answer = result.answer.map(Self.answer) ?? PipelineStepAnswer(output: nil)
        answer.output = result.output
        answer.error = result.output == nil ? (result.error ?? "no answer") : nil
        answer.taskIds = result.tasks.map(\.task.taskId)
        answer.costUSD = result.costIsComplete || result.costUSD > 0 ? result.costUSD : nil
        return answer
    }

    /// A routed task's result as a step answer: the merged output, and the chosen candidate's
    /// route, target, score, cost and tokens.
    static func answer(_ result: RoutedTaskResult) -> PipelineStepAnswer {
        let chosen = result.answeringCandidate
        var answer = PipelineStepAnswer(output: result.merged?.output, error: result.merged == nil ? (result.error ?? "no answer") : nil)
        answer.taskIds = [result.task.taskId]
        answer.route = result.task.arm
        answer.target = chosen?.candidate.target
        answer.score = chosen?.score
        let cost = result.cost
        answer.costUSD = cost.complete || cost.usd > 0 ? cost.usd : nil
        answer.tokens = chosen?.candidate.tokens
        return answer
    }

    /// The step's `quality.scorers` (default: `format`, plus `reference` when there is one);
    /// `format` demands JSON (and the schema) when the step's output is JSON.
    static func scorers(for step: PipelineStep, hasReference: Bool) -> (ScorerSet, JudgeSettings?) {
        var specs = step.quality?.scorers ?? []
        if specs.isEmpty {
            specs = [StepScorer(name: "format")]
            if hasReference { specs.append(StepScorer(name: "reference")) }
        }
        var entries: [(scorer: any QualityScorer, weight: Double)] = []
        var judge: JudgeSettings?
        let schema = step.output.schema.flatMap { try? JSONSchema($0) }
        for spec in specs {
            switch spec.name {
            case "format": entries.append((FormatScorer(requireJSON: step.output.format == .json, schema: schema), spec.weight))
            case "reference": entries.append((ReferenceScorer(), spec.weight))
            case "agreement": entries.append((AgreementScorer(), spec.weight))
            case "judge": judge = JudgeSettings(weight: spec.weight)
            default: break  // refused by validation
            }
        }
        return (ScorerSet(entries), judge)
    }
}
