import ChimeraCore
import ChimeraStore
import Logging

/// Everything a command needs to work with keys: the files under `CHIMERA_HOME`, the merged
/// key sources and a ``KeyBroker`` over them.
///
/// Files: `$CHIMERA_HOME/ledger.sqlite` (quota ledger, audit log, events; mode 0600),
/// `$CHIMERA_HOME/keys.enc` (the encrypted key store, mode 0600) and, unless
/// `CHIMERA_MASTER_KEY` is set, `$CHIMERA_HOME/master.key` (mode 0600, created on first `keys add`).
public final class KeyContext {
    public let home: String
    public let ledger: QuotaLedger
    public let stored: [StoredKey]
    public let resolved: ResolvedKeys
    public let broker: KeyBroker
    public let clock: any WallClock

    /// Why the key files could not be opened; the message says which file and what to do.
    public struct OpenError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func ledgerPath(home: String) -> String { home + "/" + QuotaLedger.fileName }
    public static func storePath(home: String) -> String { home + "/" + EncryptedKeyStore.fileName }

    /// Opens the ledger and the key store under `home` and builds the pool.
    public init(config: KeysConfig, home: String, environment: [String: String], clock: any WallClock = SystemWallClock(),
                scheduler: (any WakeScheduler)? = nil, logger: Logger = Logger(label: "chimera.keys")) throws(OpenError) {
        self.home = home
        self.clock = clock
        do {
            ledger = try QuotaLedger(path: Self.ledgerPath(home: home))
        } catch {
            throw OpenError(description: "\(error)")
        }
        stored = try Self.loadStore(home: home, environment: environment)
        resolved = KeySources.resolve(config: config, environment: environment, stored: stored)
        for warning in resolved.warnings { logger.warning("\(warning)") }
        do {
            broker = try KeyBroker(keys: resolved, config: config, ledger: ledger, clock: clock, scheduler: scheduler, logger: logger)
        } catch {
            throw OpenError(description: "\(error)")
        }
    }

    /// The keys in `keys.enc`; none when the file does not exist yet.
    public static func loadStore(home: String, environment: [String: String]) throws(OpenError) -> [StoredKey] {
        let path = storePath(home: home)
        guard FileIO.exists(path) else { return [] }
        do {
            guard let master = try MasterKey.load(environment: environment, home: home, create: false) else {
                throw OpenError(description: "\(path) exists but there is no master key to open it: set \(MasterKey.environmentVariable) to the key used when the keys were added, or restore \(home)/\(MasterKey.fileName)")
            }
            return try EncryptedKeyStore(path: path, masterKey: master).load()
        } catch let error as OpenError {
            throw error
        } catch {
            throw OpenError(description: "\(error)")
        }
    }

    /// Opens the store for changing, creating the master key on first use.
    public static func openStoreForUpdate(home: String, environment: [String: String]) throws(OpenError) -> EncryptedKeyStore {
        do {
            guard let master = try MasterKey.load(environment: environment, home: home, create: true) else {
                throw OpenError(description: "no master key could be created in \(home)")
            }
            return EncryptedKeyStore(path: storePath(home: home), masterKey: master)
        } catch let error as OpenError {
            throw error
        } catch {
            throw OpenError(description: "\(error)")
        }
    }

    /// A key broker for another provider's pool (its `keys` section: config entries only, never
    /// `OPENROUTER_API_KEY…` or the key store), over the same ledger, so its quotas, health and
    /// history live beside OpenRouter's. Its accounts are already named `provider/account`.
    public func providerBroker(keys config: KeysConfig, provider: String, environment: [String: String],
                               scheduler: (any WakeScheduler)?, logger: Logger) throws(OpenError) -> (broker: KeyBroker, resolved: ResolvedKeys) {
        let resolved = KeySources.resolve(config: config, environment: environment, stored: [])
        for warning in resolved.warnings { logger.warning("provider \(provider): \(warning)") }
        do {
            return (try KeyBroker(keys: resolved, config: config, ledger: ledger, clock: clock, scheduler: scheduler, logger: logger), resolved)
        } catch {
            throw OpenError(description: "provider \(provider): \(error)")
        }
    }

    /// Finds a key by id (`k_…`), label, or the last characters of the key (`a1b2`).
    public func findKey(_ reference: String) -> [KeyPoolEntry] {
        let entries = broker.pool.entries
        if let exact = entries.first(where: { $0.id == reference || $0.label == reference }) { return [exact] }
        if reference.count >= 4 {
            return entries.filter { $0.masked.hasSuffix(reference) || (resolved.secrets[$0.id]?.reveal().hasSuffix(reference) ?? false) }
        }
        return []
    }
}
