/// What a pipeline may name besides its own steps and inputs: the agents and handlers that exist
/// where it will run. `nil` leaves that check out (a pipeline checked without a configuration).
public struct PipelineValidationContext: Sendable, Equatable {
    /// Agent profiles a step's `agent` may name.
    public var knownAgents: Set<String>?
    /// Handlers a step's `handler` may name.
    public var knownHandlers: Set<String>?

    /// A context; leave a set nil to skip that check.
    public init(knownAgents: Set<String>? = nil, knownHandlers: Set<String>? = nil) {
        self.knownAgents = knownAgents
        self.knownHandlers = knownHandlers
    }
}
