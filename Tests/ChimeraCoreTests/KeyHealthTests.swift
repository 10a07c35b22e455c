import Testing
@testable import ChimeraCore

/// The key health state machine (KeyHealth.swift), driven with explicit epoch-millisecond times.
@Suite struct KeyHealthTests {
    /// 2026-11-29T12:00:00Z.
    static let t0: EpochMillis = 1_795_910_400_000 + 12 * 3_600_000
    /// 2026-11-30T00:00:00Z, the next UTC midnight after `t0`.
    static let midnight: EpochMillis = 1_795_996_800_000

    let policy = KeyHealthPolicy()

    /// A key suspended by the error rate at `t0` (10 failures in a window of 10).
    func suspendedKey() -> KeyHealth {
        var h = KeyHealth()
        for i in 0..<10 { _ = h.record(.failure("HTTP 500"), at: Self.t0 + EpochMillis(i), policy: policy) }
        return h
    }

    // MARK: Transitions of the diagram

    @Test func health_unauthorized401And403_disableUntilOperatorEnables() {
        for status in [401, 403] {
            var h = KeyHealth()
            let t = h.record(.unauthorized(status: status), at: Self.t0, policy: policy)
            #expect(t?.from == .active)
            #expect(t?.to == .disabled(byOperator: false))
            #expect(t?.reason.contains("HTTP \(status)") == true)
            #expect(h.state.name == "disabled")
            #expect(!h.isSelectable)
            #expect(h.state.until == nil)
            // Time never ends it, nor does a success or a 429.
            #expect(h.advance(to: Self.t0 + 365 * UTCDay.millisPerDay) == nil)
            #expect(h.record(.success, at: Self.t0 + 1, policy: policy) == nil)
            #expect(h.record(.rateLimited(resetAt: nil, retryAfterMs: nil), at: Self.t0 + 2, policy: policy) == nil)
            #expect(h.state == .disabled(byOperator: false))
            // Only the operator does.
            let back = h.enable(at: Self.t0 + 3, reason: "fixed")
            #expect(back == HealthTransition(from: .disabled(byOperator: false), to: .active, at: Self.t0 + 3, reason: "fixed"))
            #expect(h.isSelectable)
        }
    }

    @Test func health_paymentRequired402_noCreditsUntilNextUTCMidnight() {
        var h = KeyHealth()
        let t = h.record(.paymentRequired, at: Self.t0, policy: policy)
        #expect(t?.to == .noCredits(until: Self.midnight))
        #expect(h.state.name == "no_credits")
        #expect(!h.isSelectable)
        #expect(h.advance(to: Self.midnight - 1) == nil)
        let back = h.advance(to: Self.midnight)
        #expect(back?.from == .noCredits(until: Self.midnight))
        #expect(back?.to == .active)
        #expect(h.isSelectable)
    }

    @Test func health_noCredits_operatorEnableEndsItEarly() {
        var h = KeyHealth()
        _ = h.record(.paymentRequired, at: Self.t0, policy: policy)
        #expect(h.enable(at: Self.t0 + 5, reason: "topped up")?.to == .active)
        #expect(h.state == .active)
    }

    @Test func health_rateLimited429_coolsUntilDeadlineThenActive() {
        var h = KeyHealth()
        let t = h.record(.rateLimited(resetAt: nil, retryAfterMs: nil), at: Self.t0, policy: policy)
        #expect(t?.to == .cooling(until: Self.t0 + policy.defaultCooldownMs))
        #expect(t?.reason.contains("default cooldown") == true)
        #expect(!h.isSelectable)
        #expect(h.advance(to: Self.t0 + policy.defaultCooldownMs - 1) == nil)
        #expect(h.advance(to: Self.t0 + policy.defaultCooldownMs)?.to == .active)
        #expect(h.isSelectable)
    }

    @Test func health_errorRate_suspendsThenHalfOpenProbeSucceeds_active() {
        var h = suspendedKey()
        let until = Self.t0 + 9 + policy.suspendMs
        #expect(h.state == .suspended(until: until))
        #expect(!h.isSelectable)
        #expect(h.advance(to: until - 1) == nil)
        let open = h.advance(to: until)
        #expect(open?.to == .halfOpen(probing: false))
        #expect(h.state.name == "half_open")
        #expect(h.isSelectable)
        #expect(h.didLease(at: until + 1)?.to == .halfOpen(probing: true))
        let t = h.record(.success, at: until + 2, policy: policy)
        #expect(t?.from == .halfOpen(probing: true))
        #expect(t?.to == .active)
        #expect(h.isSelectable)
    }

    @Test func health_halfOpen_probeFailure_suspendedAgainForFullPeriod() {
        var h = suspendedKey()
        let until = Self.t0 + 9 + policy.suspendMs
        _ = h.advance(to: until)
        _ = h.didLease(at: until)
        let t = h.record(.failure("timeout"), at: until + 100, policy: policy)
        #expect(t?.to == .suspended(until: until + 100 + policy.suspendMs))
        #expect(t?.reason.contains("probe request failed") == true)
        #expect(!h.isSelectable)
    }

    @Test func health_halfOpen_exactlyOneLeaseAllowed_releaseReopensSlot() {
        var h = suspendedKey()
        let until = Self.t0 + 9 + policy.suspendMs
        _ = h.advance(to: until)
        #expect(h.isSelectable)
        #expect(h.didLease(at: until) != nil)
        // The probe is out: nobody else may use the key, and a second lease is no transition.
        #expect(!h.isSelectable)
        #expect(h.didLease(at: until + 1) == nil)
        #expect(h.state == .halfOpen(probing: true))
        // The probe was never sent: the slot opens again, for exactly one more.
        let reopened = h.didRelease(at: until + 2)
        #expect(reopened?.from == .halfOpen(probing: true))
        #expect(reopened?.to == .halfOpen(probing: false))
        #expect(h.isSelectable)
        #expect(h.didLease(at: until + 3)?.to == .halfOpen(probing: true))
        #expect(!h.isSelectable)
        // Release outside half-open changes nothing.
        var active = KeyHealth()
        #expect(active.didRelease(at: until) == nil)
        #expect(active.didLease(at: until) == nil)
        #expect(active.state == .active)
    }

    @Test func health_halfOpen_clientErrorProbe_reachedProviderSoActive() {
        var h = suspendedKey()
        let until = Self.t0 + 9 + policy.suspendMs
        _ = h.advance(to: until)
        _ = h.didLease(at: until)
        #expect(h.record(.clientError, at: until + 1, policy: policy)?.to == .active)
    }

    @Test func health_suspended_operatorEnable_active() {
        var h = suspendedKey()
        #expect(h.enable(at: Self.t0 + 20, reason: "looked fine")?.to == .active)
        // The error window was cleared: one more failure does not suspend again.
        #expect(h.record(.failure("HTTP 502"), at: Self.t0 + 21, policy: policy) == nil)
        #expect(h.state == .active)
    }

    @Test func health_operatorDisableAndEnable() {
        var h = KeyHealth()
        let off = h.disable(at: Self.t0, reason: "rotating")
        #expect(off == HealthTransition(from: .active, to: .disabled(byOperator: true), at: Self.t0, reason: "rotating"))
        #expect(!h.isSelectable)
        // Disabling twice is no transition.
        #expect(h.disable(at: Self.t0 + 1, reason: "again") == nil)
        // Neither time nor outcomes end an operator's disable.
        #expect(h.advance(to: Self.t0 + 10 * UTCDay.millisPerDay) == nil)
        #expect(h.state == .disabled(byOperator: true))
        #expect(h.enable(at: Self.t0 + 2, reason: "rotated")?.to == .active)
        // Enabling an active key is no transition.
        #expect(h.enable(at: Self.t0 + 3, reason: "again") == nil)
        // The operator may disable a key in any state, e.g. cooling.
        _ = h.record(.rateLimited(resetAt: nil, retryAfterMs: nil), at: Self.t0 + 4, policy: policy)
        #expect(h.disable(at: Self.t0 + 5, reason: "stop")?.from == .cooling(until: Self.t0 + 4 + policy.defaultCooldownMs))
        #expect(h.advance(to: Self.t0 + 4 + policy.defaultCooldownMs) == nil)
        #expect(h.state == .disabled(byOperator: true))
    }

    @Test func health_adopt_replacesStateFromLedger() {
        var h = KeyHealth()
        h.adopt(.cooling(until: Self.t0 + 5))
        #expect(!h.isSelectable)
        #expect(h.advance(to: Self.t0 + 5)?.to == .active)
    }

    // MARK: Cooldowns only grow

    @Test func health_cooldown_neverShortened_laterLongerOneExtends() {
        var h = KeyHealth()
        let t = Self.t0
        #expect(h.record(.rateLimited(resetAt: t + 60_000, retryAfterMs: nil), at: t, policy: policy)?.to == .cooling(until: t + 60_000))
        // A shorter reset does not shorten it (and is no transition).
        #expect(h.record(.rateLimited(resetAt: t + 1_000 + 10_000, retryAfterMs: nil), at: t + 1_000, policy: policy) == nil)
        #expect(h.state == .cooling(until: t + 60_000))
        #expect(h.record(.rateLimited(resetAt: nil, retryAfterMs: 5_000), at: t + 2_000, policy: policy) == nil)
        #expect(h.state == .cooling(until: t + 60_000))
        // A longer one extends it.
        let extended = h.record(.rateLimited(resetAt: t + 120_000, retryAfterMs: nil), at: t + 3_000, policy: policy)
        #expect(extended?.from == .cooling(until: t + 60_000))
        #expect(extended?.to == .cooling(until: t + 120_000))
        #expect(h.advance(to: t + 119_999) == nil)
        #expect(h.advance(to: t + 120_000)?.to == .active)
    }

    @Test func health_cooldown_retryAfterVsResetVsDefaultFloor() {
        let t = Self.t0
        func cooled(_ outcome: KeyOutcome) -> KeyHealth.State {
            var h = KeyHealth()
            _ = h.record(outcome, at: t, policy: policy)
            return h.state
        }
        // X-RateLimit-Reset later than the default wins.
        #expect(cooled(.rateLimited(resetAt: t + 45_000, retryAfterMs: nil)) == .cooling(until: t + 45_000))
        // Retry-After (relative) later than the default wins.
        #expect(cooled(.rateLimited(resetAt: nil, retryAfterMs: 30_000)) == .cooling(until: t + 30_000))
        // Both given: the later of the two.
        #expect(cooled(.rateLimited(resetAt: t + 45_000, retryAfterMs: 30_000)) == .cooling(until: t + 45_000))
        #expect(cooled(.rateLimited(resetAt: t + 20_000, retryAfterMs: 50_000)) == .cooling(until: t + 50_000))
        // Shorter than the default (10 s), or already past: the default is the floor.
        #expect(cooled(.rateLimited(resetAt: t + 2_000, retryAfterMs: nil)) == .cooling(until: t + policy.defaultCooldownMs))
        #expect(cooled(.rateLimited(resetAt: t - 5_000, retryAfterMs: nil)) == .cooling(until: t + policy.defaultCooldownMs))
        #expect(cooled(.rateLimited(resetAt: nil, retryAfterMs: 1_000)) == .cooling(until: t + policy.defaultCooldownMs))
        #expect(cooled(.rateLimited(resetAt: nil, retryAfterMs: 0)) == .cooling(until: t + policy.defaultCooldownMs))
        // A configured floor.
        var custom = KeyHealthPolicy()
        custom.defaultCooldownMs = 90_000
        var h = KeyHealth()
        _ = h.record(.rateLimited(resetAt: t + 45_000, retryAfterMs: nil), at: t, policy: custom)
        #expect(h.state == .cooling(until: t + 90_000))
    }

    @Test func health_rateLimited_doesNotOverrideStrongerStates() {
        let t = Self.t0
        var noCredits = KeyHealth()
        _ = noCredits.record(.paymentRequired, at: t, policy: policy)
        #expect(noCredits.record(.rateLimited(resetAt: t + 60_000, retryAfterMs: nil), at: t, policy: policy) == nil)
        #expect(noCredits.state == .noCredits(until: Self.midnight))

        var suspended = suspendedKey()
        let before = suspended.state
        #expect(suspended.record(.rateLimited(resetAt: nil, retryAfterMs: nil), at: t + 20, policy: policy) == nil)
        #expect(suspended.state == before)

        var operatorOff = KeyHealth()
        _ = operatorOff.disable(at: t, reason: "x")
        #expect(operatorOff.record(.rateLimited(resetAt: nil, retryAfterMs: nil), at: t, policy: policy) == nil)
        #expect(operatorOff.state == .disabled(byOperator: true))
    }

    // MARK: Error rate

    @Test func health_errorRate_fiveOfTenDoNotSuspend_sixDo() {
        var h = KeyHealth()
        var t = Self.t0
        for _ in 0..<5 { #expect(h.record(.success, at: t, policy: policy) == nil); t += 1 }
        for _ in 0..<5 { #expect(h.record(.failure("HTTP 500"), at: t, policy: policy) == nil); t += 1 }
        // 5 of 10 is exactly 50 %: not above the threshold.
        #expect(h.state == .active)
        // The window slides: the oldest success leaves, 6 of the last 10 failed.
        let t6 = h.record(.failure("HTTP 503"), at: t, policy: policy)
        #expect(t6?.to == .suspended(until: t + policy.suspendMs))
        #expect(t6?.reason.contains("6/10") == true)
    }

    @Test func health_errorRate_fewerThanWindowOutcomes_neverSuspend() {
        var h = KeyHealth()
        for i in 0..<9 { #expect(h.record(.failure("HTTP 500"), at: Self.t0 + EpochMillis(i), policy: policy) == nil) }
        #expect(h.state == .active)
        // The 10th makes the window full: 10 of 10 failed.
        #expect(h.record(.failure("HTTP 500"), at: Self.t0 + 9, policy: policy)?.to == .suspended(until: Self.t0 + 9 + policy.suspendMs))
    }

    @Test func health_errorRate_clientErrorsAreNeutral() {
        var h = KeyHealth()
        var t = Self.t0
        // 4 successes and 5 failures: 9 outcomes, below the window.
        for _ in 0..<4 { _ = h.record(.success, at: t, policy: policy); t += 1 }
        for _ in 0..<5 { _ = h.record(.failure("HTTP 500"), at: t, policy: policy); t += 1 }
        // Many 400s neither fill the window nor count as failures.
        for _ in 0..<50 { #expect(h.record(.clientError, at: t, policy: policy) == nil); t += 1 }
        #expect(h.state == .active)
        // One more success fills the window at 5/10: still not suspended.
        _ = h.record(.success, at: t, policy: policy)
        #expect(h.state == .active)
    }

    @Test func health_errorRate_rateLimitsDoNotCountAsFailures() {
        var h = KeyHealth()
        var t = Self.t0
        for _ in 0..<4 { _ = h.record(.success, at: t, policy: policy); t += 1 }
        for _ in 0..<5 { _ = h.record(.failure("HTTP 500"), at: t, policy: policy); t += 1 }
        // A 429 cools the key but is not a sixth failure in the window.
        _ = h.record(.rateLimited(resetAt: nil, retryAfterMs: nil), at: t, policy: policy)
        t += policy.defaultCooldownMs
        #expect(h.advance(to: t)?.to == .active)
        _ = h.record(.success, at: t, policy: policy)
        #expect(h.state == .active)
    }

    @Test func health_errorRate_configuredWindowAndThreshold() {
        var p = KeyHealthPolicy()
        p.errorWindow = 4
        p.errorRateThreshold = 0.25
        p.suspendMs = 1_000
        var h = KeyHealth()
        _ = h.record(.success, at: Self.t0, policy: p)
        _ = h.record(.success, at: Self.t0, policy: p)
        _ = h.record(.success, at: Self.t0, policy: p)
        // 1 of 4 = 25 %: not above.
        #expect(h.record(.failure("x"), at: Self.t0, policy: p) == nil)
        // 2 of 4 = 50 % > 25 %.
        #expect(h.record(.failure("x"), at: Self.t0 + 1, policy: p)?.to == .suspended(until: Self.t0 + 1_001))
    }

    // MARK: Classification

    @Test func outcome_classify_statuses() {
        #expect(KeyOutcome.classify(status: 200) == .success)
        #expect(KeyOutcome.classify(status: 204) == .success)
        #expect(KeyOutcome.classify(status: 401) == .unauthorized(status: 401))
        #expect(KeyOutcome.classify(status: 403) == .unauthorized(status: 403))
        #expect(KeyOutcome.classify(status: 402) == .paymentRequired)
        #expect(KeyOutcome.classify(status: 429) == .rateLimited(resetAt: nil, retryAfterMs: nil))
        #expect(KeyOutcome.classify(status: 429, resetAt: 123, retryAfterMs: 456) == .rateLimited(resetAt: 123, retryAfterMs: 456))
        #expect(KeyOutcome.classify(status: 500) == .failure("HTTP 500"))
        #expect(KeyOutcome.classify(status: 503, detail: "overloaded") == .failure("HTTP 503: overloaded"))
        #expect(KeyOutcome.classify(status: 599) == .failure("HTTP 599"))
        #expect(KeyOutcome.classify(status: 408) == .failure("HTTP 408"))
        #expect(KeyOutcome.classify(status: nil) == .failure("no response"))
        #expect(KeyOutcome.classify(status: nil, detail: "connection reset") == .failure("connection reset"))
        for status in [400, 404, 413, 422] { #expect(KeyOutcome.classify(status: status) == .clientError) }
    }

    @Test func outcome_400_isNeutral_evenAtFullWindow() {
        var h = KeyHealth()
        for i in 0..<100 {
            #expect(h.record(KeyOutcome.classify(status: 400), at: Self.t0 + EpochMillis(i), policy: policy) == nil)
        }
        #expect(h.state == .active)
    }

    @Test func state_namesAndUntil() {
        #expect(KeyHealth.State.active.name == "active")
        #expect(KeyHealth.State.cooling(until: 5).name == "cooling")
        #expect(KeyHealth.State.disabled(byOperator: true).name == "disabled")
        #expect(KeyHealth.State.noCredits(until: 5).name == "no_credits")
        #expect(KeyHealth.State.suspended(until: 5).name == "suspended")
        #expect(KeyHealth.State.halfOpen(probing: true).name == "half_open")
        #expect(KeyHealth.State.cooling(until: 5).until == 5)
        #expect(KeyHealth.State.noCredits(until: 6).until == 6)
        #expect(KeyHealth.State.suspended(until: 7).until == 7)
        #expect(KeyHealth.State.active.until == nil)
        #expect(KeyHealth.State.halfOpen(probing: false).until == nil)
        #expect(KeyHealth.State.disabled(byOperator: false).until == nil)
    }
}
