import ArgumentParser
import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `chimera ask`: external calls through the whole path — coordinator, key lease, agent worker,
/// HTTP — with retries, key switches and model failover.
struct AskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask",
        abstract: "Send a prompt to an external model (OpenRouter or OPENROUTER_BASE_URL) through Chimera's key pool and agent workers.",
        discussion: """
        One prompt: `chimera ask "PROMPT"` (or the prompt on stdin). --stream prints tokens as they arrive.
        Batch: --batch FILE takes one prompt per line and prints one JSON line per prompt, in input order: \
        {"index":i,"ok":true,"output":…,"model":…,"key":"sk-or-…a1b2","attempts":n} or \
        {"index":i,"ok":false,"error":{"kind":…,"message":…},…}.
        When every account is spent, a prompt waits for the earliest key to free (keys.on_exhausted: wait), \
        or with --no-wait fails at once with kind quota_exhausted.
        Exit status: 0 all prompts answered, 1 a prompt failed, 2 usage or configuration error.
        """
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "The prompt (default: read stdin).")
    var prompt: String?

    @Option(name: .customLong("model"), help: "Model id; repeat for a fallback chain. NAME/model goes to the configured provider NAME. (default: the fastest free models of the catalog that fit the prompt, else meta-llama/llama-3.3-70b-instruct:free)")
    var models: [String] = []

    @Option(help: "A system message.")
    var system: String?

    @Flag(help: "Stream the answer as it is generated.")
    var stream = false

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "File with one prompt per line.")
    var batch: String?

    @Option(help: "Prompts in flight at once in batch mode.")
    var concurrency = 16

    @Flag(help: "Fail at once with quota_exhausted instead of waiting for a key.")
    var noWait = false

    @Option(help: "API base URL (default: $OPENROUTER_BASE_URL, else the config's openrouter.base_url, else https://openrouter.ai/api/v1).")
    var baseURL: String?

    @Option(help: "Priority: low, normal, high or critical.")
    var priority = "normal"

    @Option(help: "Largest answer in tokens.")
    var maxTokens: Int?

    @Option(help: "Agent workers to start.")
    var workers = 2

    static let defaultModel = "meta-llama/llama-3.3-70b-instruct:free"

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be from 1 to 64") }
        guard TaskPriority(name: priority) != nil else { throw ValidationError("--priority must be low, normal, high or critical") }
        if batch != nil, prompt != nil { throw ValidationError("give a prompt or --batch, not both") }
        if batch != nil, stream { throw ValidationError("--stream works with one prompt, not --batch") }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        var config = try common.loadConfig().config
        if noWait {
            config.keys.onExhausted = .fail
            for i in config.providers.indices { config.providers[i].keys?.onExhausted = .fail }
        }
        // Only agent workers are needed; other pools would be started for nothing.
        config.pools.removeAll { !$0.handlers.contains(ExternalChatHandler.handlerName) }
        config.ensureAgentPool(size: workers)
        let prompts = try readPrompts()
        let environment = ProcessEnvironment.current
        let loop = try EventLoop()
        let clock = SystemWallClock()
        let external: ExternalSetup
        do {
            external = try ExternalSetup.open(config: config, baseURL: baseURL, chain: models, loop: loop, clock: clock,
                                              environment: environment, logger: logger)
        } catch {
            try? loop.close()
            throw error
        }
        let coordinator = Coordinator(loop: loop, config: config, workerExecutable: FileIO.executablePath(), logger: logger)
        let runner = ExternalCallRunner(coordinator: coordinator, routes: external.routes, loop: loop, clock: clock, logger: logger)
        // No model named: free models from the catalog (the runner picks), else the default one.
        let chain = !models.isEmpty ? models : external.routes.openRouter.catalog.isEmpty ? [Self.defaultModel] : []
        let level = TaskPriority(name: priority)!
        let jsonLines = json || batch != nil
        let printDeltas = stream && !json
        try runOrderedBatch(count: prompts.count, window: batch == nil ? 1 : concurrency, loop: loop, coordinator: coordinator,
                            finishedReason: "all prompts answered", onShutdown: {
                                runner.cancelPending()
                                external.close()
                            }) { index, finish in
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompts[index]))
            var call = ExternalCall(messages: messages, models: chain, stream: stream, priority: level)
            call.maxTokens = maxTokens
            runner.run(call, onDelta: printDeltas ? { FileIO.writeAll(Array($0.utf8), fd: 1) } : nil) { result in
                let failed = if case .failure = result.result { true } else { false }
                finish(render(index: index, result, streamed: printDeltas, jsonLines: jsonLines), failed)
            }
        }
    }

    private func render(index: Int, _ r: ExternalCallResult, streamed: Bool, jsonLines: Bool) -> String {
        if !jsonLines {
            switch r.result {
            case .success(let c): return streamed ? "" : c.content
            case .failure(let e):
                printError("\(e.kind.rawValue): \(e.message)")
                return ""
            }
        }
        var members: [JSONMember] = []
        if batch != nil { members.append(JSONMember("index", .number(Double(index)))) }
        switch r.result {
        case .success(let c):
            members += [JSONMember("ok", .bool(true)), JSONMember("output", .string(c.content)),
                        JSONMember("model", (r.model ?? c.model).map { .string($0) } ?? .null)]
            if let u = c.usage {
                members.append(JSONMember("usage", .object([
                    JSONMember("prompt_tokens", .number(Double(u.promptTokens))),
                    JSONMember("completion_tokens", .number(Double(u.completionTokens))),
                    JSONMember("cost", u.cost.map { .number($0) } ?? .null),
                    JSONMember("cost_is_estimate", .bool(u.costIsEstimate)),
                ])))
            }
        case .failure(let e):
            members += [JSONMember("ok", .bool(false)),
                        JSONMember("error", .object([JSONMember("kind", .string(e.kind.rawValue)), JSONMember("message", .string(e.message)),
                                                     JSONMember("status", e.status.map { .number(Double($0)) } ?? .null)])),
                        JSONMember("model", r.model.map { .string($0) } ?? .null)]
        }
        members += [JSONMember("key", r.keyMasked.map { .string($0) } ?? .null), JSONMember("attempts", .number(Double(r.attempts))),
                    JSONMember("latency_ms", .number(Double(r.latencyMs)))]
        if !r.retries.isEmpty { members.append(JSONMember("retries", .array(r.retries.map { .string($0) }))) }
        return JSONValue.object(members).serialized
    }

    private func readPrompts() throws -> [String] {
        if let batch {
            let bytes: [UInt8]
            do { bytes = try FileIO.readAll(batch) } catch {
                printError("\(batch): cannot read the batch file: \(error)")
                throw ExitCode(ExitCodes.usage)
            }
            guard UTF8Validation.isValid(bytes.withUnsafeBytes { $0 }) else {
                printError("\(batch): not valid UTF-8 text")
                throw ExitCode(ExitCodes.usage)
            }
            return String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init).filter { !$0.allSatisfy(\.isWhitespace) }
        }
        if let prompt { return [prompt] }
        guard isatty(0) == 0 else { throw ValidationError("no prompt: give one as an argument, pipe it in, or use --batch FILE") }
        let bytes = (try? FileIO.readAll(fd: 0)) ?? []
        var text = Substring(String(decoding: bytes, as: UTF8.self))
        while let c = text.first, c.isWhitespace { text.removeFirst() }
        while let c = text.last, c.isWhitespace { text.removeLast() }
        guard !text.isEmpty else { throw ValidationError("the prompt on stdin is empty") }
        return [String(text)]
    }
}
