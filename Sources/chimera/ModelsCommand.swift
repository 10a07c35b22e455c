import ArgumentParser
import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
import ChimeraStore
import Dispatch
import Logging

/// `chimera models`: the provider's model catalog, cached in `$CHIMERA_HOME/catalog.sqlite`.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the models of OpenRouter (or OPENROUTER_BASE_URL) with context sizes and prices, from a local cache.",
        discussion: """
        The list (GET /models) is cached per base URL in $CHIMERA_HOME/catalog.sqlite and fetched again when it is \
        older than --ttl-hours (default 6), or with --refresh. The first API key found (config, key store, \
        environment) is sent if there is one; the list needs none. If the fetch fails and a cached list exists, \
        it is shown with a warning on stderr. Prices are exact, in USD per million tokens; "free" is zero and \
        "dynamic" means the router's price depends on the model it picks.
        Exit status: 0 listed, 1 no list (fetch failed and nothing cached), 2 usage or configuration error.
        """
    )

    @OptionGroup var common: CommonOptions

    @Flag(help: "Only free models (ids ending in :free, or prompt and completion both priced 0).")
    var free = false

    @Flag(help: "Fetch the list even if the cached one is fresh.")
    var refresh = false

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "API base URL (default: $OPENROUTER_BASE_URL, else https://openrouter.ai/api/v1).")
    var baseURL: String?

    @Option(help: "Only models whose id or name contains this text (case-insensitive).")
    var search: String?

    @Option(name: .customLong("ttl-hours"), help: "Fetch again when the cached list is at least this many hours old (0: always).")
    var ttlHours: Int = Int(ModelCatalogCache.defaultTTLMs / 3_600_000)

    @Option(help: "Seconds to wait for the provider: the whole fetch, of which at most 10 to connect (a host that refuses connections is retried until then).")
    var timeout: Int = 30

    func validate() throws {
        guard timeout >= 1, timeout <= 600 else { throw ValidationError("--timeout must be from 1 to 600 seconds") }
        guard ttlHours >= 0, ttlHours <= 24 * 366 else { throw ValidationError("--ttl-hours must be from 0 to 8784") }
        if let baseURL, !(baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://")) {
            throw ValidationError("--base-url must start with http:// or https://, got \"\(baseURL)\"")
        }
    }

    func run() throws {
        let logger = try common.bootstrapLogging()
        let config = try common.loadConfig().config
        let environment = ProcessEnvironment.current
        let endpoint = ProviderEndpoint.openRouter(flag: baseURL, settings: config.openrouter, environment: environment)
        let home = ConfigLoader.homeDirectory(environment: environment)
        var catalog = CatalogSource(endpoint: endpoint, home: home)
        let key = CatalogSource.firstKey(config: config.keys, home: home, environment: environment, logger: logger)
        let loaded = catalog.load(ttlMs: Int64(ttlHours) * 3_600_000, refresh: refresh, key: key, timeoutMs: Int64(timeout) * 1000)
        for warning in catalog.warnings { warn(warning) }
        guard case .success(let list) = loaded else {
            if case .failure(let error) = loaded {
                printError("\(CatalogSource.describe(error, endpoint)). Check the URL (--base-url or OPENROUTER_BASE_URL) and the network, then retry.")
            }
            throw ExitCode(ExitCodes.taskFailed)
        }
        var models = list.models
        let (fetchedAt, source, stale) = (list.fetchedAt, list.origin, list.stale)

        if free { models = models.filter(\.isFree) }
        if let search, !search.isEmpty {
            let needle = search.lowercased()
            models = models.filter { $0.id.lowercased().contains(needle) || $0.name.lowercased().contains(needle) }
        }
        models.sort { $0.id < $1.id }

        if json {
            printLine(JSONValue.object([
                JSONMember("models", .array(models.map { model in
                    .object([
                        JSONMember("id", .string(model.id)),
                        JSONMember("name", .string(model.name)),
                        JSONMember("context_length", model.contextLength.map { .number(Double($0)) } ?? .null),
                        JSONMember("prompt_per_million", Self.jsonPrice(model.promptPrice)),
                        JSONMember("completion_per_million", Self.jsonPrice(model.completionPrice)),
                        JSONMember("free", .bool(model.isFree)),
                    ])
                })),
                JSONMember("fetched_at", .string(UTCDay.timestamp(fetchedAt))),
                JSONMember("fetched_at_ms", .number(Double(fetchedAt))),
                JSONMember("source", .string(source.rawValue)),
                JSONMember("stale", .bool(stale)),
                JSONMember("base_url", .string(endpoint.baseURL)),
            ]).serialized)
            return
        }
        var rows = [["ID", "CONTEXT", "PROMPT $/M", "COMPLETION $/M"]]
        for model in models {
            rows.append([model.id, model.contextLength.map(String.init) ?? "-", Self.cell(model.promptPrice), Self.cell(model.completionPrice)])
        }
        if models.isEmpty {
            printLine(free || search != nil ? "No models match." : "The provider lists no models.")
        } else {
            printTable(rows)
        }
        printLine("")
        let freeCount = models.filter(\.isFree).count
        printLine("\(models.count) model\(models.count == 1 ? "" : "s") (\(freeCount) free), fetched \(UTCDay.timestamp(fetchedAt)) "
            + "(\(source == .cache ? "cached" : "fresh")) from \(endpoint.baseURL)")
    }

    /// A price per million tokens for the table: exact, `free` for zero, `dynamic` for `-1`, `-` when unknown.
    static func cell(_ price: USDPrice?) -> String {
        guard let price else { return "-" }
        if price.isDynamic { return "dynamic" }
        if price.isZero { return "free" }
        return price.perMillionText
    }

    /// The same for JSON: the exact decimal as a string (`"0.15"`, `"0"`), `"dynamic"`, or null.
    static func jsonPrice(_ price: USDPrice?) -> JSONValue {
        guard let price else { return .null }
        return .string(price.isDynamic ? "dynamic" : price.perMillionText)
    }

    private func warn(_ message: String) {
        FileIO.writeAll(Array("warning: \(message)\n".utf8), fd: 2)
    }
}

