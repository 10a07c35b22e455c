import ChimeraCore

/// Builds a ``QualityReport`` from outcome rows: pure aggregation, no I/O and no clock.
public enum ReportBuilder {
    /// Two best scores closer than this are a head-to-head tie.
    public static let tieMargin = 0.01

    /// Filters `rows` by `options.since` (rows at or after it) and `options.kind` (exact match),
    /// then summarises each remaining kind and the totals.
    public static func build(_ rows: [ReportRow], options: ReportOptions) -> QualityReport {
        let kept = rows.filter { row in
            if let since = options.since, row.at < since { return false }
            if let kind = options.kind, row.kind != kind { return false }
            return true
        }
        var byKind: [String: [ReportRow]] = [:]
        for row in kept { byKind[row.kind, default: []].append(row) }
        let kinds = byKind.keys.sorted().map { kind in
            kindReport(kind: kind, rows: byKind[kind] ?? [], curveBuckets: options.curveBuckets)
        }
        return QualityReport(
            generatedAt: options.now, since: options.since, kindFilter: options.kind, kinds: kinds,
            internalTotal: summarize(kept, route: .internal), externalTotal: summarize(kept, route: .external))
    }

    // MARK: - Per kind

    /// One task's candidates, in time order.
    struct TaskRows {
        var id: String
        var rows: [ReportRow]
        /// When the task's first candidate finished: the task's place in time.
        var at: EpochMillis { rows[0].at }

        /// The route JHADE chose: that of the earliest chosen candidate (an escalation may add
        /// later chosen candidates of the other route); nil if none is marked chosen.
        var chosenRoute: RouteKind? { rows.first(where: \.chosen)?.arm.kind }
    }

    static func tasks(of rows: [ReportRow]) -> [TaskRows] {
        var order: [String] = []
        var grouped: [String: [ReportRow]] = [:]
        for row in rows {
            if grouped[row.taskId] == nil { order.append(row.taskId) }
            grouped[row.taskId, default: []].append(row)
        }
        return order.map { id in
            // A stable sort by time keeps the input order of simultaneous rows.
            let sorted = (grouped[id] ?? []).enumerated()
                .sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }
                .map(\.element)
            return TaskRows(id: id, rows: sorted)
        }
        .sorted { ($0.at, $0.id) < ($1.at, $1.id) }
    }

    static func kindReport(kind: String, rows: [ReportRow], curveBuckets: Int) -> KindReport {
        let tasks = tasks(of: rows)
        return KindReport(
            kind: kind, tasks: tasks.count,
            internalSummary: summarize(rows, route: .internal),
            externalSummary: summarize(rows, route: .external),
            headToHead: headToHead(tasks),
            curve: curve(tasks, buckets: curveBuckets))
    }

    /// Summarises the candidates of `route` among `rows`.
    static func summarize(_ rows: [ReportRow], route: RouteKind) -> RouteSummary {
        let mine = rows.filter { $0.arm.kind == route }
        var summary = RouteSummary(route: route)
        summary.count = mine.count
        guard !mine.isEmpty else { return summary }

        summary.chosenCount = mine.count(where: \.chosen)
        summary.shadowCount = mine.count - summary.chosenCount
        summary.succeededCount = mine.count(where: \.succeeded)
        summary.successRate = Double(summary.succeededCount) / Double(mine.count)

        let scores = mine.compactMap(\.validScore)
        summary.scoredCount = scores.count
        let stats = Statistics.meanWithInterval(scores)
        summary.meanQuality = stats.mean
        summary.ciHalfWidth = stats.halfWidth
        summary.ci95 = stats.interval

        let passInfo = mine.compactMap(\.passed)
        summary.passKnownCount = passInfo.count
        summary.passedCount = passInfo.count(where: { $0 })
        summary.passRate = passInfo.isEmpty ? nil : Double(summary.passedCount) / Double(passInfo.count)

        let latencies = mine.map(\.latencyMs)
        summary.p50LatencyMs = Statistics.nearestRank(latencies, percentile: 50)
        summary.p95LatencyMs = Statistics.nearestRank(latencies, percentile: 95)

        for row in mine {
            if let cost = row.costUSD, cost.isFinite {
                summary.totalCostUSD += cost
                if row.costIsEstimate { summary.estimatedCostCount += 1 }
            } else {
                summary.unknownCostCount += 1
            }
            summary.quotaRequests += row.quotaRequests
        }
        summary.targets = Set(mine.map(\.target).filter { !$0.isEmpty }).sorted()
        return summary
    }

    /// Compares the best internal and best external score of every task that has both, at least
    /// one of the compared candidates being a shadow run.
    static func headToHead(_ tasks: [TaskRows]) -> HeadToHead {
        var compared = 0, internalWins = 0, externalWins = 0, ties = 0
        for task in tasks {
            let scored = task.rows.filter { $0.validScore != nil }
            guard scored.contains(where: { !$0.chosen }) else { continue }
            let best = { (route: RouteKind) -> Double? in
                scored.filter { $0.arm.kind == route }.compactMap(\.validScore).max()
            }
            guard let i = best(.internal), let e = best(.external) else { continue }
            compared += 1
            if abs(i - e) < tieMargin {
                ties += 1
            } else if i > e {
                internalWins += 1
            } else {
                externalWins += 1
            }
        }
        return HeadToHead(tasks: compared, internalWins: internalWins, externalWins: externalWins, ties: ties)
    }

    /// Splits the time from the first task to the last into at most `buckets` equal half-open
    /// windows (no more windows than tasks) and summarises each window that has tasks.
    static func curve(_ tasks: [TaskRows], buckets: Int) -> [CurvePoint] {
        guard let first = tasks.first?.at, let last = tasks.last?.at else { return [] }
        let count = max(1, min(buckets, tasks.count))
        // Windows cover [first, last + 1): offsets from `first` in UInt64 with full-width
        // products, so no timestamp (however wild) can overflow.
        let lastOffset = UInt64(bitPattern: last &- first)
        let span = lastOffset == .max ? lastOffset : lastOffset + 1
        func scaled(_ offset: UInt64, by multiplier: Int, dividedBy divisor: UInt64) -> UInt64 {
            divisor.dividingFullWidth(offset.multipliedFullWidth(by: UInt64(multiplier))).quotient
        }
        let bounds: [EpochMillis] = (0...count).map { i in
            if i == count { return last == .max ? last : last + 1 }
            return first &+ EpochMillis(bitPattern: scaled(span, by: i, dividedBy: UInt64(count)))
        }
        var windows = [[TaskRows]](repeating: [], count: count)
        for task in tasks {
            // The window whose [start, end) holds the task.
            var index = Int(scaled(UInt64(bitPattern: task.at &- first), by: count, dividedBy: span))
            index = min(index, count - 1)
            while index > 0, task.at < bounds[index] { index -= 1 }
            while index < count - 1, task.at >= bounds[index + 1] { index += 1 }
            windows[index].append(task)
        }
        return windows.enumerated().compactMap { index, tasks -> CurvePoint? in
            guard !tasks.isEmpty else { return nil }
            let routes = tasks.compactMap(\.chosenRoute)
            let rows = tasks.flatMap(\.rows)
            let meanScore = { (route: RouteKind) -> Double? in
                Statistics.mean(rows.filter { $0.arm.kind == route }.compactMap(\.validScore))
            }
            return CurvePoint(
                start: bounds[index], end: bounds[index + 1], tasks: tasks.count,
                internalShare: routes.isEmpty ? nil : Double(routes.count(where: { $0 == .internal })) / Double(routes.count),
                internalMeanQuality: meanScore(.internal), externalMeanQuality: meanScore(.external))
        }
    }
}
