import Foundation
import GRDB

/// Opening the store's SQLite files the same way everywhere (ledger, catalog).
enum SQLiteFile {
    /// Opens `path` with `configuration` in WAL mode and applies `migrator`, retrying while
    /// another connection does the same. Two kinds of collision are retried, bounded by the busy
    /// timeout:
    /// - setting WAL mode on a new file, and WAL recovery, can fail with SQLITE_BUSY at once,
    ///   without waiting in the busy handler (SQLite refuses to wait where waiting could deadlock);
    /// - each migration runs in its own transaction, so a connection can find the tables of a
    ///   migration another one just committed ("table … already exists") while that one is still
    ///   applying the next. Once every migration is recorded as done, the file is ready.
    /// Other errors are rethrown for the caller to name its file.
    static func openQueue(path: String, configuration: Configuration, migrator: DatabaseMigrator) throws -> DatabaseQueue {
        var config = configuration
        config.journalMode = .wal  // readers never block the writer; GRDB also sets synchronous=NORMAL
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(QuotaLedger.busyTimeoutSeconds))
        var delayMicros: UInt32 = 1_000
        func backOff() {
            usleep(delayMicros + UInt32.random(in: 0..<delayMicros))  // jitter: openers must not retry in step
            delayMicros = min(delayMicros * 2, 50_000)
        }
        while true {
            let queue: DatabaseQueue
            do {
                queue = try DatabaseQueue(path: path, configuration: config)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && clock.now < deadline {
                backOff()
                continue
            }
            do {
                try migrator.migrate(queue)
                return queue
            } catch {
                let completed = (try? queue.read { db in try migrator.hasCompletedMigrations(db) }) ?? false
                if completed { return queue }
                guard clock.now < deadline, error is DatabaseError else { throw error }
                backOff()
            }
        }
    }
}
