import ChimeraCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A local OpenRouter over real HTTP on 127.0.0.1, faithful to `openrouter-api.md` §9: the chat,
/// models, key, credits and generation endpoints, per-account free-model quotas with OpenRouter's
/// 429s, `models` fallback, SSE streaming, and fault injection by `[[sim:…]]` directives
/// (see ``SimulatorConfig`` and the `Directives` table in the sources).
///
/// Admin endpoints (no auth): `GET /_sim/stats`, `POST /_sim/reset`, `GET /_sim/clock`,
/// `POST /_sim/clock` with `{"now_ms": N}` or `{"advance_ms": N}`.
public final class OpenRouterSimulator: Sendable {
    let ledger: SimulatorLedger
    private let server = Mutex(ServerState())

    private struct ServerState {
        var port: Int?
        var group: ServiceGroup?
        var task: Task<Void, Never>?
        var stopping = false
    }

    /// - Parameters:
    ///   - clock: the simulator's time: quotas reset at 00:00 UTC of it. ``setTime(_:)`` moves
    ///     it (an offset on top of `clock`).
    public init(config: SimulatorConfig, clock: any WallClock = SimulatorClock()) {
        ledger = SimulatorLedger(config: config, clock: clock)
    }

    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves until ``stop()``; returns the
    /// bound port. Throws ``SimulatorStartError`` if the port cannot be bound. Calling it while
    /// running returns the port already bound.
    public func start(port: Int = 0) async throws -> Int {
        if let running = server.withLock({ $0.port }) { return running }
        let router = Router(context: SimContext.self)
        addRoutes(to: router)
        var logger = Logger(label: "chimera.simulator")
        logger.logLevel = .critical
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [InputCloseWatcher()])),
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil, reuseAddress: true),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? port)
                portSink.finish()
            },
            logger: logger
        )
        var groupConfig = ServiceGroupConfiguration(services: [app], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfig)
        let failure = Mutex<(any Error)?>(nil)
        let task = Task {
            do {
                try await group.run()
            } catch {
                failure.withLock { $0 = error }
            }
            portSink.finish()
        }
        for await bound in ports {
            server.withLock { $0 = ServerState(port: bound, group: group, task: task) }
            return bound
        }
        await task.value
        let error = failure.withLock { $0 }
        throw SimulatorStartError(port: port, underlying: error)
    }

    /// Stops accepting connections, lets in-flight responses finish (hung ones are closed) and
    /// returns when the server is down.
    public func stop() async {
        let (group, task) = server.withLock { s -> (ServiceGroup?, Task<Void, Never>?) in
            s.stopping = true
            return (s.group, s.task)
        }
        await group?.triggerGracefulShutdown()
        await task?.value
        server.withLock { $0 = ServerState() }
    }

    /// `http://127.0.0.1:PORT/api/v1` (port 0 before ``start(port:)``).
    public var baseURL: String { "http://127.0.0.1:\(server.withLock { $0.port ?? 0 })/api/v1" }

    /// Counters per account and per key.
    public func stats() -> SimulatorStats { ledger.stats() }

    /// Moves the simulator's clock to `t` (it keeps ticking from there with the injected clock).
    public func setTime(_ t: EpochMillis) { ledger.setTime(t) }

    /// The simulator's current time.
    public func now() -> EpochMillis { ledger.now() }

    /// Clears counters, quotas, spend and generations (as `POST /_sim/reset`).
    public func reset() { ledger.reset() }

    var isStopping: Bool { server.withLock { $0.stopping } }

    // MARK: routes

    private func addRoutes(to router: Router<SimContext>) {
        let api = router.group("api/v1")
        api.post("chat/completions") { request, context in try await self.chatCompletions(request, context) }
        api.get("models") { _, _ in self.models() }
        api.get("key") { request, _ in self.key(request) }
        api.get("auth/key") { request, _ in self.key(request) }
        api.get("credits") { request, _ in self.credits(request) }
        api.get("generation") { request, _ in self.generation(request) }
        router.get("_sim/stats") { _, _ in jsonResponse(200, self.stats().json) }
        router.post("_sim/reset") { _, _ in
            self.reset()
            return jsonResponse(200, .obj([("ok", .bool(true))]))
        }
        router.get("_sim/clock") { _, _ in jsonResponse(200, .obj([("now_ms", .int64(self.now()))])) }
        router.post("_sim/clock") { request, _ in try await self.setClock(request) }
    }

    private func setClock(_ request: Request) async throws -> Response {
        let bytes = try await bodyBytes(request)
        guard let body = try? JSONParser.parse(bytes).value else {
            return jsonResponse(400, SimError.badRequest("Body must be JSON: {\"now_ms\": N} or {\"advance_ms\": N}", userId: nil).body())
        }
        if let now = body["now_ms"]?.numberValue, now == now.rounded() {
            setTime(EpochMillis(now))
        } else if let delta = body["advance_ms"]?.numberValue, delta == delta.rounded() {
            setTime(self.now() + EpochMillis(delta))
        } else {
            return jsonResponse(400, SimError.badRequest("Expected {\"now_ms\": N} or {\"advance_ms\": N} with integer milliseconds", userId: nil).body())
        }
        return jsonResponse(200, .obj([("now_ms", .int64(self.now()))]))
    }

    // MARK: auth

    /// The caller of a request: its key and account.
    struct Caller {
        var key: String
        var account: Int
        var userId: String
    }

    func authenticate(_ request: Request) -> Result<Caller, SimError> {
        guard let header = request.headers[.authorization] else { return .failure(.missingCredentials()) }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return .failure(.missingCredentials()) }
        let key = parts[1].trimmingSpaces
        guard !key.isEmpty else { return .failure(.missingCredentials()) }
        guard let account = ledger.accountOfKey[key] else { return .failure(.unknownKey()) }
        return .success(Caller(key: key, account: account, userId: Self.userId(ledger.config.accounts[account].name)))
    }

    /// `user_` and the account name reduced to letters and digits (stable per account).
    static func userId(_ account: String) -> String {
        "user_sim" + String(account.filter { $0.isLetter || $0.isNumber })
    }
}

/// The simulator could not bind its port.
public struct SimulatorStartError: Error, CustomStringConvertible {
    public var port: Int
    /// True when another process already listens on the port.
    public var addressInUse: Bool
    public var reason: String

    init(port: Int, underlying: (any Error)?) {
        self.port = port
        let text = underlying.map { "\($0)" } ?? "the server stopped before listening"
        if let io = underlying as? IOError {
            addressInUse = io.errnoCode == 98 || io.errnoCode == 48 // EADDRINUSE on Linux, Darwin
        } else {
            addressInUse = text.contains("Address already in use") || text.contains("EADDRINUSE")
        }
        reason = text
    }

    public var description: String {
        addressInUse ? "port \(port) on 127.0.0.1 is already in use" : "cannot listen on 127.0.0.1:\(port): \(reason)"
    }
}

/// Hummingbird's request context plus the connection, so that a fault can close it.
struct SimContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

// MARK: response helpers

func bodyBytes(_ request: Request) async throws -> [UInt8] {
    let buffer = try await request.body.collect(upTo: 16 << 20)
    return Array(buffer.readableBytesView)
}

func httpStatus(_ code: Int) -> HTTPResponse.Status {
    let phrase: String = switch code {
    case 200: "OK"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 402: "Payment Required"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 408: "Request Timeout"
    case 413: "Payload Too Large"
    case 422: "Unprocessable Entity"
    case 429: "Too Many Requests"
    case 500: "Internal Server Error"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    default: "Error"
    }
    return HTTPResponse.Status(code: code, reasonPhrase: phrase)
}

func headerFields(_ contentType: String, _ extra: [(String, String)]) -> HTTPFields {
    var fields = HTTPFields()
    fields[.contentType] = contentType
    for (name, value) in extra {
        if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
    }
    return fields
}

func jsonResponse(_ status: Int, _ body: JSONValue, headers: [(String, String)] = []) -> Response {
    Response(status: httpStatus(status), headers: headerFields("application/json", headers),
             body: ResponseBody(byteBuffer: ByteBuffer(string: body.serialized)))
}

func errorResponse(_ error: SimError, previous: [SimError] = []) -> Response {
    jsonResponse(error.status, error.body(previous: previous), headers: error.headers)
}
