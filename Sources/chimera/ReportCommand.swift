import ArgumentParser
import ChimeraCore
import ChimeraReports
import ChimeraRuntime
import ChimeraStore

/// `chimera report`: internal vs external, per task kind, from the tasks in `runs.sqlite`.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare internal handlers with external models per task kind: quality, pass rate, latency, cost, quota, head-to-head.",
        discussion: """
        Reads the tasks `chimera task` stored in $CHIMERA_HOME/runs.sqlite. Quality is the mediator's score \
        (mean with a 95% confidence interval); head-to-head counts shadowed tasks, where both routes answered. \
        --format html writes one self-contained page with charts (no network needed to open it).
        Exit status: 0 written, 2 usage error.
        """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Only tasks of the last DURATION: 30m, 12h, 7d, 4w (default: all).")
    var since: String?

    @Option(help: "Only this task kind.")
    var kind: String?

    @Option(help: "table, json, md or html.")
    var format = "table"

    @Option(help: "Write to this file instead of stdout.")
    var out: String?

    func validate() throws {
        guard ReportFormat(rawValue: format) != nil else { throw ValidationError("--format must be table, json, md or html") }
        if let since, Self.duration(since) == nil {
            throw ValidationError("--since must be a number followed by m, h, d or w (e.g. 7d), got \"\(since)\"")
        }
    }

    /// Milliseconds in `30m`, `12h`, `7d`, `4w`.
    static func duration(_ text: String) -> EpochMillis? {
        guard let unit = text.last, let n = Int64(text.dropLast()), n > 0 else { return nil }
        let ms: EpochMillis? = switch unit {
        case "m": 60_000
        case "h": 3_600_000
        case "d": 86_400_000
        case "w": 7 * 86_400_000
        default: nil
        }
        return ms.map { $0 * n }
    }

    func run() throws {
        _ = try common.bootstrapLogging()
        let home = ConfigLoader.homeDirectory(environment: ProcessEnvironment.current)
        let path = home + "/" + RunStore.fileName
        let now = SystemWallClock().now()
        let start = since.flatMap(Self.duration).map { now - $0 }
        var rows: [ReportRow] = []
        if FileIO.exists(path) {
            do {
                let store = try RunStore(path: path)
                rows = try Self.rows(store.tasks(since: start ?? 0, kind: kind))
            } catch {
                printError("\(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }
        let report = ReportBuilder.build(rows, options: ReportOptions(now: now, since: start, kind: kind))
        let text: String
        do {
            text = try ReportRenderer.render(report, as: ReportFormat(rawValue: format)!)
        } catch {
            printError("cannot render the report: \(error)")
            throw ExitCode(ExitCodes.taskFailed)
        }
        guard let out else {
            FileIO.writeAll(Array((text.hasSuffix("\n") ? text : text + "\n").utf8), fd: 1)
            return
        }
        do {
            try AtomicFile.write(Array(text.utf8), to: out, mode: 0o644)
        } catch {
            printError("\(out): cannot write the report: \(error)")
            throw ExitCode(ExitCodes.usage)
        }
        FileIO.writeAll(Array("wrote \(out) (\(rows.count) candidate\(rows.count == 1 ? "" : "s"))\n".utf8), fd: 2)
    }

    /// One report row per stored candidate.
    static func rows(_ tasks: [StoredTask]) -> [ReportRow] {
        tasks.flatMap { task in
            task.candidates.map { c in
                ReportRow(taskId: task.taskId, at: task.at + c.candidate.latencyMs, kind: task.kind, arm: c.candidate.arm, target: c.candidate.target,
                          chosen: c.chosen, succeeded: c.candidate.succeeded, score: c.score, passed: c.passed, latencyMs: c.candidate.latencyMs,
                          costUSD: c.candidate.costUSD, costIsEstimate: c.costIsEstimate, quotaRequests: c.quotaRequests)
            }
        }
    }
}
