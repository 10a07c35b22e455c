import AsyncHTTPClient
import ChimeraCore
import ChimeraSimulator
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

// Every test starts its own simulator on an ephemeral port and talks to it over real HTTP.

// MARK: - harness

/// 2026-03-10T00:00:00Z, a Tuesday; tests run at hours of this day.
private let day: EpochMillis = 1_773_100_800_000
private let hour: EpochMillis = 3_600_000
private let freeModel = "meta-llama/llama-3.3-70b-instruct:free"
private let paidModel = "openai/gpt-4o-mini"
private let keyA1 = "sk-or-v1-sim-a-0001"
private let keyA2 = "sk-or-v1-sim-a-0002"
private let keyB1 = "sk-or-v1-sim-b-0001"
private let keyC1 = "sk-or-v1-sim-c-0001"

/// A clock that moves `step` ms every time it is read: consecutive free-quota admissions are
/// at least 3.1 s apart, so at most 19 fall in any minute and only the daily cap can bite.
private final class SteppingClock: WallClock, Sendable {
    private let time: Mutex<EpochMillis>
    private let step: EpochMillis
    init(_ start: EpochMillis, step: EpochMillis = 3_100) {
        time = Mutex(start)
        self.step = step
    }
    func now() -> EpochMillis { time.withLock { $0 += step; return $0 } }
}

private struct Reply {
    var status: Int
    var headers: HTTPHeaders
    var text: String
    var json: JSONValue? { try? JSONParser.parse(text) }
    func header(_ name: String) -> String? { headers.first(name: name) }
}

private struct Harness {
    let sim: OpenRouterSimulator
    let client: HTTPClient

    var base: String { sim.baseURL }

    func request(_ method: HTTPMethod, _ path: String, key: String? = nil, body: String? = nil, timeout: TimeAmount = .seconds(30)) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, text: String(buffer: buffer))
    }

    func admin(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> Reply {
        let root = String(base.dropLast("/api/v1".count))
        var request = HTTPClientRequest(url: root + path)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, text: String(buffer: buffer))
    }

    static func chatBody(_ prompt: String, model: String? = freeModel, models: [String]? = nil, stream: Bool = false,
                         system: String? = nil, extra: [(String, JSONValue)] = []) -> String {
        var messages: [JSONValue] = []
        if let system { messages.append(.object([JSONMember("role", .string("system")), JSONMember("content", .string(system))])) }
        messages.append(.object([JSONMember("role", .string("user")), JSONMember("content", .string(prompt))]))
        var members: [JSONMember] = []
        if let model { members.append(JSONMember("model", .string(model))) }
        if let models { members.append(JSONMember("models", .array(models.map(JSONValue.string)))) }
        members.append(JSONMember("messages", .array(messages)))
        if stream { members.append(JSONMember("stream", .bool(true))) }
        members += extra.map { JSONMember($0.0, $0.1) }
        return JSONValue.object(members).serialized
    }

    func chat(_ prompt: String, key: String = keyA1, model: String? = freeModel, models: [String]? = nil, stream: Bool = false,
              system: String? = nil, extra: [(String, JSONValue)] = [], timeout: TimeAmount = .seconds(30)) async throws -> Reply {
        try await request(.POST, "/chat/completions", key: key,
                          body: Self.chatBody(prompt, model: model, models: models, stream: stream, system: system, extra: extra), timeout: timeout)
    }

    /// A streamed chat: the body as it arrived, buffer by buffer.
    func streamChat(_ prompt: String, key: String = keyA1, model: String = freeModel) async throws -> (Reply, [String]) {
        var request = HTTPClientRequest(url: base + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.body = .bytes(ByteBuffer(string: Self.chatBody(prompt, model: model, stream: true)))
        let response = try await client.execute(request, timeout: .seconds(30))
        var parts: [String] = []
        for try await buffer in response.body { parts.append(String(buffer: buffer)) }
        return (Reply(status: Int(response.status.code), headers: response.headers, text: parts.joined()), parts)
    }

    func freeDaily(_ key: String) async throws -> (limit: Int, remaining: Int, used: Int) {
        let reply = try await request(.GET, "/key", key: key)
        let f = reply.json?["data"]?["free_model_daily_requests"]
        return (f?["limit"]?.int ?? -1, f?["remaining"]?.int ?? -1, f?["used"]?.int ?? -1)
    }
}

private func withSimulator(_ config: SimulatorConfig = .standard, clock: (any WallClock)? = nil,
                           _ body: (Harness) async throws -> Void) async throws {
    let sim = clock.map { OpenRouterSimulator(config: config, clock: $0) } ?? OpenRouterSimulator(config: config)
    _ = try await sim.start(port: 0)
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        try await body(Harness(sim: sim, client: client))
    } catch {
        try? await client.shutdown()
        await sim.stop()
        throw error
    }
    try await client.shutdown()
    await sim.stop()
}

/// One SSE event: a comment, or the text after `data: `.
private enum SSEEvent: Equatable {
    case comment(String)
    case data(String)
}

private func sseEvents(_ text: String) -> [SSEEvent] {
    text.split(separator: "\n\n", omittingEmptySubsequences: true).compactMap { block in
        let line = String(block)
        if line.hasPrefix(":") { return .comment(line) }
        if line.hasPrefix("data: ") { return .data(String(line.dropFirst(6))) }
        return nil
    }
}

private func dataChunks(_ text: String) -> [JSONValue] {
    sseEvents(text).compactMap { if case .data(let d) = $0, d != "[DONE]" { return try? JSONParser.parse(d) } else { return nil } }
}

extension JSONValue {
    fileprivate subscript(index: Int) -> JSONValue? {
        if case .array(let items) = self, index < items.count { return items[index] }
        return nil
    }
    fileprivate var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    fileprivate var int: Int? { numberValue.map { Int($0) } }
    fileprivate var keys: [String] { if case .object(let m) = self { return m.map(\.key) } else { return [] } }
}

private func isGenerationId(_ id: String?) -> Bool {
    guard let id else { return false }
    let parts = id.split(separator: "-")
    return parts.count == 3 && parts[0] == "gen" && Int(parts[1]) != nil && parts[2].count == 20
        && parts[2].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
}

// MARK: - tests

@Suite("OpenRouter simulator")
struct SimulatorTests {
    // MARK: chat, JSON

    @Test func nonStreamingReplyEchoesThePromptWithUsageAndIds() async throws {
        try await withSimulator { h in
            let r = try await h.chat("Hello there, simulator", system: "You are terse.")
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "application/json")
            #expect(r.header("X-RateLimit-Limit") == nil)
            let j = try #require(r.json)
            #expect(j.keys == ["id", "provider", "model", "object", "created", "choices", "system_fingerprint", "usage"])
            let id = j["id"]?.stringValue
            #expect(isGenerationId(id))
            #expect(r.header("X-Generation-Id") == id)
            #expect(j["provider"]?.stringValue == "SimProvider")
            #expect(j["model"]?.stringValue == freeModel)
            #expect(j["object"]?.stringValue == "chat.completion")
            let choice = try #require(j["choices"]?[0])
            #expect(choice["message"]?["content"]?.stringValue == "Simulated reply to: Hello there, simulator")
            #expect(choice["message"]?["role"]?.stringValue == "assistant")
            #expect(choice["finish_reason"]?.stringValue == "stop")
            #expect(choice["native_finish_reason"]?.stringValue == "stop")
            let usage = try #require(j["usage"])
            #expect(usage["prompt_tokens"]?.int == 6)       // "You are terse." + "Hello there, simulator"
            #expect(usage["completion_tokens"]?.int == 6)   // "Simulated reply to: Hello there, simulator"
            #expect(usage["total_tokens"]?.int == 12)
            #expect(usage["cost"]?.numberValue == 0)
            #expect(usage["is_byok"] == .bool(false))
            #expect(h.sim.stats().accounts["free-a"]?.served == 1)
        }
    }

    @Test func paidModelCostsTokensTimesPricesAndMaxTokensTruncates() async throws {
        try await withSimulator { h in
            let r = try await h.chat("one two three four", key: keyC1, model: paidModel, extra: [("max_tokens", .number(3))])
            #expect(r.status == 200)
            let j = try #require(r.json)
            let choice = try #require(j["choices"]?[0])
            #expect(choice["message"]?["content"]?.stringValue == "Simulated reply to:")
            #expect(choice["finish_reason"]?.stringValue == "length")
            let usage = try #require(j["usage"])
            #expect(usage["prompt_tokens"]?.int == 4)
            #expect(usage["completion_tokens"]?.int == 3)
            let expected = 4 * 0.00000015 + 3 * 0.0000006
            #expect(abs((usage["cost"]?.numberValue ?? 0) - expected) < 1e-12)
            #expect(abs((usage["cost_details"]?["upstream_inference_completions_cost"]?.numberValue ?? 0) - 3 * 0.0000006) < 1e-12)
            // Paid models do not touch the free quota.
            #expect(try await h.freeDaily(keyC1).used == 0)
        }
    }

    // MARK: chat, SSE

    @Test func streamingSendsCommentsRoleContentFinishUsageAndDone() async throws {
        var config = SimulatorConfig.standard
        config.keepAliveComments = 2
        config.latencyMs = 10
        config.chunkDelayMs = 5
        try await withSimulator(config) { h in
            let (r, parts) = try await h.streamChat("Stream me a reply please")
            #expect(r.status == 200)
            #expect(r.header("Content-Type") == "text/event-stream")
            let events = sseEvents(r.text)
            #expect(Array(events.prefix(2)) == [.comment(": OPENROUTER PROCESSING"), .comment(": OPENROUTER PROCESSING")])
            #expect(events.last == .data("[DONE]"))
            #expect(r.text.hasSuffix("data: [DONE]\n\n"))
            let chunks = dataChunks(r.text)
            #expect(chunks.count >= 6)
            let id = chunks.first?["id"]?.stringValue
            #expect(isGenerationId(id))
            #expect(r.header("X-Generation-Id") == id)
            #expect(chunks.allSatisfy { $0["id"]?.stringValue == id && $0["object"]?.stringValue == "chat.completion.chunk" })
            let role = try #require(chunks.first?["choices"]?[0]?["delta"])
            #expect(role["role"]?.stringValue == "assistant")
            #expect(role["content"]?.stringValue == "")
            let content = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
            #expect(content == "Simulated reply to: Stream me a reply please")
            let contentChunks = chunks.filter { ($0["choices"]?[0]?["delta"]?["content"]?.stringValue ?? "") != "" }
            #expect(contentChunks.count == 8)  // one per word
            let finish = chunks[chunks.count - 2]
            #expect(finish["choices"]?[0]?["finish_reason"]?.stringValue == "stop")
            let usageChunk = try #require(chunks.last)
            #expect(usageChunk["choices"] == .array([]))
            #expect(usageChunk["usage"]?["completion_tokens"]?.int == 8)
            #expect(usageChunk["usage"]?["prompt_tokens"]?.int == 5)
            // Flushed as written: the first bytes arrived long before [DONE].
            #expect(parts.count > 3)
            #expect(parts.first?.contains("[DONE]") == false)
        }
    }

    // MARK: auth, credit, models

    @Test func unauthorizedBothForms() async throws {
        try await withSimulator { h in
            let missing = try await h.request(.POST, "/chat/completions", body: Harness.chatBody("hi"))
            #expect(missing.status == 401)
            #expect(missing.text == #"{"error":{"message":"No auth credentials found","code":401}}"#)
            let unknown = try await h.chat("hi", key: "sk-or-v1-nobody")
            #expect(unknown.status == 401)
            #expect(unknown.text == #"{"error":{"message":"User not found.","code":401}}"#)
            let key = try await h.request(.GET, "/key", key: "sk-or-v1-nobody")
            #expect(key.status == 401)
            #expect(h.sim.stats().unauthorized == 3)
        }
    }

    @Test func negativeBalanceIs402EvenOnFreeModels() async throws {
        let config = SimulatorConfig(accounts: [.init(name: "broke", keys: ["sk-or-v1-broke"], creditsPurchased: 20, balance: -0.5)],
                                     models: SimulatorConfig.standard.models)
        try await withSimulator(config) { h in
            let r = try await h.chat("hi", key: "sk-or-v1-broke")
            #expect(r.status == 402)
            #expect(r.json?["error"]?["code"]?.int == 402)
            #expect(r.json?["user_id"]?.stringValue?.hasPrefix("user_") == true)
            #expect(h.sim.stats().accounts["broke"]?.paymentRequired == 1)
            #expect(try await h.freeDaily("sk-or-v1-broke").used == 0)
        }
    }

    @Test func unknownModelIs404AndMalformedIs400() async throws {
        try await withSimulator { h in
            let unknown = try await h.chat("hi", model: "acme/nonexistent-model")
            #expect(unknown.status == 404)
            #expect(unknown.json?["error"]?["message"]?.stringValue == "No endpoints found for acme/nonexistent-model.")
            let malformed = try await h.chat("hi", model: "not a model")
            #expect(malformed.status == 400)
            #expect(malformed.json?["error"]?["availability"]?["code"]?.stringValue == "model_not_found")
        }
    }

    @Test func modelsFallbackServesFromTheFirstWorkingModel() async throws {
        try await withSimulator { h in
            let r = try await h.chat("fall back", model: "sim/always-down:free", models: ["acme/unknown", "google/gemma-3-27b-it:free"])
            #expect(r.status == 200)
            #expect(r.json?["model"]?.stringValue == "google/gemma-3-27b-it:free")
            #expect(try await h.freeDaily(keyA1).used == 1)  // one request, counted once
        }
    }

    @Test func allFallbacksFailingReturnsTheLastErrorWithPreviousErrors() async throws {
        try await withSimulator { h in
            let r = try await h.chat("nothing works", model: "sim/always-down:free", models: ["acme/unknown"])
            #expect(r.status == 404)
            let previous = try #require(r.json?["error"]?["metadata"]?["previous_errors"]?.array)
            #expect(previous.count == 1)
            #expect(previous.first?["status"]?.int == 502)
            #expect(previous.first?["model"]?.stringValue == "sim/always-down:free")
            let down = try await h.chat("down", model: "sim/always-down:free")
            #expect(down.status == 502)
            #expect(down.json?["error"]?["message"]?.stringValue == "Provider returned error")
            #expect(down.json?["error"]?["metadata"]?["provider_name"]?.stringValue == "SimProvider")
            #expect(down.json?["error"]?["metadata"]?["raw"]?.stringValue != nil)
        }
    }

    // MARK: free-model quotas

    @Test func dailyCapOf50IsSharedByTheKeysOfAnAccount() async throws {
        try await withSimulator(clock: SteppingClock(day + 10 * hour)) { h in
            for i in 0..<50 {
                let r = try await h.chat("request \(i)", key: i.isMultiple(of: 2) ? keyA1 : keyA2)
                #expect(r.status == 200, "request \(i)")
            }
            let limited = try await h.chat("one too many", key: keyA2)
            #expect(limited.status == 429)
            let reset = "\(day + 24 * hour)"
            #expect(limited.header("X-RateLimit-Limit") == "50")
            #expect(limited.header("X-RateLimit-Remaining") == "0")
            #expect(limited.header("X-RateLimit-Reset") == reset)
            #expect(limited.header("Retry-After") == nil)
            #expect(limited.text == """
                {"error":{"code":429,"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",\
                "metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"\(reset)"},\
                "error_type":"rate_limit_exceeded","limit_source":"openrouter_free_tier_daily"}},"user_id":"user_simfreea"}
                """)
            // Another account is unaffected; paid models still work for this one.
            #expect(try await h.chat("other account", key: keyB1).status == 200)
            let stats = h.sim.stats()
            #expect(stats.accounts["free-a"]?.rateLimitedDaily == 1)
            #expect(stats.accounts["free-a"]?.served == 50)
            #expect(stats.keys[keyA2]?.rateLimitedDaily == 1)
            #expect(stats.freeUsedToday["free-a"] == 50)
            let daily = try await h.freeDaily(keyA1)
            #expect(daily.limit == 50 && daily.remaining == 0 && daily.used == 50)
        }
    }

    @Test func creditsAccountGets1000FreeRequestsADay() async throws {
        try await withSimulator(clock: SteppingClock(day + 1 * hour)) { h in
            for batch in 0..<50 {
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for i in 0..<20 {
                        group.addTask { try await h.chat("b\(batch) r\(i)", key: i.isMultiple(of: 2) ? keyC1 : "sk-or-v1-sim-c-0002").status }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses.allSatisfy { $0 == 200 }, "batch \(batch)")
            }
            let limited = try await h.chat("1001", key: keyC1)
            #expect(limited.status == 429)
            #expect(limited.header("X-RateLimit-Limit") == "1000")
            #expect(limited.json?["error"]?["message"]?.stringValue == "Rate limit exceeded: free-models-per-day-high-balance")
            #expect(limited.json?["error"]?["metadata"]?["limit_source"]?.stringValue == "openrouter_free_tier_daily")
        }
    }

    @Test func perMinuteCapOf20ResetsWhenTheWindowFrees() async throws {
        let start = day + 9 * hour
        let clock = ManualClock(start)
        try await withSimulator(clock: clock) { h in
            for i in 0..<10 { #expect(try await h.chat("a\(i)", key: keyA1).status == 200) }
            clock.advance(by: 30_000)
            for i in 0..<10 { #expect(try await h.chat("b\(i)", key: keyA2).status == 200) }
            let limited = try await h.chat("21st")
            #expect(limited.status == 429)
            #expect(limited.header("X-RateLimit-Limit") == "20")
            #expect(limited.header("X-RateLimit-Remaining") == "0")
            #expect(limited.header("X-RateLimit-Reset") == "\(start + 60_000)")
            #expect(limited.json?["error"]?["message"]?.stringValue == "Rate limit exceeded: free-models-per-min.")
            #expect(limited.json?["error"]?["metadata"]?["error_type"]?.stringValue == "rate_limit_exceeded")
            #expect(limited.json?["user_id"]?.stringValue == "user_simfreea")
            clock.advance(by: 30_000)  // the first ten leave the window
            #expect(try await h.chat("again").status == 200)
            #expect(h.sim.stats().accounts["free-a"]?.rateLimitedMinute == 1)
            #expect(try await h.freeDaily(keyA1).used == 21)
        }
    }

    @Test func dailyCountRollsOverAtUTCMidnight() async throws {
        try await withSimulator(clock: SteppingClock(day + 23 * hour + 50 * 60_000)) { h in
            for i in 0..<50 { #expect(try await h.chat("late \(i)").status == 200) }
            let limited = try await h.chat("too late")
            #expect(limited.status == 429)
            #expect(limited.header("X-RateLimit-Reset") == "\(day + 24 * hour)")
            h.sim.setTime(day + 24 * hour)
            #expect(try await h.chat("new day").status == 200)
            let daily = try await h.freeDaily(keyA2)
            #expect(daily.used == 1 && daily.remaining == 49)
        }
    }

    @Test func failedAttemptsCountAgainstTheFreeQuota() async throws {
        try await withSimulator { h in
            for _ in 0..<3 {
                let r = try await h.chat("[[sim:status=502]] fail")
                #expect(r.status == 502)
                #expect(r.json?["error"]?["metadata"]?["provider_name"]?.stringValue == "SimProvider")
            }
            #expect(try await h.freeDaily(keyA1).used == 3)
            let stats = h.sim.stats().accounts["free-a"]
            #expect(stats?.faultsInjected == 3)
            #expect(stats?.freeCounted == 3)
            #expect(stats?.served == 0)
        }
    }

    @Test func concurrentRequestsNeverExceedTheDailyCap() async throws {
        try await withSimulator(clock: SteppingClock(day + 1 * hour)) { h in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<100 { group.addTask { try await h.chat("c\(i)", key: i.isMultiple(of: 2) ? keyA1 : keyA2).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 50)
            #expect(statuses.filter { $0 == 429 }.count == 50)
            #expect(h.sim.stats().accounts["free-a"]?.rateLimitedDaily == 50)
        }
    }

    @Test func concurrentRequestsNeverExceedTheMinuteCap() async throws {
        try await withSimulator(clock: ManualClock(day + 1 * hour)) { h in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<100 { group.addTask { try await h.chat("m\(i)").status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 20)
            #expect(statuses.filter { $0 == 429 }.count == 80)
        }
    }

    // MARK: fault directives

    @Test func injectedStatusesCarryOpenRouterBodiesAndRetryAfter() async throws {
        try await withSimulator { h in
            let upstream = try await h.chat("[[sim:status=429]] busy", key: keyC1, model: paidModel)
            #expect(upstream.status == 429)
            #expect(upstream.header("Retry-After") == "1")
            #expect(upstream.header("X-RateLimit-Reset") == nil)
            let meta = upstream.json?["error"]?["metadata"]
            #expect(meta?["provider_name"]?.stringValue == "SimProvider")
            #expect(meta?["retry_after_seconds"]?.int == 1)
            let overloaded = try await h.chat("[[sim:status=503,retry-after=7]] busy", key: keyC1, model: paidModel)
            #expect(overloaded.status == 503)
            #expect(overloaded.header("Retry-After") == "7")
            #expect(overloaded.json?["error"]?["availability"]?["retryable"] == .bool(true))
            let server = try await h.chat("[[sim:status=500]]", key: keyC1, model: paidModel)
            #expect(server.status == 500)
            #expect(server.json?["error"]?["code"]?.int == 500)
            let typo = try await h.chat("[[sim:explode]]", key: keyC1, model: paidModel)
            #expect(typo.status == 400)
            #expect(typo.json?["error"]?["message"]?.stringValue?.contains("[[sim:explode]]") == true)
        }
    }

    @Test func directivesAreStrippedFromTheEcho() async throws {
        try await withSimulator { h in
            let r = try await h.chat("[[sim:latency=1]]Tell me [[sim:latency=2]]a story")
            #expect(r.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "Simulated reply to: Tell me a story")
            #expect(r.json?["usage"]?["prompt_tokens"]?.int == 4)
        }
    }

    @Test func repliesDirective_answersInTurnPerPrompt_asSamplingWould() async throws {
        try await withSimulator { h in
            var answers: [String] = []
            for _ in 0..<4 {
                let r = try await h.chat("Pick one [[sim:replies=red|green|red]]")
                answers.append(r.json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? "?")
            }
            #expect(answers == ["red", "green", "red", "red"], "turns cycle")
            let other = try await h.chat("Another prompt [[sim:replies=red|green|red]]")
            #expect(other.json?["choices"]?[0]?["message"]?["content"]?.stringValue == "red", "each prompt has its own turns")
            let empty = try await h.chat("[[sim:replies=a||b]]")
            #expect(empty.status == 400)
            #expect(empty.json?["error"]?["message"]?.stringValue
                == "Invalid simulator directive [[sim:replies=a||b]]: replies needs texts separated by |: replies=A|B|C")
        }
    }

    @Test func aReasoningModel_listsReasoningAmongItsSupportedParameters() async throws {
        var config = SimulatorConfig.standard
        config.models.append(SimulatorConfig.Model(id: "sim/thinker", contextLength: 8_192, reasoning: true))
        try await withSimulator(config) { h in
            let data = try #require(try await h.request(.GET, "/models").json?["data"]?.array)
            let thinker = try #require(data.first { $0["id"]?.stringValue == "sim/thinker" })
            #expect(thinker["supported_parameters"]?.array?.contains(.string("include_reasoning")) == true)
            #expect(thinker["supported_parameters"]?.array?.contains(.string("reasoning")) == true)
            #expect(data.first { $0["id"]?.stringValue == paidModel }?["supported_parameters"]?.array?.contains(.string("reasoning")) == false)
        }
    }

    @Test func midstreamErrorArrivesAfterTwoChunksWithoutDone() async throws {
        try await withSimulator { h in
            let (r, _) = try await h.streamChat("[[sim:midstream-error]] a long enough prompt here")
            #expect(r.status == 200)
            let chunks = dataChunks(r.text)
            #expect(!r.text.contains("[DONE]"))
            let contents = chunks.dropFirst().compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.filter { !$0.isEmpty }
            #expect(contents == ["Simulated", " reply"])
            let last = try #require(chunks.last)
            #expect(last["error"]?["code"] == .number(502))
            #expect(last["error"]?["metadata"]?["error_type"]?.stringValue == "provider_unavailable")
            #expect(last["choices"]?[0]?["finish_reason"]?.stringValue == "error")
            #expect(h.sim.stats().accounts["free-a"]?.faultsInjected == 1)
        }
    }

    @Test func errorFirstStreamHasOnlyAnErrorChunk() async throws {
        try await withSimulator { h in
            let (r, _) = try await h.streamChat("[[sim:error-first]] hi")
            #expect(r.status == 200)
            let data = sseEvents(r.text).filter { if case .data = $0 { return true } else { return false } }
            #expect(data.count == 1)
            let chunk = try #require(dataChunks(r.text).first)
            #expect(chunk["choices"] == .array([]))
            #expect(chunk["error"]?["code"]?.int == 502)
        }
    }

    @Test func inBandErrorsInJSONResponses() async throws {
        try await withSimulator { h in
            let only = try await h.chat("[[sim:200-error]] hi")
            #expect(only.status == 200)
            #expect(only.json?.keys == ["error", "user_id"])
            #expect(only.json?["error"]?["code"]?.int == 502)

            let choice = try await h.chat("[[sim:choice-error]] one two three")
            #expect(choice.status == 200)
            let c = choice.json?["choices"]?[0]
            #expect(c?["finish_reason"]?.stringValue == "error")
            #expect(c?["error"]?["metadata"]?["error_type"]?.stringValue == "provider_unavailable")
            #expect(c?["message"]?["content"]?.stringValue == "Simulated reply")

            let empty = try await h.chat("[[sim:empty-choices]] hi")
            #expect(empty.status == 200)
            #expect(empty.json?["choices"] == .array([]))
            #expect(empty.json?["usage"]?["prompt_tokens"]?.int == 1)
        }
    }

    @Test func dropClosesTheConnectionMidResponse() async throws {
        try await withSimulator { h in
            await #expect(throws: (any Error).self) { _ = try await h.chat("[[sim:drop]] partial json please") }
            await #expect(throws: (any Error).self) { _ = try await h.streamChat("[[sim:drop]] partial stream please") }
            await #expect(throws: (any Error).self) { _ = try await h.chat("[[sim:drop-before]] nothing at all") }
            // The server is fine afterwards.
            let alive = try await h.chat("still alive")
            #expect(alive.status == 200)
            #expect(h.sim.stats().accounts["free-a"]?.faultsInjected == 3)
        }
    }

    @Test func latencyDirectiveDelaysTheAnswer() async throws {
        try await withSimulator { h in
            let clock = ContinuousClock()
            let started = clock.now
            let r = try await h.chat("[[sim:latency=150]] slow")
            #expect(r.status == 200)
            #expect(clock.now - started >= .milliseconds(150))
        }
    }

    @Test func hangSendsHeadersThenNothingUntilTheClientGivesUp() async throws {
        try await withSimulator { h in
            // A client that gives up after 2 s without a byte. Not shorter: on a loaded CI machine,
            // with every suite starting at once, the head itself once took more than 300 ms.
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(read: .seconds(2))
            let impatient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            // Whatever happens below, the client is shut down: AsyncHTTPClient traps in deinit otherwise.
            do {
                let patient = Harness(sim: h.sim, client: impatient)
                // Streaming: the head and a keep-alive comment arrive, then silence.
                var request = HTTPClientRequest(url: h.base + "/chat/completions")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(keyA1)")
                request.body = .bytes(ByteBuffer(string: Harness.chatBody("[[sim:hang]] wait", stream: true)))
                let outcome: Result<String, any Error>
                do {
                    let response = try await impatient.execute(request, timeout: .seconds(30))
                    #expect(response.status == .ok)
                    #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
                    var received = ""
                    do {
                        for try await buffer in response.body { received += String(buffer: buffer) }
                        outcome = .success(received)
                    } catch {
                        #expect(received == ": OPENROUTER PROCESSING\n\n")
                        outcome = .failure(error)
                    }
                }
                #expect(throws: (any Error).self) { try outcome.get() }
                // JSON: the head, then nothing.
                await #expect(throws: (any Error).self) { _ = try await patient.chat("[[sim:hang]] wait") }
            } catch {
                try? await impatient.shutdown()
                throw error
            }
            try await impatient.shutdown()
            #expect(try await h.chat("next").status == 200)
        }
    }

    @Test func errorRatesAreSeededAndDeterministic() async throws {
        var config = SimulatorConfig.standard
        config.errorRates = [502: 0.5]
        config.seed = 42
        var runs: [[Int]] = []
        for _ in 0..<2 {
            try await withSimulator(config) { h in
                var statuses: [Int] = []
                for i in 0..<12 { statuses.append(try await h.chat("r\(i)", key: keyC1, model: paidModel).status) }
                runs.append(statuses)
            }
        }
        #expect(runs[0] == runs[1])
        #expect(runs[0].contains(502) && runs[0].contains(200))
    }

    // MARK: other endpoints

    @Test func modelsListsConfiguredModelsWithPricingStrings() async throws {
        try await withSimulator { h in
            let r = try await h.request(.GET, "/models")
            #expect(r.status == 200)
            let j = try #require(r.json)
            let data = try #require(j["data"]?.array)
            #expect(data.count == SimulatorConfig.standard.models.count)
            #expect(j["total_count"]?.int == data.count)
            #expect(j["links"]?["next"] == .null)
            let paid = try #require(data.first { $0["id"]?.stringValue == paidModel })
            #expect(paid["pricing"]?["prompt"]?.stringValue == "0.00000015")
            #expect(paid["pricing"]?["completion"]?.stringValue == "0.0000006")
            #expect(paid["context_length"]?.int == 128_000)
            #expect(paid["top_provider"]?["context_length"]?.int == 128_000)
            #expect(paid["supported_parameters"]?.array?.contains(.string("max_tokens")) == true)
            #expect(paid["name"]?.stringValue?.isEmpty == false)
            let auto = try #require(data.first { $0["id"]?.stringValue == "openrouter/auto" })
            #expect(auto["pricing"]?["prompt"]?.stringValue == "-1")
            #expect(data.filter { $0["id"]?.stringValue?.hasSuffix(":free") == true }.count >= 3)
        }
    }

    @Test func keyReportsTheAccountsFreeQuotaAndSpend() async throws {
        try await withSimulator { h in
            _ = try await h.chat("one", key: keyA1)
            _ = try await h.chat("two", key: keyA2)
            let r = try await h.request(.GET, "/key", key: keyA1)
            #expect(r.status == 200)
            let d = try #require(r.json?["data"])
            #expect(d["label"]?.stringValue == "sk-or-v1-sim…0001")
            #expect(d["is_free_tier"] == .bool(true))
            #expect(d["limit"] == .null)
            #expect(d["limit_remaining"] == .null)
            #expect(d["usage"]?.numberValue == 0)
            #expect(d["free_model_daily_requests"] == .object([JSONMember("limit", .number(50)), JSONMember("remaining", .number(48)), JSONMember("used", .number(2))]))
            let legacy = try await h.request(.GET, "/auth/key", key: keyA2)
            #expect(legacy.json?["data"]?["free_model_daily_requests"]?["used"]?.int == 2)

            _ = try await h.chat("spend some", key: keyC1, model: paidModel)
            let c = try #require(try await h.request(.GET, "/key", key: keyC1).json?["data"])
            #expect(c["is_free_tier"] == .bool(false))
            #expect(c["free_model_daily_requests"]?["limit"]?.int == 1000)
            #expect((c["usage"]?.numberValue ?? 0) > 0)
            #expect(c["usage_daily"]?.numberValue == c["usage"]?.numberValue)
        }
    }

    @Test func generationIsAvailableForProducedIds() async throws {
        try await withSimulator { h in
            let r = try await h.chat("generate", key: keyC1, model: paidModel)
            let id = try #require(r.json?["id"]?.stringValue)
            let g = try await h.request(.GET, "/generation?id=\(id)", key: "sk-or-v1-sim-c-0002")
            #expect(g.status == 200)
            let d = try #require(g.json?["data"])
            #expect(d["id"]?.stringValue == id)
            #expect(d["model"]?.stringValue == paidModel)
            #expect(d["tokens_prompt"]?.int == 1)
            #expect(d["tokens_completion"]?.int == 4)
            #expect(d["provider_name"]?.stringValue == "SimProvider")
            #expect(d["streamed"] == .bool(false))
            #expect(d["finish_reason"]?.stringValue == "stop")
            #expect(try await h.request(.GET, "/generation?id=gen-1-AAAAAAAAAAAAAAAAAAAA", key: keyC1).status == 404)
            #expect(try await h.request(.GET, "/generation?id=\(id)", key: keyA1).status == 404)  // another account's
        }
    }

    @Test func creditsNeedsAManagementKey() async throws {
        try await withSimulator { h in
            let r = try await h.request(.GET, "/credits", key: keyC1)
            #expect(r.status == 403)
            #expect(r.text == #"{"error":{"code":403,"message":"Only management keys can perform this operation"}}"#)
        }
    }

    // MARK: admin, config, lifecycle

    @Test func adminEndpointsControlClockStatsAndReset() async throws {
        try await withSimulator(clock: ManualClock(day + 5 * hour)) { h in
            let set = try await h.admin(.POST, "/_sim/clock", body: #"{"now_ms": \#(day + 12 * hour)}"#)
            #expect(set.status == 200)
            #expect(try await h.admin(.GET, "/_sim/clock").json?["now_ms"]?.int == Int(day + 12 * hour))
            #expect(h.sim.now() == day + 12 * hour)
            _ = try await h.chat("count me")
            let stats = try #require(try await h.admin(.GET, "/_sim/stats").json)
            #expect(stats["accounts"]?["free-a"]?["requests"]?.int == 1)
            #expect(stats["accounts"]?["free-a"]?["free_used_today"]?.int == 1)
            #expect(stats["keys"]?[keyA1]?["served"]?.int == 1)
            #expect(try await h.admin(.POST, "/_sim/reset").status == 200)
            #expect(h.sim.stats().accounts["free-a"]?.requests == 0)
            #expect(try await h.freeDaily(keyA1).used == 0)
            #expect(try await h.admin(.POST, "/_sim/clock", body: #"{"now": 1}"#).status == 400)
        }
    }

    @Test func configDecodesAndReportsProblemsWithPaths() throws {
        let good = """
            {"accounts": [{"name": "t", "keys": ["sk-or-v1-t1", "sk-or-v1-t2"], "credits_purchased": 10, "balance": 3.5}],
             "models": [{"id": "x/y:free", "context_length": 4096}, {"id": "x/paid", "context_length": 8192, "prompt_price": "0.000001", "completion_price": "0.000002", "down": true}],
             "latency_ms": 25, "chunk_delay_ms": 3, "keep_alive_comments": 2, "error_rates": {"502": 0.1}, "seed": 9}
            """
        let config = try SimulatorConfig.decode(Array(good.utf8), file: "sim.json")
        #expect(config.accounts.map(\.keys) == [["sk-or-v1-t1", "sk-or-v1-t2"]])
        #expect(config.accounts.first?.creditsPurchased == 10)
        #expect(config.models.map(\.id) == ["x/y:free", "x/paid"])
        #expect(config.models.last?.down == true)
        #expect(config.latencyMs == 25 && config.chunkDelayMs == 3 && config.keepAliveComments == 2 && config.seed == 9)
        #expect(config.errorRates == [502: 0.1])

        let bad = """
            {"acounts": [], "latency_ms": -1,
             "models": [{"id": "nope", "context_length": 10, "prompt_price": 0.1}],
             "error_rates": {"abc": 0.1}}
            """
        do {
            _ = try SimulatorConfig.decode(Array(bad.utf8), file: "bad.json")
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("bad.json"))
            #expect(text.contains("$.acounts") && text.contains("did you mean \"accounts\""))
            #expect(text.contains("$.latency_ms"))
            #expect(text.contains("$.models[0].id"))
            #expect(text.contains("$.models[0].prompt_price"))
            #expect(text.contains("$.error_rates.abc"))
        }
        #expect(throws: ConfigError.self) { _ = try SimulatorConfig.decode(Array("{".utf8), file: "x.json") }
    }

    @Test func startingOnABusyPortFailsClearly() async throws {
        let first = OpenRouterSimulator(config: .standard)
        let port = try await first.start()
        #expect(first.baseURL == "http://127.0.0.1:\(port)/api/v1")
        let second = OpenRouterSimulator(config: .standard)
        do {
            _ = try await second.start(port: port)
            Issue.record("the second bind should fail")
            await second.stop()
        } catch let error as SimulatorStartError {
            #expect(error.addressInUse)
            #expect(error.port == port)
        }
        await first.stop()
    }
}
