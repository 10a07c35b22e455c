/// Context-aware model choice from the catalog: which models of a chain can take a request of a
/// given size, or, without a chain, which free models to try. Pure: the catalog is passed in.
public enum ModelChooser {
    /// The models to try for a request, in order.
    ///
    /// A model fits when its context window (``ModelInfo/contextLength``) holds the prompt plus
    /// the completion: `promptTokens + maxCompletionTokens`, or `promptTokens + 1` without a
    /// completion limit (a window the prompt alone fills leaves no room for an answer). A model
    /// listed twice counts once, with its first listing's context.
    ///
    /// - With a chain: the chain's models in the chain's order (a repeated id once), without
    ///   those the catalog knows to be too small. Models the catalog does not list, or lists
    ///   without a context length, are kept: the catalog may be stale, and the provider has the
    ///   last word. The result is empty when every model of the chain is too small: the request
    ///   is `context_too_long` for all of them.
    /// - With an empty chain: the catalog's free models (``ModelInfo/isFree``) whose known
    ///   context fits, fastest first: those with a mean latency in `latencyMs` (observed, e.g.
    ///   from the ledger) by that latency, then the rest largest context first, then by id.
    public static func choose(chain: [String], promptTokens: Int, maxCompletionTokens: Int?, catalog: [ModelInfo],
                              latencyMs: [String: Double] = [:]) -> [String] {
        let (sum, overflow) = max(0, promptTokens).addingReportingOverflow(max(1, maxCompletionTokens ?? 1))
        let needed = overflow ? Int.max : sum
        var listed = Set<String>()
        let models = catalog.filter { seenOnce(&listed, $0.id) }
        if chain.isEmpty {
            return models
                .filter { $0.isFree && ($0.contextLength ?? 0) >= needed }
                .sorted { a, b in
                    switch (latencyMs[a.id], latencyMs[b.id]) {
                    case let (la?, lb?) where la != lb: return la < lb
                    case (.some, nil): return true
                    case (nil, .some): return false
                    default: break
                    }
                    let (ca, cb) = (a.contextLength ?? 0, b.contextLength ?? 0)
                    return ca != cb ? ca > cb : a.id < b.id
                }
                .map(\.id)
        }
        var contexts: [String: Int] = [:]
        for model in models { contexts[model.id] = model.contextLength }
        var seen = Set<String>()
        return chain.filter { id in
            guard seenOnce(&seen, id) else { return false }
            guard let context = contexts[id] else { return true }
            return context >= needed
        }
    }

    /// True the first time `id` is seen.
    private static func seenOnce(_ seen: inout Set<String>, _ id: String) -> Bool { seen.insert(id).inserted }
}
