import DequeModule

/// How urgent a task is. Higher runs first; equal priorities run in submission order.
///
/// A struct with static members rather than an enum, so levels can be added without breaking
/// anyone who switches over them.
public struct TaskPriority: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = min(max(rawValue, 0), TaskPriority.levels - 1) }

    public static let low = TaskPriority(rawValue: 0)
    public static let normal = TaskPriority(rawValue: 1)
    public static let high = TaskPriority(rawValue: 2)
    public static let critical = TaskPriority(rawValue: 3)
    static let levels = 4

    /// Parses `low`, `normal`, `high` or `critical`.
    public init?(name: String) {
        switch name {
        case "low": self = .low
        case "normal": self = .normal
        case "high": self = .high
        case "critical": self = .critical
        default: return nil
        }
    }

    public var description: String { ["low", "normal", "high", "critical"][rawValue] }
    public static func < (a: TaskPriority, b: TaskPriority) -> Bool { a.rawValue < b.rawValue }
}

/// A bounded queue that hands out the highest priority first and FIFO within a priority.
///
/// The bound is the coordinator's backpressure: ``push(_:priority:)`` refuses work past
/// `capacity` instead of letting memory grow, and the caller decides whether to wait or fail.
///
/// - Complexity: push and pop are O(1) amortised (one deque per level).
public struct TaskQueue<Element> {
    private var levels: [Deque<Element>] = Array(repeating: [], count: TaskPriority.levels)
    public private(set) var count = 0
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count >= capacity }

    /// Adds `element` at the back of its priority; returns false (and keeps nothing) when full.
    @discardableResult
    public mutating func push(_ element: Element, priority: TaskPriority) -> Bool {
        guard count < capacity else { return false }
        levels[priority.rawValue].append(element)
        count += 1
        return true
    }

    /// Puts `element` back at the front of its priority: a retried task keeps its place.
    /// Allowed to exceed `capacity`, because the task was already admitted once.
    public mutating func pushFront(_ element: Element, priority: TaskPriority) {
        levels[priority.rawValue].prepend(element)
        count += 1
    }

    /// Removes and returns the next element to run.
    public mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        for level in stride(from: levels.count - 1, through: 0, by: -1) where !levels[level].isEmpty {
            count -= 1
            return levels[level].removeFirst()
        }
        return nil
    }

    /// Removes everything, highest priority first.
    public mutating func removeAll() -> [Element] {
        var all: [Element] = []
        while let next = popFirst() { all.append(next) }
        return all
    }
}

extension TaskQueue: Sendable where Element: Sendable {}
