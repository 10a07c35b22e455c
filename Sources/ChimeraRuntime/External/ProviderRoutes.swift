import ChimeraCore
import ChimeraOpenRouter

/// Where the calls for one provider go: its endpoint and timeouts, its key pool (none for a
/// provider that takes no key) and, when known, its model catalog — used to drop models whose
/// context cannot hold a prompt and to estimate the cost of calls whose response has none.
public final class ProviderRoute {
    /// `openrouter`, or the `name` of a `providers` entry.
    public let name: String
    public let endpoint: ProviderEndpoint
    public let timeouts: CallTimeouts
    /// Leases keys and records every call in the ledger; nil: requests carry no `Authorization`.
    public let broker: KeyBroker?
    /// The catalog's models by id (empty when there is none).
    public let catalog: [String: ModelInfo]
    /// Mean observed latency of successful calls by model id (from the ledger), which orders the
    /// free models chosen when a call names none.
    public let latencyMs: [String: Double]
    /// Prefix of this route's model ids in a chain (`local/`); empty for OpenRouter.
    let prefix: String

    public init(name: String, endpoint: ProviderEndpoint, timeouts: CallTimeouts, broker: KeyBroker?,
                catalog: [ModelInfo] = [], latencyMs: [String: Double] = [:]) {
        self.name = name
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.broker = broker
        var byId: [String: ModelInfo] = [:]
        for model in catalog where byId[model.id] == nil { byId[model.id] = model }
        self.catalog = byId
        self.latencyMs = latencyMs
        prefix = name == ProviderRoutes.openRouterName ? "" : name + "/"
    }

    /// The id a caller sees for `upstream`, one of this route's models: `local/llama3`.
    public func qualified(_ upstream: String) -> String { prefix + upstream }
}

/// The providers of one process, and which serves a model id: `NAME/model` goes to the provider
/// called NAME with `model` as the upstream id (as LiteLLM does); any other id goes to
/// OpenRouter unchanged (`openrouter/auto` stays an OpenRouter id).
public struct ProviderRoutes {
    public static let openRouterName = "openrouter"
    public let openRouter: ProviderRoute
    public let others: [String: ProviderRoute]

    public init(openRouter: ProviderRoute, others: [ProviderRoute] = []) {
        self.openRouter = openRouter
        var byName: [String: ProviderRoute] = [:]
        for route in others { byName[route.name] = route }
        self.others = byName
    }

    /// The route of `model` and the id to send upstream.
    public func resolve(_ model: String) -> (route: ProviderRoute, upstream: String) {
        if let slash = model.firstIndex(of: "/"), let route = others[String(model[..<slash])] {
            let rest = String(model[model.index(after: slash)...])
            if !rest.isEmpty { return (route, rest) }
        }
        return (openRouter, model)
    }
}
