import ChimeraCore

/// What an agent made of one task: the answer, the routed tasks it ran (each stored with its
/// decision, for `chimera explain`), what they cost, and a short trace of what the strategy did.
public struct AgentRunResult: Sendable {
    /// The agent's name.
    public var agent: String
    /// The agent's strategy.
    public var strategy: AgentStrategy
    /// The final answer; nil when the agent has none.
    public var output: String?
    /// Why there is no answer, when there is none.
    public var error: String?
    /// Every routed task the strategy ran, in order (none when it refused the task).
    public var tasks: [RoutedTaskResult]
    /// The index in ``tasks`` of the task whose answer is ``output``.
    public var answeredBy: Int?
    /// The candidates' known costs, summed, in USD.
    public var costUSD: Double
    /// False when some external answer's cost is unknown (so ``costUSD`` is a lower bound).
    public var costIsComplete: Bool
    /// One line per step of the strategy, for progress lines and logs, e.g.
    /// `tier 2/3 free: external (google/gemma-3-27b-it:free) scored 0.91, passes the bar 0.70; stopping`.
    public var trace: [String]

    /// Whether the agent answered.
    public var ok: Bool { output != nil }

    /// The routed task that gave the answer.
    public var answer: RoutedTaskResult? { answeredBy.map { tasks[$0] } }

    init(agent: AgentProfile, tasks: [RoutedTaskResult], answeredBy: Int?, error: String?, trace: [String]) {
        self.agent = agent.name
        strategy = agent.strategy
        self.tasks = tasks
        self.answeredBy = answeredBy
        output = answeredBy.flatMap { tasks[$0].merged?.output }
        self.error = output == nil ? (error ?? "no answer") : nil
        self.trace = trace
        costUSD = tasks.reduce(0) { $0 + $1.cost.usd }
        costIsComplete = tasks.allSatisfy(\.cost.complete)
    }
}

/// Runs tasks the way an agent profile says, on top of ``TaskRouter``, on the coordinator's loop
/// (every callback comes from it; call ``run(_:agent:completion:)`` from it too).
///
/// The profile first adjusts the task: its bias goes to JHADE, its system prompt comes before
/// the task's, and its models, temperature and route apply when the task has none of its own
/// (`auto` counts as none). The caller keeps the quality bar: use the profile's `min_quality` when
/// the caller has no bar of its own. Then the strategy's code path runs:
///
/// | strategy | routed tasks | what it does |
/// |---|---|---|
/// | `default` | 1 | exactly ``TaskRouter/run(_:completion:)`` |
/// | `specialized` | 1 | refuses kinds outside `kinds`; runs `tools` (handler tasks) on the prompt, gives their outputs to the model as context |
/// | `creative` | 1 | `candidates` answers at the profile's temperature (1.0), merged with `best` |
/// | `reasoning` | 1 | reasoning-capable models (catalog) unless the task names its models, `samples` answers merged with `vote` |
/// | `cost-aware` | 1 per tier run | the cascade, cheapest first; stops at the first score over the bar, or before a tier whose estimated cost would pass `budget_usd` |
///
/// A strategy with several routed tasks stores them as `ID.1`, `ID.2`, … (`ID` is the task's id).
public final class AgentRunner {
    /// Routes every task the strategies make; its coordinator runs the tools, its external
    /// runner's catalog informs the reasoning and cost-aware strategies.
    public let router: TaskRouter

    /// A runner over `router` (one per coordinator; it keeps no state between tasks).
    public init(router: TaskRouter) {
        self.router = router
    }

    /// Runs `task` as `agent` says; `completion` is called once, on the loop.
    ///
    /// - Parameters:
    ///   - progress: called with each trace line as the strategy makes it (before `completion`),
    ///     for live progress lines; the same lines end up in ``AgentRunResult/trace``.
    public func run(_ task: RoutedTask, agent: AgentProfile, progress: ((String) -> Void)? = nil,
                    completion: @escaping (AgentRunResult) -> Void) {
        let trace = AgentTrace(progress)
        if let refusal = agent.refusal(kind: task.kind) {
            trace.add("refused: \(refusal)")
            return completion(AgentRunResult(agent: agent, tasks: [], answeredBy: nil, error: refusal, trace: trace.lines))
        }
        let prepared = Self.prepare(task, agent)
        switch agent.strategy {
        case .default:
            single(prepared, agent, trace, completion)
        case .specialized:
            specialized(prepared, agent, trace, completion)
        case .creative:
            var creative = prepared
            creative.samples = agent.candidates
            creative.merge = agent.effectiveMerge
            if creative.temperature == nil { creative.temperature = 1.0 }
            trace.add("asking \(agent.candidates) candidate\(agent.candidates == 1 ? "" : "s") at temperature \(Self.number(creative.temperature ?? 1)), merged with \(creative.merge.rawValue)")
            single(creative, agent, trace, completion)
        case .reasoning:
            var reasoning = prepared
            if task.models.isEmpty {
                let catalog = router.external.map { $0.routes.openRouter.catalog }
                let (chain, note) = AgentModels.reasoningChain(preferred: agent.models, catalog: catalog)
                reasoning.models = chain
                trace.add("models: \(note)")
            } else {
                trace.add("models: the task's, as given: \(task.models.joined(separator: ", "))")
            }
            reasoning.samples = agent.samples
            reasoning.merge = agent.effectiveMerge
            trace.add("sampling \(agent.samples) answer\(agent.samples == 1 ? "" : "s"), merged with \(reasoning.merge.rawValue) (self-consistency)")
            single(reasoning, agent, trace, completion)
        case .costAware:
            CascadeRun(runner: self, task: prepared, agent: agent, trace: trace, completion: completion).start()
        }
    }

    /// The task with the profile applied (see the type's documentation).
    static func prepare(_ task: RoutedTask, _ agent: AgentProfile) -> RoutedTask {
        var prepared = task
        prepared.agent = agent.bias
        if prepared.models.isEmpty { prepared.models = agent.models }
        if prepared.temperature == nil { prepared.temperature = agent.temperature }
        if prepared.route == .auto { prepared.route = agent.route }
        let system = [agent.system, task.system].compactMap { $0 }
        prepared.system = system.isEmpty ? nil : system.joined(separator: "\n\n")
        return prepared
    }

    /// One routed task; the trace ends with what JHADE chose and how the answer was merged.
    private func single(_ task: RoutedTask, _ agent: AgentProfile, _ trace: AgentTrace, _ completion: @escaping (AgentRunResult) -> Void) {
        router.run(task) { result in
            trace.add(Self.summary(result))
            if let merged = result.merged, result.task.candidates.filter({ $0.chosen }).count > 1 {
                trace.add("merged (\(task.merge.rawValue)): \(merged.explanation)")
            }
            completion(AgentRunResult(agent: agent, tasks: [result], answeredBy: result.merged == nil ? nil : 0, error: result.error, trace: trace.lines))
        }
    }

    // MARK: specialized

    /// The tools run one after another on the prompt (handler tasks through the coordinator);
    /// each output becomes a `Context from HANDLER:` section before the prompt. A tool that fails
    /// is noted in the trace and left out: the model still gets the task.
    private func specialized(_ task: RoutedTask, _ agent: AgentProfile, _ trace: AgentTrace, _ completion: @escaping (AgentRunResult) -> Void) {
        var sections: [String] = []
        func next(_ index: Int) {
            guard index < agent.tools.count else {
                var routed = task
                if !sections.isEmpty {
                    routed.context = ([task.context].compactMap { $0 } + sections).joined(separator: "\n\n")
                }
                return single(routed, agent, trace, completion)
            }
            let tool = agent.tools[index]
            let input = JSONValue.object([JSONMember("kind", .string(task.kind)), JSONMember("text", .string(task.prompt)),
                                          JSONMember("prompt", .string(task.prompt))])
            var request = TaskRequest(handler: tool, value: input, priority: task.priority)
            request.kind = task.kind
            _ = router.coordinator.submit(request) { outcome in
                switch outcome.result {
                case .success:
                    let text = TaskRouter.text(of: outcome.output ?? .null)
                    sections.append("Context from \(tool):\n\(text)")
                    trace.add("tool \(tool) answered in \(outcome.elapsedMs) ms (\(text.count) characters of context)")
                case .failure(let failure):
                    trace.add("tool \(tool) failed (\(failure.kind.rawValue): \(failure.message)); going on without it")
                }
                next(index + 1)
            }
        }
        next(0)
    }

    // MARK: Wording

    /// `internal → internal:text.summarize (text.summarize) scored 0.82` and the like.
    static func summary(_ result: RoutedTaskResult) -> String {
        let task = result.task
        let answering = result.answeringCandidate
        let chosen = task.candidates.filter(\.chosen).count
        var line = "\(task.choice) → \(task.arm ?? "-") (\(answering?.candidate.target ?? "-"))"
        if chosen > 1 { line += ", \(chosen) candidates" }
        if let score = answering?.score, result.merged != nil { line += " scored \(number(score))" }
        if result.merged == nil { line += ": no answer (\(result.error ?? "failed"))" }
        return line
    }

    /// `0.70`, `0.42`, `1.00`: two decimals.
    static func number(_ value: Double) -> String { ComplexityEstimate.format(value) }
}

/// The trace of one run as it grows, told to the progress callback line by line.
final class AgentTrace {
    private(set) var lines: [String] = []
    private let progress: ((String) -> Void)?

    init(_ progress: ((String) -> Void)?) { self.progress = progress }

    func add(_ line: String) {
        lines.append(line)
        progress?(line)
    }
}
