/// Decodes an ``AgentProfile`` from JSON, reporting every problem at once with its JSON path,
/// line and column, as ``ConfigDecoder`` does for the configuration (and with its machinery:
/// unknown fields get a "did you mean").
///
/// ```
/// Agents/poet.json: 2 problems in the agent profile
///   Agents/poet.json:3:15: $.strategy: expected one of "default", "specialized", … found "creativ" (did you mean "creative"?)
///   Agents/poet.json:4:3: $.samples: only the reasoning strategy uses "samples"
/// ```
public enum AgentProfileDecoder {
    /// Every field a profile may have.
    public static let fields = ["$schema", "name", "description", "strategy", "system", "kinds", "tools", "route", "models", "min_quality",
                                "temperature", "candidates", "samples", "merge", "cascade", "budget_usd"]

    /// The fields only one strategy uses, and that strategy.
    static let strategyFields: [(field: String, strategies: [AgentStrategy])] = [
        ("kinds", [.specialized]), ("tools", [.specialized]), ("candidates", [.creative]), ("samples", [.reasoning]),
        ("merge", [.creative, .reasoning]), ("cascade", [.costAware]), ("budget_usd", [.costAware]),
    ]

    /// Decodes `bytes`, the content of `file`. Without `name`, the profile is named after the
    /// file (`Agents/poet.json` is `poet`).
    ///
    /// - Throws: ``ConfigError`` (subject "agent profile") with every problem found.
    public static func decode(_ bytes: [UInt8], file: String) throws(ConfigError) -> AgentProfile {
        let (root, offsets, source): (JSONValue, [String: Int], SourceLocator)
        do {
            (root, offsets, source) = try ConfigDecoder.parseDocument(bytes, file: file)
        } catch {
            throw ConfigError(file: file, issues: error.issues, subject: "agent profile")
        }
        let context = DecodingContext(offsets: offsets, source: source)
        let profile = context.decodeAgentProfile(root, defaultName: defaultName(file))
        guard let profile, context.issues.isEmpty else { throw ConfigError(file: file, issues: context.issues, subject: "agent profile") }
        var located = profile
        located.source = file
        return located
    }

    /// `poet` for `Agents/poet.json`.
    static func defaultName(_ file: String) -> String {
        var base = Substring(file)
        if let slash = base.lastIndex(of: "/") { base = base[base.index(after: slash)...] }
        if base.hasSuffix(".json") { base = base.dropLast(5) }
        return String(base)
    }

    /// Whether `name` can name an agent: letters, digits, `-`, `_` and `.`, starting with a
    /// letter or digit (it appears in file names, commands and stored tasks).
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || ("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0) }
    }
}

extension DecodingContext {
    func decodeAgentProfile(_ root: JSONValue, defaultName: String) -> AgentProfile? {
        guard var r = object(root, "$", known: AgentProfileDecoder.fields) else { return nil }
        let present = Set(r.members.map(\.key))
        let name = r.string("name") ?? defaultName
        if !AgentProfileDecoder.isValidName(name) {
            report(present.contains("name") ? r.path("name") : "$",
                   "an agent name is letters, digits, '-', '_' or '.', starting with a letter or digit; found \"\(name)\"")
        }
        let strategy = r.choice("strategy", AgentStrategy.self) ?? (present.contains("strategy") ? nil : .default)
        var profile = AgentProfile(name: name, strategy: strategy ?? .default)
        if let text = r.string("description") { profile.description = text }
        profile.system = r.string("system")
        profile.kinds = nonEmptyStrings(&r, "kinds")
        profile.tools = nonEmptyStrings(&r, "tools")
        if let route = r.choice("route", RoutePreference.self) { profile.route = route }
        profile.models = nonEmptyStrings(&r, "models")
        profile.minQuality = r.double("min_quality", 0...1)
        profile.temperature = r.double("temperature", 0...2)
        r.int("candidates", 1...16, into: &profile.candidates)
        r.int("samples", 1...16, into: &profile.samples)
        profile.merge = r.choice("merge", MergeStrategy.self)
        if r.has("cascade") {
            let path = r.path("cascade")
            let before = issues.count
            let entries = nonEmptyStrings(&r, "cascade")
            var tiers: [CascadeTier] = []
            for (i, entry) in entries.enumerated() {
                if let tier = CascadeTier(entry) {
                    if tiers.contains(tier) { report("\(path)[\(i)]", "\"\(entry)\" appears twice in the cascade") }
                    tiers.append(tier)
                } else {
                    let hint = Suggestion.closest(to: entry, in: ["internal", "free", "paid"]).map { " (did you mean \"\($0)\"?)" } ?? ""
                    report("\(path)[\(i)]", "expected \"internal\", \"free\", \"paid\" or a model id like \"openai/gpt-4o-mini\", found \"\(entry)\"\(hint)")
                }
            }
            if entries.isEmpty, issues.count == before { report(path, "expected at least one tier: \"internal\", \"free\", \"paid\" or a model id") }
            profile.cascade = tiers
        }
        profile.budgetUSD = r.double("budget_usd", 0...1_000_000)
        if profile.budgetUSD == 0 { report(r.path("budget_usd"), "expected a positive number of USD, found 0") }
        r.finish()
        if let strategy {
            for (field, strategies) in AgentProfileDecoder.strategyFields where present.contains(field) && !strategies.contains(strategy) {
                let users = strategies.map(\.rawValue).joined(separator: " and ")
                report(JSONPath.appending(key: field, to: "$"),
                       "only the \(users) \(strategies.count == 1 ? "strategy uses" : "strategies use") \"\(field)\"; this profile's strategy is \(strategy.rawValue)")
            }
        }
        return profile
    }

    /// An optional array of non-empty strings; problems are reported, the good entries kept.
    private func nonEmptyStrings(_ r: inout ObjectReader, _ key: String) -> [String] {
        let path = r.path(key)
        guard let items = r.strings(key) else { return [] }
        for (i, item) in items.enumerated() where item.isEmpty { report("\(path)[\(i)]", "expected a non-empty string") }
        return items.filter { !$0.isEmpty }
    }
}
