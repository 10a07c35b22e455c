import ChimeraCore
import ChimeraStore
import Logging

/// One attempt of a step (or of one item of a `foreach` step), its templates rendered.
public struct PipelineStepRequest: Sendable {
    public var runId: String
    public var step: PipelineStep
    /// The item's position, for a `foreach` step.
    public var item: Int?
    /// 1 for the first attempt.
    public var attempt: Int
    /// The rendered prompt (JHADE steps).
    public var prompt: String?
    public var system: String?
    /// The rendered input (handler steps).
    public var input: JSONValue?
    /// The rendered reference answer, for the `reference` scorer.
    public var reference: String?
}

/// What became of one attempt.
public struct PipelineStepAnswer: Sendable {
    /// The answer; nil when the attempt failed.
    public var output: String?
    /// Why there is no answer.
    public var error: String?
    /// The tasks it made (`chimera explain ID`).
    public var taskIds: [String] = []
    /// `internal:HANDLER`, `external`, `handler`, …
    public var route: String?
    /// The handler or model that answered.
    public var target: String?
    public var score: Double?
    public var costUSD: Double?
    public var tokens: Int?

    public init(output: String?, error: String? = nil) {
        self.output = output
        self.error = error
    }
}

/// Something a running step learned before it finished, for progress lines.
public enum PipelineStepProgress: Sendable, Equatable {
    /// JHADE chose: the route (`internal:NAME`, `external`) and its target (handler or first model).
    case routed(route: String, target: String)
    /// Every key is spent or cooling: the call waits until `etaMs` (epoch milliseconds).
    case waitingForQuota(etaMs: EpochMillis?)
    /// What an agent's strategy is doing (a line of its trace: a cascade tier, a tool, a vote).
    case note(String)
}

/// Runs one attempt of a step: the executor's only way out to handlers and models.
public protocol PipelineStepRunner: AnyObject {
    /// Runs `request`; `completion` exactly once, on the loop thread.
    func run(_ request: PipelineStepRequest, progress: @escaping (PipelineStepProgress) -> Void,
             completion: @escaping (PipelineStepAnswer) -> Void)
}

/// What the executor tells its caller as the run goes (progress lines, logs).
public enum PipelineEvent: Sendable {
    /// An attempt started (`key` is `ID` or `ID[N]`).
    case started(key: String, step: PipelineStep, attempt: Int)
    case progress(key: String, PipelineStepProgress)
    /// An attempt failed and another follows after `delayMs`.
    case retrying(key: String, attempt: Int, error: String, delayMs: Int64)
    /// A step or item finished (succeeded, skipped or failed), and was checkpointed.
    case finished(StoredPipelineStep)
    /// A step or item finished in an earlier process of this run: not run again.
    case reused(StoredPipelineStep)
}

/// How a run ended.
public struct PipelineRunResult: Sendable {
    public var runId: String
    /// `succeeded` or `failed`.
    public var status: String
    /// The pipeline's outputs (declared ones, else each final step's output), in order.
    public var outputs: [(name: String, value: String)]
    public var error: String?
    /// Every finished step and item, by key.
    public var steps: [String: StoredPipelineStep]
    /// Steps and items run in this process (not reused from a checkpoint).
    public var ranHere: Int
}

/// Runs a pipeline on the coordinator's loop: a DAG of steps wired by `needs`, started as soon as
/// what they need has finished (independent branches run at once), `foreach` fan-out with a
/// bounded window and fan-in by `merge`, `when` conditions, retries with backoff and per-attempt
/// timeouts. Each finished step or item is checkpointed in the run store before anything that
/// depends on it starts, so a run resumed after its process died (`chimera run --resume`) runs
/// exactly the work that had not finished.
///
/// A step is skipped when its `when` is false or a step it needs was skipped. When a step fails
/// (after its retries), nothing new starts; the steps already running finish and are
/// checkpointed, and the run fails naming the step.
public final class PipelineExecutor {
    /// Items of one `foreach` step in flight at once.
    public var itemWindow = 4

    public let pipeline: PipelineDefinition
    public let runId: String
    private let inputs: JSONValue
    private let store: RunStore
    private let runner: any PipelineStepRunner
    private let loop: EventLoop
    private let clock: any WallClock
    private let logger: Logger
    private let onEvent: (PipelineEvent) -> Void

    private enum State {
        case waiting
        case running(StepRun)
        case done(StoredPipelineStep)
    }

    private var states: [String: State] = [:]
    private var checkpoints: [String: StoredPipelineStep]
    private var stepContext: [JSONMember] = []
    /// Items finished in this process, by key.
    private var finishedItems: [String: StoredPipelineStep] = [:]
    /// A finished `foreach` step's items, in order.
    private var itemResults: [String: [StoredPipelineStep]] = [:]
    private var running = 0
    private var failure: String?
    private var stopReason: String?
    private var ranHere = 0
    private var liveTimers: [ObjectIdentifier: Timer] = [:]
    private var completion: ((PipelineRunResult) -> Void)?
    private var finished = false

    /// - Parameters:
    ///   - inputs: the run's inputs after defaults, a JSON object.
    ///   - checkpoints: steps and items finished earlier in this run (`--resume`), by key.
    public init(pipeline: PipelineDefinition, runId: String, inputs: JSONValue, checkpoints: [String: StoredPipelineStep] = [:],
                store: RunStore, runner: any PipelineStepRunner, loop: EventLoop, clock: any WallClock, logger: Logger,
                onEvent: @escaping (PipelineEvent) -> Void = { _ in }) {
        self.pipeline = pipeline
        self.runId = runId
        self.inputs = inputs
        self.checkpoints = checkpoints
        self.store = store
        self.runner = runner
        self.loop = loop
        self.clock = clock
        self.logger = logger
        self.onEvent = onEvent
        for step in pipeline.steps { states[step.id] = .waiting }
    }

    /// Starts the run; `completion` runs once on the loop thread when nothing is left to start.
    public func start(completion: @escaping (PipelineRunResult) -> Void) {
        self.completion = completion
        schedule()
    }

    /// Stops starting new work (a signal arrived). Running steps finish and are checkpointed;
    /// the run then fails if any step was left unrun, and succeeds if none was.
    public func stop(reason: String) {
        if stopReason == nil { stopReason = reason }
        schedule()
    }

    /// Why nothing new starts: a step failed, or the run was stopped.
    private var halted: Bool { failure != nil || stopReason != nil }

    // MARK: Scheduling

    private func schedule() {
        guard !finished else { return }
        if !halted {
            var progressed = true
            while progressed {  // a skipped or reused step can make more steps ready at once
                progressed = false
                for step in pipeline.steps {
                    guard case .waiting = states[step.id]!, !halted else { continue }
                    let needs = step.needs.map { states[$0]! }
                    guard needs.allSatisfy({ if case .done = $0 { true } else { false } }) else { continue }
                    let needed = needs.compactMap { state -> StoredPipelineStep? in if case .done(let s) = state { s } else { nil } }
                    if needed.contains(where: { $0.status == "failed" }) { continue }
                    startStep(step, skippedNeed: needed.first { $0.status == "skipped" }?.stepId)
                    progressed = true
                }
            }
        }
        guard running == 0 else { return }
        let unfinished = pipeline.steps.filter { if case .done = states[$0.id]! { false } else { true } }
        if failure == nil, !unfinished.isEmpty {
            let steps = unfinished.map(\.id).joined(separator: ", ")
            // Without a stop this is unreachable for a validated DAG.
            failure = stopReason.map { "\($0) before \(steps) ran" } ?? "steps \(steps) could not start"
        }
        finish()
    }

    private func startStep(_ step: PipelineStep, skippedNeed: String?) {
        if let reused = checkpoints[step.id], reused.status != "failed" {
            onEvent(.reused(reused))
            return complete(step, reused, checkpoint: false)
        }
        let now = clock.now()
        if let skippedNeed {
            return complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "skipped", attempts: 0, startedAt: now, finishedAt: now,
                                                     error: "needs \"\(skippedNeed)\", which was skipped"))
        }
        let context = self.context()
        // A foreach step's condition may read `item`: it is evaluated per item (pumpItems).
        if let when = step.when, step.foreach == nil {
            let holds: Bool
            do {
                holds = try PipelineCondition.parse(when).evaluate(in: context)
            } catch {
                return complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "failed", attempts: 0, startedAt: now, finishedAt: now,
                                                         error: "when: \(error)"))
            }
            if !holds {
                return complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "skipped", attempts: 0, startedAt: now,
                                                         finishedAt: now, error: "when \"\(when)\" was false"))
            }
        }
        var items: [JSONValue]?
        if let path = step.foreach {
            guard case .array(let list)? = Self.resolve(path, in: context) else {
                let found = Self.resolve(path, in: context)?.typeName ?? "nothing"
                return complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "failed", attempts: 0, startedAt: now, finishedAt: now,
                                                         error: "foreach: \(path) is \(found), expected an array"))
            }
            items = list
        }
        let run = StepRun(step: step, items: items, started: now)
        states[step.id] = .running(run)
        running += 1
        if let items {
            for (index, _) in items.enumerated() {
                if let reused = checkpoints[Self.key(step.id, index)], reused.status != "failed" {
                    onEvent(.reused(reused))
                    run.results[index] = reused
                }
            }
            pumpItems(run)
        } else {
            attempt(run, item: nil, number: 1)
        }
    }

    private func pumpItems(_ run: StepRun) {
        guard let items = run.items else { return }
        while run.inFlight < itemWindow, !halted, let next = (run.nextItem..<items.count).first(where: { run.results[$0] == nil }) {
            run.nextItem = next + 1
            if let when = run.step.when {
                let now = clock.now()
                let key = Self.key(run.step.id, next)
                let holds: Bool
                do {
                    holds = try PipelineCondition.parse(when).evaluate(in: itemContext(run, next))
                } catch {
                    failure = failure ?? "step \"\(run.step.id)\" item \(next): when: \(error)"
                    continue
                }
                if !holds {
                    let skipped = StoredPipelineStep(key: key, stepId: run.step.id, item: next, status: "skipped", attempts: 0, startedAt: now,
                                                     finishedAt: now, error: "when \"\(when)\" was false for this item")
                    checkpoint(skipped)
                    onEvent(.finished(skipped))
                    finishedItems[key] = skipped
                    run.results[next] = skipped
                    continue
                }
            }
            run.inFlight += 1
            attempt(run, item: next, number: 1)
        }
        if run.inFlight == 0, run.nextItem >= items.count || halted || run.results.count == items.count {
            finishForeach(run)
        }
    }

    // MARK: Attempts

    private func attempt(_ run: StepRun, item: Int?, number: Int) {
        let step = run.step
        let key = item.map { Self.key(step.id, $0) } ?? step.id
        let context = item.map { itemContext(run, $0) } ?? self.context()
        var request = PipelineStepRequest(runId: runId, step: step, item: item, attempt: number)
        do {
            request.prompt = try step.prompt.map { try PipelineTemplate.render($0, context) }
            request.system = try step.system.map { try PipelineTemplate.render($0, context) }
            request.reference = try step.quality?.reference.map { try PipelineTemplate.render($0, context) }
            request.input = try step.input.map { try Self.renderStrings($0, context) }
        } catch {
            let now = clock.now()
            return itemFinished(run, item: item, StoredPipelineStep(key: key, stepId: step.id, item: item, status: "failed", attempts: number,
                                                                    startedAt: now, finishedAt: now, error: "template: \(error)"))
        }
        if number == 1 { run.itemStarted[key] = clock.now() }
        onEvent(.started(key: key, step: step, attempt: number))
        let token = AttemptToken()
        var timer: Timer?
        if let timeout = step.timeoutMs {
            let t = Timer(loop: loop)
            timer = t
            liveTimers[ObjectIdentifier(t)] = t
            t.start(after: UInt64(max(1, timeout))) { [self] in
                closeTimer(t)
                guard !token.settled else { return }
                token.settled = true
                settle(run, item: item, key: key, number: number, PipelineStepAnswer(output: nil, error: "timed out after \(timeout) ms"))
            }
        }
        runner.run(request, progress: { [self] progress in
            if !token.settled { onEvent(.progress(key: key, progress)) }
        }, completion: { [self] answer in
            if let timer { closeTimer(timer) }
            guard !token.settled else {
                logger.info("step \(key) answered after its attempt \(number) timed out; the answer is dropped")
                return
            }
            token.settled = true
            settle(run, item: item, key: key, number: number, answer)
        })
    }

    /// Checks an attempt's answer against the step's demands; retries or finishes.
    private func settle(_ run: StepRun, item: Int?, key: String, number: Int, _ answer: PipelineStepAnswer) {
        let step = run.step
        var error = answer.error
        if var output = answer.output {
            if step.output.format == .json {
                if let value = JSONTools.extract(output) {
                    output = value.serialized
                    if let schema = step.output.schema, let violations = try? JSONTools.validate(value, schema: schema), !violations.isEmpty {
                        error = "the answer does not match output.schema: " + violations.prefix(3).map { "\($0)" }.joined(separator: "; ")
                    }
                } else {
                    error = "the answer is not JSON (output.format is json)"
                }
            }
            if error == nil, let bar = step.quality?.minScore, let score = answer.score, score < bar {
                error = "score \(ComplexityEstimate.format(score)) is under the step's min_score \(ComplexityEstimate.format(bar))"
            }
            if error == nil {
                let stored = StoredPipelineStep(key: key, stepId: step.id, item: item, status: "succeeded", output: output, attempts: number,
                                                taskIds: run.taskIds(key, adding: answer.taskIds), route: answer.route, target: answer.target,
                                                score: answer.score, costUSD: run.cost(key, adding: answer.costUSD), tokens: answer.tokens,
                                                startedAt: run.itemStarted[key] ?? clock.now(), finishedAt: clock.now())
                return itemFinished(run, item: item, stored)
            }
        }
        let why = error ?? "no answer"
        _ = run.taskIds(key, adding: answer.taskIds)
        _ = run.cost(key, adding: answer.costUSD)
        if number < step.retry.maxAttempts, !halted {
            let delay = step.retry.backoffMs << Int64(min(number - 1, 16))
            onEvent(.retrying(key: key, attempt: number, error: why, delayMs: delay))
            let timer = Timer(loop: loop)
            liveTimers[ObjectIdentifier(timer)] = timer
            timer.start(after: UInt64(max(0, delay))) { [self] in
                closeTimer(timer)
                attempt(run, item: item, number: number + 1)
            }
            return
        }
        let attempts = number > 1 ? " after \(number) attempts" : ""
        itemFinished(run, item: item, StoredPipelineStep(key: key, stepId: step.id, item: item, status: "failed", output: answer.output, attempts: number,
                                                         taskIds: run.taskIds(key, adding: []), route: answer.route, target: answer.target,
                                                         score: answer.score, costUSD: run.cost(key, adding: nil), tokens: answer.tokens,
                                                         startedAt: run.itemStarted[key] ?? clock.now(), finishedAt: clock.now(),
                                                         error: why + attempts))
    }

    private func itemFinished(_ run: StepRun, item: Int?, _ stored: StoredPipelineStep) {
        guard let item else {
            running -= 1
            return complete(run.step, stored)
        }
        checkpoint(stored)
        onEvent(.finished(stored))
        ranHere += 1
        finishedItems[stored.key] = stored
        run.results[item] = stored
        run.inFlight -= 1
        if stored.status == "failed", failure == nil {
            failure = "step \"\(run.step.id)\" item \(item) failed: \(stored.error ?? "no answer")"
        }
        pumpItems(run)
    }

    /// The context with `item`, `index` and `number` of one item of a `foreach` step.
    private func itemContext(_ run: StepRun, _ item: Int) -> JSONValue {
        guard let items = run.items else { return context() }
        return context().adding([JSONMember("item", items[item]), JSONMember("index", .number(Double(item))),
                                 JSONMember("number", .number(Double(item + 1)))])
    }

    /// Every item answered (or the run is failing): the step's own row, its items merged.
    private func finishForeach(_ run: StepRun) {
        let step = run.step
        let items = run.items ?? []
        let results = (0..<items.count).map { run.results[$0] }
        let now = clock.now()
        running -= 1
        guard results.allSatisfy({ $0?.status == "succeeded" || $0?.status == "skipped" }) else {
            let failed = results.enumerated().first { $0.element?.status == "failed" }
            let error = failed.map { "item \($0.offset) failed: \($0.element?.error ?? "no answer")" }
                ?? stopReason.map { "\($0) before every item ran" } ?? "not every item ran"
            return complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "failed", attempts: 1, startedAt: run.started,
                                                     finishedAt: now, error: error))
        }
        let answers = results.compactMap { $0 }.filter { $0.status == "succeeded" }
        itemResults[step.id] = answers
        if answers.isEmpty, !items.isEmpty {
            return complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "skipped", attempts: 0, startedAt: run.started,
                                                     finishedAt: now, error: "when \"\(step.when ?? "")\" was false for every item"))
        }
        let output = Self.merge(answers, strategy: step.merge)
        let costs = answers.compactMap(\.costUSD)
        complete(step, StoredPipelineStep(key: step.id, stepId: step.id, status: "succeeded", output: output, attempts: 1,
                                          taskIds: answers.flatMap(\.taskIds), route: "foreach", target: "\(answers.count) items",
                                          score: answers.compactMap(\.score).mean, costUSD: costs.isEmpty ? nil : costs.reduce(0, +),
                                          tokens: answers.compactMap(\.tokens).sumOrNil, startedAt: run.started, finishedAt: now))
    }

    /// A step finished: checkpointed, then its result joins the context and dependents may start.
    private func complete(_ step: PipelineStep, _ stored: StoredPipelineStep, checkpoint write: Bool = true) {
        if write {
            checkpoint(stored)
            onEvent(.finished(stored))
            ranHere += 1
        }
        states[step.id] = .done(stored)
        stepContext.append(JSONMember(step.id, stepValue(step, stored)))
        if stored.status == "failed", failure == nil { failure = "step \"\(step.id)\" failed: \(stored.error ?? "no answer")" }
        schedule()
    }

    private func checkpoint(_ stored: StoredPipelineStep) {
        do {
            try store.recordPipelineStep(stored, runId: runId)
        } catch {
            // The answer is still used; only a later --resume would redo this step.
            logger.error("step \(stored.key) finished but could not be checkpointed: \(error)")
        }
    }

    private func closeTimer(_ timer: Timer) {
        timer.close()
        liveTimers[ObjectIdentifier(timer)] = nil
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        var results = checkpoints.merging(finishedItems) { $1 }
        for (id, state) in states { if case .done(let s) = state { results[id] = s } }
        let context = self.context()
        var outputs: [(name: String, value: String)] = []
        if failure == nil {
            if pipeline.outputs.isEmpty {
                let needed = Set(pipeline.steps.flatMap(\.needs))
                for step in pipeline.steps where !needed.contains(step.id) {
                    if let s = results[step.id], s.status == "succeeded" { outputs.append((step.id, s.output ?? "")) }
                }
            } else {
                for output in pipeline.outputs {
                    do {
                        // A section's last separator would leave blank lines at the end.
                        outputs.append((output.name, try PipelineTemplate.render(output.template, context).trimmingTrailingSpace))
                    } catch {
                        failure = "output \"\(output.name)\": \(error)"
                    }
                }
            }
        }
        let status = failure == nil ? "succeeded" : "failed"
        do {
            let json = JSONValue.object(outputs.map { JSONMember($0.name, .string($0.value)) })
            try store.finishPipelineRun(runId, status: status, outputs: failure == nil ? json : nil, error: failure, at: clock.now())
        } catch {
            logger.error("run \(runId) ended but its status could not be stored: \(error)")
        }
        completion?(PipelineRunResult(runId: runId, status: status, outputs: outputs, error: failure, steps: results, ranHere: ranHere))
        completion = nil
    }

    // MARK: Context

    /// `{"inputs": …, "steps": {ID: {output, json, outputs, skipped}}}` of what has finished.
    private func context() -> JSONValue {
        .object([JSONMember("inputs", inputs), JSONMember("steps", .object(stepContext))])
    }

    private func stepValue(_ step: PipelineStep, _ stored: StoredPipelineStep) -> JSONValue {
        var members = [JSONMember("output", .string(stored.output ?? "")), JSONMember("skipped", .bool(stored.status == "skipped"))]
        if step.output.format == .json, let output = stored.output, let value = JSONTools.extract(output) {
            members.append(JSONMember("json", value))
        }
        if let path = step.foreach {
            var items: [JSONValue] = []
            if case .array(let values)? = Self.resolve(path, in: context()) { items = values }
            let list = itemResults[step.id]
                ?? checkpoints.values.filter { $0.stepId == step.id && $0.item != nil && $0.status == "succeeded" }.sorted { $0.item! < $1.item! }
            members.append(JSONMember("outputs", .array(list.map { item in
                var entry = [JSONMember("index", .number(Double(item.item!))), JSONMember("number", .number(Double(item.item! + 1))),
                             JSONMember("output", .string(item.output ?? ""))]
                if items.indices.contains(item.item!) { entry.append(JSONMember("item", items[item.item!])) }
                if step.output.format == .json, let value = item.output.flatMap(JSONTools.extract) { entry.append(JSONMember("json", value)) }
                return .object(entry)
            })))
        }
        return .object(members)
    }

    /// The value at a dotted path (`inputs.articles`, `steps.split.json.items`) of `context`.
    static func resolve(_ path: String, in context: JSONValue) -> JSONValue? {
        var value: JSONValue? = context
        for part in path.split(separator: ".") {
            guard let current = value else { return nil }
            if case .array(let items) = current, let index = Int(part) {
                value = items.indices.contains(index) ? items[index] : nil
            } else {
                value = current[String(part)]
            }
        }
        return value
    }

    static func renderStrings(_ value: JSONValue, _ context: JSONValue) throws -> JSONValue {
        switch value {
        case .string(let s): return .string(try PipelineTemplate.render(s, context))
        case .array(let items): return .array(try items.map { try renderStrings($0, context) })
        case .object(let members): return .object(try members.map { JSONMember($0.key, try renderStrings($0.value, context)) })
        default: return value
        }
    }

    static func key(_ id: String, _ item: Int) -> String { "\(id)[\(item)]" }

    /// A `foreach` step's items as one output: `concat` (default: blank-line separated, in item
    /// order); `best`, `vote` and `first_success` are the mediator's merges (``Merger``: the top
    /// score; the largest group of equivalent answers, told by its best-scored member; the first
    /// non-blank answer), ties going to the earliest item.
    static func merge(_ items: [StoredPipelineStep], strategy: MergeStrategy?) -> String {
        let joined = items.map { $0.output ?? "" }.joined(separator: "\n\n")
        guard let strategy, strategy == .best || strategy == .vote || strategy == .firstSuccess else { return joined }
        let candidates = items.map { Candidate(arm: .external, target: $0.target ?? $0.key, output: $0.output ?? "") }
        return Merger.merge(strategy, candidates, scores: items.map(\.score))?.output ?? joined
    }
}

/// One running step: its items' results as they arrive.
private final class StepRun {
    let step: PipelineStep
    let items: [JSONValue]?
    let started: EpochMillis
    var results: [Int: StoredPipelineStep] = [:]
    var nextItem = 0
    var inFlight = 0
    var itemStarted: [String: EpochMillis] = [:]
    private var tasks: [String: [String]] = [:]
    private var costs: [String: Double] = [:]

    init(step: PipelineStep, items: [JSONValue]?, started: EpochMillis) {
        self.step = step
        self.items = items
        self.started = started
    }

    /// Task ids of every attempt of `key` so far.
    func taskIds(_ key: String, adding ids: [String]) -> [String] {
        tasks[key, default: []] += ids
        return tasks[key]!
    }

    /// Cost of every attempt of `key` so far (nil when none reported one).
    func cost(_ key: String, adding cost: Double?) -> Double? {
        if let cost { costs[key, default: 0] += cost }
        return costs[key]
    }
}

/// Whether an attempt was already settled (answered or timed out): the other event is ignored.
private final class AttemptToken {
    var settled = false
}

private extension JSONValue {
    /// An object with `members` added (replacing members of the same name).
    func adding(_ extra: [JSONMember]) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members.removeAll { m in extra.contains { $0.key == m.key } }
        return .object(members + extra)
    }
}

private extension Array where Element == Double {
    var mean: Double? { isEmpty ? nil : reduce(0, +) / Double(count) }
}

private extension Array where Element == Int {
    var sumOrNil: Int? { isEmpty ? nil : reduce(0, +) }
}

private extension String {
    var trimmingTrailingSpace: String {
        var s = Substring(self)
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }

}
