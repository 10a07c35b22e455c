import ChimeraCore
import Hummingbird
import NIOCore

/// Thrown from a response body to close the connection mid-response.
struct SimulatedDrop: Error {}

extension OpenRouterSimulator {
    /// `POST /chat/completions`: auth, body checks, the balance, then each model of
    /// `model` + `models` in turn (free quota, outage, injected faults) until one serves.
    func chatCompletions(_ request: Request, _ context: SimContext) async throws -> Response {
        let caller: Caller
        switch authenticate(request) {
        case .failure(let e):
            ledger.recordUnauthorized()
            return errorResponse(e)
        case .success(let c):
            caller = c
        }
        let bytes = try await bodyBytes(request)
        ledger.record(.request, account: caller.account, key: caller.key)
        func reject(_ error: SimError) -> Response {
            ledger.record(error.kind == .paymentRequired ? .paymentRequired : .failed, account: caller.account, key: caller.key)
            return errorResponse(error)
        }
        guard let body = try? JSONParser.parse(bytes).value, case .object = body else {
            return reject(.badRequest("Invalid JSON in request body", userId: caller.userId))
        }
        var messages: [JSONValue] = []
        if case .array(let list)? = body["messages"] {
            messages = list
        } else if let text = body["prompt"]?.stringValue {
            // The older `prompt` form: one user message.
            messages = [.obj([("role", .string("user")), ("content", .string(text))])]
        }
        guard !messages.isEmpty else {
            return reject(.badRequest("messages: required, a non-empty array of messages", userId: caller.userId))
        }
        if ledger.config.accounts[caller.account].balance < 0 {
            return reject(.paymentRequired(userId: caller.userId))
        }
        let prompt: Prompt
        do {
            prompt = try Prompt.analyse(messages)
        } catch {
            return reject(.badRequest("Invalid simulator directive [[sim:\(error.directive)]]: \(error.reason)", userId: caller.userId))
        }
        let directives = prompt.directives
        if directives.dropBefore {
            ledger.record(.fault, account: caller.account, key: caller.key)
            try? await context.channel.close()
            throw SimulatedDrop()
        }

        var candidates: [String] = []
        if let model = body["model"]?.stringValue { candidates.append(model) }
        if case .array(let list)? = body["models"] {
            for case .string(let id) in list where !candidates.contains(id) { candidates.append(id) }
        }
        if candidates.isEmpty {
            // OpenRouter uses the account's default model; the simulator's default is the auto router.
            candidates.append(ledger.modelsById["openrouter/auto"] != nil ? "openrouter/auto" : ledger.config.models.first?.id ?? "openrouter/auto")
        }
        var failures: [SimError] = []
        var counted = false
        var serving: ServingModel?
        for id in candidates {
            switch attempt(id, caller: caller, counted: &counted, directives: directives) {
            case .success(let model): serving = model
            case .failure(let error): failures.append(error)
            }
            if serving != nil { break }
        }
        let latency = directives.latencyMs ?? ledger.config.latencyMs
        guard let serving else {
            let last = failures.removeLast()
            if failures.contains(where: { $0.kind == .fault }) || last.kind == .fault { await pause(latency) }
            return errorResponse(last, previous: failures)
        }

        let stream = body["stream"] == .bool(true)
        var maxTokens: Int?
        if let limit = (body["max_tokens"] ?? body["max_completion_tokens"])?.numberValue, limit.isFinite, limit >= 0 {
            maxTokens = Int(min(limit, 1e9))
        }
        let now = ledger.now()
        let head = GenerationHead(id: ledger.newGenerationId(at: now), model: serving.id, created: now / 1000)
        let chosen = directives.replies.map { $0[ledger.nextReplyTurn(for: $0.joined(separator: "|") + "\u{0}" + prompt.lastUserText) % $0.count] }
        let reply = Reply(prompt: prompt, maxTokens: maxTokens, chosen: chosen)
        let fault = directives.hasInBandFault
        ledger.record(fault ? .fault : .served, account: caller.account, key: caller.key)
        let usage = serving.usage(promptTokens: prompt.promptTokens, completionTokens: reply.completionTokens)
        ledger.store(GenerationRecord(
            id: head.id, model: serving.id, account: caller.account, key: caller.key, created: now,
            promptTokens: prompt.promptTokens, completionTokens: fault ? 0 : reply.completionTokens, cost: fault ? 0 : usage.cost,
            finishReason: fault ? "error" : reply.finishReason, streamed: stream, latencyMs: latency, user: body["user"]?.stringValue))
        let generation = GeneratedReply(head: head, reply: reply, serving: serving, promptTokens: prompt.promptTokens,
                                        userId: caller.userId, directives: directives, latencyMs: latency)
        if stream {
            return streamResponse(generation, channel: context.channel)
        }
        return await jsonCompletion(generation, channel: context.channel)
    }

    /// One model of the fallback list: its free quota, outage and injected faults.
    private func attempt(_ id: String, caller: Caller, counted: inout Bool, directives: Directives) -> Result<ServingModel, SimError> {
        func fail(_ error: SimError, _ outcome: Outcome) -> Result<ServingModel, SimError> {
            ledger.record(outcome, account: caller.account, key: caller.key)
            return .failure(error)
        }
        guard ModelID.isWellFormed(id) else { return fail(.malformedModel(id, userId: caller.userId), .failed) }
        guard let model = ledger.modelsById[id] else { return fail(.noEndpoints(id, userId: caller.userId), .failed) }
        var concrete = model
        if model.isRouter {
            let usable = ledger.config.models.filter { !$0.isRouter && !$0.down }
            let pick = id == "openrouter/free" ? usable.first { $0.isFree } : (usable.first { !$0.isFree } ?? usable.first)
            guard let pick else { return fail(.noEndpoints(id, userId: caller.userId), .failed) }
            concrete = pick
        }
        if (model.isFree || concrete.isFree) && !counted {
            let admission = ledger.admitFree(account: caller.account, key: caller.key)
            guard admission == .admitted else { return .failure(.rateLimit(admission, userId: caller.userId, model: id)) }
            counted = true
        }
        if model.down { return fail(.modelDown(id, userId: caller.userId), .failed) }
        if let status = directives.status {
            return fail(.injected(status, model: concrete.id, retryAfter: directives.retryAfter, userId: caller.userId), .fault)
        }
        if let status = ledger.drawFault() {
            return fail(.injected(status, model: concrete.id, retryAfter: directives.retryAfter, userId: caller.userId), .fault)
        }
        return .success(ServingModel(id: concrete.id, promptPerToken: concrete.promptPerToken, completionPerToken: concrete.completionPerToken))
    }

    // MARK: JSON

    private func jsonCompletion(_ g: GeneratedReply, channel: any Channel) async -> Response {
        let d = g.directives
        let headers = [("X-Generation-Id", g.head.id)]
        if d.hang {
            await pause(g.latencyMs)
            return Response(status: httpStatus(200), headers: headerFields("application/json", headers),
                            body: ResponseBody { _ in
                                await self.hang(channel)
                                throw SimulatedDrop()
                            })
        }
        await pause(g.latencyMs)
        let body: JSONValue
        if d.errorBody200 || d.errorFirst {
            body = .obj([("error", inBandProviderError()), ("user_id", .string(g.userId))])
        } else if d.choiceError || d.midstreamError {
            let partial = g.reply.pieces.prefix(2).joined()
            body = g.head.completion(content: partial, finishReason: "error", usage: g.usage(completionTokens: min(2, g.reply.pieces.count)),
                                     choiceError: inBandProviderError())
        } else if d.emptyChoices {
            body = g.head.completion(content: nil, finishReason: "stop", usage: g.usage(completionTokens: 0), emptyChoices: true)
        } else {
            body = g.head.completion(content: g.reply.content, finishReason: g.reply.finishReason, usage: g.usage(completionTokens: g.reply.completionTokens))
        }
        let bytes = Array(body.serialized.utf8)
        if d.drop {
            return Response(status: httpStatus(200), headers: headerFields("application/json", headers),
                            body: ResponseBody(contentLength: bytes.count) { writer in
                                try await writer.write(ByteBuffer(bytes: bytes.prefix(bytes.count / 2)))
                                throw SimulatedDrop()
                            })
        }
        return Response(status: httpStatus(200), headers: headerFields("application/json", headers), body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    // MARK: SSE

    private func streamResponse(_ g: GeneratedReply, channel: any Channel) -> Response {
        let headers = [("Cache-Control", "no-cache"), ("X-Generation-Id", g.head.id)]
        let comments = ledger.config.keepAliveComments
        let chunkDelay = ledger.config.chunkDelayMs
        return Response(status: httpStatus(200), headers: headerFields("text/event-stream", headers), body: ResponseBody { writer in
            let d = g.directives
            let watcher = await InputCloseWatcher.of(channel)
            func send(_ text: String) async throws {
                if watcher?.inputClosed == true { throw SimulatedDrop() }
                try await writer.write(ByteBuffer(string: text))
            }
            if comments > 0 {
                for _ in 0..<comments {
                    try await send(": OPENROUTER PROCESSING\n\n")
                    await self.pause(g.latencyMs / comments)
                }
            } else {
                await self.pause(g.latencyMs)
            }
            if d.hang {
                await self.hang(channel)
                throw SimulatedDrop()
            }
            if d.errorFirst || d.errorBody200 {
                try await send(sseEvent(g.head.errorChunk(inBandProviderError(), withChoice: false)))
                try await writer.finish(nil)
                return
            }
            try await send(sseEvent(g.head.chunk(delta: [("role", .string("assistant")), ("content", .string(""))], finishReason: nil, first: true)))
            var sentWords = 0
            if !d.emptyChoices {
                for piece in g.reply.pieces {
                    if sentWords == 2 && (d.midstreamError || d.choiceError || d.drop) { break }
                    await self.pause(chunkDelay)
                    try await send(sseEvent(g.head.chunk(delta: [("role", .string("assistant")), ("content", .string(piece))], finishReason: nil)))
                    sentWords += 1
                }
            }
            if d.drop { throw SimulatedDrop() }
            if d.midstreamError || d.choiceError {
                await self.pause(chunkDelay)
                try await send(sseEvent(g.head.errorChunk(inBandProviderError(), withChoice: true)))
                try await writer.finish(nil)
                return
            }
            await self.pause(chunkDelay)
            if !d.emptyChoices {
                try await send(sseEvent(g.head.chunk(delta: [("role", .string("assistant")), ("content", .string(""))], finishReason: g.reply.finishReason)))
            }
            try await send(sseEvent(g.head.usageChunk(g.usage(completionTokens: d.emptyChoices ? 0 : g.reply.completionTokens))))
            try await send("data: [DONE]\n\n")
            try await writer.finish(nil)
        })
    }

    // MARK: timing

    /// Sleeps `ms` milliseconds, ending early when the simulator stops.
    func pause(_ ms: Int) async {
        guard ms > 0 else { return }
        var remaining = ms
        while remaining > 0 && !isStopping {
            let step = min(remaining, 50)
            try? await Task.sleep(for: .milliseconds(step))
            remaining -= step
        }
    }

    /// Waits until the client gives up (closes the connection) or the simulator stops.
    func hang(_ channel: any Channel) async {
        let watcher = await InputCloseWatcher.of(channel)
        while channel.isActive && watcher?.inputClosed != true && !isStopping && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Everything a response needs about one generation.
struct GeneratedReply: Sendable {
    var head: GenerationHead
    var reply: Reply
    var serving: ServingModel
    var promptTokens: Int
    var userId: String
    var directives: Directives
    var latencyMs: Int

    func usage(completionTokens: Int) -> JSONValue {
        var json = serving.usage(promptTokens: promptTokens, completionTokens: completionTokens).json
        // `no-cost`: usage as a server without usage accounting reports it, tokens only.
        if directives.noCost, case .object(let members) = json {
            json = .object(members.filter { $0.key != "cost" && $0.key != "cost_details" })
        }
        return json
    }
}
