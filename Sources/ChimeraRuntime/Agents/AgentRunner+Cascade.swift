import ChimeraCore

/// The cost-aware strategy: one routed task per tier, cheapest first.
///
/// ```
/// tier ─skip (nothing serves it)──────────────────────────────▶ next tier
///   │ estimate its cost ─ spent + estimate > budget_usd ──────▶ stop (budget)
///   ▼
/// routed task (internal: route internal; free/paid/model: route external with that chain)
///   ├─ answer scored ≥ bar ─────────────────────────────────────▶ stop (passed)
///   └─ under the bar, or no answer ──────────────────────────────▶ next tier
/// no tier left ─▶ the best-scored answer so far (or no answer)
/// ```
///
/// Estimates come from catalog prices: the most expensive model of the tier's chain, for the
/// prompt's ≈ tokens and `max_tokens` answer tokens. With a budget, a tier that is not free is
/// called with `max_tokens` set (``budgetedAnswerTokens`` when the task has none), so the
/// estimate bounds what the call can cost (but for the ≈ 4 characters a token of the prompt); a
/// model without a known price is not called, since its cost could not be kept under the budget.
///
/// The task's route narrows the cascade: `internal` runs only the internal tier, `external`
/// skips it.
final class CascadeRun {
    /// The answer length a budgeted call is capped at when the task sets no `max_tokens`.
    static let budgetedAnswerTokens = 1024

    let runner: AgentRunner
    let task: RoutedTask
    let agent: AgentProfile
    let trace: AgentTrace
    let completion: (AgentRunResult) -> Void
    private var results: [RoutedTaskResult] = []
    private var spent = 0.0

    init(runner: AgentRunner, task: RoutedTask, agent: AgentProfile, trace: AgentTrace, completion: @escaping (AgentRunResult) -> Void) {
        self.runner = runner
        self.task = task
        self.agent = agent
        self.trace = trace
        self.completion = completion
    }

    func start() {
        let budget = agent.budgetUSD.map { ", budget $\(Self.usd($0))" } ?? ""
        trace.add("cascade \(agent.cascade.map(\.description).joined(separator: " → ")), bar \(AgentRunner.number(task.minQuality))\(budget)")
        run(0)
    }

    private var router: TaskRouter { runner.router }

    private func label(_ index: Int) -> String { "tier \(index + 1)/\(agent.cascade.count) \(agent.cascade[index])" }

    private func run(_ index: Int) {
        guard index < agent.cascade.count else { return finish(stopped: nil) }
        let tier = agent.cascade[index]
        var routed = task
        routed.id = "\(task.id).\(results.count + 1)"
        routed.samples = 1
        routed.merge = .best
        let routes = router.external?.routes
        // As JHADE judges it (TaskRouter): the catalog's word, else the id; a provider without keys costs nothing.
        let free: (String) -> Bool = { id in
            guard let (route, upstream) = routes?.resolve(id) else { return AgentModels.isFree(id, nil) }
            return route.catalog[upstream]?.isFree ?? (AgentModels.isFree(upstream, nil) || route.broker == nil)
        }
        switch tier {
        case .internal:
            guard task.route != .external else {
                trace.add("\(label(index)): skipped, the route is external")
                return run(index + 1)
            }
            guard router.handlers.contains(where: { $0.kinds.contains(task.kind) }) else {
                trace.add("\(label(index)): skipped, no internal handler serves kind \"\(task.kind)\"")
                return run(index + 1)
            }
            routed.route = .internal
        case .free:
            routed.route = .external
            routed.models = task.models.filter(free)
        case .paid:
            routed.route = .external
            routed.models = task.models.filter { !free($0) }
            guard !routed.models.isEmpty else {
                trace.add("\(label(index)): skipped, no paid model given (the profile's or the task's models)")
                return run(index + 1)
            }
        case .model(let id):
            routed.route = .external
            routed.models = [id]
        }
        if routed.route == .external {
            guard task.route != .internal else {
                trace.add("\(label(index)): skipped, the route is internal")
                return run(index + 1)
            }
            guard router.external != nil else {
                trace.add("\(label(index)): skipped, no external route is configured")
                return run(index + 1)
            }
            if let budget = agent.budgetUSD, !routed.models.allSatisfy(free) {
                routed.maxTokens = routed.maxTokens ?? Self.budgetedAnswerTokens
                guard let estimate = estimate(routed) else {
                    trace.add("\(label(index)): not called, the price of \(routed.models.joined(separator: ", ")) is unknown and the budget is $\(Self.usd(budget))")
                    return finish(stopped: "the budget")
                }
                if spent + estimate > budget {
                    trace.add("\(label(index)): not called, its estimated $\(Self.usd(estimate)) on top of $\(Self.usd(spent)) spent would pass the budget $\(Self.usd(budget))")
                    return finish(stopped: "the budget")
                }
            }
        }
        router.run(routed) { [self] result in
            results.append(result)
            spent += result.cost.usd
            let score = result.merged == nil ? nil : result.answeringCandidate?.score
            let line = "\(label(index)): \(AgentRunner.summary(result))"
            if let score, score >= task.minQuality {
                trace.add(line + ", passes the bar \(AgentRunner.number(task.minQuality)); stopping")
                return finish(stopped: nil, passed: results.count - 1)
            }
            let why = score == nil ? "" : ", under the bar \(AgentRunner.number(task.minQuality))"
            trace.add(line + why + (index + 1 < agent.cascade.count ? "; escalating" : ""))
            run(index + 1)
        }
    }

    /// The worst case of the tier's chain: the most expensive model's estimate; nil when a
    /// model's price is unknown.
    private func estimate(_ routed: RoutedTask) -> Double? {
        guard let external = router.external else { return nil }
        let prompt = ExternalCall(messages: routed.messages, models: routed.models).estimatedTokens
        var worst = 0.0
        for model in routed.models {
            let (route, upstream) = external.routes.resolve(model)
            guard let info = route.catalog[upstream],
                  let cost = CostEstimator.estimate(usage: ChatUsage(promptTokens: prompt, completionTokens: routed.maxTokens ?? Self.budgetedAnswerTokens), model: info).cost
            else { return nil }
            worst = max(worst, cost)
        }
        return worst
    }

    private func finish(stopped: String?, passed: Int? = nil) {
        var answeredBy = passed
        if answeredBy == nil {
            // No tier passed: the best-scored answer so far, the earliest among equals.
            var best: (index: Int, score: Double)?
            for (i, r) in results.enumerated() where r.merged != nil {
                let score = r.answeringCandidate?.score ?? 0
                if best == nil || score > best!.score { best = (i, score) }
            }
            answeredBy = best?.index
            if let best {
                trace.add("no tier passed the bar\(stopped.map { " before \($0) stopped the cascade" } ?? ""); answering with the best score, \(AgentRunner.number(best.score)) (\(results[best.index].task.taskId))")
            } else {
                trace.add("no tier answered\(stopped.map { " before \($0) stopped the cascade" } ?? "")")
            }
        }
        let error: String? = answeredBy != nil ? nil
            : results.isEmpty ? "no tier of the cascade ran (\(trace.lines.dropFirst().joined(separator: "; ")))"
            : results.map { "\($0.task.taskId): \($0.error ?? "no answer")" }.joined(separator: "; ")
        completion(AgentRunResult(agent: agent, tasks: results, answeredBy: answeredBy, error: error, trace: trace.lines))
    }

    /// `0.0012`: up to 6 decimals, trailing zeros dropped.
    static func usd(_ value: Double) -> String {
        let micros = Int((value * 1_000_000).rounded())
        var fraction = String(micros % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(micros / 1_000_000)" + (fraction.isEmpty ? "" : "." + fraction)
    }
}
