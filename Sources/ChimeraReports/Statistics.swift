/// The small statistics reports need: means, Student's t confidence intervals and nearest-rank
/// percentiles.
enum Statistics {
    /// Two-sided 95% critical values of Student's t distribution (the 0.975 quantile) for
    /// 1 to 30 degrees of freedom; index 0 is df 1.
    static let t975: [Double] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ]

    /// The 95% critical value for `df` degrees of freedom: the table up to 30, then the normal 1.96.
    static func tCritical95(df: Int) -> Double {
        precondition(df >= 1, "a t interval needs at least one degree of freedom")
        return df <= t975.count ? t975[df - 1] : 1.96
    }

    /// The arithmetic mean; nil for no values.
    static func mean(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        return values.reduce(0, +) / Double(values.count)
    }

    /// The sample standard deviation (divisor n - 1); nil below 2 values.
    static func sampleStandardDeviation(_ values: [Double]) -> Double? {
        guard values.count >= 2, let m = mean(values) else { return nil }
        let squares = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (squares / Double(values.count - 1)).squareRoot()
    }

    /// The mean with the half-width `t(n-1) · s / √n` of its 95% confidence interval and the
    /// interval clamped to [0, 1]; the interval parts are nil below 2 values.
    static func meanWithInterval(_ values: [Double]) -> (mean: Double?, halfWidth: Double?, interval: Interval?) {
        guard let m = mean(values) else { return (nil, nil, nil) }
        guard let s = sampleStandardDeviation(values) else { return (m, nil, nil) }
        let n = values.count
        let half = tCritical95(df: n - 1) * s / Double(n).squareRoot()
        return (m, half, Interval(low: max(0, m - half), high: min(1, m + half)))
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100) of `values`: the smallest value such that
    /// at least p% of the values are at or below it, i.e. sorted[⌈p/100 · n⌉ - 1]. Nil for no values.
    static func nearestRank(_ values: [Int64], percentile p: Int) -> Int64? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = (p * sorted.count + 99) / 100  // ⌈p·n/100⌉ in integers
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }
}
