/// One problem in a configuration file, located as precisely as the file allows.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// JSON path of the offending value, e.g. `$.pools[0].size`.
    public var path: String
    /// 1-based line and column of the value, when known.
    public var line: Int?
    public var column: Int?
    /// What was expected and what was found.
    public var message: String
    /// How to fix it, kept apart from ``message`` by formats that show hints on their own line
    /// (pipelines); configuration files fold their suggestions into the message and leave it nil.
    public var hint: String?

    public init(path: String, line: Int? = nil, column: Int? = nil, message: String, hint: String? = nil) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint
    }

    public var description: String {
        let location = line.map { "\($0):\(column ?? 1): " } ?? ""
        return "\(location)\(path): \(message)"
    }
}

/// A configuration that cannot be used, with every problem found (not just the first).
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the problems are in.
    public var file: String
    public var issues: [ConfigIssue]
    /// What the file is, for the header: "configuration", "agent profile"…
    public var subject: String

    public init(file: String, issues: [ConfigIssue], subject: String = "configuration") {
        self.file = file
        self.issues = issues
        self.subject = subject
    }

    public var description: String {
        let header = issues.count == 1 ? "\(file): invalid \(subject)" : "\(file): \(issues.count) problems in the \(subject)"
        return ([header] + issues.map { "  \(file):\($0)" }).joined(separator: "\n")
    }
}

/// Decodes a ``ChimeraConfig`` from JSON text, reporting all problems at once.
///
/// Unknown fields are errors (with a "did you mean" when a known field is close): a typo in a
/// config silently ignored is worse than a refusal to start.
public enum ConfigDecoder {
    /// Decodes `bytes`, the content of `file` (the name is only used in messages).
    public static func decode(_ bytes: [UInt8], file: String) throws(ConfigError) -> ChimeraConfig {
        let (root, offsets, source) = try parseDocument(bytes, file: file)
        let context = DecodingContext(offsets: offsets, source: source)
        let config = context.decodeConfig(root)
        if !context.issues.isEmpty { throw ConfigError(file: file, issues: context.issues) }
        return config
    }
}

extension ConfigDecoder {
    /// Parses a JSON config file, recording each value's offset by JSON path so that later
    /// problems can be reported with line and column; a syntax error is a located `ConfigError`.
    /// For other config formats (the simulator's) that report problems the same way.
    public static func parseDocument(_ bytes: [UInt8], file: String) throws(ConfigError) -> (root: JSONValue, offsets: [String: Int], source: SourceLocator) {
        let source = SourceLocator(bytes)
        do {
            let (root, offsets) = try JSONParser.parse(bytes, recordPaths: true)
            return (root, offsets, source)
        } catch {
            let (line, column) = source.lineColumn(of: error.offset)
            throw ConfigError(file: file, issues: [ConfigIssue(path: "$", line: line, column: column, message: "not valid JSON: \(error.reason)")])
        }
    }
}

/// Turns byte offsets into 1-based line and column numbers.
public struct SourceLocator: Sendable {
    private let lineStarts: [Int]

    public init(_ bytes: [UInt8]) {
        var starts = [0]
        for (i, byte) in bytes.enumerated() where byte == 0x0A { starts.append(i + 1) }
        lineStarts = starts
    }

    /// Line and column (both from 1; the column counts bytes) of `offset`.
    public func lineColumn(of offset: Int) -> (line: Int, column: Int) {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return (low + 1, offset - lineStarts[low] + 1)
    }
}

/// Collects located issues while a JSON document is decoded; shared by the config, keys,
/// simulator and pipeline decoders (with ``ObjectReader``).
final class DecodingContext {
    let offsets: [String: Int]
    let source: SourceLocator
    /// Whether suggestions ("did you mean") go to ``ConfigIssue/hint`` instead of the message.
    let hintsApart: Bool
    var issues: [ConfigIssue] = []

    init(offsets: [String: Int], source: SourceLocator, hintsApart: Bool = false) {
        self.offsets = offsets
        self.source = source
        self.hintsApart = hintsApart
    }

    func report(_ path: String, _ message: String, hint: String? = nil) {
        var issue = ConfigIssue(path: path, message: message, hint: hint)
        if let offset = offsets[path] {
            let (line, column) = source.lineColumn(of: offset)
            issue.line = line
            issue.column = column
        }
        issues.append(issue)
    }

    /// `text` as one of `T`'s raw values, reported with the list and a "did you mean" otherwise.
    func choice<T: RawRepresentable & CaseIterable>(_ text: String, _ type: T.Type, at path: String) -> T? where T.RawValue == String {
        if let value = T(rawValue: text) { return value }
        let names = T.allCases.map(\.rawValue)
        let closest = Suggestion.closest(to: text, in: names)
        let expected = "expected one of \(names.map { "\"\($0)\"" }.joined(separator: ", ")), found \"\(text)\""
        if hintsApart {
            report(path, expected, hint: closest.map { "did you mean \"\($0)\"?" })
        } else {
            report(path, expected + (closest.map { " (did you mean \"\($0)\"?)" } ?? ""))
        }
        return nil
    }

    func object(_ value: JSONValue, _ path: String, known: [String]) -> ObjectReader? {
        guard case .object(let members) = value else {
            report(path, "expected an object, found \(value.typeName)")
            return nil
        }
        return ObjectReader(context: self, members: members, path: path, known: known)
    }

    func decodeConfig(_ root: JSONValue) -> ChimeraConfig {
        var config = ChimeraConfig.builtinDefault
        guard var top = object(root, "$", known: ["$schema", "coordinator", "pools", "handlers", "keys", "openrouter", "providers", "jhade"]) else { return config }
        if let value = top.take("coordinator"), var reader = object(value, top.path("coordinator"), known: [
            "queue_capacity", "task_timeout_ms", "cancel_grace_ms", "heartbeat_interval_ms", "heartbeat_timeout_ms",
            "handshake_timeout_ms", "max_attempts", "drain_grace_ms", "stop_grace_ms", "max_line_bytes", "on_malformed_output",
        ]) {
            var c = CoordinatorSettings()
            reader.int("queue_capacity", 1...10_000_000, into: &c.queueCapacity)
            reader.millis("task_timeout_ms", minimum: 1, into: &c.taskTimeoutMs)
            reader.millis("cancel_grace_ms", into: &c.cancelGraceMs)
            reader.millis("heartbeat_interval_ms", minimum: 10, into: &c.heartbeatIntervalMs)
            reader.millis("heartbeat_timeout_ms", into: &c.heartbeatTimeoutMs)
            reader.millis("handshake_timeout_ms", minimum: 10, into: &c.handshakeTimeoutMs)
            reader.int("max_attempts", 1...100, into: &c.maxAttempts)
            reader.millis("drain_grace_ms", into: &c.drainGraceMs)
            reader.millis("stop_grace_ms", into: &c.stopGraceMs)
            reader.int("max_line_bytes", 1_024...(1 << 30), into: &c.maxLineBytes)
            if let mode = reader.string("on_malformed_output") {
                switch mode {
                case "restart": c.restartOnMalformedOutput = true
                case "log": c.restartOnMalformedOutput = false
                default: report(reader.path("on_malformed_output"), "expected \"restart\" or \"log\", found \"\(mode)\"")
                }
            }
            if c.heartbeatTimeoutMs <= c.heartbeatIntervalMs {
                report(reader.path("heartbeat_timeout_ms"), "must be greater than heartbeat_interval_ms (\(c.heartbeatIntervalMs)), or every worker looks hung")
            }
            reader.finish()
            config.coordinator = c
        }
        var pools: [PoolConfig] = []
        let sawPools = top.has("pools")
        if let value = top.take("pools") {
            pools += decodeList(value, top.path("pools")) { self.decodePool($0, $1, custom: false) }
        }
        if let value = top.take("handlers") {
            pools += decodeList(value, top.path("handlers")) { self.decodePool($0, $1, custom: true) }
        }
        if let value = top.take("keys") { config.keys = decodeKeys(value, top.path("keys")) }
        if let value = top.take("openrouter"), var r = object(value, top.path("openrouter"), known: [
            "base_url", "referer", "title", "connect_timeout_ms", "first_byte_timeout_ms", "idle_timeout_ms", "total_timeout_ms",
        ]) {
            var o = OpenRouterSettings()
            o.baseURL = r.url("base_url")
            o.referer = r.string("referer")
            if let title = r.string("title") { o.title = title }
            r.timeouts(into: &o.timeouts)
            r.finish()
            config.openrouter = o
        }
        if let value = top.take("jhade"), var r = object(value, top.path("jhade"), known: [
            "weights", "cost_scale_usd", "latency_scale_ms", "shadow", "strategy", "min_quality", "learning",
        ]) {
            var j = JHADESettings()
            if let w = r.take("weights"), var wr = object(w, r.path("weights"), known: ["quality", "cost", "quota", "latency"]) {
                wr.double("quality", 0...100, into: &j.weights.quality)
                wr.double("cost", 0...100, into: &j.weights.cost)
                wr.double("quota", 0...100, into: &j.weights.quota)
                wr.double("latency", 0...100, into: &j.weights.latency)
                wr.finish()
            }
            r.double("cost_scale_usd", 0.000001...1_000, into: &j.weights.costScaleUSD)
            r.double("latency_scale_ms", 1...86_400_000, into: &j.weights.latencyScaleMs)
            r.double("shadow", 0...1, into: &j.shadow)
            if let strategy = r.choice("strategy", LearningStrategy.self) { j.strategy = strategy }
            r.double("min_quality", 0...1, into: &j.minQuality)
            if let learning = r.bool("learning") { j.learning = learning }
            r.finish()
            config.jhade = j
        }
        if let value = top.take("providers") {
            if case .array(let items) = value {
                for (i, item) in items.enumerated() {
                    guard let provider = decodeProvider(item, "\(top.path("providers"))[\(i)]") else { continue }
                    if config.providers.contains(where: { $0.name == provider.name }) {
                        report("\(top.path("providers"))[\(i)].name", "provider \"\(provider.name)\" is declared twice; names must be unique")
                    } else {
                        config.providers.append(provider)
                    }
                }
            } else { report(top.path("providers"), "expected an array of providers, found \(value.typeName)") }
        }
        top.finish()
        // Without a `pools` key the built-in pool stays, so a config that only adds handlers keeps echo and text.stats.
        config.pools = (sawPools ? [] : ChimeraConfig.builtinDefault.pools) + pools
        checkUnique(config.pools)
        return config
    }

    /// One `providers[]` entry: another OpenAI-compatible API with its own key pool.
    func decodeProvider(_ value: JSONValue, _ path: String) -> ProviderSettings? {
        guard var r = object(value, path, known: [
            "name", "base_url", "headers", "keys", "connect_timeout_ms", "first_byte_timeout_ms", "idle_timeout_ms", "total_timeout_ms",
        ]) else { return nil }
        let name = r.string("name", required: "the prefix of this provider's model ids, e.g. \"local\" for \"local/llama3.2\"")
        if let name, !ProviderSettings.isValidName(name) {
            report(r.path("name"), name == "openrouter"
                ? "\"openrouter\" is the built-in provider; configure it in the openrouter section"
                : "expected lowercase letters, digits, '-' or '_' (it prefixes model ids: NAME/model), found \"\(name)\"")
        }
        let url = r.url("base_url", required: true)
        var headers: [(name: String, value: String)] = []
        if let value = r.take("headers") {
            if case .object(let members) = value {
                for member in members {
                    if case .string(let text) = member.value, !member.key.isEmpty {
                        if member.key.lowercased() == "authorization" {
                            report(JSONPath.appending(key: member.key, to: r.path("headers")), "the Authorization header comes from the provider's keys; declare the key in \"keys\" instead")
                        } else {
                            headers.append((member.key, text))
                        }
                    } else {
                        report(JSONPath.appending(key: member.key, to: r.path("headers")), "expected a header value (a string), found \(member.value.typeName)")
                    }
                }
            } else { report(r.path("headers"), "expected an object of header names and values, found \(value.typeName)") }
        }
        var keys: KeysConfig?
        if let value = r.take("keys") {
            var decoded = decodeKeys(value, r.path("keys"), provider: name ?? "provider")
            // Accounts live in the ledger beside OpenRouter's: the provider's name keeps them apart.
            if let name {
                for i in decoded.accounts.indices { decoded.accounts[i].name = name + "/" + decoded.accounts[i].name }
                for i in decoded.entries.indices { decoded.entries[i].account = decoded.entries[i].account.map { name + "/" + $0 } }
            }
            keys = decoded
        }
        var timeouts = TimeoutSettings()
        r.timeouts(into: &timeouts)
        r.finish()
        guard let name, let url, ProviderSettings.isValidName(name) else { return nil }
        var provider = ProviderSettings(name: name, baseURL: url)
        provider.headers = headers
        provider.keys = keys
        provider.timeouts = timeouts
        return provider
    }

    func decodeList(_ value: JSONValue, _ path: String, _ element: (JSONValue, String) -> PoolConfig?) -> [PoolConfig] {
        guard case .array(let items) = value else {
            report(path, "expected an array, found \(value.typeName)")
            return []
        }
        return items.enumerated().compactMap { element($0.element, "\(path)[\($0.offset)]") }
    }

    /// A built-in pool (`pools[]`) or a custom handler executable (`handlers[]`).
    func decodePool(_ value: JSONValue, _ path: String, custom: Bool) -> PoolConfig? {
        let common = ["name", "size", "max_concurrency", "restart", "kinds"]
        let known = custom ? common + ["command", "args", "env", "capability", "max_input_tokens"] : common + ["test_handlers", "handlers", "agent"]
        guard var reader = object(value, path, known: known) else { return nil }
        let name = reader.string("name", required: custom ? "the handler name tasks use" : "a name for the pool")
        var pool = PoolConfig(name: name ?? "?", handlers: [])
        if custom {
            pool.command = reader.string("command", required: "the executable to run, e.g. \"python3\"")
            pool.arguments = reader.strings("args") ?? []
            pool.environment = reader.stringMap("env") ?? [:]
            pool.handlers = name.map { [$0] } ?? []
            pool.capability = reader.double("capability", 0...1)
            pool.maxInputTokens = reader.int("max_input_tokens", 1...100_000_000)
        } else {
            pool.testHandlers = reader.bool("test_handlers") ?? false
            pool.agent = reader.string("agent")
            let allowed = BuiltinHandlerNames.standard + (pool.testHandlers ? BuiltinHandlerNames.test : []) + (pool.agent != nil ? BuiltinHandlerNames.agent : [])
            if let handlers = reader.strings("handlers") {
                for (i, h) in handlers.enumerated() where !allowed.contains(h) {
                    report("\(reader.path("handlers"))[\(i)]", "the built-in worker has no handler \"\(h)\" (it has: \(allowed.joined(separator: ", ")))")
                }
                pool.handlers = handlers
            } else {
                pool.handlers = allowed
            }
        }
        pool.kinds = reader.strings("kinds") ?? []
        reader.int("size", 1...256, into: &pool.size)
        var concurrency = 0
        if reader.has("max_concurrency") {
            reader.int("max_concurrency", 1...65_536, into: &concurrency)
            pool.maxConcurrency = concurrency
        }
        if let restart = reader.take("restart"), var r = object(restart, reader.path("restart"), known: ["max_restarts", "window_ms", "backoff_initial_ms", "backoff_max_ms"]) {
            r.int("max_restarts", 0...10_000, into: &pool.restart.maxRestarts)
            r.millis("window_ms", minimum: 1, into: &pool.restart.windowMs)
            r.millis("backoff_initial_ms", into: &pool.restart.backoffInitialMs)
            r.millis("backoff_max_ms", into: &pool.restart.backoffMaxMs)
            if pool.restart.backoffInitialMs > pool.restart.backoffMaxMs {
                report(r.path("backoff_initial_ms"), "must not exceed backoff_max_ms (\(pool.restart.backoffMaxMs))")
            }
            r.finish()
        }
        reader.finish()
        return name == nil ? nil : pool
    }

    func checkUnique(_ pools: [PoolConfig]) {
        var names: [String: Int] = [:]
        var owners: [String: String] = [:]
        for (i, pool) in pools.enumerated() {
            if names[pool.name] != nil {
                report("$", "two pools are named \"\(pool.name)\"; names must be unique")
            }
            names[pool.name] = i
            for handler in pool.handlers {
                if let other = owners[handler], other != pool.name {
                    report("$", "handler \"\(handler)\" is served by both \"\(other)\" and \"\(pool.name)\"; a handler must have one pool")
                }
                owners[handler] = pool.name
            }
        }
    }
}

/// Reads the fields of one JSON object, recording type errors and unknown fields.
struct ObjectReader {
    let context: DecodingContext
    var members: [JSONMember]
    let basePath: String
    let known: [String]

    init(context: DecodingContext, members: [JSONMember], path: String, known: [String]) {
        self.context = context
        self.members = members
        self.basePath = path
        self.known = known
    }

    func path(_ key: String) -> String { JSONPath.appending(key: key, to: basePath) }
    func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    /// Removes and returns the member `key` (the last one if it repeats).
    mutating func take(_ key: String) -> JSONValue? {
        guard let index = members.lastIndex(where: { $0.key == key }) else { return nil }
        let value = members[index].value
        members.removeAll { $0.key == key }
        return value
    }

    mutating func string(_ key: String, required: String? = nil) -> String? {
        guard let value = take(key) else {
            if let required { context.report(basePath, "missing required field \"\(key)\" (\(required))") }
            return nil
        }
        guard case .string(let s) = value, !s.isEmpty else {
            context.report(path(key), "expected a non-empty string, found \(value.serialized)")
            return nil
        }
        return s
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let value = take(key) else { return nil }
        guard case .bool(let b) = value else {
            context.report(path(key), "expected true or false, found \(value.serialized)")
            return nil
        }
        return b
    }

    mutating func int(_ key: String, _ range: ClosedRange<Int>, into target: inout Int) {
        guard let value = take(key) else { return }
        guard case .number(let d) = value, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            context.report(path(key), "expected an integer from \(range.lowerBound) to \(range.upperBound), found \(value.serialized)")
            return
        }
        target = Int(d)
    }

    /// An optional integer in `range`: nil when absent (or reported as wrong).
    mutating func int(_ key: String, _ range: ClosedRange<Int>) -> Int? {
        optional(key, 0) { reader, target in reader.int(key, range, into: &target) }
    }

    /// An optional number in `range`: nil when absent (or reported as wrong).
    mutating func double(_ key: String, _ range: ClosedRange<Double>) -> Double? {
        optional(key, 0.0) { reader, target in reader.double(key, range, into: &target) }
    }

    /// `read`'s value when `key` is present and `read` reported nothing.
    private mutating func optional<T>(_ key: String, _ initial: T, _ read: (inout ObjectReader, inout T) -> Void) -> T? {
        guard has(key) else { return nil }
        var target = initial
        let before = context.issues.count
        read(&self, &target)
        return context.issues.count == before ? target : nil
    }

    /// An `http://` or `https://` URL.
    mutating func url(_ key: String, required: Bool = false) -> String? {
        guard let url = string(key, required: required ? "the API root, e.g. http://127.0.0.1:11434/v1" : nil) else { return nil }
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            context.report(path(key), "expected a URL starting with http:// or https://, found \"\(url)\"")
            return nil
        }
        return url
    }

    /// The four call timeouts, `*_timeout_ms`, each at least 1 ms.
    mutating func timeouts(into t: inout TimeoutSettings) {
        millis("connect_timeout_ms", minimum: 1, into: &t.connectMs)
        millis("first_byte_timeout_ms", minimum: 1, into: &t.firstByteMs)
        millis("idle_timeout_ms", minimum: 1, into: &t.idleMs)
        millis("total_timeout_ms", minimum: 1, into: &t.totalMs)
    }

    mutating func millis(_ key: String, minimum: Int = 0, into target: inout UInt64) {
        var value = Int(target)
        int(key, minimum...(365 * 86_400_000), into: &value)
        target = UInt64(value)
    }

    mutating func double(_ key: String, _ range: ClosedRange<Double>, into target: inout Double) {
        guard let value = take(key) else { return }
        guard case .number(let d) = value, range.contains(d) else {
            context.report(path(key), "expected a number from \(JSONValue.number(range.lowerBound).serialized) to \(JSONValue.number(range.upperBound).serialized), found \(value.serialized)")
            return
        }
        target = d
    }

    /// One of `choices` (their raw values), reported with the list and a "did you mean" otherwise.
    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) -> T? where T.RawValue == String {
        guard let text = string(key) else { return nil }
        return context.choice(text, type, at: path(key))
    }

    mutating func strings(_ key: String) -> [String]? {
        guard let value = take(key) else { return nil }
        guard case .array(let items) = value else {
            context.report(path(key), "expected an array of strings, found \(value.typeName)")
            return nil
        }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            if case .string(let s) = item { out.append(s) } else {
                context.report("\(path(key))[\(i)]", "expected a string, found \(item.serialized)")
            }
        }
        return out
    }

    mutating func stringMap(_ key: String) -> [String: String]? {
        guard let value = take(key) else { return nil }
        guard case .object(let entries) = value else {
            context.report(path(key), "expected an object of strings, found \(value.typeName)")
            return nil
        }
        var out: [String: String] = [:]
        for entry in entries {
            if case .string(let s) = entry.value { out[entry.key] = s } else {
                context.report(JSONPath.appending(key: entry.key, to: path(key)), "expected a string, found \(entry.value.serialized)")
            }
        }
        return out
    }

    /// Reports every member nobody asked for.
    func finish() {
        for member in members where !known.contains(member.key) {
            let closest = Suggestion.closest(to: member.key, in: known)
            if context.hintsApart {
                context.report(path(member.key), "unknown field \"\(member.key)\"",
                               hint: closest.map { "did you mean \"\($0)\"?" } ?? "known fields: \(known.joined(separator: ", "))")
            } else {
                let hint = closest.map { " (did you mean \"\($0)\"?)" } ?? ""
                context.report(path(member.key), "unknown field \"\(member.key)\"\(hint); known fields: \(known.joined(separator: ", "))")
            }
        }
    }
}

/// "Did you mean" suggestions by edit distance.
public enum Suggestion {
    /// The candidate closest to `word`, if it is within a third of the word's length.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        let limit = max(1, word.count / 3)
        return candidates
            .map { ($0, distance(Array(word.utf8), Array($0.utf8))) }
            .filter { $0.1 <= limit }
            .min { $0.1 < $1.1 }?.0
    }

    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
