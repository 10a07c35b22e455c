import Foundation
import GRDB

/// Opening the store's SQLite files the same way everywhere (ledger, catalog).
enum SQLiteFile {
    /// Opens `path` with `configuration` in WAL mode and runs `migrate`, retrying while another
    /// connection does the same. Setting WAL mode on a new file, and WAL recovery, can fail with
    /// SQLITE_BUSY at once, without waiting in the busy handler (SQLite refuses to wait where
    /// waiting could deadlock), so processes starting together need this loop, bounded by the
    /// busy timeout. Other errors are rethrown for the caller to name its file.
    static func openQueue(path: String, configuration: Configuration, migrate: (DatabaseQueue) throws -> Void) throws -> DatabaseQueue {
        var config = configuration
        config.journalMode = .wal  // readers never block the writer; GRDB also sets synchronous=NORMAL
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(QuotaLedger.busyTimeoutSeconds))
        var delayMicros: UInt32 = 1_000
        while true {
            do {
                let queue = try DatabaseQueue(path: path, configuration: config)
                try migrate(queue)
                return queue
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && clock.now < deadline {
                usleep(delayMicros + UInt32.random(in: 0..<delayMicros))  // jitter: openers must not retry in step
                delayMicros = min(delayMicros * 2, 50_000)
            }
        }
    }
}
