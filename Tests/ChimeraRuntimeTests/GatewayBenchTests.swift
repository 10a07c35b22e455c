import ChimeraCore
import Testing
@testable import ChimeraRuntime

/// `chimera bench gateway` runs end to end (briefly): the direct client (in its own process, or
/// on the simulator's loops) and Chimera's whole path in alternating slices, with every figure
/// the issue names. Numbers are not asserted: a test is not a benchmark.
@Suite("bench gateway", .serialized, .timeLimit(.minutes(2)))
struct GatewayBenchTests {
    @Test(arguments: ["own-process", "in-process"])
    func aShortRun_reportsEveryFigure_withNoFailure(direct: String) async throws {
        let box = KeysSandbox(config: "{}")
        let run = try await AskTests().chimera(["bench", "gateway", "--json", "--seconds", "1", "--rate", "40", "--warmup", "5", "--direct", direct],
                                               environment: box.environment())
        #expect(run.status == ChildExitStatus(code: 0, signal: 0), "\(run.stderrText)")
        let report = try JSONParser.parse(run.stdoutText)
        for field in ["rps", "direct_p50_us", "direct_p99_us", "chimera_p50_us", "chimera_p99_us", "added_p50_us", "added_p99_us"] {
            #expect(report[field]?.numberValue != nil, "missing \(field)")
        }
        #expect(report["requests"]?.numberValue == 40)
        #expect(report["failures"]?.numberValue == 0)
        #expect((report["direct_p50_us"]?.numberValue ?? 0) > 0)
    }
}
