import ChimeraCore

extension SimulatorConfig {
    /// Decodes a simulator config file (for `chimera sim openrouter --config FILE`), reporting
    /// every problem with its JSON path and line.
    ///
    /// ```json
    /// {
    ///   "accounts": [{"name": "team", "keys": ["sk-or-v1-…"], "credits_purchased": 10, "balance": 5, "per_minute": 20}],
    ///   "models": [{"id": "x/y:free", "context_length": 8192, "prompt_price": "0", "completion_price": "0", "down": false, "reasoning": false}],
    ///   "latency_ms": 200, "chunk_delay_ms": 20, "keep_alive_comments": 1,
    ///   "error_rates": {"502": 0.05, "503": 0.02}, "seed": 7
    /// }
    /// ```
    /// Every field is optional; a missing `accounts` or `models` list is the ``standard`` one.
    /// Unknown fields are errors.
    public static func decode(_ bytes: [UInt8], file: String) throws(ConfigError) -> SimulatorConfig {
        let (root, offsets, source) = try ConfigDecoder.parseDocument(bytes, file: file)
        var reader = SimConfigReader(offsets: offsets, source: source)
        let config = reader.decode(root)
        if !reader.issues.isEmpty { throw ConfigError(file: file, issues: reader.issues) }
        return config
    }
}

/// Field-by-field decoding that collects issues instead of stopping at the first.
struct SimConfigReader {
    let offsets: [String: Int]
    let source: SourceLocator
    var issues: [ConfigIssue] = []

    mutating func report(_ path: String, _ message: String) {
        let location = offsets[path].map { source.lineColumn(of: $0) }
        issues.append(ConfigIssue(path: path, line: location?.line, column: location?.column, message: message))
    }

    /// The members of an object, after reporting unknown keys; nil (reported) if not an object.
    mutating func members(_ value: JSONValue, _ path: String, known: [String]) -> [String: JSONValue]? {
        guard case .object(let list) = value else {
            report(path, "expected an object, found \(value.typeName)")
            return nil
        }
        var result: [String: JSONValue] = [:]
        for member in list {
            if known.contains(member.key) {
                result[member.key] = member.value
            } else {
                let hint = Suggestion.closest(to: member.key, in: known).map { " (did you mean \"\($0)\"?)" } ?? ""
                report(JSONPath.appending(key: member.key, to: path), "unknown field \"\(member.key)\"\(hint); known fields: \(known.joined(separator: ", "))")
            }
        }
        return result
    }

    mutating func int(_ value: JSONValue?, _ path: String, _ range: ClosedRange<Int>, default fallback: Int) -> Int {
        guard let value else { return fallback }
        guard let d = value.numberValue, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            report(path, "expected an integer in \(range.lowerBound)...\(range.upperBound), found \(describe(value))")
            return fallback
        }
        return Int(d)
    }

    mutating func double(_ value: JSONValue?, _ path: String, default fallback: Double) -> Double {
        guard let value else { return fallback }
        guard let d = value.numberValue, d.isFinite else {
            report(path, "expected a number, found \(describe(value))")
            return fallback
        }
        return d
    }

    mutating func string(_ value: JSONValue?, _ path: String) -> String? {
        guard let value else { return nil }
        guard let s = value.stringValue, !s.isEmpty else {
            report(path, "expected a non-empty string, found \(describe(value))")
            return nil
        }
        return s
    }

    func describe(_ value: JSONValue) -> String {
        switch value {
        case .number, .bool, .null: return "\(value.typeName) (\(value.serialized))"
        case .string(let s): return "the string \"\(s)\""
        default: return value.typeName
        }
    }

    mutating func decode(_ root: JSONValue) -> SimulatorConfig {
        var config = SimulatorConfig.standard
        let known = ["accounts", "models", "latency_ms", "chunk_delay_ms", "keep_alive_comments", "error_rates", "seed"]
        guard let top = members(root, "$", known: known) else { return config }
        config.latencyMs = int(top["latency_ms"], "$.latency_ms", 0...3_600_000, default: config.latencyMs)
        config.chunkDelayMs = int(top["chunk_delay_ms"], "$.chunk_delay_ms", 0...600_000, default: config.chunkDelayMs)
        config.keepAliveComments = int(top["keep_alive_comments"], "$.keep_alive_comments", 0...10_000, default: config.keepAliveComments)
        if let seed = top["seed"] {
            if let d = seed.numberValue, d == d.rounded(), d >= 0, d < 1.8e19 {
                config.seed = UInt64(d)
            } else {
                report("$.seed", "expected a non-negative integer, found \(describe(seed))")
            }
        }
        if let rates = top["error_rates"] { config.errorRates = errorRates(rates) }
        if let accounts = top["accounts"] { config.accounts = self.accounts(accounts) }
        if let models = top["models"] { config.models = self.models(models) }
        return config
    }

    mutating func errorRates(_ value: JSONValue) -> [Int: Double] {
        guard case .object(let list) = value else {
            report("$.error_rates", "expected an object of status → probability, e.g. {\"502\": 0.05}, found \(value.typeName)")
            return [:]
        }
        var rates: [Int: Double] = [:]
        var total = 0.0
        for member in list {
            let path = JSONPath.appending(key: member.key, to: "$.error_rates")
            guard let status = Int(member.key), (400...599).contains(status) else {
                report(path, "\"\(member.key)\" is not an HTTP error status (400...599)")
                continue
            }
            guard let p = member.value.numberValue, p >= 0, p <= 1 else {
                report(path, "expected a probability in 0...1, found \(describe(member.value))")
                continue
            }
            rates[status] = p
            total += p
        }
        if total > 1 { report("$.error_rates", "the probabilities add up to \(total), more than 1") }
        return rates
    }

    mutating func accounts(_ value: JSONValue) -> [SimulatorConfig.Account] {
        guard case .array(let items) = value else {
            report("$.accounts", "expected an array of accounts, found \(value.typeName)")
            return []
        }
        var result: [SimulatorConfig.Account] = []
        var seenKeys: [String: String] = [:]
        var seenNames: Set<String> = []
        for (i, item) in items.enumerated() {
            let path = "$.accounts[\(i)]"
            guard let m = members(item, path, known: ["name", "keys", "credits_purchased", "balance", "per_minute"]) else { continue }
            guard let name = string(m["name"], "\(path).name") else {
                if m["name"] == nil { report(path, "missing \"name\"") }
                continue
            }
            if !seenNames.insert(name).inserted { report("\(path).name", "account \"\(name)\" appears twice") }
            var keys: [String] = []
            if case .array(let list)? = m["keys"], !list.isEmpty {
                for (j, key) in list.enumerated() {
                    guard let k = string(key, "\(path).keys[\(j)]") else { continue }
                    if let other = seenKeys[k] {
                        report("\(path).keys[\(j)]", "this key already belongs to account \"\(other)\"")
                    } else if k.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
                        report("\(path).keys[\(j)]", "a key cannot contain whitespace")
                    } else {
                        seenKeys[k] = name
                        keys.append(k)
                    }
                }
            } else {
                report(m["keys"] == nil ? path : "\(path).keys", "expected \"keys\": a non-empty array of key strings")
            }
            let purchased = double(m["credits_purchased"], "\(path).credits_purchased", default: 0)
            if purchased < 0 { report("\(path).credits_purchased", "cannot be negative") }
            let balance = double(m["balance"], "\(path).balance", default: 0)
            let perMinute = int(m["per_minute"], "\(path).per_minute", 1...1_000_000, default: 20)
            result.append(.init(name: name, keys: keys, creditsPurchased: purchased, balance: balance, perMinute: perMinute))
        }
        if items.isEmpty { report("$.accounts", "at least one account is needed") }
        return result
    }

    mutating func models(_ value: JSONValue) -> [SimulatorConfig.Model] {
        guard case .array(let items) = value else {
            report("$.models", "expected an array of models, found \(value.typeName)")
            return []
        }
        var result: [SimulatorConfig.Model] = []
        var seen: Set<String> = []
        for (i, item) in items.enumerated() {
            let path = "$.models[\(i)]"
            guard let m = members(item, path, known: ["id", "context_length", "prompt_price", "completion_price", "down", "reasoning"]) else { continue }
            guard let id = string(m["id"], "\(path).id") else {
                if m["id"] == nil { report(path, "missing \"id\"") }
                continue
            }
            if !ModelID.isWellFormed(id) { report("\(path).id", "\"\(id)\" is not a model id of the form author/slug[:variant]") }
            if !seen.insert(id).inserted { report("\(path).id", "model \"\(id)\" appears twice") }
            let context = int(m["context_length"], "\(path).context_length", 1...100_000_000, default: 131_072)
            var prices: [String] = []
            for field in ["prompt_price", "completion_price"] {
                let fieldPath = "\(path).\(field)"
                switch m[field] {
                case nil: prices.append("0")
                case .string(let s)? where Double(s) != nil: prices.append(s)
                case let other?:
                    report(fieldPath, "expected a decimal string of USD per token, like \"0.0000006\", found \(describe(other))")
                    prices.append("0")
                }
            }
            var down = false
            if let d = m["down"] {
                if case .bool(let b) = d { down = b } else { report("\(path).down", "expected true or false, found \(describe(d))") }
            }
            var reasoning = false
            if let r = m["reasoning"] {
                if case .bool(let b) = r { reasoning = b } else { report("\(path).reasoning", "expected true or false, found \(describe(r))") }
            }
            result.append(.init(id: id, contextLength: context, promptPrice: prices[0], completionPrice: prices[1], down: down, reasoning: reasoning))
        }
        if items.isEmpty { report("$.models", "at least one model is needed") }
        return result
    }
}

/// Model id syntax: `author/slug[:variant]`, no whitespace.
enum ModelID {
    static func isWellFormed(_ id: String) -> Bool {
        let parts = id.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        return id.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":") || b == UInt8(ascii: "/")
        }
    }
}
