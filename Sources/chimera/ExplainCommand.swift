import ArgumentParser
import ChimeraCore
import ChimeraRuntime
import ChimeraStore

/// `chimera explain TASK_ID`: one stored JHADE decision with its inputs, arms, reasons, and
/// what each candidate scored.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show why JHADE routed a task as it did, and how its answers scored.",
        discussion: """
        TASK_ID may be abbreviated to any unique prefix; without it, the latest task is shown. \
        Tasks are stored in $CHIMERA_HOME/runs.sqlite by `chimera task`.
        Exit status: 0 shown, 1 no such task, 2 usage error.
        """
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "The task id (default: the latest task).")
    var taskId: String?

    @Flag(help: "Print the stored decision and candidates as JSON.")
    var json = false

    func run() throws {
        _ = try common.bootstrapLogging()
        let home = ConfigLoader.homeDirectory(environment: ProcessEnvironment.current)
        let path = home + "/" + RunStore.fileName
        guard FileIO.exists(path) else {
            printError("no tasks recorded yet (\(path) does not exist); run one with `chimera task`")
            throw ExitCode(ExitCodes.taskFailed)
        }
        let task: StoredTask
        do {
            let store = try RunStore(path: path)
            let id = try taskId ?? store.recentTaskIds(limit: 1).first
            guard let id, let found = try store.task(id) else {
                printError(taskId.map { "no task \"\($0)\" (or the prefix matches several); `chimera report` lists kinds, `chimera explain` alone shows the latest" }
                           ?? "no tasks recorded yet; run one with `chimera task`")
                throw ExitCode(ExitCodes.taskFailed)
            }
            task = found
        } catch let error as RunStoreError {
            printError("\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        if json {
            printLine(JSONValue.object([
                JSONMember("decision", task.decision),
                JSONMember("prompt", .string(task.prompt)),
                JSONMember("output", task.output.map { .string($0) } ?? .null),
                JSONMember("merge", task.merge.map { .string($0) } ?? .null),
                JSONMember("status", .string(task.status)),
                JSONMember("candidates", .array(task.candidates.map { c in
                    .object([
                        JSONMember("route", .string(c.candidate.arm.description)), JSONMember("target", .string(c.candidate.target)),
                        JSONMember("chosen", .bool(c.chosen)), JSONMember("shadow", .bool(c.candidate.shadow)),
                        JSONMember("ok", .bool(c.candidate.succeeded)), JSONMember("error", c.candidate.errorKind.map { .string($0) } ?? .null),
                        JSONMember("error_message", c.candidate.errorMessage.map { .string($0) } ?? .null),
                        JSONMember("latency_ms", .number(Double(c.candidate.latencyMs))),
                        JSONMember("cost_usd", c.candidate.costUSD.map { .number($0) } ?? .null),
                        JSONMember("cost_is_estimate", .bool(c.costIsEstimate)),
                        JSONMember("score", c.score.map { .number($0) } ?? .null), JSONMember("passed", c.passed.map { .bool($0) } ?? .null),
                        JSONMember("score_detail", c.scoreDetail), JSONMember("output", .string(c.candidate.output)),
                    ])
                })),
            ]).serialized)
            return
        }
        printLine(Self.text(task))
    }

    /// The human-readable explanation.
    static func text(_ task: StoredTask) -> String {
        let d = task.decision
        var out: [String] = []
        out.append("task \(task.taskId)  kind \(task.kind)  agent \(task.agent)  at \(UTCDay.timestamp(task.at))")
        var choice = "decision: \(task.choice)"
        if let arm = task.arm { choice += " → \(arm)" }
        if let chain = d["choice"]?["chain"], case .array(let models) = chain { choice += " (\(models.compactMap(\.stringValue).joined(separator: ", ")))" }
        if let reason = d["choice"]?["reason"]?.stringValue { choice += ": \(reason)" }
        if let shadow = task.shadowArm { choice += "; shadow \(shadow)" }
        choice += task.learning ? "" : " [learning frozen]"
        out.append(choice)
        let bar = ComplexityEstimate.format(task.minQuality)
        out.append("quality bar \(bar)  prompt ≈\(d["input"]?["prompt_tokens"]?.numberValue.map { Int($0) } ?? 0) tokens: \(Self.preview(task.prompt))")
        out.append("")
        out.append("complexity \(ComplexityEstimate.format(task.complexity)) (\(["low", "medium", "high"][min(max(task.bucket, 0), 2)]))")
        if case .array(let features)? = d["complexity"]?["features"] {
            for f in features {
                guard let name = f["name"]?.stringValue, let contribution = f["contribution"]?.numberValue else { continue }
                let gap = String(repeating: " ", count: max(1, 14 - name.count))
                let detail = f["detail"]?.stringValue ?? ""
                out.append("  \(name)\(gap)\(ComplexityEstimate.format(contribution))  \(detail)")
            }
        }
        out.append("")
        var rows = [["ARM", "PRIOR", "OBSERVED", "SCORE", "P(PASS)", "COST", "UTILITY", "NOTE"]]
        if case .array(let arms)? = d["arms"] {
            for a in arms {
                let observed = a["observations"]?.numberValue.map { Int($0) } ?? 0
                let mean = a["mean_score"]?.numberValue.map { " mean \(ComplexityEstimate.format($0))" } ?? ""
                rows.append([a["arm"]?.stringValue ?? "?", a["prior"]?.stringValue ?? "", "\(observed)\(mean)",
                             a["score_estimate"]?.numberValue.map(ComplexityEstimate.format) ?? "-",
                             a["pass_estimate"]?.numberValue.map(ComplexityEstimate.format) ?? "-",
                             a["cost_usd"]?.numberValue.map(Self.usd) ?? "unknown",
                             a["utility"]?.numberValue.map(ComplexityEstimate.format) ?? "-",
                             a["ineligible"]?.stringValue.map { "cannot run: \($0)" } ?? ""])
            }
        }
        out.append(contentsOf: tableLines(rows))
        out.append("")
        out.append("reasons:")
        if case .array(let reasons)? = d["reasons"] { for r in reasons { out.append("  - \(r.stringValue ?? "")") } }
        out.append("")
        out.append("candidates:")
        for (i, c) in task.candidates.enumerated() {
            var line = "  #\(i + 1) \(c.candidate.arm) (\(c.candidate.target))\(c.candidate.shadow ? " shadow" : "")"
            if c.candidate.succeeded {
                line += " ok \(c.candidate.latencyMs) ms"
            } else {
                line += " failed: \(c.candidate.errorKind ?? "?"): \(c.candidate.errorMessage ?? "")"
            }
            if let cost = c.candidate.costUSD { line += " \(Self.usd(cost))\(c.costIsEstimate ? " (est.)" : "")" }
            if let score = c.score {
                line += "  score \(ComplexityEstimate.format(score)) \(c.passed == true ? "passes" : "below") the bar"
            }
            out.append(line)
            if let explanation = c.scoreDetail["explanation"]?.stringValue { out.append("      \(explanation)") }
            if case .array(let parts)? = c.scoreDetail["parts"] {
                for p in parts { out.append("      \(p["scorer"]?.stringValue ?? "?"): \(p["explanation"]?.stringValue ?? "")") }
            }
        }
        out.append("")
        if let output = task.output {
            out.append("answer (\(task.merge ?? "best")):")
            out.append(output)
        } else {
            out.append("no answer")
        }
        return out.joined(separator: "\n")
    }

    /// `$0` for nothing, else six decimals: `$0.000150`.
    static func usd(_ amount: Double) -> String {
        guard amount > 0 else { return "$0" }
        let micro = Int((amount * 1_000_000).rounded())
        let fraction = String(micro % 1_000_000)
        return "$\(micro / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }

    static func preview(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flat.count > 80 ? String(flat.prefix(79)) + "…" : flat
    }
}
