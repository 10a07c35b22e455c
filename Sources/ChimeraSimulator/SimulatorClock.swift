import ChimeraCore
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system's wall clock plus an adjustable offset: it keeps ticking in real time, but can be
/// moved (e.g. to 23:59:50 UTC) to exercise daily resets without waiting.
public final class SimulatorClock: WallClock, Sendable {
    private let offset: Mutex<EpochMillis>

    /// A clock `offsetMillis` ahead of the system clock (behind, if negative).
    public init(offsetMillis: EpochMillis = 0) {
        offset = Mutex(offsetMillis)
    }

    public func now() -> EpochMillis { Self.systemNow() + offset.withLock { $0 } }

    /// Moves the clock so that `now()` is `time` at this instant; it keeps ticking from there.
    public func set(_ time: EpochMillis) {
        let system = Self.systemNow()
        offset.withLock { $0 = time - system }
    }

    /// Moves the clock forward (or backward, if negative).
    public func advance(by millis: EpochMillis) {
        offset.withLock { $0 += millis }
    }

    static func systemNow() -> EpochMillis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return EpochMillis(ts.tv_sec) * 1000 + EpochMillis(ts.tv_nsec / 1_000_000)
    }
}
