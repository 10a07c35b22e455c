/// The second pass: what names refer to. Needs (unknown steps, self, cycles), templates,
/// `when` and `foreach` paths, unused inputs.
extension PipelineChecker {
    /// Where a name is read: a step's fields (by index in ``steps``) or the pipeline's outputs.
    enum Scope {
        case step(Int)
        case outputs
    }

    /// The fields every step has in the template context.
    static let stepFields = ["output", "json", "outputs", "skipped"]

    func checkReferences() {
        var firstIndex: [String: Int] = [:]
        for (i, step) in steps.enumerated() {
            guard let id = step.id else { continue }
            if let first = firstIndex[id] {
                report(JSONPath.appending(key: "id", to: step.path), "duplicate step id \"\(id)\"",
                       hint: "step ids must be unique; the first \"\(id)\" is \(steps[first].path)")
            } else {
                firstIndex[id] = i
            }
        }
        let ids = steps.compactMap(\.id).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        // edges[i]: the steps step i needs, with the path of each entry.
        var edges: [[(target: Int, path: String)]] = Array(repeating: [], count: steps.count)
        // A misspelt need stands for the step it was probably meant as when templates are checked,
        // so one typo is reported once (not again as every use of that step).
        var assumed: [[Int]] = Array(repeating: [], count: steps.count)
        for (i, step) in steps.enumerated() {
            for need in step.needs {
                if need.name == step.id {
                    report(need.path, "step \"\(need.name)\" needs itself", hint: "a step cannot wait for its own output; remove \"\(need.name)\" from its needs")
                } else if let j = firstIndex[need.name] {
                    edges[i].append((j, need.path))
                } else {
                    report(need.path, "step \(describe(i)) needs unknown step \"\(need.name)\"", hint: stepHint(need.name, ids))
                    if let meant = Suggestion.closest(to: need.name, in: ids), let j = firstIndex[meant], j != i { assumed[i].append(j) }
                }
            }
        }
        reportCycles(edges)
        let withAssumed = edges.indices.map { i in edges[i] + assumed[i].map { (target: $0, path: "") } }
        let ancestors = steps.indices.map { reachable(from: $0, withAssumed) }
        let lookup = References(firstIndex: firstIndex, ids: ids, ancestors: ancestors)

        for (i, step) in steps.enumerated() {
            for template in step.templates { checkTemplate(template.text, template.path, .step(i), lookup) }
            if let when = step.when {
                for reference in when.condition.pathReferences {
                    let offset = stringOffset(when.path, reference.offset)
                    checkReference(components(of: reference.path), written: reference.path, scope: .step(i), depth: 0, isSection: false,
                                   itemAllowed: step.foreach != nil, path: when.path, offset: offset, lookup)
                }
            }
            if let foreach = step.foreach { checkForeach(foreach.text, foreach.path, step: i, lookup) }
        }
        for template in outputTemplates { checkTemplate(template.text, template.path, .outputs, lookup) }
        for input in inputs where !usedInputs.contains(input.name) && input.type != nil && Self.isValidName(input.name) {
            report(input.path, "input \"\(input.name)\" is never used", hint: "use it in a template as {{inputs.\(input.name)}}, or remove it", severity: .warning)
        }
    }

    /// "did you mean" a step id close to `name`, else the ids there are.
    func stepHint(_ name: String, _ ids: [String]) -> String? {
        if let closest = Suggestion.closest(to: name, in: ids) { return "did you mean \"\(closest)\"?" }
        return ids.isEmpty ? nil : "steps: \(ids.joined(separator: ", "))"
    }

    /// How messages name step `i`: its id, or its path when it has none.
    func describe(_ i: Int) -> String {
        steps[i].id.map { "\"\($0)\"" } ?? steps[i].path
    }

    // MARK: Cycles

    /// Reports each cycle once, with its whole path in the order data flows (each step needs the
    /// one before it), at the needs entry of the step it starts from. Within each strongly
    /// connected component of the needs graph, every step (in file order) contributes the
    /// shortest cycle through it, unless that cycle was already reported: every step in a cycle
    /// is named, and no cycle twice.
    func reportCycles(_ edges: [[(target: Int, path: String)]]) {
        var reported: Set<[Int]> = []
        for component in stronglyConnectedComponents(edges) where component.count > 1 {
            let members = Set(component)
            for start in component.sorted() {
                guard let needsOrder = shortestCycle(through: start, within: members, edges) else { continue }
                // The same cycle found from another of its steps is rotated: compare a canonical rotation.
                let pivot = needsOrder.firstIndex(of: needsOrder.min()!)!
                guard reported.insert(Array(needsOrder[pivot...] + needsOrder[..<pivot])).inserted else { continue }
                let flow = [start] + needsOrder.dropFirst().reversed() + [start]
                let entry = edges[start].first { $0.target == needsOrder[1] }!
                let names = flow.map { steps[$0].id ?? steps[$0].path }
                report(entry.path, "needs form a cycle: \(names.joined(separator: " → ")) (each step needs the one before it)",
                       hint: "steps in a cycle can never start; remove one of these needs")
            }
        }
    }

    /// The shortest cycle from `start` along needs inside `members`, as `start, n1, …, nk` where
    /// each needs the next and `nk` needs `start`; breadth-first, so ties go to the needs listed first.
    func shortestCycle(through start: Int, within members: Set<Int>, _ edges: [[(target: Int, path: String)]]) -> [Int]? {
        var parent: [Int: Int] = [:]
        var queue = [start]
        var head = 0
        while head < queue.count {
            let u = queue[head]
            head += 1
            for edge in edges[u] where members.contains(edge.target) {
                if edge.target == start {
                    var chain = [u]
                    while let p = parent[chain.last!] { chain.append(p) }
                    return chain.reversed()
                }
                if parent[edge.target] == nil {
                    parent[edge.target] = u
                    queue.append(edge.target)
                }
            }
        }
        return nil
    }

    /// Kosaraju's algorithm with explicit stacks (a long chain of steps cannot overflow the stack).
    func stronglyConnectedComponents(_ edges: [[(target: Int, path: String)]]) -> [[Int]] {
        let n = edges.count
        var order: [Int] = []
        var visited = Array(repeating: false, count: n)
        for root in 0..<n where !visited[root] {
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            visited[root] = true
            while let top = stack.last {
                if top.next < edges[top.node].count {
                    stack[stack.count - 1].next += 1
                    let target = edges[top.node][top.next].target
                    if !visited[target] {
                        visited[target] = true
                        stack.append((target, 0))
                    }
                } else {
                    order.append(top.node)
                    stack.removeLast()
                }
            }
        }
        var reversed: [[Int]] = Array(repeating: [], count: n)
        for (u, out) in edges.enumerated() { for e in out { reversed[e.target].append(u) } }
        var component = Array(repeating: -1, count: n)
        var components: [[Int]] = []
        for root in order.reversed() where component[root] < 0 {
            var members: [Int] = []
            var stack = [root]
            component[root] = components.count
            while let u = stack.popLast() {
                members.append(u)
                for v in reversed[u] where component[v] < 0 {
                    component[v] = components.count
                    stack.append(v)
                }
            }
            components.append(members)
        }
        return components
    }

    /// Every step `i` needs, directly or through other steps.
    func reachable(from i: Int, _ edges: [[(target: Int, path: String)]]) -> Set<Int> {
        var seen: Set<Int> = []
        var stack = edges[i].map(\.target)
        while let u = stack.popLast() {
            guard seen.insert(u).inserted else { continue }
            stack += edges[u].map(\.target)
        }
        return seen
    }

    // MARK: Names

    /// What name checks look up.
    struct References {
        var firstIndex: [String: Int]
        var ids: [String]
        /// For each step, the steps it needs directly or transitively.
        var ancestors: [Set<Int>]
    }

    func components(of path: String) -> [PathComponent] {
        guard let condition = try? PipelineCondition.parse(path), case .path(let components) = condition.root else {
            return path.split(separator: ".").map { .key(String($0)) }
        }
        return components
    }

    func checkTemplate(_ text: String, _ path: String, _ scope: Scope, _ lookup: References) {
        let (tags, problems) = MustacheTagScanner.scan(text)
        for problem in problems {
            report(path, at: stringOffset(path, problem.offset), problem.message, hint: problem.hint)
        }
        let itemAllowed: Bool
        if case .step(let i) = scope { itemAllowed = steps[i].foreach != nil } else { itemAllowed = false }
        for tag in tags {
            let offset = stringOffset(path, tag.offset)
            if tag.name == "." {
                if tag.depth == 0 {
                    report(path, at: offset, "{{.}} outside a section would render the whole context", hint: "name a value, e.g. {{inputs.topic}}")
                }
                continue
            }
            let parts: [PathComponent] = tag.name.split(separator: ".").map { .key(String($0)) }
            checkReference(parts, written: tag.name, scope: scope, depth: tag.depth, isSection: tag.kind == .section || tag.kind == .invertedSection,
                           itemAllowed: itemAllowed, path: path, offset: offset, lookup)
        }
    }

    /// Checks one name a template, condition or foreach reads; reports what does not resolve.
    /// Returns the step the name reads, when it reads one.
    @discardableResult
    func checkReference(_ parts: [PathComponent], written: String, scope: Scope, depth: Int, isSection: Bool, itemAllowed: Bool,
                        path: String, offset: Int, _ lookup: References) -> Int? {
        guard case .key(let root)? = parts.first else { return nil }
        func key(_ n: Int) -> String? {
            guard parts.count > n, case .key(let k) = parts[n] else { return nil }
            return k
        }
        func fail(_ message: String, _ hint: String?) { report(path, at: offset, message, hint: hint) }
        switch root {
        case "inputs":
            guard let name = key(1) else {
                if isSection { usedInputs.formUnion(inputs.map(\.name)) } else {
                    fail("\"inputs\" alone is the object of all inputs", "name one input: inputs.NAME")
                }
                return nil
            }
            if inputs.contains(where: { $0.name == name }) {
                usedInputs.insert(name)
            } else {
                let names = inputs.map(\.name)
                fail("unknown input \"\(name)\" in \(written)", Suggestion.closest(to: name, in: names).map { "did you mean \"\($0)\"?" }
                    ?? "declare it under \"inputs\"" + (names.isEmpty ? "" : " (declared: \(names.joined(separator: ", ")))"))
            }
            return nil
        case "steps":
            guard let id = key(1) else {
                fail("\"steps\" alone is the object of all steps", "name one step's field: steps.ID.output")
                return nil
            }
            guard let j = lookup.firstIndex[id] else {
                fail("unknown step \"\(id)\" in \(written)", stepHint(id, lookup.ids))
                return nil
            }
            if case .step(let i) = scope {
                if i == j {
                    fail("step \"\(id)\" reads its own result (\(written))", "a step's output exists only after it has run")
                    return nil
                }
                if !lookup.ancestors[i].contains(j) {
                    fail("step \(describe(i)) uses steps.\(id) but does not need it", "add \"\(id)\" to needs")
                }
            }
            guard let field = key(2) else {
                if !isSection {
                    fail("steps.\(id) alone is an object", "use steps.\(id).output (text), .json, .outputs or .skipped")
                }
                return j
            }
            switch field {
            case "output", "skipped": break
            case "json":
                if !steps[j].jsonOutput {
                    fail("steps.\(id).json is only set when step \"\(id)\" has \"output\": \"json\"", "set \"output\": \"json\" on step \"\(id)\", or use steps.\(id).output")
                }
            case "outputs":
                if steps[j].foreach == nil {
                    fail("steps.\(id).outputs is only set for a foreach step, and \"\(id)\" has no foreach", "use steps.\(id).output")
                }
            default:
                fail("steps.\(id) has no field \"\(field)\"", Suggestion.closest(to: field, in: Self.stepFields).map { "did you mean \"\($0)\"?" }
                    ?? "fields: \(Self.stepFields.joined(separator: ", "))")
            }
            return j
        case "item", "index", "number":
            if itemAllowed || depth > 0 { return nil }
            if case .outputs = scope {
                fail("\"\(root)\" is only defined in a foreach step, not in pipeline outputs", "use steps.ID.outputs to read a foreach step's items")
            } else if case .step(let i) = scope {
                fail("\"\(root)\" is only defined in a foreach step, and step \(describe(i)) has no foreach",
                     "add \"foreach\": \"inputs.LIST\" to the step, or use inputs. and steps. names")
            }
            return nil
        default:
            if depth > 0 { return nil }  // relative to an enclosing section
            let hint: String
            if inputs.contains(where: { $0.name == root }) {
                hint = "did you mean \"inputs.\(written)\"?"
            } else if lookup.firstIndex[root] != nil {
                hint = "did you mean \"steps.\(root).output\"?"
            } else {
                hint = "names start with inputs., steps., item, index or number"
            }
            fail("unknown name \"\(written)\"", hint)
            return nil
        }
    }

    /// `foreach` must be a path to an array: an input of type array, or a step's JSON or outputs.
    func checkForeach(_ text: String, _ path: String, step i: Int, _ lookup: References) {
        let expected = "foreach must be a path to an array, such as inputs.articles, steps.split.json.items or steps.each.outputs"
        guard let condition = try? PipelineCondition.parse(text), case .path(let parts) = condition.root else {
            report(path, "\(expected), found \"\(text)\"")
            return
        }
        let offset = stringOffset(path, 0)
        guard case .key(let root)? = parts.first else { return }
        switch root {
        case "inputs":
            checkReference(parts, written: text, scope: .step(i), depth: 0, isSection: false, itemAllowed: false, path: path, offset: offset, lookup)
            guard parts.count >= 2, case .key(let name) = parts[1], let input = inputs.first(where: { $0.name == name }), let type = input.type else { return }
            let arrayLike = parts.count == 2 ? type == .array : (type == .array || type == .object)
            if !arrayLike {
                report(path, at: offset, "foreach needs an array, but input \"\(name)\" is \(type.schemaType.phrase)", hint: "declare \"\(name)\" with \"type\": \"array\"")
            }
        case "steps":
            guard let j = checkReference(parts, written: text, scope: .step(i), depth: 0, isSection: false, itemAllowed: false, path: path, offset: offset, lookup),
                  parts.count >= 3, case .key(let field) = parts[2] else { return }
            if field == "output" || field == "skipped" {
                report(path, at: offset, "foreach needs an array, but \(text) is \(field == "output" ? "text" : "a boolean")",
                       hint: "give step \"\(steps[j].id ?? "")\" \"output\": \"json\" and use steps.\(steps[j].id ?? "").json…")
            }
        default:
            report(path, at: offset, "\(expected), found \"\(text)\"", hint: "item and index are the current element inside the step, not a list to iterate")
        }
    }
}
