import AsyncHTTPClient
import ChimeraCore
import NIOCore
import NIOHTTP1
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
    /// The largest non-streamed body read (a chat reply or the model list).
    public static let maxBodyBytes = 32 << 20

    public init(endpoint: ProviderEndpoint, timeouts: CallTimeouts = CallTimeouts(), maxConnectionsPerHost: Int = 64) {
        self.endpoint = endpoint
        self.timeouts = timeouts
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(timeouts.connectMs), read: .milliseconds(timeouts.idleMs))
        // The default of 8 connections per host queues concurrent calls behind each other.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost)
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes pooled connections. Call once, when done.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// Closes pooled connections from synchronous code (a worker stopping), cancelling calls in flight.
    public func shutdownNow() {
        try? http.syncShutdown()
    }

    // MARK: Chat

    /// One chat completion. With `request.stream`, `onDelta` receives each content fragment as it
    /// arrives; the result is success only if the stream ended with `[DONE]`.
    public func chat(_ request: ChatRequest, key: APIKeySecret?, onDelta: @escaping @Sendable (String) -> Void = { _ in }) async -> ChatCallReport {
        await chat(body: request.body(), stream: request.stream, key: key, onDelta: onDelta)
    }

    /// The same with a ready JSON body (what an agent worker receives from the coordinator).
    public func chat(body: [UInt8], stream: Bool, key: APIKeySecret?, onDelta: @escaping @Sendable (String) -> Void = { _ in }) async -> ChatCallReport {
        let totalMs = timeouts.totalMs
        return await withinTotal({ await self.chatCall(body: body, stream: stream, key: key, onDelta: onDelta) }) { report in
            guard case .failure(var error) = report.result, error.kind == .cancelled else { return report }
            error.kind = .timeout
            error.message = "no complete response within \(totalMs) ms (total timeout)"
            var timedOut = report
            timedOut.result = .failure(error)
            return timedOut
        }
    }

    private func chatCall(body: [UInt8], stream: Bool, key: APIKeySecret?, onDelta: @escaping @Sendable (String) -> Void) async -> ChatCallReport {
        let started = NIODeadline.now()
        var http = HTTPClientRequest(url: endpoint.baseURL + "/chat/completions")
        http.method = .POST
        applyHeaders(&http, key: key)
        http.headers.add(name: "Content-Type", value: "application/json")
        if stream { http.headers.add(name: "Accept", value: "text/event-stream") }
        http.body = .bytes(ByteBuffer(bytes: body))

        let response: HTTPClientResponse
        do {
            response = try await headWithin(http, deadline: started + .milliseconds(timeouts.totalMs))
        } catch {
            return ChatCallReport(result: .failure(Self.transportError(error, phase: "waiting for the response")), status: nil,
                                  latencyMs: Self.millis(since: started), firstTokenMs: nil)
        }
        let status = Int(response.status.code)
        let headers = response.headers.map { ($0.name, $0.value) }
        let now = Self.wallClockNow()
        if status >= 400 || !stream || !Self.isEventStream(response.headers) {
            // Errors come as JSON even for streamed requests, before the stream is committed.
            let body: [UInt8]
            do {
                body = try await collect(response.body)
            } catch {
                return ChatCallReport(result: .failure(Self.transportError(error, phase: "reading the response body")), status: status,
                                      latencyMs: Self.millis(since: started), firstTokenMs: nil)
            }
            let result = status >= 400
                ? .failure(ChatResponseDecoder.classify(status: status, headers: headers, body: body, now: now))
                : ChatResponseDecoder.decode(status: status, headers: headers, body: body, now: now)
            if case .success(let completion) = result, stream { onDelta(completion.content) }
            return ChatCallReport(result: result, status: status, latencyMs: Self.millis(since: started), firstTokenMs: Self.millis(since: started))
        }
        var parser = SSEParser()
        var decoder = ChatStreamDecoder()
        var firstToken: Int64?
        do {
            for try await buffer in response.body {
                for item in parser.feed(buffer.readableBytesView) {
                    guard case .event(let event) = item else { continue }
                    switch decoder.consume(event) {
                    case .delta(let text):
                        if firstToken == nil { firstToken = Self.millis(since: started) }
                        onDelta(text)
                    case .failed(let error):
                        return ChatCallReport(result: .failure(error), status: status, latencyMs: Self.millis(since: started), firstTokenMs: firstToken)
                    case .done, .ignored:
                        break
                    }
                }
            }
            for item in parser.finish() {
                if case .event(let event) = item, case .failed(let error) = decoder.consume(event) {
                    return ChatCallReport(result: .failure(error), status: status, latencyMs: Self.millis(since: started), firstTokenMs: firstToken)
                }
            }
        } catch {
            var failure = Self.transportError(error, phase: "reading the stream")
            if failure.kind == .network || failure.kind == .timeout {
                // The stream broke: whatever arrived is not an answer.
                failure = ExternalError(kind: failure.kind == .timeout ? .timeout : .truncatedStream, status: status,
                                        message: "the stream broke before [DONE]: \(failure.message)")
            }
            failure.afterTokens = decoder.sawContent
            return ChatCallReport(result: .failure(failure), status: status, latencyMs: Self.millis(since: started), firstTokenMs: firstToken)
        }
        return ChatCallReport(result: decoder.finish(), status: status, latencyMs: Self.millis(since: started), firstTokenMs: firstToken)
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
