import ChimeraCore
import ChimeraOpenRouter
import ChimeraSimulator
import Synchronization
import Testing

// `OpenRouterClient` over real HTTP against the in-process simulator: results, the error
// taxonomy, timeouts and cancellation. Every test starts its own simulator and client and shuts
// both down.

private let freeModel = "meta-llama/llama-3.3-70b-instruct:free"
private let paidModel = "openai/gpt-4o-mini"
/// Account "a": free tier, per-minute cap lifted so that only the daily cap (50) can bite.
private let keyA = APIKeySecret("sk-or-v1-client-a-0001")
/// Account "minute": one free-model request per minute.
private let keyMinute = APIKeySecret("sk-or-v1-client-m-0001")
/// Account "paid": bought credits, for paid-model faults.
private let keyPaid = APIKeySecret("sk-or-v1-client-p-0001")
/// Account "broke": a negative balance, so every request is 402.
private let keyBroke = APIKeySecret("sk-or-v1-client-x-0001")
private let keyUnknown = APIKeySecret("sk-or-v1-nobody-knows-me")

private func simulatorConfig(chunkDelayMs: Int = 0) -> SimulatorConfig {
    var config = SimulatorConfig.standard
    config.accounts = [
        SimulatorConfig.Account(name: "a", keys: [keyA.reveal()], perMinute: 1_000),
        SimulatorConfig.Account(name: "minute", keys: [keyMinute.reveal()], perMinute: 1),
        SimulatorConfig.Account(name: "paid", keys: [keyPaid.reveal()], creditsPurchased: 10, balance: 10, perMinute: 1_000),
        SimulatorConfig.Account(name: "broke", keys: [keyBroke.reveal()], balance: -1),
    ]
    config.keepAliveComments = 1
    config.chunkDelayMs = chunkDelayMs
    return config
}

private func timeouts(firstByteMs: Int64 = 10_000, idleMs: Int64 = 10_000, totalMs: Int64 = 30_000) -> CallTimeouts {
    var t = CallTimeouts()
    t.firstByteMs = firstByteMs
    t.idleMs = idleMs
    t.totalMs = totalMs
    return t
}

private func withClient(_ config: SimulatorConfig = simulatorConfig(), timeouts: CallTimeouts = timeouts(),
                        _ body: (OpenRouterSimulator, OpenRouterClient) async throws -> Void) async throws {
    let sim = OpenRouterSimulator(config: config)
    _ = try await sim.start(port: 0)
    let client = OpenRouterClient(endpoint: ProviderEndpoint(name: "sim", baseURL: sim.baseURL), timeouts: timeouts)
    do {
        try await body(sim, client)
    } catch {
        await client.shutdown()
        await sim.stop()
        throw error
    }
    await client.shutdown()
    await sim.stop()
}

private func request(_ prompt: String, model: String = freeModel, stream: Bool = false) -> ChatRequest {
    ChatRequest(model: model, messages: [ChatMessage(role: "user", content: prompt)], stream: stream)
}

/// Content fragments as `onDelta` delivered them, and a signal on the first one.
private final class Deltas: Sendable {
    private let parts = Mutex<[String]>([])
    let first: AsyncStream<Void>
    private let sink: AsyncStream<Void>.Continuation

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        first = stream
        sink = continuation
    }

    var all: [String] { parts.withLock { $0 } }

    func add(_ text: String) {
        parts.withLock { $0.append(text) }
        sink.yield()
    }

    /// Waits for the first fragment.
    func waitForFirst() async {
        var iterator = first.makeAsyncIterator()
        _ = await iterator.next()
    }
}

private extension ChatCallReport {
    var failure: ExternalError? { if case .failure(let e) = result { e } else { nil } }
    var success: ChatCompletion? { if case .success(let c) = result { c } else { nil } }
}

private func elapsed(since start: ContinuousClock.Instant) -> Duration { ContinuousClock.now - start }

/// A prompt of `words` words, so that a stream with a chunk delay lasts about `words` × delay.
private func longPrompt(_ words: Int) -> String { (1...words).map { "word\($0)" }.joined(separator: " ") }

@Suite("OpenRouterClient against the simulator", .serialized, .timeLimit(.minutes(2)))
struct OpenRouterClientTests {
    // MARK: success

    @Test func nonStream_success_hasContentUsageModelAndTimes() async throws {
        try await withClient { _, client in
            let report = await client.chat(request("Hello there"), key: keyA)
            let completion = try #require(report.success, "\(report.result)")
            #expect(completion.content == "Simulated reply to: Hello there")
            #expect(completion.model == freeModel)
            #expect(completion.provider == "SimProvider")
            #expect(completion.finishReason == "stop")
            #expect(completion.usage?.promptTokens == 2)
            #expect(completion.usage?.completionTokens == 5)
            #expect(report.status == 200)
            let first = try #require(report.firstTokenMs)
            #expect(first >= 0 && first <= report.latencyMs)
        }
    }

    @Test func stream_success_deliversDeltasThenTheWholeCompletion() async throws {
        try await withClient { _, client in
            let deltas = Deltas()
            let report = await client.chat(request("Stream this please", stream: true), key: keyA) { deltas.add($0) }
            let completion = try #require(report.success, "\(report.result)")
            #expect(completion.content == "Simulated reply to: Stream this please")
            #expect(deltas.all.joined() == completion.content)
            #expect(deltas.all.count == 6, "one fragment per word: \(deltas.all)")
            #expect(completion.model == freeModel)
            #expect(completion.usage?.promptTokens == 3)
            #expect(completion.usage?.completionTokens == 6)
            #expect(report.status == 200)
            let first = try #require(report.firstTokenMs)
            #expect(first >= 0 && first <= report.latencyMs)
        }
    }

    @Test func keyInfo_reportsTheAccountsFreeCounter_andUnknownKeysAreAuth() async throws {
        try await withClient { _, client in
            for i in 0..<3 { _ = await client.chat(request("count me \(i)"), key: keyA) }
            let info = try await client.keyInfo(key: keyA).get()
            #expect(info.freeDailyUsed == 3)
            #expect(info.freeDailyLimit == 50)
            #expect(info.freeDailyRemaining == 47)
            #expect(info.isFreeTier == true)
            #expect(info.limit == nil)
            #expect(try await client.keyInfo(key: keyPaid).get().isFreeTier == false)
            guard case .failure(let error) = await client.keyInfo(key: keyUnknown) else {
                Issue.record("an unknown key must fail")
                return
            }
            #expect(error.kind == .auth)
            #expect(error.status == 401)
            #expect(error.message == "User not found.")
        }
    }

    // MARK: HTTP errors

    @Test func errorStatuses_mapToTheirKinds_streamedOrNot() async throws {
        try await withClient { _, client in
            for stream in [false, true] {
                let auth = try #require(await client.chat(request("hi", stream: stream), key: keyUnknown).failure)
                #expect(auth.kind == .auth && auth.status == 401, "\(auth)")

                let payment = try #require(await client.chat(request("hi", stream: stream), key: keyBroke).failure)
                #expect(payment.kind == .payment && payment.status == 402, "\(payment)")

                let missing = try #require(await client.chat(request("hi", model: "nobody/nothing:free", stream: stream), key: keyA).failure)
                #expect(missing.kind == .modelNotFound && missing.status == 404, "\(missing)")

                let gateway = try #require(await client.chat(request("[[sim:status=502]] hi", model: paidModel, stream: stream), key: keyPaid).failure)
                #expect(gateway.kind == .providerError && gateway.status == 502, "\(gateway)")
                #expect(gateway.providerName == "SimProvider")
                #expect(!gateway.afterTokens)

                let unavailable = try #require(await client.chat(request("[[sim:status=503,retry-after=7]] hi", model: paidModel, stream: stream), key: keyPaid).failure)
                #expect(unavailable.kind == .providerError && unavailable.status == 503, "\(unavailable)")
                #expect(unavailable.rateLimit.retryAfterMs == 7_000)
                #expect(unavailable.isRetryable)

                let upstream = try #require(await client.chat(request("[[sim:status=429,retry-after=2]] hi", model: paidModel, stream: stream), key: keyPaid).failure)
                #expect(upstream.kind == .rateLimited && upstream.status == 429, "\(upstream)")
                #expect(upstream.rateLimit.retryAfterMs == 2_000)
                #expect(upstream.providerName == "SimProvider")
            }
        }
    }

    @Test func dailyCap429_isRateLimitedDaily_resettingAtTheNextUTCMidnight() async throws {
        try await withClient { sim, client in
            let served = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<50 { group.addTask { await client.chat(request("fill \(i)"), key: keyA).success != nil } }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(served == 50)
            let capped = try #require(await client.chat(request("one too many"), key: keyA).failure)
            #expect(capped.kind == .rateLimitedDaily, "\(capped)")
            #expect(capped.status == 429)
            #expect(capped.rateLimit.limit == 50)
            #expect(capped.rateLimit.remaining == 0)
            let now = sim.now()
            let reset = try #require(capped.rateLimit.resetAt)
            #expect(reset == UTCDay.nextMidnight(after: now))
            #expect(capped.accountSpentUntil(now: now) == reset)
            #expect(!capped.isRetryable)
        }
    }

    @Test func perMinute429_isRateLimited_withTheWindowsReset() async throws {
        try await withClient { sim, client in
            #expect(await client.chat(request("first"), key: keyMinute).success != nil)
            let limited = try #require(await client.chat(request("second"), key: keyMinute).failure)
            #expect(limited.kind == .rateLimited, "\(limited)")
            #expect(limited.status == 429)
            #expect(limited.rateLimit.limit == 1)
            let reset = try #require(limited.rateLimit.resetAt)
            let now = sim.now()
            #expect(reset > now - 1_000 && reset <= now + 60_000, "reset \(reset), now \(now)")
            #expect(limited.accountSpentUntil(now: now) == nil, "a per-minute limit does not spend the account")
        }
    }

    // MARK: errors inside a 200

    @Test func inBandErrors_areFailuresNeverSuccesses() async throws {
        try await withClient { _, client in
            let errorBody = try #require(await client.chat(request("[[sim:200-error]] hi"), key: keyA).failure)
            #expect(errorBody.kind == .providerError, "\(errorBody)")
            #expect(!errorBody.afterTokens)

            let choice = try #require(await client.chat(request("[[sim:choice-error]] one two three"), key: keyA).failure)
            #expect(choice.kind == .providerError, "\(choice)")
            #expect(choice.afterTokens, "the choice carried partial content")

            let empty = try #require(await client.chat(request("[[sim:empty-choices]] hi"), key: keyA).failure)
            #expect(empty.kind == .emptyResponse, "\(empty)")

            let emptyStream = try #require(await client.chat(request("[[sim:empty-choices]] hi", stream: true), key: keyA).failure)
            #expect(emptyStream.kind == .emptyResponse, "\(emptyStream)")
        }
    }

    @Test func midstreamError_afterTokens_andErrorFirst_beforeTokens() async throws {
        try await withClient { _, client in
            let deltas = Deltas()
            let midstream = await client.chat(request("[[sim:midstream-error]] a long enough prompt", stream: true), key: keyA) { deltas.add($0) }
            let failure = try #require(midstream.failure)
            #expect(failure.kind == .providerError, "\(failure)")
            #expect(failure.afterTokens)
            #expect(failure.providerName == "SimProvider")
            #expect(deltas.all == ["Simulated", " reply"])
            #expect(midstream.firstTokenMs != nil)

            let first = Deltas()
            let errorFirst = await client.chat(request("[[sim:error-first]] hi", stream: true), key: keyA) { first.add($0) }
            let early = try #require(errorFirst.failure)
            #expect(early.kind == .providerError, "\(early)")
            #expect(!early.afterTokens)
            #expect(first.all.isEmpty)
            #expect(errorFirst.firstTokenMs == nil)
        }
    }

    // MARK: dropped connections

    @Test func drops_beforeAnyToken_areNetwork_afterTokens_areTruncated() async throws {
        try await withClient { _, client in
            for stream in [false, true] {
                let before = try #require(await client.chat(request("[[sim:drop-before]] hi", stream: stream), key: keyA).failure)
                #expect(before.kind == .network, "\(before)")
                #expect(before.status == nil)
                #expect(!before.afterTokens)
            }
            // JSON cut halfway through the body: nothing reached the caller.
            let halfBody = try #require(await client.chat(request("[[sim:drop]] partial json please"), key: keyA).failure)
            #expect(halfBody.kind == .network || halfBody.kind == .truncatedStream, "\(halfBody)")
            #expect(!halfBody.afterTokens)

            #expect(await client.chat(request("still fine"), key: keyA).success != nil, "the pool recovers from dropped connections")
        }
        // A stream cut after two content chunks. The chunks are 20 ms apart so that the first is
        // surely delivered; the second may be lost with the connection (AsyncHTTPClient drops
        // what it buffered when the body fails), which is fine: the answer is incomplete either way.
        try await withClient(simulatorConfig(chunkDelayMs: 20)) { _, client in
            let deltas = Deltas()
            let cut = await client.chat(request("[[sim:drop]] partial stream please", stream: true), key: keyA) { deltas.add($0) }
            let truncated = try #require(cut.failure)
            #expect(truncated.kind == .truncatedStream, "\(truncated)")
            #expect(truncated.afterTokens)
            #expect(truncated.status == 200)
            #expect(deltas.all.first == "Simulated" && deltas.all.count <= 2, "\(deltas.all)")
        }
    }

    // MARK: timeouts

    @Test func firstByteTimeout_givesUpLongBeforeTheAnswer() async throws {
        try await withClient(timeouts: timeouts(firstByteMs: 200)) { _, client in
            let start = ContinuousClock.now
            let report = await client.chat(request("[[sim:latency=2000]] slow"), key: keyA)
            let took = elapsed(since: start)
            let failure = try #require(report.failure)
            #expect(failure.kind == .timeout, "\(failure)")
            #expect(report.status == nil)
            // The upper bound only has to be under the 2 s answer; CI machines are slow and busy.
            #expect(took >= .milliseconds(190) && took < .milliseconds(1_900), "\(took)")
        }
    }

    @Test func idleTimeout_onAStreamThatStalls() async throws {
        // 1 s, not less: the idle (read) timeout also covers the head, which a loaded CI machine
        // has been seen to take 300 ms to deliver.
        try await withClient(timeouts: timeouts(idleMs: 1_000)) { _, client in
            let start = ContinuousClock.now
            let report = await client.chat(request("[[sim:hang]] wait", stream: true), key: keyA)
            let took = elapsed(since: start)
            let failure = try #require(report.failure)
            #expect(failure.kind == .timeout, "\(failure)")
            #expect(report.status == 200, "the head arrived before the stall")
            #expect(!failure.afterTokens)
            #expect(took < .milliseconds(5_000), "\(took)")
        }
    }

    /// The total limit holds after the response head too: a stream that keeps trickling (never
    /// idle long enough for the idle timeout) is cut at the total deadline.
    @Test func totalTimeout_cutsAStreamThatKeepsTrickling() async throws {
        try await withClient(simulatorConfig(chunkDelayMs: 100), timeouts: timeouts(idleMs: 2_000, totalMs: 600)) { _, client in
            let deltas = Deltas()
            let start = ContinuousClock.now
            // About 33 chunks 100 ms apart: 3.3 s if nothing stopped it.
            let report = await client.chat(request(longPrompt(30), stream: true), key: keyA) { deltas.add($0) }
            let took = elapsed(since: start)
            let failure = try #require(report.failure, "\(report.result)")
            #expect(failure.kind == .timeout, "\(failure)")
            #expect(failure.afterTokens)
            #expect(!deltas.all.isEmpty)
            #expect(took >= .milliseconds(590) && took < .milliseconds(3_000), "\(took)")
        }
    }

    @Test func totalTimeout_onABodyThatNeverComes() async throws {
        try await withClient(timeouts: timeouts(idleMs: 10_000, totalMs: 300)) { _, client in
            for stream in [false, true] {
                let start = ContinuousClock.now
                let report = await client.chat(request("[[sim:hang]] wait", stream: stream), key: keyA)
                let took = elapsed(since: start)
                let failure = try #require(report.failure, "\(report.result)")
                #expect(failure.kind == .timeout, "stream \(stream): \(failure)")
                #expect(took < .milliseconds(5_000), "stream \(stream): \(took)")
            }
        }
    }

    // MARK: cancellation

    @Test func cancellingAHungStream_returnsCancelledPromptly() async throws {
        try await withClient { sim, client in
            let call = Task { await client.chat(request("[[sim:hang]] wait", stream: true), key: keyA) }
            // Wait until the simulator holds the request (it counts the fault before it answers).
            var polls = 0
            while sim.stats().accounts["a"]?.faultsInjected != 1 && polls < 1_000 {
                try await Task.sleep(for: .milliseconds(5))
                polls += 1
            }
            #expect(sim.stats().accounts["a"]?.faultsInjected == 1)
            let start = ContinuousClock.now
            call.cancel()
            let report = await call.value
            let took = elapsed(since: start)
            let failure = try #require(report.failure)
            #expect(failure.kind == .cancelled, "\(failure)")
            #expect(!failure.afterTokens)
            #expect(took < .milliseconds(2_000), "\(took)")
            // The client is still usable afterwards.
            #expect(await client.chat(request("after"), key: keyA).success != nil)
        }
    }

    // MARK: the callback form (agent workers)

    /// `startChat` reports exactly once, on its own (no Swift task involved), also when the call
    /// is cancelled, and a cancel after the end changes nothing.
    @Test func startChat_reportsOnce_andCancelClosesAHungCall() async throws {
        try await withClient { sim, client in
            let reports = Mutex<[ChatCallReport]>([])
            let (ended, endSink) = AsyncStream.makeStream(of: Void.self)
            var ends = ended.makeAsyncIterator()
            let body = request("Hello there").body()
            let call = client.startChat(body: body, stream: false, key: keyA) { report in
                reports.withLock { $0.append(report) }
                endSink.yield()
            }
            _ = await ends.next()
            call.cancel()
            #expect(reports.withLock { $0.count } == 1)
            #expect(reports.withLock { $0.first?.success?.content } == "Simulated reply to: Hello there")
            let timing = try #require(reports.withLock { $0.first?.timing })
            #expect(timing.sent > 0 && timing.sent <= timing.head && timing.head <= timing.end)

            let deltas = Deltas()
            let hung = client.startChat(body: request("[[sim:hang]] wait", stream: true).body(), stream: true, key: keyA, onDelta: { deltas.add($0) }) { report in
                reports.withLock { $0.append(report) }
                endSink.yield()
            }
            var polls = 0
            while sim.stats().accounts["a"]?.faultsInjected != 1 && polls < 1_000 {
                try await Task.sleep(for: .milliseconds(5))
                polls += 1
            }
            let start = ContinuousClock.now
            hung.cancel()
            hung.cancel()
            _ = await ends.next()
            #expect(elapsed(since: start) < .milliseconds(2_000))
            try await Task.sleep(for: .milliseconds(50))
            let all = reports.withLock { $0 }
            #expect(all.count == 2)
            let failure = try #require(all.last?.failure)
            #expect(failure.kind == .cancelled, "\(failure)")
            #expect(deltas.all.isEmpty)
            #expect(await client.chat(request("after"), key: keyA).success != nil)
        }
    }

    @Test func cancellingMidStream_returnsCancelledAfterTokens() async throws {
        try await withClient(simulatorConfig(chunkDelayMs: 100)) { _, client in
            let deltas = Deltas()
            let started = ContinuousClock.now
            // About 33 chunks 100 ms apart: 3.3 s if left alone.
            let call = Task { await client.chat(request(longPrompt(30), stream: true), key: keyA) { deltas.add($0) } }
            await deltas.waitForFirst()
            let start = ContinuousClock.now
            call.cancel()
            let report = await call.value
            let took = elapsed(since: start)
            let failure = try #require(report.failure, "\(report.result)")
            #expect(failure.kind == .cancelled, "\(failure)")
            #expect(failure.afterTokens)
            #expect(report.status == 200)
            #expect(took < .milliseconds(2_000), "\(took)")
            #expect(elapsed(since: started) < .milliseconds(2_000))
            #expect(deltas.all.count < 10)
        }
    }
}
