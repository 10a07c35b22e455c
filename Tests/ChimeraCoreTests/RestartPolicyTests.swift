import Testing
@testable import ChimeraCore

/// Asks `intensity` to admit a restart at each time in turn; returns the answers.
func admit(_ intensity: inout RestartIntensity, at times: [UInt64]) -> [Bool] {
    times.map { intensity.admitRestart(at: $0) }
}

@Suite struct RestartPolicyTests {
    // MARK: Backoff

    @Test func backoff_doublesFromInitialAndCapsAtMax() {
        let policy = RestartPolicy(maxRestarts: 5, windowMs: 60_000, backoffInitialMs: 100, backoffMaxMs: 5_000)
        let delays = (1...10).map { policy.backoff(consecutiveFailures: $0) }
        #expect(delays == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000, 5_000])
    }

    @Test func backoff_zeroOrNegativeFailures_giveTheInitialDelay() {
        let policy = RestartPolicy(backoffInitialMs: 250, backoffMaxMs: 1_000)
        #expect(policy.backoff(consecutiveFailures: 0) == 250)
        #expect(policy.backoff(consecutiveFailures: -3) == 250)
    }

    @Test func backoff_hugeFailureCounts_doNotOverflow() {
        let policy = RestartPolicy(backoffInitialMs: 100, backoffMaxMs: 5_000)
        #expect(policy.backoff(consecutiveFailures: 64) == 5_000)
        #expect(policy.backoff(consecutiveFailures: 1_000_000) == 5_000)
        #expect(policy.backoff(consecutiveFailures: Int.max) == 5_000)
    }

    @Test func backoff_hugeInitialDelay_saturatesAtMaxInsteadOfWrapping() {
        let policy = RestartPolicy(backoffInitialMs: UInt64.max / 3, backoffMaxMs: UInt64.max)
        #expect(policy.backoff(consecutiveFailures: 2) == (UInt64.max / 3) * 2)
        #expect(policy.backoff(consecutiveFailures: 3) == UInt64.max)
        #expect(policy.backoff(consecutiveFailures: Int.max) == UInt64.max)
    }

    @Test func backoff_largeMax_keepsDoublingUpToTheShiftLimit() {
        let policy = RestartPolicy(backoffInitialMs: 1, backoffMaxMs: UInt64.max)
        #expect(policy.backoff(consecutiveFailures: 31) == 1 << 30)
        // The shift is capped, so the delay stops growing instead of overflowing.
        #expect(policy.backoff(consecutiveFailures: 40) == 1 << 30)
    }

    @Test func backoff_isMonotonicAndBounded() {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<200 {
            let initial = UInt64(rng.int(in: 1...10_000))
            let max = initial + UInt64(rng.int(in: 0...1_000_000))
            let policy = RestartPolicy(backoffInitialMs: initial, backoffMaxMs: max)
            var previous: UInt64 = 0
            for failures in 1...70 {
                let delay = policy.backoff(consecutiveFailures: failures)
                #expect(delay >= previous && delay <= max, "initial \(initial), max \(max), failures \(failures)")
                previous = delay
            }
        }
    }

    @Test func backoff_initialAboveMax_isStillCappedAtMax() {
        let policy = RestartPolicy(backoffInitialMs: 10_000, backoffMaxMs: 5_000)
        #expect(policy.backoff(consecutiveFailures: 2) == 5_000)
        #expect(policy.backoff(consecutiveFailures: 1) == 5_000)
    }

    @Test func policy_defaults_matchTheDocumentation() {
        #expect(RestartPolicy() == RestartPolicy(maxRestarts: 5, windowMs: 60_000, backoffInitialMs: 100, backoffMaxMs: 5_000))
    }

    // MARK: Intensity

    @Test func intensity_admitsMaxRestartsInTheWindowAndRefusesTheNext() {
        var intensity = RestartIntensity(policy: RestartPolicy(maxRestarts: 3, windowMs: 1_000))
        let answers = admit(&intensity, at: [0, 10, 20, 30, 999])
        #expect(answers == [true, true, true, false, false])
        let recent = intensity.recentRestarts(at: 999)
        #expect(recent == 3)
    }

    @Test func intensity_slidingWindow_admitsAgainAsOldRestartsExpire() {
        var intensity = RestartIntensity(policy: RestartPolicy(maxRestarts: 3, windowMs: 1_000))
        #expect(admit(&intensity, at: [0, 500, 900, 999]) == [true, true, true, false])
        // At 1000 the restart at 0 has left the window: one slot.
        let recentAt1000 = intensity.recentRestarts(at: 1_000)
        #expect(recentAt1000 == 2)
        #expect(admit(&intensity, at: [1_000, 1_001]) == [true, false])
        // At 1500 the one at 500 leaves.
        #expect(admit(&intensity, at: [1_500, 1_600]) == [true, false])
        // Long after, everything has expired.
        let recentLater = intensity.recentRestarts(at: 10_000)
        #expect(recentLater == 0)
        #expect(admit(&intensity, at: [10_000]) == [true])
    }

    @Test func intensity_refusedRestarts_areNotCounted() {
        var intensity = RestartIntensity(policy: RestartPolicy(maxRestarts: 1, windowMs: 100))
        let refusals = Array(stride(from: UInt64(1), to: 100, by: 7))
        #expect(admit(&intensity, at: [0] + refusals) == [true] + refusals.map { _ in false })
        let recent = intensity.recentRestarts(at: 99)
        #expect(recent == 1)
        #expect(admit(&intensity, at: [100]) == [true])
    }

    @Test func intensity_zeroMaxRestarts_neverAdmits() {
        var intensity = RestartIntensity(policy: RestartPolicy(maxRestarts: 0, windowMs: 100))
        #expect(admit(&intensity, at: [0, 1_000_000]) == [false, false])
    }

    @Test func intensity_matchesANaiveCountOverRandomTimes() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<50 {
            let policy = RestartPolicy(maxRestarts: rng.int(in: 1...6), windowMs: UInt64(rng.int(in: 1...500)))
            var intensity = RestartIntensity(policy: policy)
            var admitted: [UInt64] = []
            var now: UInt64 = 0
            for _ in 0..<200 {
                now += UInt64(rng.int(in: 0...60))
                let inWindow = admitted.filter { now < $0 + policy.windowMs }.count
                let expected = inWindow < policy.maxRestarts
                let answer = intensity.admitRestart(at: now)
                #expect(answer == expected, "policy \(policy), now \(now)")
                if expected { admitted.append(now) }
            }
        }
    }
}
