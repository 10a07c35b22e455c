/// Wall-clock time as Unix epoch milliseconds. Quotas reset at 00:00 UTC and OpenRouter's
/// `X-RateLimit-Reset` is in epoch milliseconds, so one integer type covers both.
public typealias EpochMillis = Int64

/// A source of wall-clock time, injected so that tests can cross midnight without waiting.
public protocol WallClock: Sendable {
    /// The current time in Unix epoch milliseconds.
    func now() -> EpochMillis
}

/// A clock that only moves when told to; for tests and simulations.
public final class ManualClock: WallClock, @unchecked Sendable {
    // Unchecked: tests drive it from one thread; the lock-free read is fine for that use.
    private var current: EpochMillis

    public init(_ start: EpochMillis) { current = start }
    public func now() -> EpochMillis { current }
    public func advance(by millis: EpochMillis) { current += millis }
    public func set(_ millis: EpochMillis) { current = millis }
}

/// UTC calendar arithmetic. Unix time has no leap seconds and UTC no daylight saving time,
/// so a UTC day is exactly 86,400,000 ms and days are plain integer division.
public enum UTCDay {
    public static let millisPerDay: EpochMillis = 86_400_000
    public static let millisPerMinute: EpochMillis = 60_000

    /// Days since 1970-01-01 (negative before it).
    public static func index(of time: EpochMillis) -> Int64 {
        let (q, r) = time.quotientAndRemainder(dividingBy: millisPerDay)
        return r < 0 ? q - 1 : q
    }

    /// The first instant of `day`.
    public static func start(ofDay day: Int64) -> EpochMillis { day * millisPerDay }

    /// The next 00:00 UTC strictly after `time`: when daily quotas reset.
    public static func nextMidnight(after time: EpochMillis) -> EpochMillis { start(ofDay: index(of: time) + 1) }

    /// `2026-11-29` for the day containing `time` (civil-from-days, Howard Hinnant's algorithm).
    public static func dateString(of time: EpochMillis) -> String {
        let (y, m, d) = civil(index(of: time))
        return "\(y)-\(pad(m))-\(pad(d))"
    }

    /// `2026-11-29T13:05:09Z`.
    public static func timestamp(_ time: EpochMillis) -> String {
        let dayStart = start(ofDay: index(of: time))
        let seconds = (time - dayStart) / 1000
        return "\(dateString(of: time))T\(pad(seconds / 3600)):\(pad(seconds / 60 % 60)):\(pad(seconds % 60))Z"
    }

    /// A short human duration: `45s`, `12m 5s`, `3h 20m`.
    public static func duration(_ millis: EpochMillis) -> String {
        let s = max(0, (millis + 999) / 1000)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m \(s % 60)s" }
        return "\(s / 3600)h \(s / 60 % 60)m"
    }

    static func civil(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func pad(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
