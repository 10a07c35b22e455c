/// Decisions as JSON: what is stored with each task and what `chimera explain --json` prints.
extension Decision {
    /// The decision with its inputs (`input`), complexity features, every arm's evaluation,
    /// the shadow arm and the reasons.
    public func json(input: DecisionInput) -> JSONValue {
        func num(_ d: Double?) -> JSONValue { d.map { .number(($0 * 1_000_000).rounded() / 1_000_000) } ?? .null }
        var choiceMembers = [JSONMember("kind", .string(choice.label))]
        switch choice {
        case .internal(let h): choiceMembers.append(JSONMember("handler", .string(h)))
        case .external(let chain): choiceMembers.append(JSONMember("chain", .array(chain.map { .string($0) })))
        case .internalFallback(let h, let reason):
            choiceMembers += [JSONMember("handler", .string(h)), JSONMember("reason", .string(reason))]
        case .wait(let eta): choiceMembers.append(JSONMember("eta", .string(UTCDay.timestamp(eta))))
        case .fail(let reason): choiceMembers.append(JSONMember("reason", .string(reason)))
        }
        let external: JSONValue = input.external.map { e in
            let availability: String = switch e.availability {
            case .now: "now"
            case .wait(let eta): "wait until \(UTCDay.timestamp(eta))"
            case .exhausted(let why): "exhausted: \(why)"
            case .unavailable(let why): "unavailable: \(why)"
            }
            return .object([
                JSONMember("chain", .array(e.chain.map { .string($0) })), JSONMember("availability", .string(availability)),
                JSONMember("expected_cost_usd", num(e.expectedCostUSD)), JSONMember("free", .bool(e.free)),
                JSONMember("quota_pressure", num(e.quotaPressure)), JSONMember("strong", .bool(e.strong)),
            ])
        } ?? .null
        return .object([
            JSONMember("task_id", .string(taskId)),
            JSONMember("kind", .string(kind)),
            JSONMember("choice", .object(choiceMembers)),
            JSONMember("shadow", shadow.map { .string($0.description) } ?? .null),
            JSONMember("learning", .bool(learning)),
            JSONMember("input", .object([
                JSONMember("agent", .string(input.agent.name)),
                JSONMember("min_quality", num(input.minQuality)),
                JSONMember("route", .string(input.route.rawValue)),
                JSONMember("priority", .string(input.priority.description)),
                JSONMember("latency_budget_ms", input.latencyBudgetMs.map { .number(Double($0)) } ?? .null),
                JSONMember("cost_budget_usd", num(input.costBudgetUSD)),
                JSONMember("prompt_tokens", .number(Double(input.prompt.utf8.count / 4))),
                JSONMember("handlers", .array(input.handlers.filter { $0.kinds.contains(input.kind) }.map { h in
                    .object([JSONMember("handler", .string(h.handler)), JSONMember("capability", num(h.prior)),
                             JSONMember("max_input_tokens", h.maxInputTokens.map { .number(Double($0)) } ?? .null)])
                })),
                JSONMember("external", external),
            ])),
            JSONMember("complexity", .object([
                JSONMember("score", num(complexity.score)),
                JSONMember("bucket", .string(complexity.bucketName)),
                JSONMember("features", .array(complexity.features.map { f in
                    .object([JSONMember("name", .string(f.name)), JSONMember("value", num(f.value)), JSONMember("weight", num(f.weight)),
                             JSONMember("contribution", num(f.contribution)), JSONMember("detail", .string(f.detail))])
                })),
            ])),
            JSONMember("arms", .array(arms.map { a in
                .object([
                    JSONMember("arm", .string(a.arm.description)),
                    JSONMember("prior", .string(a.priorSource)),
                    JSONMember("alpha", num(a.stats.alpha)), JSONMember("beta", num(a.stats.beta)),
                    JSONMember("observations", .number(Double(a.stats.count))),
                    JSONMember("mean_score", a.stats.count > 0 ? num(a.stats.meanScore) : .null),
                    JSONMember("pass_estimate", num(a.passEstimate)),
                    JSONMember("score_estimate", num(a.scoreEstimate)),
                    JSONMember("cost_usd", num(a.costUSD)),
                    JSONMember("latency_ms", num(a.latencyMs)),
                    JSONMember("utility", num(a.utility)),
                    JSONMember("ineligible", a.ineligible.map { .string($0) } ?? .null),
                ])
            })),
            JSONMember("reasons", .array(reasons.map { .string($0) })),
        ])
    }
}
