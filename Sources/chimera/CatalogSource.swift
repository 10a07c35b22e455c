import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
import ChimeraStore
import Logging

/// The model catalog as commands get it: the cached list for a base URL while it is fresh, else
/// `GET /models` (stored in `$CHIMERA_HOME/catalog.sqlite`), else — when the fetch fails — the
/// stale cached list. Shared by `chimera models` and the commands that make external calls.
struct CatalogSource {
    /// Where the list came from.
    enum Origin: String {
        case cache, network
    }

    struct Loaded {
        var models: [ModelInfo]
        var fetchedAt: EpochMillis
        var origin: Origin
        /// The fetch failed and this is an older cached list.
        var stale: Bool
    }

    let endpoint: ProviderEndpoint
    let home: String
    let clock: any WallClock
    /// Problems that did not prevent an answer (cache unreadable, fetch failed but cache shown).
    private(set) var warnings: [String] = []

    init(endpoint: ProviderEndpoint, home: String, clock: any WallClock = SystemWallClock()) {
        self.endpoint = endpoint
        self.home = home
        self.clock = clock
    }

    /// The catalog, or the fetch error when there is neither a fresh fetch nor a cached list.
    mutating func load(ttlMs: Int64, refresh: Bool, key: APIKeySecret?, timeoutMs: Int64) -> Result<Loaded, ExternalError> {
        let cache: ModelCatalogCache?
        do {
            cache = try ModelCatalogCache(path: home + "/" + ModelCatalogCache.fileName)
        } catch {
            warnings.append("\(error); continuing without the cache")
            cache = nil
        }
        var cached: (models: [ModelInfo], fetchedAt: EpochMillis)?
        do {
            cached = try cache?.load(baseURL: endpoint.baseURL)
        } catch {
            warnings.append("\(error); fetching the list instead")
        }
        let now = clock.now()
        if let cached, !refresh, (0..<ttlMs).contains(now - cached.fetchedAt) {
            return .success(Loaded(models: cached.models, fetchedAt: cached.fetchedAt, origin: .cache, stale: false))
        }
        switch Self.fetch(endpoint: endpoint, key: key, timeoutMs: timeoutMs) {
        case .success(let fetched):
            let fetchedAt = clock.now()
            do {
                try cache?.store(baseURL: endpoint.baseURL, body: ModelCatalogCache.body(for: fetched), at: fetchedAt)
            } catch {
                warnings.append("could not cache the model list: \(error)")
            }
            return .success(Loaded(models: fetched, fetchedAt: fetchedAt, origin: .network, stale: false))
        case .failure(let error):
            guard let cached else { return .failure(error) }
            warnings.append("\(Self.describe(error, endpoint)); using the cached list fetched \(UTCDay.timestamp(cached.fetchedAt)) (\(UTCDay.duration(now - cached.fetchedAt)) ago)")
            return .success(Loaded(models: cached.models, fetchedAt: cached.fetchedAt, origin: .cache, stale: true))
        }
    }

    /// "cannot fetch the model list from URL/models: kind (HTTP n): message".
    static func describe(_ error: ExternalError, _ endpoint: ProviderEndpoint) -> String {
        "cannot fetch the model list from \(endpoint.baseURL)/models: \(error.kind.rawValue)"
            + (error.status.map { " (HTTP \($0))" } ?? "") + ": \(error.message)"
    }

    /// The first key of the key sources (config, store, environment), or nil: the list needs no key,
    /// so a key store that cannot be opened only costs a warning.
    static func firstKey(config: KeysConfig, home: String, environment: [String: String], logger: Logger) -> APIKeySecret? {
        var stored: [StoredKey] = []
        do {
            stored = try KeyContext.loadStore(home: home, environment: environment)
        } catch {
            logger.warning("the key store is not readable, so its keys are not used for the model list: \(error)")
        }
        let resolved = KeySources.resolve(config: config, environment: environment, stored: stored)
        for warning in resolved.warnings { logger.debug("\(warning)") }
        return resolved.entries.first.flatMap { resolved.secrets[$0.id] }
    }

    /// `GET /models`, from a synchronous command: the root command stays synchronous (see
    /// `runBlocking`), so the async client runs in a task while this thread waits.
    /// A key that is refused (401/403) is dropped and the list asked for without one.
    static func fetch(endpoint: ProviderEndpoint, key: APIKeySecret?, timeoutMs: Int64) -> Result<[ModelInfo], ExternalError> {
        var timeouts = CallTimeouts()
        timeouts.connectMs = min(10_000, timeoutMs)
        timeouts.firstByteMs = timeoutMs
        timeouts.idleMs = timeoutMs
        timeouts.totalMs = timeoutMs
        let client = OpenRouterClient(endpoint: endpoint, timeouts: timeouts, maxConnectionsPerHost: 1)
        let result = try? runBlocking {
            var result = await client.listModels(key: key)
            if key != nil, case .failure(let error) = result, error.kind == .auth || error.kind == .forbidden {
                result = await client.listModels(key: nil)
            }
            await client.shutdown()
            return result
        }
        return result ?? .failure(ExternalError(kind: .cancelled, message: "the fetch ended without a result"))
    }
}
