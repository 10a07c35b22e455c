import ChimeraCore
import Foundation
import GRDB

/// One pipeline run as stored: what ran (the file's bytes as they were), with which inputs, and
/// how it ended.
public struct StoredPipelineRun: Sendable, Equatable {
    public var runId: String
    /// The pipeline's `name`.
    public var pipeline: String
    /// The file it was read from.
    public var file: String
    /// The file's bytes when the run started: `--resume` runs this, not whatever the file holds now.
    public var definition: [UInt8]
    /// The inputs after defaults, as a JSON object.
    public var inputs: JSONValue
    /// `running`, `succeeded` or `failed`. A run whose process died stays `running`.
    public var status: String
    public var startedAt: EpochMillis
    public var finishedAt: EpochMillis?
    /// The rendered pipeline outputs, as a JSON object.
    public var outputs: JSONValue?
    public var error: String?

    public init(runId: String, pipeline: String, file: String, definition: [UInt8], inputs: JSONValue, status: String,
                startedAt: EpochMillis, finishedAt: EpochMillis? = nil, outputs: JSONValue? = nil, error: String? = nil) {
        self.runId = runId
        self.pipeline = pipeline
        self.file = file
        self.definition = definition
        self.inputs = inputs
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outputs = outputs
        self.error = error
    }
}

/// A finished step (or one item of a `foreach` step): the checkpoint `--resume` starts from.
/// Only finished work is stored, so a step that was running when the process died runs again.
public struct StoredPipelineStep: Sendable, Equatable {
    /// `ID` for a step, `ID[N]` for item N of a `foreach` step.
    public var key: String
    public var stepId: String
    public var item: Int?
    /// `succeeded`, `skipped` or `failed`.
    public var status: String
    /// The answer (a `foreach` step's row: its items' outputs merged).
    public var output: String?
    public var attempts: Int
    /// Tasks it made (`chimera explain ID`).
    public var taskIds: [String]
    /// `internal:HANDLER`, `external`, `handler`.
    public var route: String?
    /// The handler or model that answered.
    public var target: String?
    public var score: Double?
    public var costUSD: Double?
    public var tokens: Int?
    public var startedAt: EpochMillis
    public var finishedAt: EpochMillis
    public var error: String?

    public init(key: String, stepId: String, item: Int? = nil, status: String, output: String? = nil, attempts: Int = 1,
                taskIds: [String] = [], route: String? = nil, target: String? = nil, score: Double? = nil, costUSD: Double? = nil,
                tokens: Int? = nil, startedAt: EpochMillis, finishedAt: EpochMillis, error: String? = nil) {
        self.key = key
        self.stepId = stepId
        self.item = item
        self.status = status
        self.output = output
        self.attempts = attempts
        self.taskIds = taskIds
        self.route = route
        self.target = target
        self.score = score
        self.costUSD = costUSD
        self.tokens = tokens
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.error = error
    }
}

extension RunStore {
    /// Records a new run (status `running`). Refuses an id already used.
    public func startPipelineRun(_ run: StoredPipelineRun) throws(RunStoreError) {
        try write("start pipeline run") { db in
            try db.execute(sql: """
                INSERT INTO pipeline_run (run_id, pipeline, file, definition, inputs_json, status, started_at, finished_at, outputs_json, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run.runId, run.pipeline, run.file, Data(run.definition), run.inputs.serialized, run.status,
                                 run.startedAt, run.finishedAt, run.outputs?.serialized, run.error])
        }
    }

    /// Marks a run `running` again (for `--resume`) and forgets its failed steps, so they run again.
    public func reopenPipelineRun(_ runId: String) throws(RunStoreError) {
        try write("reopen pipeline run") { db in
            try db.execute(sql: "UPDATE pipeline_run SET status = 'running', finished_at = NULL, error = NULL WHERE run_id = ?", arguments: [runId])
            try db.execute(sql: "DELETE FROM pipeline_step WHERE run_id = ? AND status = 'failed'", arguments: [runId])
        }
    }

    /// Checkpoints a finished step or item (replacing an earlier row for the same key).
    public func recordPipelineStep(_ step: StoredPipelineStep, runId: String) throws(RunStoreError) {
        try write("checkpoint pipeline step") { db in
            let taskIds = JSONValue.array(step.taskIds.map { .string($0) }).serialized
            try db.execute(sql: """
                INSERT OR REPLACE INTO pipeline_step (run_id, step_key, step_id, item, status, output, attempts, task_ids, route, target,
                                                      score, cost_usd, tokens, started_at, finished_at, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [runId, step.key, step.stepId, step.item, step.status, step.output, step.attempts, taskIds, step.route,
                                 step.target, step.score, step.costUSD, step.tokens, step.startedAt, step.finishedAt, step.error])
        }
    }

    /// Records how a run ended.
    public func finishPipelineRun(_ runId: String, status: String, outputs: JSONValue?, error: String?, at: EpochMillis) throws(RunStoreError) {
        try write("finish pipeline run") { db in
            try db.execute(sql: "UPDATE pipeline_run SET status = ?, outputs_json = ?, error = ?, finished_at = ? WHERE run_id = ?",
                           arguments: [status, outputs?.serialized, error, at, runId])
        }
    }

    /// The run with `runId`, or the only one whose id starts with it; nil when none matches.
    public func pipelineRun(_ runId: String) throws(RunStoreError) -> StoredPipelineRun? {
        try read("load pipeline run") { db in
            var rows = try Row.fetchAll(db, sql: "SELECT * FROM pipeline_run WHERE run_id = ?", arguments: [runId])
            if rows.isEmpty {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM pipeline_run WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
                                        arguments: [Self.likePrefix(runId)])
                guard rows.count == 1 else { return nil }
            }
            let row = rows[0]
            let definition: Data = row["definition"]
            let outputs: String? = row["outputs_json"]
            return StoredPipelineRun(runId: row["run_id"], pipeline: row["pipeline"], file: row["file"], definition: [UInt8](definition),
                                     inputs: (try? JSONParser.parse(row["inputs_json"] as String)) ?? .object([]), status: row["status"],
                                     startedAt: row["started_at"], finishedAt: row["finished_at"],
                                     outputs: outputs.flatMap { try? JSONParser.parse($0) }, error: row["error"])
        }
    }

    /// The checkpointed steps of a run, by key.
    public func pipelineSteps(_ runId: String) throws(RunStoreError) -> [String: StoredPipelineStep] {
        try read("load pipeline steps") { db in
            var steps: [String: StoredPipelineStep] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM pipeline_step WHERE run_id = ?", arguments: [runId]) {
                let ids = (try? JSONParser.parse(row["task_ids"] as String? ?? "[]")) ?? .array([])
                var taskIds: [String] = []
                if case .array(let values) = ids { taskIds = values.compactMap(\.stringValue) }
                let step = StoredPipelineStep(key: row["step_key"], stepId: row["step_id"], item: row["item"], status: row["status"],
                                              output: row["output"], attempts: row["attempts"], taskIds: taskIds, route: row["route"],
                                              target: row["target"], score: row["score"], costUSD: row["cost_usd"], tokens: row["tokens"],
                                              startedAt: row["started_at"], finishedAt: row["finished_at"], error: row["error"])
                steps[step.key] = step
            }
            return steps
        }
    }

    /// Newest first.
    public func recentPipelineRuns(limit: Int) throws(RunStoreError) -> [(runId: String, pipeline: String, status: String, startedAt: EpochMillis)] {
        try read("list pipeline runs") { db in
            try Row.fetchAll(db, sql: "SELECT run_id, pipeline, status, started_at FROM pipeline_run ORDER BY started_at DESC LIMIT ?",
                             arguments: [limit]).map { ($0["run_id"], $0["pipeline"], $0["status"], $0["started_at"]) }
        }
    }

    static func likePrefix(_ prefix: String) -> String {
        prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
    }
}

enum PipelineRunSchema {
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-pipelines") { db in
            try db.execute(sql: """
                -- One row per `chimera run`: the pipeline file's bytes as run, the inputs, the outcome.
                CREATE TABLE pipeline_run (
                    run_id TEXT NOT NULL PRIMARY KEY,
                    pipeline TEXT NOT NULL,
                    file TEXT NOT NULL,
                    definition BLOB NOT NULL,
                    inputs_json TEXT NOT NULL,
                    status TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    outputs_json TEXT,
                    error TEXT
                );
                CREATE INDEX pipeline_run_started ON pipeline_run (started_at);

                -- Checkpoints: one row per finished step, and per finished item of a foreach step.
                CREATE TABLE pipeline_step (
                    run_id TEXT NOT NULL REFERENCES pipeline_run (run_id) ON DELETE CASCADE,
                    step_key TEXT NOT NULL,
                    step_id TEXT NOT NULL,
                    item INTEGER,
                    status TEXT NOT NULL,
                    output TEXT,
                    attempts INTEGER NOT NULL,
                    task_ids TEXT NOT NULL,
                    route TEXT,
                    target TEXT,
                    score REAL,
                    cost_usd REAL,
                    tokens INTEGER,
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER NOT NULL,
                    error TEXT,
                    PRIMARY KEY (run_id, step_key)
                ) WITHOUT ROWID;
                """)
        }
    }
}
