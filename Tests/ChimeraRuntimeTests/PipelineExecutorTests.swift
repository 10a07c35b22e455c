import ChimeraCore
import ChimeraStore
import Logging
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Answers steps from a function of the request, always later on the loop (as a real task
/// would), and records what ran and how many ran at once.
private final class ScriptedRunner: PipelineStepRunner {
    let loop: EventLoop
    var answer: (PipelineStepRequest) -> PipelineStepAnswer?
    private(set) var started: [String] = []
    private(set) var finished: [String] = []
    private(set) var requests: [PipelineStepRequest] = []
    private(set) var maxInFlight = 0
    private var inFlight = 0

    init(loop: EventLoop, answer: @escaping (PipelineStepRequest) -> PipelineStepAnswer?) {
        self.loop = loop
        self.answer = answer
    }

    func run(_ request: PipelineStepRequest, progress: @escaping (PipelineStepProgress) -> Void,
             completion: @escaping (PipelineStepAnswer) -> Void) {
        let key = request.item.map { "\(request.step.id)[\($0)]" } ?? request.step.id
        started.append(key)
        requests.append(request)
        inFlight += 1
        maxInFlight = max(maxInFlight, inFlight)
        progress(.routed(route: "internal", target: "scripted"))
        // nil: never answer (a hung task; the step's timeout must end it).
        guard let reply = answer(request) else { return }
        let timer = Timer(loop: loop)
        timer.start(after: 0) { [self] in
            timer.close()
            inFlight -= 1
            finished.append(key)
            completion(reply)
        }
    }
}

/// A run store in a fresh directory, removed at the end.
private final class StoreBox {
    let root: String
    let store: RunStore

    init() throws {
        var template = Array("/tmp/chimera-pipeline-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        store = try RunStore(path: root + "/runs.sqlite")
    }

    deinit { _ = system("rm -rf '\(root)'") }
}

@Suite("Pipeline executor", .timeLimit(.minutes(1)))
struct PipelineExecutorTests {
    static func step(_ id: String, _ prompt: String, needs: [String] = [], configure: (inout PipelineStep) -> Void = { _ in }) -> PipelineStep {
        var step = PipelineStep(id: id, kind: "general", prompt: prompt, needs: needs)
        configure(&step)
        return step
    }

    /// Runs `pipeline` to the end on a fresh loop; every run ends with no handle left open.
    private func run(_ pipeline: PipelineDefinition, inputs: JSONValue = .object([]), box: StoreBox, runId: String = "r_test",
                     checkpoints: [String: StoredPipelineStep] = [:], window: Int = 4,
                     answer: @escaping (PipelineStepRequest) -> PipelineStepAnswer?) throws -> (PipelineRunResult, ScriptedRunner, [PipelineEvent]) {
        let loop = try EventLoop()
        let runner = ScriptedRunner(loop: loop, answer: answer)
        if checkpoints.isEmpty {
            try box.store.startPipelineRun(StoredPipelineRun(runId: runId, pipeline: pipeline.name, file: "/tmp/p.json", definition: [],
                                                             inputs: inputs, status: "running", startedAt: 1))
        } else {
            try box.store.reopenPipelineRun(runId)
        }
        var events: [PipelineEvent] = []
        let executor = PipelineExecutor(pipeline: pipeline, runId: runId, inputs: inputs, checkpoints: checkpoints, store: box.store, runner: runner,
                                        loop: loop, clock: SystemWallClock(), logger: Logger(label: "test")) { events.append($0) }
        executor.itemWindow = window
        var result: PipelineRunResult?
        executor.start { result = $0 }
        loop.run()
        try loop.close()
        return (try #require(result), runner, events)
    }

    @Test func independentBranches_runAtOnce_andAJoinWaitsForBoth() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(name: "diamond", steps: [
            Self.step("a", "start"),
            Self.step("b", "left of {{steps.a.output}}", needs: ["a"]),
            Self.step("c", "right of {{steps.a.output}}", needs: ["a"]),
            Self.step("d", "join {{steps.b.output}} + {{steps.c.output}}", needs: ["b", "c"]),
        ])
        let (result, runner, _) = try run(pipeline, box: box) { request in PipelineStepAnswer(output: "<\(request.prompt!)>") }
        #expect(result.status == "succeeded")
        #expect(runner.started.first == "a" && runner.started.last == "d")
        #expect(Set(runner.started[1...2]) == ["b", "c"])
        #expect(runner.maxInFlight == 2, "b and c ran at the same time")
        #expect(runner.finished.firstIndex(of: "b")! < runner.started.firstIndex(of: "d")!)
        #expect(runner.finished.firstIndex(of: "c")! < runner.started.firstIndex(of: "d")!)
        #expect(result.outputs.map(\.name) == ["d"], "with no declared outputs, the final step's answer is the output")
        #expect(result.outputs.first?.value == "<join <left of <start>> + <right of <start>>>")
        let stored = try box.store.pipelineSteps("r_test")
        #expect(stored.keys.sorted() == ["a", "b", "c", "d"])
        #expect(try box.store.pipelineRun("r_test")?.status == "succeeded")
    }

    @Test func foreach_fansOut_withinItsWindow_andMergesInItemOrder() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(
            name: "fan", inputs: [PipelineInput(name: "articles", type: .array)],
            steps: [
                Self.step("summarize", "sum #{{index}}: {{item}}") { $0.foreach = "inputs.articles" },
                Self.step("report", "{{#steps.summarize.outputs}}[{{index}}:{{output}}]{{/steps.summarize.outputs}}", needs: ["summarize"]),
            ],
            outputs: [PipelineOutput(name: "all", template: "{{steps.summarize.output}}"), PipelineOutput(name: "report", template: "{{steps.report.output}}")])
        let inputs = JSONValue.object([JSONMember("articles", .array((0..<5).map { .string("article \($0)") }))])
        let (result, runner, _) = try run(pipeline, inputs: inputs, box: box, window: 2) { request in
            PipelineStepAnswer(output: request.step.id == "summarize" ? "S\(request.item!)" : request.prompt!)
        }
        #expect(result.status == "succeeded", "\(result.error ?? "")")
        #expect(runner.maxInFlight == 2, "the window bounds items in flight")
        #expect(runner.requests.filter { $0.step.id == "summarize" }.map(\.prompt!).sorted() == (0..<5).map { "sum #\($0): article \($0)" })
        #expect(result.outputs.first { $0.name == "all" }?.value == "S0\n\nS1\n\nS2\n\nS3\n\nS4")
        #expect(result.outputs.first { $0.name == "report" }?.value == "[0:S0][1:S1][2:S2][3:S3][4:S4]")
        #expect(try box.store.pipelineSteps("r_test").keys.filter { $0.hasPrefix("summarize[") }.count == 5, "each item is checkpointed")
    }

    @Test func aFalseCondition_skipsTheStep_andWhatNeedsIt() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(name: "cond", inputs: [PipelineInput(name: "deep", type: .boolean, defaultValue: .bool(false))], steps: [
            Self.step("classify", "c"),
            Self.step("escalate", "e", needs: ["classify"]) { $0.when = "steps.classify.output == 'urgent'" },
            Self.step("notify", "n {{steps.escalate.output}}", needs: ["escalate"]),
            Self.step("deep", "d", needs: ["classify"]) { $0.when = "inputs.deep" },
            Self.step("answer", "a {{steps.classify.output}}", needs: ["classify"]),
        ])
        let (result, runner, _) = try run(pipeline, inputs: .object([JSONMember("deep", .bool(false))]), box: box) { _ in PipelineStepAnswer(output: "routine") }
        #expect(result.status == "succeeded")
        #expect(Set(runner.started) == ["classify", "answer"])
        #expect(result.steps["escalate"]?.status == "skipped")
        #expect(result.steps["escalate"]?.error == "when \"steps.classify.output == 'urgent'\" was false")
        #expect(result.steps["notify"]?.status == "skipped" && result.steps["notify"]?.error == "needs \"escalate\", which was skipped")
        #expect(result.steps["deep"]?.status == "skipped")
        #expect(result.outputs.map(\.name) == ["answer"], "skipped final steps give no output")
        #expect(result.outputs.first?.value == "routine")
    }

    @Test func aForeachCondition_readsEachItem_andLeavesOutTheItemsItRejects() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(
            name: "filter", inputs: [PipelineInput(name: "docs", type: .array)],
            steps: [
                Self.step("translate", "translate {{item.text}}") {
                    $0.foreach = "inputs.docs"
                    $0.when = "item.lang != 'en'"
                },
                Self.step("none", "never {{item}}") {
                    $0.foreach = "inputs.docs"
                    $0.when = "item.lang == 'xx'"
                },
            ],
            outputs: [PipelineOutput(name: "list", template: "{{#steps.translate.outputs}}{{number}}:{{output}};{{/steps.translate.outputs}}")])
        func doc(_ lang: String, _ text: String) -> JSONValue { .object([JSONMember("lang", .string(lang)), JSONMember("text", .string(text))]) }
        let inputs = JSONValue.object([JSONMember("docs", .array([doc("fr", "bonjour"), doc("en", "hello"), doc("de", "hallo")]))])
        let (result, runner, _) = try run(pipeline, inputs: inputs, box: box) { PipelineStepAnswer(output: $0.prompt!.uppercased()) }
        #expect(result.status == "succeeded", "\(result.error ?? "")")
        #expect(runner.started.sorted() == ["translate[0]", "translate[2]"])
        #expect(result.steps["translate[1]"]?.status == "skipped")
        #expect(result.outputs.first?.value == "1:TRANSLATE BONJOUR;3:TRANSLATE HALLO;")
        #expect(result.steps["none"]?.status == "skipped", "no item passed: the step is skipped")
    }

    @Test func aStop_letsRunningStepsFinish_andFailsTheRun_onlyIfWorkWasLeft() throws {
        for stopAt in ["a", "b"] {
            let box = try StoreBox()
            let pipeline = PipelineDefinition(name: "stop", steps: [Self.step("a", "a"), Self.step("b", "b", needs: ["a"])])
            try box.store.startPipelineRun(StoredPipelineRun(runId: "r_test", pipeline: "stop", file: "/tmp/p.json", definition: [],
                                                             inputs: .object([]), status: "running", startedAt: 1))
            let loop = try EventLoop()
            var executor: PipelineExecutor?
            let runner = ScriptedRunner(loop: loop) { request in
                // A signal arrives while this step runs.
                if request.step.id == stopAt { executor?.stop(reason: "interrupted") }
                return PipelineStepAnswer(output: request.step.id.uppercased())
            }
            executor = PipelineExecutor(pipeline: pipeline, runId: "r_test", inputs: .object([]), store: box.store, runner: runner, loop: loop,
                                        clock: SystemWallClock(), logger: Logger(label: "test"))
            var result: PipelineRunResult?
            executor?.start { result = $0 }
            loop.run()
            try loop.close()
            let ended = try #require(result)
            if stopAt == "a" {
                #expect(runner.started == ["a"], "b is not started after the stop")
                #expect(ended.steps["a"]?.status == "succeeded", "the running step finished and was checkpointed")
                #expect(ended.status == "failed" && ended.error == "interrupted before b ran")
            } else {
                #expect(runner.started == ["a", "b"])
                #expect(ended.status == "succeeded", "nothing was left to run: \(ended.error ?? "")")
            }
        }
    }

    @Test func foreachMerges_areTheMediators_andConcatKeepsItemOrder() {
        func item(_ i: Int, _ output: String, _ score: Double?) -> StoredPipelineStep {
            StoredPipelineStep(key: "s[\(i)]", stepId: "s", item: i, status: "succeeded", output: output, score: score, startedAt: 0, finishedAt: 0)
        }
        let items = [item(0, "Spam.", 0.4), item(1, "ham", 0.9), item(2, "spam", 0.5), item(3, "", nil)]
        #expect(PipelineExecutor.merge(items, strategy: nil) == "Spam.\n\nham\n\nspam\n\n")
        #expect(PipelineExecutor.merge(items, strategy: .vote) == "spam", "equivalent answers vote together; the best-scored speaks for them")
        #expect(PipelineExecutor.merge(items, strategy: .best) == "ham")
        #expect(PipelineExecutor.merge([item(0, " ", nil), item(1, "x", nil)], strategy: .firstSuccess) == "x", "a blank answer is no answer")
    }

    @Test func aFailedAttempt_isRetried_andTheRunSucceeds() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(name: "retry", steps: [
            Self.step("flaky", "x") { $0.retry = StepRetry(maxAttempts: 3, backoffMs: 1) },
        ])
        var events: [String] = []
        let (result, runner, log) = try run(pipeline, box: box) { request in
            request.attempt < 3 ? PipelineStepAnswer(output: nil, error: "upstream 502 (\(request.attempt))") : PipelineStepAnswer(output: "ok")
        }
        for case .retrying(let key, let attempt, let error, _) in log { events.append("\(key) \(attempt) \(error)") }
        #expect(result.status == "succeeded")
        #expect(runner.started == ["flaky", "flaky", "flaky"])
        #expect(events == ["flaky 1 upstream 502 (1)", "flaky 2 upstream 502 (2)"])
        #expect(result.steps["flaky"]?.attempts == 3)
    }

    @Test func aStepThatFailsItsRetries_failsTheRun_andNothingAfterItStarts() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(name: "fail", steps: [
            Self.step("a", "a"),
            Self.step("b", "b", needs: ["a"]) { $0.retry = StepRetry(maxAttempts: 2, backoffMs: 1) },
            Self.step("c", "c", needs: ["b"]),
        ])
        let (result, runner, _) = try run(pipeline, box: box) { request in
            request.step.id == "b" ? PipelineStepAnswer(output: nil, error: "no handler serves kind general") : PipelineStepAnswer(output: "fine")
        }
        #expect(result.status == "failed")
        #expect(result.error == "step \"b\" failed: no handler serves kind general after 2 attempts")
        #expect(!runner.started.contains("c"))
        #expect(try box.store.pipelineRun("r_test")?.status == "failed")
    }

    @Test func aHungAttempt_timesOut() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(name: "hang", steps: [Self.step("slow", "x") { $0.timeoutMs = 20 }])
        let (result, _, _) = try run(pipeline, box: box) { _ in nil }
        #expect(result.status == "failed")
        #expect(result.steps["slow"]?.error == "timed out after 20 ms")
    }

    @Test func jsonOutput_isParsedForLaterSteps_andANonJSONAnswerFails() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(name: "json", steps: [
            Self.step("extract", "x") { $0.output = StepOutputSpec(format: .json) },
            Self.step("use", "label={{steps.extract.json.label}}", needs: ["extract"]) { $0.when = "steps.extract.json.score > 0.5" },
        ])
        let (result, runner, _) = try run(pipeline, box: box) { request in
            PipelineStepAnswer(output: request.step.id == "extract" ? "Here you go:\n```json\n{\"label\": \"spam\", \"score\": 0.9}\n```" : request.prompt!)
        }
        #expect(result.status == "succeeded")
        #expect(runner.requests.last?.prompt == "label=spam")
        #expect(result.steps["extract"]?.output == "{\"label\":\"spam\",\"score\":0.9}")

        let box2 = try StoreBox()
        let (bad, _, _) = try run(pipeline, box: box2) { _ in PipelineStepAnswer(output: "not json at all") }
        #expect(bad.status == "failed")
        #expect(bad.steps["extract"]?.error == "the answer is not JSON (output.format is json)")
    }

    @Test func aResumedRun_reusesFinishedSteps_andRunsOnlyTheRest() throws {
        let box = try StoreBox()
        let pipeline = PipelineDefinition(
            name: "resume", inputs: [PipelineInput(name: "items", type: .array)],
            steps: [
                Self.step("a", "a"),
                Self.step("each", "{{item}}", needs: ["a"]) { $0.foreach = "inputs.items" },
                Self.step("z", "z {{steps.a.output}} {{steps.each.output}}", needs: ["each"]),
            ])
        let inputs = JSONValue.object([JSONMember("items", .array([.string("x"), .string("y"), .string("w")]))])
        // First process: item 1 keeps failing, so the run fails after a and items 0 and 2 finished.
        let (first, _, _) = try run(pipeline, inputs: inputs, box: box) { request in
            request.item == 1 ? PipelineStepAnswer(output: nil, error: "boom") : PipelineStepAnswer(output: "\(request.prompt!)!")
        }
        #expect(first.status == "failed")
        // Second process: only item 1 and z run.
        let checkpoints = try box.store.pipelineSteps("r_test")
        #expect(checkpoints["each[1]"]?.status == "failed")
        try box.store.reopenPipelineRun("r_test")
        let (second, runner, events) = try run(pipeline, inputs: inputs, box: box, checkpoints: try box.store.pipelineSteps("r_test")) { request in
            PipelineStepAnswer(output: "\(request.prompt!)!")
        }
        #expect(second.status == "succeeded", "\(second.error ?? "")")
        #expect(runner.started == ["each[1]", "z"])
        #expect(events.filter { if case .reused = $0 { true } else { false } }.count == 3)
        #expect(second.outputs.first?.value == "z a! x!\n\ny!\n\nw!!")
    }
}
