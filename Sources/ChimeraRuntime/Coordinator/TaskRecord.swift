import ChimeraCore

/// What a caller asks the coordinator to run.
public struct TaskRequest: Sendable {
    /// The handler to run (routes the task to the pool that serves it).
    public var handler: String
    /// The task kind; defaults to the handler name.
    public var kind: String?
    /// The input, as raw JSON text (validated on submission).
    public var input: [UInt8]
    public var priority: TaskPriority = .normal
    /// Overrides the coordinator's `task_timeout_ms`.
    public var timeoutMs: UInt64?
    /// An id for logs and results; one is assigned if `nil`.
    public var id: String?
    /// Overrides the coordinator's `max_attempts`. External calls use 1: a task whose worker died
    /// may have sent its request, so the caller decides (with a new key lease) whether to retry.
    public var maxAttempts: Int?

    public init(handler: String, input: [UInt8], priority: TaskPriority = .normal, timeoutMs: UInt64? = nil, id: String? = nil) {
        self.handler = handler
        self.input = input
        self.priority = priority
        self.timeoutMs = timeoutMs
        self.id = id
    }

    /// A request whose input is `value`.
    public init(handler: String, value: JSONValue, priority: TaskPriority = .normal) {
        var bytes: [UInt8] = []
        value.write(to: &bytes)
        self.init(handler: handler, input: bytes, priority: priority)
    }
}

/// How a task ended. Delivered exactly once per submitted task.
public struct TaskOutcome: Sendable {
    public var taskID: String
    /// The output as raw JSON text, or why there is none.
    public var result: Result<[UInt8], TaskFailure>
    /// How many times the task was started on a worker (0 if it never was).
    public var attempts: Int
    /// The worker that produced the result, e.g. `builtin#2`.
    public var worker: String?
    /// Milliseconds from submission to outcome.
    public var elapsedMs: UInt64

    /// The output parsed as JSON, if the task succeeded.
    public var output: JSONValue? {
        guard case .success(let bytes) = result else { return nil }
        return try? JSONParser.parse(bytes).value
    }
}

/// One task inside the coordinator.
///
/// Task lifecycle (states are ``State``; each arrow names the function that takes it):
///
/// ```
///            submit()                dispatch()                 worker answers
///   (new) ───────────▶ queued ─────────────────▶ running ──────────────────────▶ succeeded | failed
///                        ▲  │                     │  │
///                        │  │ shutdown / pool     │  │ deadline passes: timeout delivered,
///                        │  │ failed → failed     │  │ task/cancel sent (the worker slot stays
///                        │  ▼                     │  │ taken until the worker acknowledges, or
///                        │ failed                 │  │ it is killed after cancel_grace_ms)
///                        │                        │  ▼
///                        └──── requeue() ◀────────┘ worker died: attempts < max_attempts
///                                                 └─▶ quarantined (failed) when attempts == max_attempts
/// ```
///
/// Invariants: `outcome` is delivered exactly once (``Coordinator/deliver(_:_:)`` checks
/// `isDelivered`); a task is in at most one place (a pool queue or one worker's in-flight table);
/// `attempts` only grows, and only at dispatch.
final class TaskRecord {
    enum State: Equatable {
        case queued
        case running
        /// Finished from the caller's view; the worker may still owe an acknowledgement.
        case finished
    }

    let id: String
    let handler: String
    let kind: String
    var input: [UInt8]
    let priority: TaskPriority
    let timeoutMs: UInt64
    let submittedAt: UInt64
    var state: State = .queued
    var attempts = 0
    let maxAttempts: Int?
    var isDelivered = false
    /// Worker and request id while running.
    weak var worker: WorkerConnection?
    var rpcID: Int64 = 0
    var deadline: UInt64 = 0
    var completion: ((TaskOutcome) -> Void)?
    var onDelta: ((String) -> Void)?

    init(id: String, request: TaskRequest, timeoutMs: UInt64, now: UInt64, completion: @escaping (TaskOutcome) -> Void) {
        self.id = id
        self.handler = request.handler
        self.kind = request.kind ?? request.handler
        self.input = request.input
        self.priority = request.priority
        self.maxAttempts = request.maxAttempts
        self.timeoutMs = timeoutMs
        self.submittedAt = now
        self.completion = completion
    }
}
