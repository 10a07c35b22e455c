/// Model choices the agent strategies make from the catalog (pure: the catalog is a value).
public enum AgentModels {
    /// Whether the catalog says the model can reason: its `supported_parameters` has
    /// `reasoning` or `include_reasoning`.
    public static func canReason(_ info: ModelInfo) -> Bool {
        info.supportedParameters.contains("reasoning") || info.supportedParameters.contains("include_reasoning")
    }

    /// Whether `id` is free: the catalog's word when it has the model, else the `:free` suffix
    /// (or OpenRouter's `openrouter/free` router).
    public static func isFree(_ id: String, _ info: ModelInfo?) -> Bool {
        info?.isFree ?? (id.hasSuffix(":free") || id == "openrouter/free")
    }

    /// The reasoning strategy's chain. With a catalog: the reasoning-capable models among
    /// `preferred` (the task's or the profile's models), in order; when none of them can reason
    /// (or none is given), up to `limit` reasoning-capable catalog models, free ones first, then
    /// by price and id. Without a catalog, or when the catalog has no such model: `preferred`
    /// as given. Returns the chain and a note saying which rule applied.
    ///
    /// - Complexity: O(n log n) in the catalog's size.
    public static func reasoningChain(preferred: [String], catalog: [String: ModelInfo]?, limit: Int = 3) -> (chain: [String], note: String) {
        guard let catalog, !catalog.isEmpty else {
            return (preferred, preferred.isEmpty ? "no catalog: the default chain" : "no catalog: the given models as they are")
        }
        let capable = preferred.filter { catalog[$0].map(canReason) ?? false }
        if !capable.isEmpty {
            let dropped = preferred.count - capable.count
            return (capable, "reasoning-capable: \(capable.joined(separator: ", "))" + (dropped > 0 ? " (\(dropped) other model\(dropped == 1 ? "" : "s") left out)" : ""))
        }
        let price: (ModelInfo) -> Double = { ($0.promptPrice?.perMillion ?? 0) + ($0.completionPrice?.perMillion ?? 0) }
        let found = catalog.values.filter(canReason).sorted { a, b in
            if a.isFree != b.isFree { return a.isFree }
            if price(a) != price(b) { return price(a) < price(b) }
            return a.id < b.id
        }.prefix(limit).map(\.id)
        guard !found.isEmpty else {
            return (preferred, "the catalog lists no reasoning-capable model: " + (preferred.isEmpty ? "the default chain" : "the given models as they are"))
        }
        return (Array(found), (preferred.isEmpty ? "" : "none of \(preferred.joined(separator: ", ")) can reason; ")
            + "reasoning-capable catalog models: \(found.joined(separator: ", "))")
    }
}
