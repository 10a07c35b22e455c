import ChimeraCore
import GRDB

/// A chat session as stored: its settings, running summary and how far the summary reaches.
public struct ChatSessionRecord: Sendable, Equatable {
    /// The row id; turns belong to it.
    public var id: Int64
    /// The session name (`default` unless `--session NAME`). One open session per name; `--new`
    /// archives the open one.
    public var name: String
    public var createdAt: EpochMillis
    /// The agent profile its messages go to.
    public var agent: String
    /// `auto`, `internal` or `external`.
    public var route: String
    /// The external model chain; empty: free catalog models.
    public var models: [String]
    /// What the turns up to ``summarizedThrough`` said, folded by the summarizer.
    public var summary: String
    /// The seq of the last turn folded into ``summary`` (0: none).
    public var summarizedThrough: Int

    public init(id: Int64, name: String, createdAt: EpochMillis, agent: String, route: String, models: [String],
                summary: String = "", summarizedThrough: Int = 0) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.agent = agent
        self.route = route
        self.models = models
        self.summary = summary
        self.summarizedThrough = summarizedThrough
    }
}

/// One stored turn of a chat: a user message, or the answer with where it came from and what it cost.
public struct ChatTurnRecord: Sendable, Equatable {
    /// Its number in the session, from 1 (assigned when stored).
    public var seq: Int
    /// `user` or `assistant`.
    public var role: String
    public var text: String
    /// Answers: the arm that answered (`internal:NAME`, `external`).
    public var route: String?
    /// Answers: the handler or model that answered.
    public var target: String?
    /// Answers: the routed task (`chimera explain ID`).
    public var taskId: String?
    /// Answers: tokens the model reported (prompt and completion); nil when unknown.
    public var tokens: Int?
    public var latencyMs: Int64?
    public var costUSD: Double?
    /// Answers: the mediator's score in [0, 1].
    public var score: Double?
    public var at: EpochMillis

    public init(seq: Int = 0, role: String, text: String, route: String? = nil, target: String? = nil, taskId: String? = nil,
                tokens: Int? = nil, latencyMs: Int64? = nil, costUSD: Double? = nil, score: Double? = nil, at: EpochMillis) {
        self.seq = seq
        self.role = role
        self.text = text
        self.route = route
        self.target = target
        self.taskId = taskId
        self.tokens = tokens
        self.latencyMs = latencyMs
        self.costUSD = costUSD
        self.score = score
        self.at = at
    }

    /// The turn as the memory planner sees it.
    public var memory: ChatMemoryTurn { ChatMemoryTurn(seq: seq, role: role, text: text) }
}

/// Totals over a session's answers, for `/stats`.
public struct ChatStats: Sendable, Equatable {
    /// Answers stored.
    public var turns = 0
    /// Answers by arm (`external`, `internal:NAME`).
    public var routes: [String: Int] = [:]
    /// Tokens reported by models (internal handlers report none).
    public var tokens = 0
    /// Known costs summed; answers with an unknown cost are counted in ``unknownCosts``.
    public var costUSD = 0.0
    public var unknownCosts = 0
    /// The mean score of scored answers, nil when none was scored.
    public var meanScore: Double?

    public init() {}

    /// The totals of `turns` (user turns are skipped).
    public init(_ turns: [ChatTurnRecord]) {
        var scores: [Double] = []
        for turn in turns where turn.role == "assistant" {
            self.turns += 1
            routes[turn.route ?? "-", default: 0] += 1
            tokens += turn.tokens ?? 0
            if let cost = turn.costUSD { costUSD += cost } else { unknownCosts += 1 }
            if let score = turn.score { scores.append(score) }
        }
        meanScore = scores.isEmpty ? nil : scores.reduce(0, +) / Double(scores.count)
    }
}

/// Chat sessions and their turns (migration `v2-chat`): `chimera chat` resumes a session by
/// name, and every answered message is stored as two turns in one transaction.
extension RunStore {
    /// The open session called `name`, or a new one with these settings. With `fresh`, an open
    /// session of that name is archived first (its turns are kept, under its id).
    public func openChatSession(named name: String, fresh: Bool, agent: String, route: String, models: [String],
                                now: EpochMillis) throws(RunStoreError) -> (session: ChatSessionRecord, resumed: Bool) {
        try write("openChatSession") { db in
            if fresh {
                try db.execute(sql: "UPDATE chat_session SET archived_at = ? WHERE name = ? AND archived_at IS NULL", arguments: [now, name])
            } else if let row = try Row.fetchOne(db, sql: "SELECT * FROM chat_session WHERE name = ? AND archived_at IS NULL", arguments: [name]) {
                return (Self.session(from: row), true)
            }
            try db.execute(sql: """
                INSERT INTO chat_session (name, created_at, updated_at, agent, route, models_json, summary, summarized_through)
                VALUES (?, ?, ?, ?, ?, ?, '', 0)
                """, arguments: [name, now, now, agent, route, Self.modelsJSON(models)])
            return (ChatSessionRecord(id: db.lastInsertedRowID, name: name, createdAt: now, agent: agent, route: route, models: models), false)
        }
    }

    /// Saves the session's agent, route and model chain.
    public func saveChatSettings(_ session: ChatSessionRecord, now: EpochMillis) throws(RunStoreError) {
        try write("saveChatSettings") { db in
            try db.execute(sql: "UPDATE chat_session SET agent = ?, route = ?, models_json = ?, updated_at = ? WHERE id = ?",
                           arguments: [session.agent, session.route, Self.modelsJSON(session.models), now, session.id])
        }
    }

    /// Saves a new running summary covering the turns up to `through`.
    public func saveChatSummary(sessionId: Int64, summary: String, through: Int, now: EpochMillis) throws(RunStoreError) {
        try write("saveChatSummary") { db in
            try db.execute(sql: "UPDATE chat_session SET summary = ?, summarized_through = ?, updated_at = ? WHERE id = ?",
                           arguments: [summary, through, now, sessionId])
        }
    }

    /// Appends `turns` (a question and its answer) after the session's last turn, in one
    /// transaction, and returns them with their seq numbers.
    @discardableResult
    public func appendChatTurns(sessionId: Int64, _ turns: [ChatTurnRecord]) throws(RunStoreError) -> [ChatTurnRecord] {
        try write("appendChatTurns") { db in
            var next = (try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM chat_turn WHERE session_id = ?", arguments: [sessionId]) ?? 0) + 1
            var stored: [ChatTurnRecord] = []
            for var turn in turns {
                turn.seq = next
                next += 1
                try db.execute(sql: """
                    INSERT INTO chat_turn (session_id, seq, role, text, route, target, task_id, tokens, latency_ms, cost_usd, score, at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [sessionId, turn.seq, turn.role, turn.text, turn.route, turn.target, turn.taskId, turn.tokens,
                                     turn.latencyMs, turn.costUSD, turn.score, turn.at])
                stored.append(turn)
            }
            try db.execute(sql: "UPDATE chat_session SET updated_at = ? WHERE id = ?", arguments: [turns.last?.at ?? 0, sessionId])
            return stored
        }
    }

    /// The session's turns after seq `after`, oldest first.
    public func chatTurns(sessionId: Int64, after: Int = 0) throws(RunStoreError) -> [ChatTurnRecord] {
        try read("chatTurns") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM chat_turn WHERE session_id = ? AND seq > ? ORDER BY seq",
                             arguments: [sessionId, after]).map(Self.turn(from:))
        }
    }

    /// The open session called `name`, if any.
    public func chatSession(named name: String) throws(RunStoreError) -> ChatSessionRecord? {
        try read("chatSession") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM chat_session WHERE name = ? AND archived_at IS NULL", arguments: [name]).map(Self.session(from:))
        }
    }

    // MARK: Rows

    private static func modelsJSON(_ models: [String]) -> String { JSONValue.array(models.map { .string($0) }).serialized }

    private static func session(from row: Row) -> ChatSessionRecord {
        var models: [String] = []
        if case .array(let items)? = try? JSONParser.parse(row["models_json"] as String) { models = items.compactMap(\.stringValue) }
        return ChatSessionRecord(id: row["id"], name: row["name"], createdAt: row["created_at"], agent: row["agent"], route: row["route"],
                                 models: models, summary: row["summary"], summarizedThrough: row["summarized_through"])
    }

    private static func turn(from row: Row) -> ChatTurnRecord {
        ChatTurnRecord(seq: row["seq"], role: row["role"], text: row["text"], route: row["route"], target: row["target"], taskId: row["task_id"],
                       tokens: row["tokens"], latencyMs: row["latency_ms"], costUSD: row["cost_usd"], score: row["score"], at: row["at"])
    }

    /// Migration `v2-chat`.
    static func createChatTables(_ db: Database) throws {
        try db.execute(sql: """
            -- One row per chat session: its settings and the running summary of its older turns.
            -- Archived sessions (chimera chat --new, /new) keep their rows; one open session per name.
            CREATE TABLE chat_session (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                archived_at INTEGER,
                agent TEXT NOT NULL,
                route TEXT NOT NULL,
                models_json TEXT NOT NULL,
                summary TEXT NOT NULL,
                summarized_through INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX chat_session_open_name ON chat_session (name) WHERE archived_at IS NULL;

            -- Every stored turn: a user message, or an answer with the route, target and task that
            -- produced it (task_id refers to task, without a constraint: an answer whose task could
            -- not be stored is still a turn).
            CREATE TABLE chat_turn (
                session_id INTEGER NOT NULL REFERENCES chat_session (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                role TEXT NOT NULL,
                text TEXT NOT NULL,
                route TEXT,
                target TEXT,
                task_id TEXT,
                tokens INTEGER,
                latency_ms INTEGER,
                cost_usd REAL,
                score REAL,
                at INTEGER NOT NULL,
                PRIMARY KEY (session_id, seq)
            ) WITHOUT ROWID;
            """)
    }
}
