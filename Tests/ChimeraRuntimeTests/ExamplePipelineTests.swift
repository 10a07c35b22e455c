import ChimeraCore
import ChimeraSimulator
import ChimeraStore
import Testing
@testable import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Every pipeline in `Pipelines/` runs offline: against the built-in handlers, and against the
/// simulator for the steps that go to a model. What is asserted is what a user reads.
@Suite("example pipelines", .serialized, .timeLimit(.minutes(4)))
struct ExamplePipelineTests {
    let helpers = AskTests()

    static func pipeline(_ name: String) -> String { Paths.packageRoot + "/Pipelines/" + name }

    func json(_ run: FinishedRun) throws -> JSONValue {
        try JSONParser.parse(run.stdoutText)
    }

    func output(_ document: JSONValue, _ name: String) -> String? { document["outputs"]?[name]?.stringValue }

    func requests(_ sim: OpenRouterSimulator) -> Int { sim.stats().accounts.values.map(\.requests).reduce(0, +) }

    @Test func everyExample_isValid() async throws {
        let box = KeysSandbox(config: "{}")
        let files = try FileIO.directoryEntries(Paths.packageRoot + "/Pipelines").filter { $0.hasSuffix(".json") && $0 != "pipeline.schema.json" }.sorted()
        #expect(files.count >= 4)
        let run = try await helpers.chimera(["validate"] + files.map(Self.pipeline), environment: box.environment())
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        #expect(run.stdoutText.split(separator: "\n").count == files.count)
    }

    @Test func newsSummary_runsOnTheBuiltInHandlers_withNoKeyAndNoNetwork() async throws {
        let box = KeysSandbox(config: #"{"keys": {"read_environment": false}}"#)
        let run = try await helpers.chimera(["run", Self.pipeline("news-summary.json"), "--input-file", "articles=\(Self.pipeline("data/articles.txt"))",
                                             "--input", "style=structured", "--json"], environment: box.environment())
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let document = try json(run)
        let digest = try #require(output(document, "digest"))
        #expect(digest.hasPrefix("## Article 1\nSummary: The city council approved a new budget"), "\(digest)")
        #expect(digest.contains("## Article 3\n") && !digest.contains("## Article 4"))
        #expect(digest.components(separatedBy: "Key points:").count == 4, "the structured style, once per article")
        #expect(output(document, "sentiment") == "- Article 1: neutral\n- Article 2: neutral\n- Article 3: positive")
        #expect(output(document, "key_points")?.hasPrefix("- Article 1: city council approved") == true)
        #expect(output(document, "overview")?.hasPrefix("The city council approved") == true)
        // Every item of each fan-out ran on its handler; the overview was routed by JHADE to the summarizer.
        guard case .array(let steps)? = document["steps"] else { Issue.record("no steps"); return }
        #expect(steps.filter { $0["key"]?.stringValue?.hasPrefix("summaries[") == true }.count == 3)
        #expect(steps.first { $0["key"]?.stringValue == "overview" }?["route"]?.stringValue == "internal:text.summarize")
    }

    @Test func researchReport_draftsCritiquesAndRevises_againstTheSimulator() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: AskTests.config())
        let run = try await helpers.chimera(["run", Self.pipeline("research-report.json"), "--input", "topic=green tea", "--input", "words=120", "--json"],
                                            environment: helpers.environment(box, sim))
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let document = try json(run)
        // The simulator echoes prompts, so each step's answer shows what it was given: the
        // draft was written from the research, the critique saw both, and the revision ran
        // because the critique's text asks for one.
        let report = try #require(output(document, "report"))
        #expect(report.hasPrefix("Simulated reply to: Revise the report to address every point of the critique. Keep it about 120 words."), "\(report)")
        #expect(report.contains("Report:\nSimulated reply to: Write a report of about 120 words on green tea for a general audience."))
        #expect(output(document, "critique")?.hasPrefix("Simulated reply to: Critique this report against the facts it was written from.") == true)
        guard case .array(let steps)? = document["steps"] else { Issue.record("no steps"); return }
        #expect(steps.map { $0["key"]?.stringValue ?? "" } == ["research", "draft", "critique", "revise"])
        #expect(steps.allSatisfy { $0["status"]?.stringValue == "succeeded" })
        #expect(requests(sim) >= 4, "one call per step at least (the creative agent asks for several drafts)")
        await sim.stop()
    }

    @Test func ticketTriage_rulesAndASelfConsistentVote_andAReplyForANegativeTicket() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: AskTests.config())
        let ticket = "I was charged twice and I want a refund of the payment. This is terrible and I am angry."
        let run = try await helpers.chimera(["run", Self.pipeline("ticket-triage.json"), "--input", "ticket=\(ticket)", "--json",
                                             "--agents", Paths.packageRoot + "/Agents"], environment: helpers.environment(box, sim))
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let document = try json(run)
        #expect(output(document, "rules_label") == "billing")
        #expect(output(document, "sentiment") == "negative")
        #expect(output(document, "label")?.hasPrefix("Simulated reply to: Classify this support ticket") == true)
        #expect(output(document, "reply")?.contains("Draft a short, apologetic first reply") == true, "the reply step ran: the ticket is negative")
        // The reasoning agent (Agents/reasoning.json) asked for 5 samples and voted; the reply was one more call.
        #expect(requests(sim) == 6)
        guard case .array(let steps)? = document["steps"] else { Issue.record("no steps"); return }
        let vote = steps.first { $0["key"]?.stringValue == "vote" }
        #expect(vote?["route"]?.stringValue == "external")
        #expect(run.stderrText.contains("vote: sampling 5 answers, merged with vote (self-consistency)"), "\(run.stderrText)")
        await sim.stop()
    }

    @Test func costAwareSummary_stopsAtTheOfflineTier_whenItPassesTheBar() async throws {
        let sim = OpenRouterSimulator(config: AskTests.simulatorConfig())
        _ = try await sim.start()
        let box = KeysSandbox(config: AskTests.config())
        let text = "Tea is a drink made from leaves. It comes from China. People drink it hot or cold. Green tea is not fermented."
        let run = try await helpers.chimera(["run", Self.pipeline("cost-aware-summary.json"), "--input", "text=\(text)", "--json",
                                             "--agents", Paths.packageRoot + "/Agents"], environment: helpers.environment(box, sim))
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let document = try json(run)
        guard case .array(let steps)? = document["steps"] else { Issue.record("no steps"); return }
        #expect(steps.first { $0["key"]?.stringValue == "summary" }?["route"]?.stringValue == "internal:text.summarize")
        #expect(requests(sim) == 0, "the internal tier passed the bar: no model was asked")
        #expect(output(document, "summary")?.hasPrefix("Tea is a drink made from leaves.") == true)
        #expect(output(document, "stats")?.contains("\"words\"") == true)
        await sim.stop()
    }
}
