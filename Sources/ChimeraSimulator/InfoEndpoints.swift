import ChimeraCore
import Hummingbird

extension OpenRouterSimulator {
    /// `GET /models` (§6.1): every configured model, down or not (the listing shows no outages).
    func models() -> Response {
        let supported = ["max_tokens", "temperature", "top_p", "stop", "seed", "frequency_penalty", "presence_penalty",
                         "response_format", "tools", "tool_choice"]
        let data: [JSONValue] = ledger.config.models.map { m in
            .obj([
                ("id", .string(m.id)),
                ("canonical_slug", .string(m.id)),
                ("hugging_face_id", .null),
                ("name", .string(m.displayName)),
                ("created", .int(1_735_689_600)),
                ("description", .string("Simulated model \(m.id) (Chimera OpenRouter simulator).")),
                ("context_length", .int(m.contextLength)),
                ("architecture", .obj([("modality", .string("text->text")), ("input_modalities", .array([.string("text")])),
                                       ("output_modalities", .array([.string("text")])), ("tokenizer", .string("Other")),
                                       ("instruct_type", .null)])),
                ("pricing", .obj([("prompt", .string(m.promptPrice)), ("completion", .string(m.completionPrice)),
                                  ("request", .string("0")), ("image", .string("0"))])),
                ("top_provider", .obj([("context_length", .int(m.contextLength)), ("max_completion_tokens", .int(min(m.contextLength, 16_384))),
                                       ("is_moderated", .bool(false))])),
                ("per_request_limits", .null),
                ("supported_parameters", .array((supported + (m.reasoning ? ["reasoning", "include_reasoning"] : [])).map(JSONValue.string))),
                ("default_parameters", .null),
                ("expiration_date", .null),
                ("links", .obj([("details", .string("/api/v1/models/\(m.id)/endpoints"))])),
            ])
        }
        return jsonResponse(200, .obj([("data", .array(data)), ("total_count", .int(data.count)), ("links", .obj([("next", .null)]))]))
    }

    /// `GET /key` and the legacy `GET /auth/key` (§6.3).
    func key(_ request: Request) -> Response {
        let caller: Caller
        switch authenticate(request) {
        case .failure(let e): ledger.recordUnauthorized(); return errorResponse(e)
        case .success(let c): caller = c
        }
        let account = ledger.config.accounts[caller.account]
        let usage = ledger.keyUsage(caller.key)
        let free = ledger.freeUsage(account: caller.account)
        let data: JSONValue = .obj([
            ("label", .string(Self.masked(caller.key))),
            ("limit", .null),
            ("usage", .number(usage.total)),
            ("usage_daily", .number(usage.daily)),
            ("usage_weekly", .number(usage.weekly)),
            ("usage_monthly", .number(usage.monthly)),
            ("byok_usage", .int(0)),
            ("byok_usage_daily", .int(0)),
            ("byok_usage_weekly", .int(0)),
            ("byok_usage_monthly", .int(0)),
            ("is_free_tier", .bool(account.creditsPurchased <= 0)),
            ("is_management_key", .bool(false)),
            ("is_provisioning_key", .bool(false)),
            ("limit_remaining", .null),
            ("limit_reset", .null),
            ("include_byok_in_limit", .bool(false)),
            ("expires_at", .null),
            ("creator_user_id", .string(caller.userId)),
            ("rate_limit", .obj([("requests", .int(-1)), ("interval", .string("10s")),
                                 ("note", .string("This field is deprecated and safe to ignore."))])),
            ("free_model_daily_requests", .obj([("limit", .int(free.limit)), ("remaining", .int(max(0, free.limit - free.used))),
                                                ("used", .int(free.used))])),
        ])
        return jsonResponse(200, .obj([("data", data)]))
    }

    /// `sk-or-v1-sim…0001`: the first 12 characters, an ellipsis, the last 4.
    static func masked(_ key: String) -> String {
        key.count <= 16 ? String(key.prefix(4)) + "…" : String(key.prefix(12)) + "…" + String(key.suffix(4))
    }

    /// `GET /credits`: management keys only (§6.4); the simulator has none, so 403.
    func credits(_ request: Request) -> Response {
        if case .failure(let e) = authenticate(request) {
            ledger.recordUnauthorized()
            return errorResponse(e)
        }
        return jsonResponse(403, .obj([("error", .obj([("code", .int(403)), ("message", .string("Only management keys can perform this operation"))]))]))
    }

    /// `GET /generation?id=` (§6.2), for generations this simulator produced for the caller's account.
    func generation(_ request: Request) -> Response {
        let caller: Caller
        switch authenticate(request) {
        case .failure(let e): ledger.recordUnauthorized(); return errorResponse(e)
        case .success(let c): caller = c
        }
        guard let id = request.uri.queryParameters["id"].map(String.init), !id.isEmpty else {
            return errorResponse(.badRequest("Missing required query parameter: id", userId: caller.userId))
        }
        guard let g = ledger.generation(id), g.account == caller.account else {
            return jsonResponse(404, .obj([("error", .obj([("code", .int(404)), ("message", .string("Generation \(id) not found"))])),
                                           ("user_id", .string(caller.userId))]))
        }
        let data: JSONValue = .obj([
            ("id", .string(g.id)),
            ("upstream_id", .string("sim-" + g.id.dropFirst(4))),
            ("total_cost", .number(g.cost)),
            ("cache_discount", .null),
            ("upstream_inference_cost", .null),
            ("created_at", .string(UTCDay.timestamp(g.created))),
            ("model", .string(g.model)),
            ("app_id", .null),
            ("streamed", .bool(g.streamed)),
            ("cancelled", .bool(false)),
            ("provider_name", .string(simProviderName)),
            ("latency", .int(g.latencyMs)),
            ("moderation_latency", .null),
            ("generation_time", .int(g.latencyMs)),
            ("finish_reason", .string(g.finishReason)),
            ("native_finish_reason", .string(g.finishReason)),
            ("tokens_prompt", .int(g.promptTokens)),
            ("tokens_completion", .int(g.completionTokens)),
            ("native_tokens_prompt", .int(g.promptTokens)),
            ("native_tokens_completion", .int(g.completionTokens)),
            ("native_tokens_reasoning", .int(0)),
            ("native_tokens_cached", .int(0)),
            ("num_media_prompt", .null),
            ("num_media_completion", .null),
            ("num_search_results", .null),
            ("origin", .string("")),
            ("usage", .number(g.cost)),
            ("is_byok", .bool(false)),
            ("api_type", .string("completions")),
            ("router", .null),
            ("provider_responses", .null),
            ("external_user", g.user.map(JSONValue.string) ?? .null),
            ("data_region", .string("global")),
        ])
        return jsonResponse(200, .obj([("data", data)]))
    }
}
