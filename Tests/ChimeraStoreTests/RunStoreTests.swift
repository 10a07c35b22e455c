import ChimeraCore
import Foundation
import Testing
@testable import ChimeraStore

@Suite struct RunStoreTests {
    func task(_ id: String, at: EpochMillis = 1_795_953_600_000, candidates: [StoredCandidate] = []) -> StoredTask {
        StoredTask(taskId: id, at: at, kind: "summarize", agent: "default", prompt: "p", complexity: 0.1, bucket: 0, minQuality: 0.6,
                   choice: "internal", arm: "internal:h", shadowArm: nil, learning: true,
                   decision: .object([JSONMember("task_id", .string(id))]), output: "answer", merge: "best", status: "ok", candidates: candidates)
    }

    @Test func aTask_roundTrips_withItsCandidates_andAPrefixFindsIt() throws {
        try withTemporaryDirectory(prefix: "runs") { dir in
            let store = try RunStore(path: dir + "/home/runs.sqlite")
            #expect(try mode(of: dir + "/home/runs.sqlite") == 0o600)
            let candidates = [
                StoredCandidate(candidate: Candidate(arm: .internal("h"), target: "h", output: "answer", latencyMs: 12, costUSD: 0), chosen: true,
                                score: 0.8, passed: true, scoreDetail: .object([JSONMember("explanation", .string("0.80 = format 1.00×1"))])),
                StoredCandidate(candidate: Candidate(arm: .external, target: "m:free", output: "", errorKind: "timeout", errorMessage: "slow",
                                                     latencyMs: 900, shadow: true), chosen: false, costIsEstimate: false, quotaRequests: 2),
            ]
            let stored = task("t_abc123", candidates: candidates)
            try store.record(stored, observations: [])
            #expect(try store.task("t_abc123") == stored)
            #expect(try store.task("t_abc") == stored, "a unique prefix")
            #expect(try store.task("t_zzz") == nil)
            #expect(try store.recentTaskIds(limit: 5) == ["t_abc123"])
            #expect(try store.tasks(since: 0, kind: "other").isEmpty)
            // The same id twice is refused, naming the problem; nothing half-written remains.
            do {
                try store.record(stored, observations: [StatsObservation(key: StatsKey(kind: "summarize", bucket: 0, arm: .external), score: 1, passed: true, latencyMs: 1, costUSD: nil)])
                Issue.record("stored a duplicate task")
            } catch {
                #expect("\(error)".contains("already stored"))
            }
            #expect(try store.allStatistics().isEmpty, "the failed transaction learned nothing")
        }
    }

    @Test func learningFromSeveralProcesses_losesNoObservation() throws {
        try withTemporaryDirectory(prefix: "runs") { dir in
            let path = dir + "/runs.sqlite"
            _ = try RunStore(path: path)
            let key = StatsKey(kind: "summarize", bucket: 1, arm: .internal("h"))
            let threads = 6, perThread = 20
            let done = DispatchGroup()
            for t in 0..<threads {
                done.enter()
                Thread {
                    defer { done.leave() }
                    // Its own connection, as another process would have.
                    guard let store = try? RunStore(path: path) else { return }
                    for i in 0..<perThread {
                        let passed = i % 2 == 0
                        try? store.record(task("t\(t)-\(i)"), observations: [StatsObservation(key: key, score: passed ? 1 : 0, passed: passed, latencyMs: 10, costUSD: 0.001)])
                    }
                }.start()
            }
            done.wait()
            let stats = try #require(try RunStore(path: path).learned(kind: "summarize", bucket: 1)[.internal("h")])
            #expect(stats.count == threads * perThread)
            #expect(stats.alpha == Double(threads * perThread / 2) && stats.beta == Double(threads * perThread / 2))
            #expect(abs(stats.meanScore - 0.5) < 1e-9)
            #expect(abs(stats.totalCostUSD - 0.12) < 1e-9)
            #expect(try RunStore(path: path).tasks(since: 0).count == threads * perThread)
        }
    }
}
