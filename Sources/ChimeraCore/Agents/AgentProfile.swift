/// How an agent turns one task into calls: the code path ``AgentProfile/strategy`` selects.
public enum AgentStrategy: String, Sendable, Equatable, CaseIterable {
    /// One routed task, exactly as `TaskRouter` runs it.
    case `default`
    /// A domain agent: only its `kinds`, its `system` prompt, and its `tools` (internal handlers)
    /// run first, their outputs given to the model as context.
    case specialized
    /// `candidates` answers at a higher temperature, merged with `best`.
    case creative
    /// Reasoning-capable models; `samples` answers merged with `vote` (self-consistency).
    case reasoning
    /// A cascade from the cheapest tier up, escalating only while the score is under the bar,
    /// within `budget_usd`.
    case costAware = "cost-aware"
}

/// One rung of a cost-aware cascade, cheapest first.
public enum CascadeTier: Sendable, Equatable, CustomStringConvertible {
    /// The internal handlers that serve the task's kind (JHADE picks among them).
    case `internal`
    /// Free external models: the profile's (or the task's) `:free` models, else the catalog's
    /// fastest free ones.
    case free
    /// The profile's (or the task's) models that are not free.
    case paid
    /// One external model, by id.
    case model(String)

    /// The tier a cascade entry names: `internal`, `free`, `paid`, or a model id
    /// (`vendor/model`); nil for anything else.
    public init?(_ text: String) {
        switch text {
        case "internal": self = .internal
        case "free": self = .free
        case "paid": self = .paid
        default:
            guard let slash = text.firstIndex(of: "/"), slash != text.startIndex, text.index(after: slash) != text.endIndex,
                  !text.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) else { return nil }
            self = .model(text)
        }
    }

    /// `internal`, `free`, `paid`, or the model id.
    public var description: String {
        switch self {
        case .internal: "internal"
        case .free: "free"
        case .paid: "paid"
        case .model(let id): id
        }
    }
}

/// An agent: a named way of running tasks, loaded from `Agents/NAME.json` or built in.
///
/// ```json
/// {"name": "news-analyst", "strategy": "specialized", "description": "News desk analyst",
///  "system": "You are a news analyst…", "kinds": ["summarize", "keywords"], "tools": ["text.keywords"]}
/// ```
///
/// Fields a strategy does not use are refused when decoded (``AgentProfileDecoder``), so a
/// profile says only what it does. Every field but `name` and `strategy` is optional.
public struct AgentProfile: Sendable, Equatable {
    /// How tasks are referred to this agent (`--agent NAME`, a pipeline step's `agent`).
    public var name: String
    /// One line for `chimera agents`.
    public var description: String
    /// The code path that runs its tasks.
    public var strategy: AgentStrategy
    /// The system prompt external models get (before the task's own system message, if any).
    public var system: String?
    /// `specialized`: the only task kinds it accepts; empty accepts every kind.
    public var kinds: [String] = []
    /// `specialized`: internal handlers run on the task's prompt before the model is asked; their
    /// outputs are given to the model as context.
    public var tools: [String] = []
    /// The route a task takes when its caller has no preference (`auto`).
    public var route = RoutePreference.auto
    /// The external chain when the task names none.
    public var models: [String] = []
    /// The quality bar callers use when they have none of their own.
    public var minQuality: Double?
    /// External models' sampling temperature when the task sets none (`creative`: default 1.0).
    public var temperature: Double?
    /// `creative`: answers asked for.
    public var candidates = 3
    /// `reasoning`: answers sampled for self-consistency.
    public var samples = 5
    /// `creative` and `reasoning`: how the answers become one (default `best` and `vote`).
    public var merge: MergeStrategy?
    /// `cost-aware`: the tiers, cheapest first.
    public var cascade: [CascadeTier] = [.internal, .free, .paid]
    /// `cost-aware`: the most the cascade may spend on one task, in USD; a tier whose estimated
    /// cost would pass it is not called.
    public var budgetUSD: Double?
    /// The file the profile came from; nil for a built-in profile.
    public var source: String?

    /// A profile with the strategy's defaults.
    public init(name: String, strategy: AgentStrategy, description: String = "") {
        self.name = name
        self.strategy = strategy
        self.description = description
    }

    /// JHADE's hook: the strategy's bias (``AgentBias/named(_:)``), under the agent's name.
    public var bias: AgentBias {
        var bias = AgentBias.named(strategy.rawValue)
        bias.name = name
        return bias
    }

    /// How candidates are merged: the profile's `merge`, else `vote` for `reasoning` and `best`
    /// otherwise.
    public var effectiveMerge: MergeStrategy { merge ?? (strategy == .reasoning ? .vote : .best) }

    /// Why this agent refuses a task of `kind`, or nil when it accepts it.
    public func refusal(kind: String) -> String? {
        guard !kinds.isEmpty, !kinds.contains(kind) else { return nil }
        let hint = Suggestion.closest(to: kind, in: kinds).map { " (did you mean \"\($0)\"?)" } ?? ""
        return "agent \(name) (\(strategy.rawValue)) does not take tasks of kind \"\(kind)\"\(hint); it accepts: \(kinds.joined(separator: ", "))"
    }

    /// The five built-in profiles, one per strategy, named after it. A user profile of the same
    /// name replaces one.
    public static let builtins: [AgentProfile] = {
        let plain = AgentProfile(name: "default", strategy: .default, description: "JHADE decides: one internal handler or one external call, no bias")
        var specialized = AgentProfile(name: "specialized", strategy: .specialized,
                                       description: "Prefers internal handlers; add kinds, tools and a system prompt in your own profile")
        specialized.system = "You are a careful domain specialist. Use the context given with the task; say so when it does not answer the question."
        var creative = AgentProfile(name: "creative", strategy: .creative, description: "3 external answers at temperature 1.0; the best-scored wins")
        creative.route = .external
        creative.temperature = 1.0
        var reasoning = AgentProfile(name: "reasoning", strategy: .reasoning,
                                     description: "Reasoning-capable models; 5 samples, the majority answer wins (self-consistency)")
        reasoning.route = .external
        reasoning.temperature = 0.7
        reasoning.system = "Reason the problem through carefully, then reply with the final answer only, as briefly as possible: independent answers are compared by vote."
        let costAware = AgentProfile(name: "cost-aware", strategy: .costAware,
                                     description: "Internal first, then free models, then paid ones, while the score is under the bar")
        return [plain, specialized, creative, reasoning, costAware]
    }()
}

extension AgentProfile {
    /// The profile as JSON, in the file format, with every default spelled out (`chimera agents
    /// show --json`); `source` is added (null for a built-in).
    public var json: JSONValue {
        var members: [JSONMember] = [
            JSONMember("name", .string(name)), JSONMember("description", .string(description)),
            JSONMember("strategy", .string(strategy.rawValue)),
        ]
        if let system { members.append(JSONMember("system", .string(system))) }
        let strings: ([String]) -> JSONValue = { .array($0.map { .string($0) }) }
        if strategy == .specialized {
            members.append(JSONMember("kinds", strings(kinds)))
            members.append(JSONMember("tools", strings(tools)))
        }
        members.append(JSONMember("route", .string(route.rawValue)))
        members.append(JSONMember("models", strings(models)))
        if let minQuality { members.append(JSONMember("min_quality", .number(minQuality))) }
        if let temperature { members.append(JSONMember("temperature", .number(temperature))) }
        switch strategy {
        case .creative:
            members.append(JSONMember("candidates", .number(Double(candidates))))
            members.append(JSONMember("merge", .string(effectiveMerge.rawValue)))
        case .reasoning:
            members.append(JSONMember("samples", .number(Double(samples))))
            members.append(JSONMember("merge", .string(effectiveMerge.rawValue)))
        case .costAware:
            members.append(JSONMember("cascade", strings(cascade.map(\.description))))
            if let budgetUSD { members.append(JSONMember("budget_usd", .number(budgetUSD))) }
        case .default, .specialized:
            break
        }
        members.append(JSONMember("source", source.map { .string($0) } ?? .null))
        return .object(members)
    }
}
