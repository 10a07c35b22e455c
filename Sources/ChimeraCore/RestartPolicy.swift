import DequeModule

/// How a pool restarts its workers, in the manner of an OTP supervisor.
///
/// A worker that dies is restarted after a backoff that doubles with each consecutive failure,
/// from `backoffInitialMs` up to `backoffMaxMs`. If more than `maxRestarts` restarts happen
/// within `windowMs`, the pool stops restarting and is marked failed: a crash loop then costs
/// a bounded amount of work and is reported, instead of spinning forever.
public struct RestartPolicy: Sendable, Equatable {
    public var maxRestarts: Int
    public var windowMs: UInt64
    public var backoffInitialMs: UInt64
    public var backoffMaxMs: UInt64

    public init(maxRestarts: Int = 5, windowMs: UInt64 = 60_000, backoffInitialMs: UInt64 = 100, backoffMaxMs: UInt64 = 5_000) {
        self.maxRestarts = maxRestarts
        self.windowMs = windowMs
        self.backoffInitialMs = backoffInitialMs
        self.backoffMaxMs = backoffMaxMs
    }

    /// The delay before restart number `consecutiveFailures` (1 for the first).
    public func backoff(consecutiveFailures: Int) -> UInt64 {
        guard consecutiveFailures > 1 else { return min(backoffInitialMs, backoffMaxMs) }
        let shift = min(consecutiveFailures - 1, 30)
        let delay = backoffInitialMs.multipliedReportingOverflow(by: 1 << UInt64(shift))
        return delay.overflow ? backoffMaxMs : min(delay.partialValue, backoffMaxMs)
    }
}

/// Counts restarts in a sliding window; the clock is passed in, so tests decide what time it is.
public struct RestartIntensity: Sendable {
    public let policy: RestartPolicy
    private var history: Deque<UInt64> = []

    public init(policy: RestartPolicy) { self.policy = policy }

    /// Restarts counted in the window ending at `now`.
    public mutating func recentRestarts(at now: UInt64) -> Int {
        while let first = history.first, now >= first + policy.windowMs { history.removeFirst() }
        return history.count
    }

    /// Records a restart at `now` if the limit allows it. Returns false when the restart would be
    /// one too many: the caller must then give up (mark the pool failed).
    public mutating func admitRestart(at now: UInt64) -> Bool {
        guard recentRestarts(at: now) < policy.maxRestarts else { return false }
        history.append(now)
        return true
    }
}
