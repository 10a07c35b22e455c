/// A machine-readable reason a task did not succeed.
///
/// A struct with static members, not an enum, so new kinds do not break callers' `switch`es.
/// The raw value is what JSON output and `error.data.kind` on the wire carry.
public struct TaskFailureKind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// No configured pool serves the handler.
    public static let unknownHandler = TaskFailureKind(rawValue: "unknown_handler")
    /// The queue is at capacity; submit again later.
    public static let queueFull = TaskFailureKind(rawValue: "queue_full")
    /// The task ran past its deadline and was cancelled.
    public static let timeout = TaskFailureKind(rawValue: "timeout")
    /// The task's worker died each time it ran it, up to the attempt budget: it is quarantined.
    public static let quarantined = TaskFailureKind(rawValue: "quarantined")
    /// The pool that serves the handler stopped restarting workers.
    public static let poolFailed = TaskFailureKind(rawValue: "pool_failed")
    /// The coordinator is shutting down and no longer runs new work.
    public static let shuttingDown = TaskFailureKind(rawValue: "shutting_down")
    /// The handler ran and reported a failure.
    public static let handlerError = TaskFailureKind(rawValue: "handler_error")
    /// The input was not acceptable (not JSON, or rejected by the handler).
    public static let invalidInput = TaskFailureKind(rawValue: "invalid_input")
    /// The task was cancelled.
    public static let cancelled = TaskFailureKind(rawValue: "cancelled")
}

/// Why a task failed: a kind to act on and a message for people.
public struct TaskFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var kind: TaskFailureKind
    public var message: String
    public init(_ kind: TaskFailureKind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { "\(kind): \(message)" }
}
