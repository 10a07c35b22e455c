import Testing
@testable import ChimeraCore

private func model(_ id: String, context: Int?, prompt: String = "0", completion: String = "0") -> ModelInfo {
    ModelInfo(id: id, contextLength: context, promptPrice: USDPrice(prompt), completionPrice: USDPrice(completion))
}

/// A catalog like the simulator's: free models of several sizes, a paid one, a dynamic router.
private let catalog = [
    model("meta/llama-70b:free", context: 131_072),
    model("deepseek/chat:free", context: 163_840),
    model("google/gemma:free", context: 96_000),
    model("mistral/small:free", context: 131_072),
    model("tiny/model:free", context: 8_192),
    model("openai/gpt-4o-mini", context: 128_000, prompt: "0.00000015", completion: "0.0000006"),
    model("openrouter/auto", context: 2_000_000, prompt: "-1", completion: "-1"),
    model("zero/priced", context: 32_000),
    model("nocontext/model:free", context: nil),
]

@Suite struct ModelChooserTests {
    @Test func chain_keepsOrder_dropsModelsTooSmall() {
        let chain = ["tiny/model:free", "openai/gpt-4o-mini", "google/gemma:free", "meta/llama-70b:free"]
        #expect(ModelChooser.choose(chain: chain, promptTokens: 10_000, maxCompletionTokens: 1_000, catalog: catalog)
                == ["openai/gpt-4o-mini", "google/gemma:free", "meta/llama-70b:free"])
        #expect(ModelChooser.choose(chain: chain, promptTokens: 100_000, maxCompletionTokens: 4_000, catalog: catalog)
                == ["openai/gpt-4o-mini", "meta/llama-70b:free"])
        // Small requests keep the whole chain, in its order.
        #expect(ModelChooser.choose(chain: chain, promptTokens: 100, maxCompletionTokens: nil, catalog: catalog) == chain)
    }

    @Test func chain_contextBoundary_promptPlusCompletionMustFit() {
        let chain = ["tiny/model:free"]
        #expect(ModelChooser.choose(chain: chain, promptTokens: 8_000, maxCompletionTokens: 192, catalog: catalog) == chain)
        #expect(ModelChooser.choose(chain: chain, promptTokens: 8_000, maxCompletionTokens: 193, catalog: catalog) == [])
        // Without a completion limit the prompt must leave room for at least one token.
        #expect(ModelChooser.choose(chain: chain, promptTokens: 8_191, maxCompletionTokens: nil, catalog: catalog) == chain)
        #expect(ModelChooser.choose(chain: chain, promptTokens: 8_192, maxCompletionTokens: nil, catalog: catalog) == [])
    }

    @Test func chain_unknownModelsAndUnknownContexts_areKept() {
        let chain = ["new/model-not-in-catalog", "tiny/model:free", "nocontext/model:free"]
        #expect(ModelChooser.choose(chain: chain, promptTokens: 50_000, maxCompletionTokens: 1_000, catalog: catalog)
                == ["new/model-not-in-catalog", "nocontext/model:free"])
        // An empty (or missing) catalog changes nothing.
        #expect(ModelChooser.choose(chain: chain, promptTokens: 50_000, maxCompletionTokens: 1_000, catalog: []) == chain)
    }

    @Test func chain_everyModelTooSmall_isEmpty_andRepeatsCountOnce() {
        #expect(ModelChooser.choose(chain: ["tiny/model:free", "google/gemma:free"], promptTokens: 500_000, maxCompletionTokens: nil, catalog: catalog) == [])
        #expect(ModelChooser.choose(chain: ["a/x", "tiny/model:free", "a/x"], promptTokens: 1, maxCompletionTokens: 1, catalog: catalog)
                == ["a/x", "tiny/model:free"])
    }

    @Test func emptyChain_freeModelsThatFit_largestContextFirst_thenId() {
        #expect(ModelChooser.choose(chain: [], promptTokens: 1_000, maxCompletionTokens: 1_000, catalog: catalog)
                == ["deepseek/chat:free", "meta/llama-70b:free", "mistral/small:free", "google/gemma:free", "zero/priced", "tiny/model:free"])
        // Paid models, the dynamic router and models of unknown context are never picked on their own.
        let big = ModelChooser.choose(chain: [], promptTokens: 100_000, maxCompletionTokens: 8_000, catalog: catalog)
        #expect(big == ["deepseek/chat:free", "meta/llama-70b:free", "mistral/small:free"])
        #expect(ModelChooser.choose(chain: [], promptTokens: 200_000, maxCompletionTokens: nil, catalog: catalog) == [])
        #expect(ModelChooser.choose(chain: [], promptTokens: 10, maxCompletionTokens: nil, catalog: []) == [])
    }

    @Test func emptyChain_observedLatencyFirst_fastestFirst_thenTheRestByContext() {
        let latency = ["google/gemma:free": 300.0, "mistral/small:free": 120.0, "tiny/model:free": 50.0, "openai/gpt-4o-mini": 10.0]
        // tiny is fastest but too small for this request; the paid model is never picked on its own.
        #expect(ModelChooser.choose(chain: [], promptTokens: 10_000, maxCompletionTokens: 1_000, catalog: catalog, latencyMs: latency)
                == ["mistral/small:free", "google/gemma:free", "deepseek/chat:free", "meta/llama-70b:free", "zero/priced"])
        // Latency never reorders an explicit chain.
        let chain = ["google/gemma:free", "mistral/small:free"]
        #expect(ModelChooser.choose(chain: chain, promptTokens: 10, maxCompletionTokens: 10, catalog: catalog, latencyMs: latency) == chain)
    }

    @Test func emptyChain_isDeterministic_whateverTheCatalogOrder() {
        let expected = ModelChooser.choose(chain: [], promptTokens: 10, maxCompletionTokens: 10, catalog: catalog)
        var generator = SplitMix64(seed: 7)
        for _ in 0..<20 {
            let shuffled = catalog.shuffled(using: &generator)
            #expect(ModelChooser.choose(chain: [], promptTokens: 10, maxCompletionTokens: 10, catalog: shuffled) == expected)
        }
    }

    @Test func catalogListingAnIdTwice_firstListingCounts() {
        let doubled = [model("a/m:free", context: 4_000), model("a/m:free", context: 200_000)]
        #expect(ModelChooser.choose(chain: ["a/m:free"], promptTokens: 10_000, maxCompletionTokens: nil, catalog: doubled) == [])
        #expect(ModelChooser.choose(chain: [], promptTokens: 10, maxCompletionTokens: nil, catalog: doubled) == ["a/m:free"])
    }

    @Test func hugeNumbers_doNotOverflow() {
        #expect(ModelChooser.choose(chain: ["tiny/model:free", "other/x"], promptTokens: Int.max, maxCompletionTokens: Int.max, catalog: catalog) == ["other/x"])
        #expect(ModelChooser.choose(chain: [], promptTokens: -5, maxCompletionTokens: -5, catalog: [model("t/m:free", context: 1)]) == ["t/m:free"])
    }
}
