import ChimeraCore
import Testing
@testable import ChimeraRuntime

@Suite struct RoutingBenchmarkTests {
    @Test func apgr_isTheAreaUnderTheUpperEnvelope() {
        #expect(RoutingBenchmark.apgr([]) == 0.5, "the diagonal: what mixing the two extremes gives")
        // (0,0) → (0.5,1) → (1,1): 0.25 + 0.5.
        #expect(abs(RoutingBenchmark.apgr([(0.5, 1)]) - 0.75) < 1e-12)
        #expect(RoutingBenchmark.apgr([(0.5, 0.2)]) == 0.5, "a point under the diagonal adds nothing")
        // Points under the hull of others are ignored; the envelope is concave.
        #expect(abs(RoutingBenchmark.apgr([(0.5, 1), (0.25, 0.4), (0.75, 0.9)]) - 0.75) < 1e-12)
    }

    @Test func theWorkload_andEveryPolicy_areDeterministicBySeed() {
        let bench = RoutingBenchmark.standard
        #expect(bench.report(tasks: 60, seed: 7) == bench.report(tasks: 60, seed: 7))
        #expect(bench.report(tasks: 60, seed: 7) != bench.report(tasks: 60, seed: 8))
        let tasks = bench.generate(tasks: 200, seed: 3)
        let external = bench.run(tasks) { _, _ in true }
        #expect(abs(external.quality - tasks.map(\.externalQuality).reduce(0, +) / 200) < 1e-12)
        #expect(external.externalShare == 1 && bench.run(tasks) { _, _ in false }.cost == 0)
        // The prompts' visible complexity follows the hidden difficulty the generator used.
        let agree = tasks.filter { ComplexityEstimator.estimate($0.prompt).bucket == $0.difficulty }.count
        #expect(agree == tasks.count, "\(agree) of \(tasks.count) prompts land in their difficulty's bucket")
    }

    /// The figures docs/BENCHMARKS.md records, for the default seed: the issue's goal.
    @Test func jhade_reachesTheGoal_onTheDefaultWorkload() {
        let report = RoutingBenchmark.standard.report(tasks: 300, seed: 1)
        #expect((report["quality_vs_oracle"]?.numberValue ?? 0) >= 0.97, "\(report.serialized)")
        #expect((report["cost_vs_oracle"]?.numberValue ?? 9) <= 1.05)
        let apgr = report["apgr"]?.numberValue ?? 0
        guard case .object(let baselines)? = report["baselines"] else { Issue.record("no baselines"); return }
        #expect(baselines.map(\.key) == ["always_external", "always_internal", "random_equal_cost", "best_static_threshold"])
        for baseline in baselines { #expect(apgr > (baseline.value["apgr"]?.numberValue ?? 1), "\(baseline.key)") }
        #expect(report["goal_met"] == .bool(true))
    }
}
