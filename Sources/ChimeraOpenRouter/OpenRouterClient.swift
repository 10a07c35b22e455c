import AsyncHTTPClient
import ChimeraCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where and how to reach one OpenAI-compatible API: OpenRouter, or another provider such as a
/// local llama.cpp or Ollama server (same client, different base URL and headers).
public struct ProviderEndpoint: Sendable, Equatable {
    public var name: String
    /// The API root, e.g. `https://openrouter.ai/api/v1`; paths like `/chat/completions` are appended.
    public var baseURL: String
    /// Extra headers on every request (OpenRouter's attribution: `HTTP-Referer`, `X-OpenRouter-Title`).
    public var headers: [HTTPHeaderPair]

    public init(name: String, baseURL: String, headers: [HTTPHeaderPair] = []) {
        self.name = name
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.headers = headers
    }

    public static let openRouterURL = "https://openrouter.ai/api/v1"

    /// OpenRouter at `baseURL` when given (a command-line flag wins), else `OPENROUTER_BASE_URL`,
    /// else the public API.
    public static func openRouter(baseURL: String? = nil, referer: String? = nil, title: String? = nil, environment: [String: String] = [:]) -> ProviderEndpoint {
        var headers: [HTTPHeaderPair] = []
        if let referer { headers.append(HTTPHeaderPair("HTTP-Referer", referer)) }
        if let title { headers.append(HTTPHeaderPair("X-OpenRouter-Title", title)) }
        let url = baseURL ?? environment["OPENROUTER_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? openRouterURL
        return ProviderEndpoint(name: "openrouter", baseURL: url, headers: headers)
    }
}

extension ProviderEndpoint {
    /// The OpenRouter endpoint a command uses: `flag` (`--base-url`), else `$OPENROUTER_BASE_URL`,
    /// else the config's `openrouter.base_url`, else the public API; attribution headers from config.
    public static func openRouter(flag: String?, settings: OpenRouterSettings, environment: [String: String]) -> ProviderEndpoint {
        let fromEnvironment = environment["OPENROUTER_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        return openRouter(baseURL: flag ?? fromEnvironment ?? settings.baseURL, referer: settings.referer, title: settings.title)
    }
}

extension CallTimeouts {
    /// Timeouts as configured (the `openrouter` section or a provider's).
    public init(_ settings: TimeoutSettings) {
        self.init()
        connectMs = Int64(settings.connectMs)
        firstByteMs = Int64(settings.firstByteMs)
        idleMs = Int64(settings.idleMs)
        totalMs = Int64(settings.totalMs)
    }
}

/// One header, kept as a pair so order and repeats survive.
public struct HTTPHeaderPair: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// Time limits of one call, in milliseconds.
public struct CallTimeouts: Sendable, Equatable {
    /// TCP (and TLS) connection setup.
    public var connectMs: Int64 = 10_000
    /// From sending the request to the response head.
    public var firstByteMs: Int64 = 60_000
    /// Between two reads of the body (a stream that stalls; keep-alive comments count as reads).
    public var idleMs: Int64 = 60_000
    /// The whole call.
    public var totalMs: Int64 = 600_000

    public init() {}
}

/// What one HTTP call produced, with what the key pool and ledger need.
public struct ChatCallReport: Sendable {
    public var result: Result<ChatCompletion, ExternalError>
    /// The HTTP status, when a response head arrived.
    public var status: Int?
    /// From sending the request to the end of the response.
    public var latencyMs: Int64
    /// From sending the request to the first content token (streams) or the response (non-streams).
    public var firstTokenMs: Int64?
    /// Monotonic instants of the call's phases, for latency breakdowns (`chimera bench gateway --breakdown`).
    public var timing = ChatCallTiming()
}

/// When a call reached each phase, in nanoseconds of `CLOCK_MONOTONIC` (the clock of
/// `uv_hrtime`, so instants from different processes and threads compare); 0 if not reached.
public struct ChatCallTiming: Sendable, Equatable {
    /// The request was handed to the HTTP client on its event loop.
    public var sent: UInt64 = 0
    /// The response head arrived.
    public var head: UInt64 = 0
    /// The response ended (or the call failed).
    public var end: UInt64 = 0

    public init() {}

    /// `CLOCK_MONOTONIC` now, in nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// An OpenRouter (or OpenAI-compatible) HTTP client on AsyncHTTPClient: chat completions with and
/// without streaming, the model list, and key information.
///
/// Connections are pooled and reused. Cancelling the calling task closes the connection, which is
/// how OpenRouter is told to stop generating.
public final class OpenRouterClient: Sendable {
    public let endpoint: ProviderEndpoint
    public let timeouts: CallTimeouts
    private let http: HTTPClient
    /// The one event loop chat calls, their connections and their callbacks run on (see ``startChat``).
    private let eventLoop: any EventLoop
    private let chatURL: String
    /// The headers every chat request carries (the endpoint's, and the content type).
    private let baseHeaders: HTTPHeaders
    /// The largest non-streamed body read (a chat reply or the model list).
    public static let maxBodyBytes = 32 << 20

    /// A thread of its own (`ownThread`), shut down with the client; nil: NIO's shared loops, or a
    /// caller's group (`sharing:`).
    private let ownGroup: MultiThreadedEventLoopGroup?

    /// - Parameter ownThread: run this client on an event loop thread of its own instead of one of
    ///   NIO's shared loops (which an in-process server, such as the simulator, may be using too).
    public convenience init(endpoint: ProviderEndpoint, timeouts: CallTimeouts = CallTimeouts(), maxConnectionsPerHost: Int = 64, ownThread: Bool = false) {
        let group = ownThread ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        self.init(endpoint: endpoint, timeouts: timeouts, maxConnectionsPerHost: maxConnectionsPerHost, group: group, ownsGroup: group != nil)
    }

    /// A client whose calls, connections and callbacks run on `eventLoop` (its group is not shut
    /// down with the client): an agent worker whose protocol I/O runs on the same loop then
    /// makes a call without any thread hop.
    public convenience init(endpoint: ProviderEndpoint, timeouts: CallTimeouts = CallTimeouts(), maxConnectionsPerHost: Int = 64,
                            sharing group: MultiThreadedEventLoopGroup) {
        self.init(endpoint: endpoint, timeouts: timeouts, maxConnectionsPerHost: maxConnectionsPerHost, group: group, ownsGroup: false)
    }

    private init(endpoint: ProviderEndpoint, timeouts: CallTimeouts, maxConnectionsPerHost: Int, group: MultiThreadedEventLoopGroup?, ownsGroup: Bool) {
        self.endpoint = endpoint
        self.timeouts = timeouts
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(timeouts.connectMs), read: .milliseconds(timeouts.idleMs))
        // The default of 8 connections per host queues concurrent calls behind each other.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost)
        configuration.decompression = .disabled
        ownGroup = ownsGroup ? group : nil
        http = HTTPClient(eventLoopGroupProvider: group.map { .shared($0) } ?? .singleton, configuration: configuration)
        // One loop per client: a response never hops from its connection's loop to another one
        // (clients of different endpoints spread over the group's loops).
        eventLoop = (group ?? HTTPClient.defaultEventLoopGroup).next()
        chatURL = endpoint.baseURL + "/chat/completions"
        var headers = HTTPHeaders()
        for header in endpoint.headers { headers.add(name: header.name, value: header.value) }
        headers.add(name: "Content-Type", value: "application/json")
        baseHeaders = headers
    }

    /// Closes pooled connections. Call once, when done.
    public func shutdown() async {
        try? await http.shutdown()
        try? await ownGroup?.shutdownGracefully()
    }

    /// Closes pooled connections from synchronous code (a worker stopping), cancelling calls in flight.
    public func shutdownNow() {
        try? http.syncShutdown()
        try? ownGroup?.syncShutdownGracefully()
    }

    // MARK: Chat

    /// One chat completion. With `request.stream`, `onDelta` receives each content fragment as it
    /// arrives; the result is success only if the stream ended with `[DONE]`.
    public func chat(_ request: ChatRequest, key: APIKeySecret?, onDelta: @escaping @Sendable (String) -> Void = { _ in }) async -> ChatCallReport {
        await chat(body: request.body(), stream: request.stream, key: key, onDelta: onDelta)
    }

    /// The same with a ready JSON body. Cancelling the calling task cancels the call (its
    /// connection is closed) and returns a `cancelled` failure.
    public func chat(body: [UInt8], stream: Bool, key: APIKeySecret?, onDelta: @escaping @Sendable (String) -> Void = { _ in }) async -> ChatCallReport {
        let call = ChatCall()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ChatCallReport, Never>) in
                startChat(body: body, stream: stream, key: key, call: call, onDelta: onDelta) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            call.cancel()
        }
    }

    /// Starts a chat call without Swift concurrency (what an agent worker uses from its loop
    /// thread): the request, the response, `onDelta` and `completion` all run on this client's one
    /// event loop, so a call costs one thread hop there and one back (whatever `completion` does
    /// to reach the caller). `completion` runs exactly once, also after ``ChatCall/cancel()``
    /// (then with a `cancelled` failure).
    @discardableResult
    public func startChat(body: [UInt8], stream: Bool, key: APIKeySecret?, onDelta: @escaping @Sendable (String) -> Void = { _ in },
                          completion: @escaping @Sendable (ChatCallReport) -> Void) -> ChatCall {
        let call = ChatCall()
        startChat(body: body, stream: stream, key: key, call: call, onDelta: onDelta, completion: completion)
        return call
    }

    private func startChat(body: [UInt8], stream: Bool, key: APIKeySecret?, call: ChatCall, onDelta: @escaping @Sendable (String) -> Void,
                           completion: @escaping @Sendable (ChatCallReport) -> Void) {
        let handler = ChatResponseHandler(stream: stream, timeouts: timeouts, onDelta: onDelta, completion: completion)
        let request: HTTPClient.Request
        do {
            var headers = baseHeaders
            if let key { headers.add(name: "Authorization", value: "Bearer " + key.reveal()) }
            if stream { headers.add(name: "Accept", value: "text/event-stream") }
            request = try HTTPClient.Request(url: chatURL, method: .POST, headers: headers, body: .bytes(body))
        } catch {
            eventLoop.execute { handler.finish(error) }
            return
        }
        // One hop to the event loop; from there on everything stays on it. `.delegate(on:)`, not
        // `.delegateAndChannel(on:)`: a request that *requires* a loop gets a throw-away
        // "overflow" connection whenever no idle one is on that loop, and measurably did (one new
        // connection every few calls). Preferring the loop makes every pooled connection start on
        // it, since all of this client's requests prefer the same loop.
        let start: @Sendable () -> Void = { [http, eventLoop] in
            handler.startTimers(on: eventLoop)
            let task = http.execute(request: request, delegate: handler, eventLoop: .delegate(on: eventLoop))
            handler.task = task
            task.futureResult.whenComplete { result in
                switch result {
                case .success: handler.finish(nil)
                case .failure(let error): handler.finish(error)
                }
            }
            call.attach(task)
        }
        // Called on the loop already (an agent worker whose I/O runs there): no hop at all.
        if eventLoop.inEventLoop { start() } else { eventLoop.execute(start) }
    }

    // MARK: Catalog and keys

    /// `GET /models`.
    public func listModels(key: APIKeySecret? = nil) async -> Result<[ModelInfo], ExternalError> {
        switch await get("/models", key: key) {
        case .failure(let error): return .failure(error)
        case .success(let body):
            do { return .success(try ModelCatalogDecoder.decode(body)) } catch { return .failure(error) }
        }
    }

    /// `GET /key`: validity, spending limits and the account's free-model daily counter.
    public func keyInfo(key: APIKeySecret) async -> Result<KeyInfo, ExternalError> {
        switch await get("/key", key: key) {
        case .failure(let error): return .failure(error)
        case .success(let body):
            do { return .success(try KeyInfoDecoder.decode(body)) } catch { return .failure(error) }
        }
    }

    private func get(_ path: String, key: APIKeySecret?) async -> Result<[UInt8], ExternalError> {
        let totalMs = timeouts.totalMs
        return await withinTotal({ await self.getCall(path, key: key) }) { result in
            guard case .failure(let error) = result, error.kind == .cancelled else { return result }
            return .failure(ExternalError(kind: .timeout, message: "no complete response to GET \(path) within \(totalMs) ms (total timeout)"))
        }
    }

    private func getCall(_ path: String, key: APIKeySecret?) async -> Result<[UInt8], ExternalError> {
        let started = NIODeadline.now()
        var request = HTTPClientRequest(url: endpoint.baseURL + path)
        request.method = .GET
        applyHeaders(&request, key: key)
        do {
            let response = try await headWithin(request, deadline: started + .milliseconds(timeouts.totalMs))
            let body = try await collect(response.body)
            let status = Int(response.status.code)
            guard status < 400 else {
                return .failure(ChatResponseDecoder.classify(status: status, headers: response.headers.map { ($0.name, $0.value) }, body: body, now: Self.wallClockNow()))
            }
            return .success(body)
        } catch {
            return .failure(Self.transportError(error, phase: "GET \(path)"))
        }
    }

    // MARK: Plumbing

    private func applyHeaders(_ request: inout HTTPClientRequest, key: APIKeySecret?) {
        if let key { request.headers.add(name: "Authorization", value: "Bearer " + key.reveal()) }
        for header in endpoint.headers { request.headers.add(name: header.name, value: header.value) }
    }

    private enum Race<T: Sendable>: Sendable {
        case finished(T)
        case expired
        case interrupted
    }

    /// Holds `totalMs` over the whole call, body included (AsyncHTTPClient's deadline ends with the
    /// response head, so a stream that keeps trickling would outlive it). Runs `call`; if the total
    /// time passes first, cancels it and hands what it then returns (a cancellation) to `expired`.
    /// Cancelling the caller still reaches `call` as a cancellation.
    private func withinTotal<T: Sendable>(_ call: @escaping @Sendable () async -> T, expired: (T) -> T) async -> T {
        let totalMs = timeouts.totalMs
        let (value, timedOut) = await withTaskGroup(of: Race<T>.self) { group -> (T, Bool) in
            group.addTask { .finished(await call()) }
            group.addTask {
                do {
                    try await Task.sleep(nanoseconds: UInt64(min(max(0, totalMs), 1 << 40)) * 1_000_000)
                    return .expired
                } catch {
                    return .interrupted
                }
            }
            var timedOut = false
            while let next = await group.next() {
                switch next {
                case .finished(let value):
                    group.cancelAll()
                    return (value, timedOut)
                case .expired:
                    timedOut = true
                    group.cancelAll()
                case .interrupted:
                    break
                }
            }
            preconditionFailure("the call's task always reports")
        }
        return timedOut ? expired(value) : value
    }

    /// Sends the request and waits for the response head at most `firstByteMs`.
    private func headWithin(_ request: HTTPClientRequest, deadline: NIODeadline) async throws -> HTTPClientResponse {
        let firstByte = timeouts.firstByteMs
        return try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
            group.addTask { try await self.http.execute(request, deadline: deadline) }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(firstByte) * 1_000_000)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let response = first else {
                throw FirstByteTimeout(ms: firstByte)
            }
            return response
        }
    }

    private func collect(_ body: HTTPClientResponse.Body) async throws -> [UInt8] {
        var out: [UInt8] = []
        for try await buffer in body {
            out += buffer.readableBytesView
            if out.count > Self.maxBodyBytes { throw BodyTooLarge() }
        }
        return out
    }

    struct FirstByteTimeout: Error { var ms: Int64 }
    struct TotalTimeout: Error {}
    struct BodyTooLarge: Error {}

    static func isEventStream(_ headers: HTTPHeaders) -> Bool {
        headers["Content-Type"].contains { $0.lowercased().hasPrefix("text/event-stream") }
    }

    /// Maps transport failures onto the taxonomy.
    static func transportError(_ error: any Error, phase: String) -> ExternalError {
        if error is CancellationError { return ExternalError(kind: .cancelled, status: nil, message: "cancelled while \(phase)") }
        if let t = error as? FirstByteTimeout { return ExternalError(kind: .timeout, status: nil, message: "no response within \(t.ms) ms") }
        if error is BodyTooLarge { return ExternalError(kind: .malformedResponse, status: nil, message: "response body larger than \(maxBodyBytes >> 20) MiB") }
        if let http = error as? HTTPClientError {
            switch http {
            case .connectTimeout: return ExternalError(kind: .timeout, status: nil, message: "connect timeout while \(phase)")
            case .readTimeout: return ExternalError(kind: .timeout, status: nil, message: "idle timeout while \(phase)")
            case .deadlineExceeded: return ExternalError(kind: .timeout, status: nil, message: "total timeout while \(phase)")
            case .cancelled: return ExternalError(kind: .cancelled, status: nil, message: "cancelled while \(phase)")
            default: return ExternalError(kind: .network, status: nil, message: "\(http) while \(phase)")
            }
        }
        return ExternalError(kind: .network, status: nil, message: "\(error) while \(phase)")
    }

    static func millis(since start: NIODeadline) -> Int64 {
        (NIODeadline.now() - start).nanoseconds / 1_000_000
    }

    /// Wall-clock time, for rate-limit resets given in epoch milliseconds.
    public static func wallClockNow() -> EpochMillis {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return EpochMillis(ts.tv_sec) * 1000 + EpochMillis(ts.tv_nsec / 1_000_000)
    }
}

/// A chat call started with ``OpenRouterClient/startChat(body:stream:key:onDelta:completion:)``.
public final class ChatCall: Sendable {
    private let state = Mutex<(task: HTTPClient.Task<Void>?, cancelled: Bool)>((nil, false))

    init() {}

    /// Cancels the call: its connection is closed (which tells OpenRouter to stop) and the
    /// completion gets a `cancelled` failure, unless the call had already ended. Any thread.
    public func cancel() {
        let task = state.withLock { state -> HTTPClient.Task<Void>? in
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }

    /// The request was handed to AsyncHTTPClient; a cancel that came first takes effect now.
    func attach(_ task: HTTPClient.Task<Void>) {
        let cancelled = state.withLock { state -> Bool in
            state.task = task
            return state.cancelled
        }
        if cancelled { task.cancel() }
    }
}

/// One chat call's response, read on the client's event loop: the head, the body (collected, or
/// parsed as server-sent events while it streams), the first-byte and total timeouts, and the
/// single report at the end.
private final class ChatResponseHandler: HTTPClientResponseDelegate, @unchecked Sendable {
    // @unchecked: every mutable property is used on the client's event loop only. AsyncHTTPClient
    // calls the delegate there (`.delegate(on:)`), and the timers, the future's callback and
    // `finish` run there too.
    typealias Response = Void

    private let stream: Bool
    private let timeouts: CallTimeouts
    private let onDelta: @Sendable (String) -> Void
    private var completion: (@Sendable (ChatCallReport) -> Void)?
    var task: HTTPClient.Task<Void>?
    private let started = NIODeadline.now()
    private var timing = ChatCallTiming()
    private var firstByteTimer: Scheduled<Void>?
    private var totalTimer: Scheduled<Void>?
    /// Set when the outcome is known before the request ends (a failure inside a stream, a body
    /// too large), or when it ends normally; `finish` reports it.
    private var decided: ChatCallReport?
    private var status: Int?
    private var headers: [(String, String)] = []
    private var wallClockAtHead: EpochMillis = 0
    /// The body is read as an event stream (a streamed request answered with `text/event-stream`
    /// and a status below 400); otherwise it is collected.
    private var streaming = false
    private var body: [UInt8] = []
    private var parser = SSEParser()
    private var decoder = ChatStreamDecoder()
    private var firstToken: Int64?

    init(stream: Bool, timeouts: CallTimeouts, onDelta: @escaping @Sendable (String) -> Void, completion: @escaping @Sendable (ChatCallReport) -> Void) {
        self.stream = stream
        self.timeouts = timeouts
        self.onDelta = onDelta
        self.completion = completion
    }

    private var elapsedMs: Int64 { OpenRouterClient.millis(since: started) }

    /// The first-byte limit (until the response head) and the total limit (the whole call, body
    /// included: a stream that keeps trickling is cut too).
    func startTimers(on eventLoop: any EventLoop) {
        timing.sent = ChatCallTiming.now()
        let firstByte = timeouts.firstByteMs
        firstByteTimer = eventLoop.scheduleTask(in: .milliseconds(firstByte)) { [self] in
            if status == nil { task?.fail(reason: OpenRouterClient.FirstByteTimeout(ms: firstByte)) }
        }
        totalTimer = eventLoop.scheduleTask(in: .milliseconds(min(max(0, timeouts.totalMs), 1 << 40))) { [self] in
            task?.fail(reason: OpenRouterClient.TotalTimeout())
        }
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        timing.head = ChatCallTiming.now()
        firstByteTimer?.cancel()
        let status = Int(head.status.code)
        self.status = status
        headers = head.headers.map { ($0.name, $0.value) }
        wallClockAtHead = OpenRouterClient.wallClockNow()
        // Errors come as JSON even for streamed requests, before the stream is committed.
        streaming = status < 400 && stream && OpenRouterClient.isEventStream(head.headers)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard decided == nil else { return task.eventLoop.makeSucceededVoidFuture() }
        if streaming {
            for item in parser.feed(buffer.readableBytesView) {
                guard case .event(let event) = item else { continue }
                switch decoder.consume(event) {
                case .delta(let text):
                    if firstToken == nil { firstToken = elapsedMs }
                    onDelta(text)
                case .failed(let error):
                    decide(.failure(error), firstToken: firstToken)
                    task.cancel()
                    return task.eventLoop.makeSucceededVoidFuture()
                case .done, .ignored:
                    break
                }
            }
        } else {
            body += buffer.readableBytesView
            if body.count > OpenRouterClient.maxBodyBytes {
                decide(.failure(OpenRouterClient.transportError(OpenRouterClient.BodyTooLarge(), phase: "reading the response body")), firstToken: nil)
                task.cancel()
            }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        guard decided == nil, let status else { return }
        if streaming {
            for item in parser.finish() {
                if case .event(let event) = item, case .failed(let error) = decoder.consume(event) {
                    return decide(.failure(error), firstToken: firstToken)
                }
            }
            return decide(decoder.finish(), firstToken: firstToken)
        }
        let result = status >= 400
            ? .failure(ChatResponseDecoder.classify(status: status, headers: headers, body: body, now: wallClockAtHead))
            : ChatResponseDecoder.decode(status: status, headers: headers, body: body, now: wallClockAtHead)
        if case .success(let completion) = result, stream { onDelta(completion.content) }
        decide(result, firstToken: elapsedMs)
    }

    private func decide(_ result: Result<ChatCompletion, ExternalError>, firstToken: Int64?) {
        guard decided == nil else { return }
        decided = ChatCallReport(result: result, status: status, latencyMs: elapsedMs, firstTokenMs: firstToken)
    }

    /// The request ended (`error` nil) or failed; reports once.
    func finish(_ error: (any Error)?) {
        guard let completion else { return }
        self.completion = nil
        firstByteTimer?.cancel()
        totalTimer?.cancel()
        var report = decided ?? ChatCallReport(result: .failure(failure(error)), status: status, latencyMs: elapsedMs,
                                                firstTokenMs: streaming ? firstToken : nil)
        timing.end = ChatCallTiming.now()
        report.timing = timing
        completion(report)
    }

    /// What a transport failure means at the point the call reached.
    private func failure(_ error: (any Error)?) -> ExternalError {
        guard let error else {
            return ExternalError(kind: .malformedResponse, status: status, message: "the response ended without an answer")
        }
        if error is OpenRouterClient.TotalTimeout {
            var failure = ExternalError(kind: .timeout, status: nil, message: "no complete response within \(timeouts.totalMs) ms (total timeout)")
            failure.afterTokens = streaming && decoder.sawContent
            return failure
        }
        guard status != nil else { return OpenRouterClient.transportError(error, phase: "waiting for the response") }
        guard streaming else { return OpenRouterClient.transportError(error, phase: "reading the response body") }
        var failure = OpenRouterClient.transportError(error, phase: "reading the stream")
        if failure.kind == .network || failure.kind == .timeout {
            // The stream broke: whatever arrived is not an answer.
            failure = ExternalError(kind: failure.kind == .timeout ? .timeout : .truncatedStream, status: status,
                                    message: "the stream broke before [DONE]: \(failure.message)")
        }
        failure.afterTokens = decoder.sawContent
        return failure
    }
}
