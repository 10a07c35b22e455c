import ArgumentParser
import ChimeraCore
import ChimeraOpenRouter
import ChimeraRuntime
import ChimeraStore
import Logging

/// What a command that makes external calls opens before its loop runs: the key context
/// (ledger, OpenRouter's pool), a route per provider with its own pool and wake-up timer, and
/// OpenRouter's model catalog for context checks, free-model choice and cost estimates.
struct ExternalSetup {
    let keys: KeyContext
    let routes: ProviderRoutes
    /// One per key pool; closed at shutdown so that the loop can end.
    let schedulers: [LoopWakeScheduler]

    /// How long a command waits for `GET /models` when its cached catalog is stale.
    static let catalogTimeoutMs: Int64 = 10_000
    /// How far back the ledger's latencies count when choosing the fastest free model.
    static let latencyWindowMs: EpochMillis = 7 * 86_400_000

    /// Opens everything for calls to `chain` (empty: OpenRouter picks free models). Errors are
    /// printed, and thrown as exit code 2: they are configuration or key problems. With
    /// `requireKeys: false` a provider without keys is not an error: its calls find no key
    /// (JHADE then routes internally).
    static func open(config: ChimeraConfig, baseURL flag: String?, chain: [String], loop: EventLoop, clock: SystemWallClock,
                     environment: [String: String], logger: Logger, requireKeys: Bool = true) throws -> ExternalSetup {
        let scheduler = LoopWakeScheduler(loop: loop, clock: clock)
        var schedulers = [scheduler]
        func fail(_ message: String) -> ExitCode {
            for s in schedulers { s.close() }
            printError(message)
            return ExitCode(ExitCodes.usage)
        }
        let home = ConfigLoader.homeDirectory(environment: environment)
        let keys: KeyContext
        do {
            keys = try KeyContext(config: config.keys, home: home, environment: environment, clock: clock, scheduler: scheduler, logger: logger)
        } catch {
            throw fail("\(error)")
        }
        scheduler.onWake = { keys.broker.wake() }

        var others: [ProviderRoute] = []
        for provider in config.providers {
            var broker: KeyBroker?
            if let providerKeys = provider.keys {
                let wake = LoopWakeScheduler(loop: loop, clock: clock)
                schedulers.append(wake)
                do {
                    let opened = try keys.providerBroker(keys: providerKeys, provider: provider.name, environment: environment,
                                                         scheduler: wake, logger: logger)
                    broker = opened.broker
                    wake.onWake = { opened.broker.wake() }
                } catch {
                    throw fail("\(error)")
                }
            }
            let endpoint = ProviderEndpoint(name: provider.name, baseURL: provider.baseURL, headers: provider.headers.map { HTTPHeaderPair($0.name, $0.value) })
            others.append(ProviderRoute(name: provider.name, endpoint: endpoint, timeouts: CallTimeouts(provider.timeouts), broker: broker))
        }

        let endpoint = ProviderEndpoint.openRouter(flag: flag, settings: config.openrouter, environment: environment)
        let bare = ProviderRoutes(openRouter: ProviderRoute(name: ProviderRoutes.openRouterName, endpoint: endpoint,
                                                            timeouts: CallTimeouts(config.openrouter.timeouts), broker: keys.broker), others: others)
        // Every provider the chain reaches must have a key to lease (unless it takes none).
        let reached = chain.isEmpty ? [bare.openRouter] : chain.map { bare.resolve($0).route }
        for route in reached where requireKeys {
            guard let broker = route.broker, broker.pool.entries.isEmpty else { continue }
            if route === bare.openRouter {
                throw fail("no API keys: set OPENROUTER_API_KEY (or _2, _3 …), or add one with `chimera keys add`")
            }
            throw fail("provider \(route.name) has no API keys: set the variables its keys.entries name (or remove its \"keys\" if it takes none)")
        }

        // The catalog only serves OpenRouter models; without one, calls still run (no context
        // checks, no free-model choice, no cost estimates) after a warning.
        var catalog: [ModelInfo] = []
        var latency: [String: Double] = [:]
        // Without a key no OpenRouter call can run, so there is nothing to fetch the catalog for.
        if reached.contains(where: { $0 === bare.openRouter }), !keys.broker.pool.entries.isEmpty {
            var source = CatalogSource(endpoint: endpoint, home: home, clock: clock)
            let key = keys.broker.pool.entries.first.flatMap { keys.broker.secret(forKeyId: $0.id) }
            let loaded = source.load(ttlMs: ModelCatalogCache.defaultTTLMs, refresh: false, key: key, timeoutMs: catalogTimeoutMs)
            for warning in source.warnings { logger.warning("\(warning)") }
            switch loaded {
            case .success(let list): catalog = list.models
            case .failure(let error):
                logger.warning("\(CatalogSource.describe(error, endpoint)); going on without it: no context checks, no choice of a free model, no cost estimates")
            }
            do {
                latency = try keys.ledger.meanLatencyByModel(since: clock.now() - latencyWindowMs)
            } catch {
                logger.warning("could not read model latencies from the ledger: \(error)")
            }
        }
        let openRouter = ProviderRoute(name: ProviderRoutes.openRouterName, endpoint: endpoint, timeouts: CallTimeouts(config.openrouter.timeouts),
                                       broker: keys.broker, catalog: catalog, latencyMs: latency)
        return ExternalSetup(keys: keys, routes: ProviderRoutes(openRouter: openRouter, others: others), schedulers: schedulers)
    }

    func close() {
        for scheduler in schedulers { scheduler.close() }
    }
}
