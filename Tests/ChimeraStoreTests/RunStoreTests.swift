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

/// Chat sessions and turns in `runs.sqlite` (migration `v2-chat`).
@Suite struct ChatStoreTests {
    @Test func aSession_resumesByName_keepsItsTurnsInOrder_andNewArchivesIt() throws {
        try withTemporaryDirectory(prefix: "chat") { dir in
            let path = dir + "/home/runs.sqlite"
            let store = try RunStore(path: path)
            let (created, resumed) = try store.openChatSession(named: "default", fresh: false, agent: "default", route: "auto", models: [], now: 1_000)
            #expect(!resumed && created.summary.isEmpty && created.summarizedThrough == 0)
            let stored = try store.appendChatTurns(sessionId: created.id, [
                ChatTurnRecord(role: "user", text: "Hi", at: 1_001),
                ChatTurnRecord(role: "assistant", text: "Hello", route: "external", target: "m:free", taskId: "t_1", tokens: 12,
                               latencyMs: 40, costUSD: 0, score: 0.9, at: 1_002),
            ])
            #expect(stored.map(\.seq) == [1, 2])
            var settings = created
            settings.route = "internal"
            settings.models = ["a/b:free", "c/d"]
            try store.saveChatSettings(settings, now: 1_003)
            try store.saveChatSummary(sessionId: created.id, summary: "They greeted.", through: 2, now: 1_004)

            // Another process (a new store on the same file) resumes it as it was left.
            let again = try RunStore(path: path)
            let (session, wasResumed) = try again.openChatSession(named: "default", fresh: false, agent: "x", route: "auto", models: [], now: 2_000)
            #expect(wasResumed && session.id == created.id)
            #expect(session.route == "internal" && session.models == ["a/b:free", "c/d"] && session.agent == "default")
            #expect(session.summary == "They greeted." && session.summarizedThrough == 2)
            #expect(try again.chatTurns(sessionId: session.id) == stored)
            #expect(try again.chatTurns(sessionId: session.id, after: 2).isEmpty)
            #expect(try again.appendChatTurns(sessionId: session.id, [ChatTurnRecord(role: "user", text: "More", at: 2_001)]).first?.seq == 3)

            let stats = ChatStats(try again.chatTurns(sessionId: session.id))
            #expect(stats.turns == 1 && stats.routes == ["external": 1] && stats.tokens == 12 && stats.meanScore == 0.9)

            // --new: a fresh session of the same name; the old one and its turns are kept, archived.
            let (fresh, _) = try again.openChatSession(named: "default", fresh: true, agent: "default", route: "auto", models: [], now: 3_000)
            #expect(fresh.id != session.id && fresh.summary.isEmpty)
            #expect(try again.chatSession(named: "default")?.id == fresh.id)
            #expect(try again.chatTurns(sessionId: fresh.id).isEmpty)
            #expect(try again.chatTurns(sessionId: session.id).count == 3)
        }
    }
}
