import ChimeraCore

/// Runs pipeline steps the real way: a `prompt` step is a task routed by JHADE (``TaskRouter``:
/// internal handler or external model, scored, stored, learned from); a `handler` step is one
/// task on that handler's pool.
public final class RoutedStepRunner: PipelineStepRunner {
    private let router: TaskRouter
    private let coordinator: Coordinator
    /// The quality bar of steps that set none (the config's `jhade.min_quality`).
    public var defaultMinQuality = 0.6
    /// Runs a routed task for an agent profile; nil: the task goes straight to the router with
    /// the agent's JHADE bias.
    public var agentRunner: ((RoutedTask, String, @escaping (RoutedTaskResult) -> Void) -> Void)?

    public init(router: TaskRouter, coordinator: Coordinator) {
        self.router = router
        self.coordinator = coordinator
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
        var task = RoutedTask(id: taskId, kind: step.kind, prompt: request.prompt ?? "")
        task.system = request.system
        task.agent = AgentBias.named(step.agent ?? "default")
        task.minQuality = step.quality?.minScore ?? defaultMinQuality
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
        let finish: (RoutedTaskResult) -> Void = { result in
            completion(Self.answer(result))
        }
        if let agentRunner, let agent = step.agent {
            agentRunner(task, agent, finish)
        } else {
            router.run(task, onDecision: onDecision, completion: finish)
        }
    }

    /// A routed task's result as a step answer: the merged output, and the chosen candidate's
    /// route, target, score, cost and tokens.
    static func answer(_ result: RoutedTaskResult) -> PipelineStepAnswer {
        let task = result.task
        let chosen = task.candidates.first { $0.chosen && $0.candidate.output == result.merged?.output } ?? task.candidates.first { $0.chosen }
        var answer = PipelineStepAnswer(output: result.merged?.output, error: result.merged == nil ? (result.error ?? "no answer") : nil)
        answer.taskIds = [task.taskId]
        answer.route = task.arm
        answer.target = chosen?.candidate.target
        answer.score = chosen?.score
        let costs = task.candidates.compactMap(\.candidate.costUSD)
        answer.costUSD = costs.isEmpty ? nil : costs.reduce(0, +)
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
