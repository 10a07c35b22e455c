import ChimeraCore
import Foundation
import GRDB

/// One task as stored: its decision (with inputs and reasons) and its merged answer.
public struct StoredTask: Sendable, Equatable {
    public var taskId: String
    public var at: EpochMillis
    public var kind: String
    public var agent: String
    public var prompt: String
    public var complexity: Double
    public var bucket: Int
    public var minQuality: Double
    /// `internal`, `external`, `internal_fallback`, `wait` or `fail`.
    public var choice: String
    /// The arm that answered (`internal:NAME`, `external`), if any.
    public var arm: String?
    public var shadowArm: String?
    public var learning: Bool
    /// ``Decision/json(input:)``.
    public var decision: JSONValue
    public var output: String?
    public var merge: String?
    /// `ok` or `failed`.
    public var status: String
    public var candidates: [StoredCandidate]

    public init(taskId: String, at: EpochMillis, kind: String, agent: String, prompt: String, complexity: Double, bucket: Int,
                minQuality: Double, choice: String, arm: String?, shadowArm: String?, learning: Bool, decision: JSONValue,
                output: String?, merge: String?, status: String, candidates: [StoredCandidate]) {
        self.taskId = taskId
        self.at = at
        self.kind = kind
        self.agent = agent
        self.prompt = prompt
        self.complexity = complexity
        self.bucket = bucket
        self.minQuality = minQuality
        self.choice = choice
        self.arm = arm
        self.shadowArm = shadowArm
        self.learning = learning
        self.decision = decision
        self.output = output
        self.merge = merge
        self.status = status
        self.candidates = candidates
    }
}

/// One candidate answer of a task, with its score.
public struct StoredCandidate: Sendable, Equatable {
    public var candidate: Candidate
    /// The route JHADE chose (false for a shadow run).
    public var chosen: Bool
    public var costIsEstimate: Bool
    /// Free-model requests it used (each draws on an account's daily quota).
    public var quotaRequests: Int
    public var score: Double?
    public var passed: Bool?
    /// The combined score's parts, as JSON (scorer, weight, score, explanation).
    public var scoreDetail: JSONValue

    public init(candidate: Candidate, chosen: Bool, costIsEstimate: Bool = false, quotaRequests: Int = 0, score: Double? = nil,
                passed: Bool? = nil, scoreDetail: JSONValue = .null) {
        self.candidate = candidate
        self.chosen = chosen
        self.costIsEstimate = costIsEstimate
        self.quotaRequests = quotaRequests
        self.score = score
        self.passed = passed
        self.scoreDetail = scoreDetail
    }
}

/// One observation for JHADE's statistics.
public struct StatsObservation: Sendable, Equatable {
    public var key: StatsKey
    public var score: Double
    public var passed: Bool
    public var latencyMs: Int64
    public var costUSD: Double?

    public init(key: StatsKey, score: Double, passed: Bool, latencyMs: Int64, costUSD: Double?) {
        self.key = key
        self.score = score
        self.passed = passed
        self.latencyMs = latencyMs
        self.costUSD = costUSD
    }
}

/// Tasks, their decisions and candidates, and what JHADE learned: `$CHIMERA_HOME/runs.sqlite`
/// (mode 0600, WAL, named migrations, shared safely by several processes like the ledger).
///
/// A task and the statistics its scores update are written in one transaction, so a report
/// never counts a task whose learning was lost, or the reverse; the statistics are read and
/// updated inside that transaction, so two processes learning at once lose no observation.
public final class RunStore: Sendable {
    public static let fileName = "runs.sqlite"
    public let path: String
    private let dbQueue: DatabaseQueue

    public init(path: String) throws(RunStoreError) {
        self.path = path
        do {
            try QuotaLedger.prepareFile(at: path)
        } catch {
            throw RunStoreError(path: path, operation: "open", message: error.message)
        }
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(QuotaLedger.busyTimeoutSeconds)
            dbQueue = try SQLiteFile.openQueue(path: path, configuration: configuration, migrator: Self.migrator)
        } catch {
            throw RunStoreError(error, path: path, operation: "open")
        }
    }

    // MARK: Learning

    /// The observations for `kind` in `bucket`, by arm (no priors in them).
    public func learned(kind: String, bucket: Int) throws(RunStoreError) -> [RouteArm: RouteStats] {
        try read("learned") { db in
            var result: [RouteArm: RouteStats] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT arm, alpha, beta, count, mean_score, m2, mean_latency_ms, total_cost_usd
                FROM route_stats WHERE kind = ? AND bucket = ?
                """, arguments: [kind, bucket]) {
                guard let arm = RouteArm(row[0] as String) else { continue }
                result[arm] = RouteStats(alpha: row[1], beta: row[2], count: row[3], meanScore: row[4], m2: row[5],
                                         meanLatencyMs: row[6], totalCostUSD: row[7])
            }
            return result
        }
    }

    /// Every statistic, for `chimera report` and tests.
    public func allStatistics() throws(RunStoreError) -> [StatsKey: RouteStats] {
        try read("allStatistics") { db in
            var result: [StatsKey: RouteStats] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, bucket, arm, alpha, beta, count, mean_score, m2, mean_latency_ms, total_cost_usd FROM route_stats") {
                guard let arm = RouteArm(row[2] as String) else { continue }
                result[StatsKey(kind: row[0], bucket: row[1], arm: arm)] = RouteStats(alpha: row[3], beta: row[4], count: row[5], meanScore: row[6],
                                                                                   m2: row[7], meanLatencyMs: row[8], totalCostUSD: row[9])
            }
            return result
        }
    }

    // MARK: Tasks

    /// Stores `task` with its candidates and applies `observations` to the statistics, in one transaction.
    public func record(_ task: StoredTask, observations: [StatsObservation]) throws(RunStoreError) {
        try write("record") { db in
            try db.execute(sql: """
                INSERT INTO task (task_id, at, kind, agent, prompt, complexity, bucket, min_quality, choice, arm, shadow_arm,
                                  learning, decision_json, output, merge_strategy, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [task.taskId, task.at, task.kind, task.agent, task.prompt, task.complexity, task.bucket, task.minQuality,
                                 task.choice, task.arm, task.shadowArm, task.learning, task.decision.serialized, task.output, task.merge, task.status])
            for (index, stored) in task.candidates.enumerated() {
                let c = stored.candidate
                try db.execute(sql: """
                    INSERT INTO candidate (task_id, idx, arm, target, chosen, shadow, ok, error_kind, error_message, latency_ms, cost_usd,
                                           cost_is_estimate, tokens, quota_requests, score, passed, score_json, output)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [task.taskId, index, c.arm.description, c.target, stored.chosen, c.shadow, c.succeeded, c.errorKind,
                                     c.errorMessage, c.latencyMs, c.costUSD, stored.costIsEstimate, c.tokens, stored.quotaRequests,
                                     stored.score, stored.passed, stored.scoreDetail.serialized, c.output])
            }
            for o in observations {
                let current = try Row.fetchOne(db, sql: """
                    SELECT alpha, beta, count, mean_score, m2, mean_latency_ms, total_cost_usd FROM route_stats
                    WHERE kind = ? AND bucket = ? AND arm = ?
                    """, arguments: [o.key.kind, o.key.bucket, o.key.arm.description]).map {
                    RouteStats(alpha: $0[0], beta: $0[1], count: $0[2], meanScore: $0[3], m2: $0[4], meanLatencyMs: $0[5], totalCostUSD: $0[6])
                } ?? .observed
                let next = current.updated(score: o.score, passed: o.passed, latencyMs: o.latencyMs, costUSD: o.costUSD)
                try db.execute(sql: """
                    INSERT INTO route_stats (kind, bucket, arm, alpha, beta, count, mean_score, m2, mean_latency_ms, total_cost_usd, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (kind, bucket, arm) DO UPDATE SET alpha = excluded.alpha, beta = excluded.beta, count = excluded.count,
                        mean_score = excluded.mean_score, m2 = excluded.m2, mean_latency_ms = excluded.mean_latency_ms,
                        total_cost_usd = excluded.total_cost_usd, updated_at = excluded.updated_at
                    """, arguments: [o.key.kind, o.key.bucket, o.key.arm.description, next.alpha, next.beta, next.count, next.meanScore,
                                     next.m2, next.meanLatencyMs, next.totalCostUSD, task.at])
            }
        }
    }

    /// The task with this id, or the only task whose id starts with it; nil when none (or several) match.
    public func task(_ id: String) throws(RunStoreError) -> StoredTask? {
        try read("task") { db in
            var rows = try Row.fetchAll(db, sql: "SELECT * FROM task WHERE task_id = ?", arguments: [id])
            if rows.isEmpty {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM task WHERE substr(task_id, 1, ?) = ? LIMIT 2", arguments: [id.count, id])
            }
            guard rows.count == 1 else { return nil }
            return try Self.task(from: rows[0], db)
        }
    }

    /// Tasks since `since` (oldest first), with their candidates, optionally of one kind.
    public func tasks(since: EpochMillis, kind: String? = nil) throws(RunStoreError) -> [StoredTask] {
        try read("tasks") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT * FROM task WHERE at >= ? AND (? IS NULL OR kind = ?) ORDER BY at, task_id
                """, arguments: [since, kind, kind])
            return try rows.map { try Self.task(from: $0, db) }
        }
    }

    /// The most recent task ids (newest first), for `chimera explain` without an id.
    public func recentTaskIds(limit: Int) throws(RunStoreError) -> [String] {
        try read("recentTaskIds") { db in
            try String.fetchAll(db, sql: "SELECT task_id FROM task ORDER BY at DESC, rowid DESC LIMIT ?", arguments: [limit])
        }
    }

    private static func task(from row: Row, _ db: Database) throws -> StoredTask {
        let id: String = row["task_id"]
        let candidates = try Row.fetchAll(db, sql: "SELECT * FROM candidate WHERE task_id = ? ORDER BY idx", arguments: [id]).map { c in
            let arm = RouteArm(c["arm"] as String) ?? .external
            let candidate = Candidate(arm: arm, target: c["target"], output: c["output"] ?? "", errorKind: c["error_kind"], errorMessage: c["error_message"],
                                      latencyMs: c["latency_ms"], costUSD: c["cost_usd"], tokens: c["tokens"], shadow: c["shadow"])
            return StoredCandidate(candidate: candidate, chosen: c["chosen"], costIsEstimate: c["cost_is_estimate"], quotaRequests: c["quota_requests"],
                                   score: c["score"], passed: c["passed"], scoreDetail: (try? JSONParser.parse(c["score_json"] as String? ?? "null")) ?? .null)
        }
        return StoredTask(taskId: id, at: row["at"], kind: row["kind"], agent: row["agent"], prompt: row["prompt"], complexity: row["complexity"],
                          bucket: row["bucket"], minQuality: row["min_quality"], choice: row["choice"], arm: row["arm"], shadowArm: row["shadow_arm"],
                          learning: row["learning"], decision: (try? JSONParser.parse(row["decision_json"] as String)) ?? .null,
                          output: row["output"], merge: row["merge_strategy"], status: row["status"], candidates: candidates)
    }

    // MARK: Plumbing

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-runs") { db in
            try db.execute(sql: """
                -- One row per task: JHADE's decision (inputs, arms, reasons as JSON) and the merged answer.
                CREATE TABLE task (
                    task_id TEXT NOT NULL PRIMARY KEY,
                    at INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    agent TEXT NOT NULL,
                    prompt TEXT NOT NULL,
                    complexity REAL NOT NULL,
                    bucket INTEGER NOT NULL,
                    min_quality REAL NOT NULL,
                    choice TEXT NOT NULL,
                    arm TEXT,
                    shadow_arm TEXT,
                    learning INTEGER NOT NULL,
                    decision_json TEXT NOT NULL,
                    output TEXT,
                    merge_strategy TEXT,
                    status TEXT NOT NULL
                );
                CREATE INDEX task_at ON task (at);

                -- Every candidate answer of a task (chosen or shadow), with its cost and score.
                CREATE TABLE candidate (
                    task_id TEXT NOT NULL REFERENCES task (task_id) ON DELETE CASCADE,
                    idx INTEGER NOT NULL,
                    arm TEXT NOT NULL,
                    target TEXT NOT NULL,
                    chosen INTEGER NOT NULL,
                    shadow INTEGER NOT NULL,
                    ok INTEGER NOT NULL,
                    error_kind TEXT,
                    error_message TEXT,
                    latency_ms INTEGER NOT NULL,
                    cost_usd REAL,
                    cost_is_estimate INTEGER NOT NULL,
                    tokens INTEGER,
                    quota_requests INTEGER NOT NULL,
                    score REAL,
                    passed INTEGER,
                    score_json TEXT,
                    output TEXT,
                    PRIMARY KEY (task_id, idx)
                ) WITHOUT ROWID;

                -- JHADE's observations per (kind, complexity bucket, arm): Beta counts of passes and
                -- fails, and Welford's running mean and M2 of the score. Priors are not stored.
                CREATE TABLE route_stats (
                    kind TEXT NOT NULL,
                    bucket INTEGER NOT NULL,
                    arm TEXT NOT NULL,
                    alpha REAL NOT NULL,
                    beta REAL NOT NULL,
                    count INTEGER NOT NULL,
                    mean_score REAL NOT NULL,
                    m2 REAL NOT NULL,
                    mean_latency_ms REAL NOT NULL,
                    total_cost_usd REAL NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (kind, bucket, arm)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2-chat", migrate: createChatTables)
        PipelineRunSchema.register(in: &migrator)
        return migrator
    }

    func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(RunStoreError) -> T {
        do { return try dbQueue.read(body) } catch { throw RunStoreError(error, path: path, operation: operation) }
    }

    func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(RunStoreError) -> T {
        do { return try dbQueue.write(body) } catch { throw RunStoreError(error, path: path, operation: operation) }
    }
}

/// A failure of the run store: the file, the operation and SQLite's message.
public struct RunStoreError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var message: String

    public init(path: String, operation: String, message: String) {
        self.path = path
        self.operation = operation
        self.message = message
    }

    init(_ error: any Error, path: String, operation: String) {
        if let error = error as? RunStoreError {
            self = error
        } else if let error = error as? DatabaseError {
            let detail = error.resultCode == .SQLITE_CONSTRAINT ? "a task with this id is already stored" : (error.message ?? "SQLite error \(error.extendedResultCode.rawValue)")
            self.init(path: path, operation: operation, message: detail)
        } else {
            self.init(path: path, operation: operation, message: "\(error)")
        }
    }

    public var description: String { "run store \(path): \(operation) failed: \(message)" }
}
