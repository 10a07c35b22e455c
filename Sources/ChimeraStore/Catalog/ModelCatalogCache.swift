import ChimeraCore
import Foundation
import GRDB

/// The model catalog (`GET /models`) cached on disk, one entry per provider base URL, in its own
/// SQLite file under `CHIMERA_HOME` (``fileName``), so that listing models or choosing one does
/// not cost a network round trip each time and still works offline.
///
/// Each entry is the body of `/models` as received and the time it was fetched. Bodies are
/// re-decoded with ``ModelCatalogDecoder`` on every ``load(baseURL:)``, so prices stay exact
/// decimal strings (``USDPrice``) and a newer decoder reads what an older chimera stored.
///
/// Freshness is the caller's decision: ``load(baseURL:)`` returns the fetch time, and
/// ``defaultTTLMs`` is the suggested age limit.
///
/// The file follows the quota ledger's conventions: created with mode 0600 (parent
/// directories 0700) before SQLite opens it, WAL journal, a busy timeout, and named
/// migrations (`v1-catalog`), so several processes can share it. Every method runs
/// synchronously on the calling thread.
public final class ModelCatalogCache: Sendable {
    /// The cache's file name inside `CHIMERA_HOME`.
    public static let fileName = "catalog.sqlite"
    /// How long a cached catalog is considered fresh by default: 6 hours.
    public static let defaultTTLMs: Int64 = 6 * 3_600_000

    /// The file.
    public let path: String
    private let dbQueue: DatabaseQueue

    /// Opens (creating if needed) the cache at `path`: parent directories 0700, file 0600, WAL
    /// journal, migrations applied by name. Throws ``ModelCatalogCacheError`` naming the file.
    public init(path: String) throws {
        self.path = path
        do {
            try QuotaLedger.prepareFile(at: path)
        } catch {
            throw ModelCatalogCacheError(path: path, operation: "open", message: error.message)
        }
        dbQueue = try Self.openQueue(path: path)
    }

    /// The catalog cached for `baseURL` (a trailing `/` is ignored) and when it was fetched; nil
    /// when nothing is cached for it, or when the stored body no longer decodes (a damaged entry
    /// is as good as none: the caller fetches again and ``store(baseURL:body:at:)`` replaces it).
    public func load(baseURL: String) throws -> (models: [ModelInfo], fetchedAt: EpochMillis)? {
        let key = Self.normalized(baseURL)
        let row: (body: [UInt8], fetchedAt: EpochMillis)?
        do {
            row = try dbQueue.read { db in
                try Row.fetchOne(db, sql: "SELECT body, fetched_at FROM catalog WHERE base_url = ?", arguments: [key])
                    .map { row in
                        let data: Data = row["body"]
                        let fetchedAt: Int64 = row["fetched_at"]
                        return ([UInt8](data), fetchedAt)
                    }
            }
        } catch {
            throw ModelCatalogCacheError(error, path: path, operation: "load")
        }
        guard let row, let models = try? ModelCatalogDecoder.decode(row.body) else { return nil }
        return (models, row.fetchedAt)
    }

    /// Stores `body` (the response of `GET /models`) as the catalog of `baseURL`, fetched at
    /// `at`, replacing what was cached for it. A body that ``ModelCatalogDecoder`` cannot read
    /// (an error object, not JSON, no model list) is refused, so that a bad response never
    /// replaces a good cache.
    public func store(baseURL: String, body: [UInt8], at: EpochMillis) throws {
        do {
            _ = try ModelCatalogDecoder.decode(body)
        } catch {
            throw ModelCatalogCacheError(path: path, operation: "store", message: "not a model list: \(error.message)")
        }
        let key = Self.normalized(baseURL)
        do {
            try dbQueue.write { db in
                try db.execute(sql: """
                    INSERT INTO catalog (base_url, fetched_at, body) VALUES (?, ?, ?)
                    ON CONFLICT (base_url) DO UPDATE SET fetched_at = excluded.fetched_at, body = excluded.body
                    """, arguments: [key, at, Data(body)])
            }
        } catch {
            throw ModelCatalogCacheError(error, path: path, operation: "store")
        }
    }

    /// A `GET /models` body (`{"data": [...]}`) holding exactly what `models` hold: id, name,
    /// `context_length`, `top_provider.max_completion_tokens`, the prompt, completion and request
    /// prices as exact decimal strings, and `supported_parameters`. Decoding it with
    /// ``ModelCatalogDecoder`` gives `models` back (with `isFree` derived from id and prices, as
    /// the decoder always does). For callers that have decoded models rather than the raw body.
    public static func body(for models: [ModelInfo]) -> [UInt8] {
        let data: [JSONValue] = models.map { model in
            var members = [JSONMember("id", .string(model.id)), JSONMember("name", .string(model.name)),
                           JSONMember("context_length", model.contextLength.map { .number(Double($0)) } ?? .null)]
            if let max = model.maxCompletionTokens {
                members.append(JSONMember("top_provider", .object([JSONMember("max_completion_tokens", .number(Double(max)))])))
            }
            var pricing: [JSONMember] = []
            if let p = model.promptPrice { pricing.append(JSONMember("prompt", .string(p.text))) }
            if let p = model.completionPrice { pricing.append(JSONMember("completion", .string(p.text))) }
            if let p = model.requestPrice { pricing.append(JSONMember("request", .string(p.text))) }
            members.append(JSONMember("pricing", .object(pricing)))
            members.append(JSONMember("supported_parameters", .array(model.supportedParameters.map { .string($0) })))
            return .object(members)
        }
        var out: [UInt8] = []
        JSONValue.object([JSONMember("data", .array(data))]).write(to: &out)
        return out
    }

    // MARK: Plumbing

    /// The cache key: the base URL without a trailing `/` (as ``ProviderEndpoint`` spells it).
    static func normalized(_ baseURL: String) -> String {
        var url = Substring(baseURL)
        while url.hasSuffix("/") { url = url.dropLast() }
        return String(url)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-catalog") { db in
            try db.execute(sql: """
                -- One row per provider base URL: the last /models body received and when.
                CREATE TABLE catalog (
                    base_url TEXT NOT NULL PRIMARY KEY,
                    fetched_at INTEGER NOT NULL,
                    body BLOB NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        return migrator
    }

    /// Opens the file in WAL mode and migrates it (see `SQLiteFile.openQueue`).
    private static func openQueue(path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.busyMode = .timeout(QuotaLedger.busyTimeoutSeconds)
        config.label = "ChimeraStore.ModelCatalogCache"
        do {
            return try SQLiteFile.openQueue(path: path, configuration: config, migrator: migrator)
        } catch {
            throw ModelCatalogCacheError(error, path: path, operation: "open")
        }
    }
}

/// A failure of the model catalog cache: the file, the operation and SQLite's (or the OS's) message.
public struct ModelCatalogCacheError: Error, Sendable, CustomStringConvertible {
    /// The cache file.
    public var path: String
    /// `"open"`, `"load"` or `"store"`.
    public var operation: String
    /// What went wrong.
    public var message: String

    public init(path: String, operation: String, message: String) {
        self.path = path
        self.operation = operation
        self.message = message
    }

    /// Wraps whatever GRDB or the OS threw.
    init(_ error: any Error, path: String, operation: String) {
        if let error = error as? ModelCatalogCacheError {
            self = error
        } else if let error = error as? DatabaseError {
            self.init(path: path, operation: operation, message: error.message ?? "SQLite error \(error.extendedResultCode.rawValue)")
        } else {
            self.init(path: path, operation: operation, message: "\(error)")
        }
    }

    public var description: String {
        "model catalog cache \(path): \(operation) failed: \(message); the cache can be deleted safely (it is fetched again)"
    }
}
