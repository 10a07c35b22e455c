import Testing
@testable import ChimeraCore

// Fixtures follow ../shared/openrouter-api.md §6.1 (`GET /models`) and §6.3 (`GET /key`).

private func price(_ text: String) -> USDPrice? { USDPrice(text) }

private let modelsBody = """
{"data":[
  {"id":"openai/gpt-4o-mini","canonical_slug":"openai/gpt-4o-mini-2024-07-18","name":"OpenAI: GPT-4o-mini","created":1721260800,
   "description":"small","context_length":128000,
   "architecture":{"modality":"text+image->text","input_modalities":["text","image"],"output_modalities":["text"],"tokenizer":"GPT","instruct_type":null},
   "pricing":{"prompt":"0.00000015","completion":"0.0000006","request":"0","image":"0.000217","web_search":"0","internal_reasoning":"0","input_cache_read":"0.000000075","discount":0},
   "top_provider":{"context_length":128000,"max_completion_tokens":16384,"is_moderated":true},
   "per_request_limits":null,"supported_parameters":["max_tokens","temperature","tools","response_format"],
   "default_parameters":{},"expiration_date":null,"links":{"details":"/api/v1/models/openai/gpt-4o-mini/endpoints"}},
  {"id":"meta-llama/llama-3.2-3b-instruct:free","name":"Meta: Llama 3.2 3B Instruct (free)","context_length":null,
   "pricing":{"prompt":"0","completion":"0"},
   "top_provider":{"context_length":131072,"max_completion_tokens":null,"is_moderated":false},"supported_parameters":[]},
  {"id":"openrouter/auto","name":"Auto Router","context_length":2000000,"pricing":{"prompt":"-1","completion":"-1"}},
  {"id":"x/numbers","name":"Numbers","context_length":null,"pricing":{"prompt":0.0000025,"completion":1e-05,"request":0.001},"some_new_field":{"a":[1,2]}},
  {"id":"y/zero-priced","pricing":{"prompt":"0.0","completion":"0"}},
  {"name":"no id"},
  42
],"total_count":7,"links":{"next":null}}
"""

private let keyBody = """
{"data":{"label":"sk-or-v1-au7...890","is_free_tier":false,"is_management_key":false,"is_provisioning_key":false,
 "limit":25.5,"limit_remaining":20.25,"limit_reset":"monthly","include_byok_in_limit":false,
 "usage":5.25,"usage_daily":0.5,"usage_weekly":1,"usage_monthly":5.25,"byok_usage":0,
 "rate_limit":{"requests":-1,"interval":"10s","note":"This field is deprecated and safe to ignore."},
 "free_model_daily_requests":{"limit":1000,"remaining":948,"used":52},
 "expires_at":null,"budgets":[],"allowed_data_regions":["global"]}}
"""

private let legacyKeyBody = """
{"data":{"label":"sk-or-v1-abc...def","usage":0,"limit":null,"is_free_tier":true,"rate_limit":{"requests":20,"interval":"10s"}}}
"""

@Suite struct ModelCatalogTests {
    // MARK: Prices

    @Test func price_decimalString_isExactPerMillion() throws {
        let p = try #require(price("0.0000025"))
        #expect(p.text == "0.0000025")
        #expect(p.description == "0.0000025")
        #expect(p.perMillionText == "2.5")
        #expect(p.perMillion == 2.5)
        #expect(!p.isZero)
        #expect(!p.isDynamic)
        #expect(price("0.00000015")?.perMillionText == "0.15")
        #expect(price("0.000015")?.perMillionText == "15")
        #expect(price("0.00001")?.perMillionText == "10")
        #expect(price("0.0000006")?.perMillion == 0.6)
    }

    @Test func price_equivalentSpellings_haveOneCanonicalText() {
        #expect(price("0.0000025000") == price("0.0000025"))
        #expect(price("2.5e-06") == price("0.0000025"))
        #expect(price("2.5E-6")?.text == "0.0000025")
        #expect(price("00.10")?.text == "0.1")
        #expect(price("15")?.text == "15")
        #expect(price("1e3")?.text == "1000")
        #expect(price("+0.5")?.text == "0.5")
        #expect(price(" .5 ")?.text == "0.5")
        #expect(price("5.")?.text == "5")
    }

    @Test func price_minusOne_isDynamicSentinelOnly() throws {
        let dynamic = try #require(price("-1"))
        #expect(dynamic.isDynamic)
        #expect(!dynamic.isZero)
        #expect(dynamic.text == "-1")
        #expect(dynamic.cost(forUnits: 1_000) == 0)
        #expect(price("-1.0")?.isDynamic == true)
        #expect(price("-0.5") == nil)
        #expect(price("-2") == nil)
    }

    @Test func price_zeroSpellings_areZero() {
        for text in ["0", "0.0", "0.000000", "-0", "0e5"] {
            #expect(price(text)?.isZero == true, "\(text)")
            #expect(price(text)?.isDynamic == false, "\(text)")
            #expect(price(text)?.text == "0", "\(text)")
        }
    }

    @Test func price_invalidText_isNil() {
        for text in ["", " ", "abc", "1.2.3", "1e", "1e+", ".", "-", "1e99999", "0x10", "1,5", "$1", "1 2", "NaN", "inf"] {
            #expect(price(text) == nil, "\(text.debugDescription)")
        }
    }

    @Test func price_cost_isExactThenRoundedOnce() {
        let p = USDPrice("0.0000025")!
        #expect(p.cost(forUnits: 1_000_000) == 2.5)
        // 0.0000025 * 3 in binary floating point is 7.499999999999999e-06; exact arithmetic is not.
        #expect(p.cost(forUnits: 3) == 0.0000075)
        #expect(p.cost(forUnits: 0) == 0)
        #expect(p.cost(forUnits: -5) == 0)
        #expect(USDPrice("0.123456789012345678901")!.cost(forUnits: Int.max) > 1e18)
    }

    @Test func exactDecimal_addAndMultiply_carryCorrectly() {
        let a = ExactDecimal.parse("0.9999")!.amount
        let b = ExactDecimal.parse("0.0001")!.amount
        #expect(a.adding(b).text == "1")
        #expect(a.multiplied(by: 10_001).text == "9999.9999")
        #expect(ExactDecimal.parse("0")!.amount.adding(b).text == "0.0001")
    }

    // MARK: Models

    @Test func catalog_decode_readsFieldsLeniently() throws {
        let models = try ModelCatalogDecoder.decode(Array(modelsBody.utf8))
        #expect(models.map(\.id) == ["openai/gpt-4o-mini", "meta-llama/llama-3.2-3b-instruct:free", "openrouter/auto", "x/numbers", "y/zero-priced"])

        #expect(models[0] == ModelInfo(
            id: "openai/gpt-4o-mini", name: "OpenAI: GPT-4o-mini", contextLength: 128_000, maxCompletionTokens: 16_384,
            promptPrice: price("0.00000015"), completionPrice: price("0.0000006"), requestPrice: price("0"),
            supportedParameters: ["max_tokens", "temperature", "tools", "response_format"], isFree: false
        ))
        #expect(models[0].promptPrice?.perMillionText == "0.15")

        // context_length null: the top provider's window is the best there is.
        #expect(models[1].contextLength == 131_072)
        #expect(models[1].maxCompletionTokens == nil)
        #expect(models[1].isFree)

        #expect(models[2].promptPrice?.isDynamic == true)
        #expect(models[2].completionPrice?.isDynamic == true)
        #expect(!models[2].isFree)

        // Numbers instead of strings.
        #expect(models[3].promptPrice?.text == "0.0000025")
        #expect(models[3].completionPrice?.text == "0.00001")
        #expect(models[3].requestPrice?.text == "0.001")
        #expect(models[3].contextLength == nil)
        #expect(models[3].supportedParameters == [])

        // Zero prices make a model free without the suffix; the name defaults to the id.
        #expect(models[4].isFree)
        #expect(models[4].name == "y/zero-priced")
    }

    @Test func catalog_decode_bareArrayAndOlderShape() throws {
        #expect(try ModelCatalogDecoder.decode(Array(#"[{"id":"a"}]"#.utf8)).map(\.id) == ["a"])
        #expect(try ModelCatalogDecoder.decode(Array(#"{"data":[]}"#.utf8)) == [])
    }

    @Test func catalog_decode_badBodies_throwClassifiedErrors() {
        func failure(_ body: String) -> ExternalError? {
            do {
                _ = try ModelCatalogDecoder.decode(Array(body.utf8))
                return nil
            } catch {
                return error
            }
        }
        #expect(failure("<html>")?.kind == .malformedResponse)
        #expect(failure(#"{"data":{}}"#)?.kind == .malformedResponse)
        #expect(failure(#"{"error":{"message":"User not found.","code":401}}"#) == ExternalError(kind: .auth, status: 401, message: "User not found."))
    }

    // MARK: Keys

    @Test func key_decode_readsSpendAndFreeDailyCounter() throws {
        let info = try KeyInfoDecoder.decode(Array(keyBody.utf8))
        #expect(info == KeyInfo(
            label: "sk-or-v1-au7...890", isFreeTier: false, limit: 25.5, limitRemaining: 20.25, usage: 5.25,
            freeDailyLimit: 1000, freeDailyRemaining: 948, freeDailyUsed: 52
        ))
    }

    @Test func key_decode_legacyShapeWithoutFreeDailyRequests() throws {
        let info = try KeyInfoDecoder.decode(Array(legacyKeyBody.utf8))
        #expect(info == KeyInfo(label: "sk-or-v1-abc...def", isFreeTier: true, limit: nil, limitRemaining: nil, usage: 0))
    }

    @Test func key_decode_errorsThrow() {
        #expect(throws: ExternalError.self) { try KeyInfoDecoder.decode(Array("nope".utf8)) }
        #expect(throws: ExternalError.self) { try KeyInfoDecoder.decode(Array(#"{"data":[1]}"#.utf8)) }
        #expect(throws: ExternalError(kind: .auth, status: 401, message: "User not found.")) {
            try KeyInfoDecoder.decode(Array(#"{"error":{"message":"User not found.","code":401}}"#.utf8))
        }
    }

    // MARK: Cost estimates

    @Test func estimate_paidCallWithoutCost_isMarkedEstimate() {
        let model = ModelInfo(id: "openai/gpt-4o-mini", promptPrice: price("0.00000015"), completionPrice: price("0.0000006"))
        let usage = ChatUsage(promptTokens: 1_000, completionTokens: 500)
        let estimated = CostEstimator.estimate(usage: usage, model: model)
        #expect(estimated.cost == 0.00045)
        #expect(estimated.costIsEstimate)
        #expect(estimated.promptTokens == 1_000)
        #expect(estimated.totalTokens == 1_500)

        var withRequest = model
        withRequest.requestPrice = price("0.001")
        #expect(CostEstimator.estimate(usage: usage, model: withRequest).cost == 0.00145)
    }

    @Test func estimate_leavesReportedOrUnknownCostsAlone() {
        let paid = ModelInfo(id: "p", promptPrice: price("0.000001"), completionPrice: price("0.000002"))
        let reported = ChatUsage(promptTokens: 10, completionTokens: 10, cost: 0.5)
        #expect(CostEstimator.estimate(usage: reported, model: paid) == reported)
        let bare = ChatUsage(promptTokens: 10, completionTokens: 10)
        #expect(CostEstimator.estimate(usage: bare, model: nil) == bare)
        let dynamic = ModelInfo(id: "openrouter/auto", promptPrice: price("-1"), completionPrice: price("-1"))
        #expect(CostEstimator.estimate(usage: bare, model: dynamic) == bare)
        let unpriced = ModelInfo(id: "q")
        #expect(CostEstimator.estimate(usage: bare, model: unpriced) == bare)
    }

    @Test func estimate_freeModel_isZeroEstimate() {
        let free = ModelInfo(id: "meta-llama/llama-3.2-3b-instruct:free")
        #expect(free.isFree)
        let estimated = CostEstimator.estimate(usage: ChatUsage(promptTokens: 10, completionTokens: 10), model: free)
        #expect(estimated.cost == 0)
        #expect(estimated.costIsEstimate)
    }
}
