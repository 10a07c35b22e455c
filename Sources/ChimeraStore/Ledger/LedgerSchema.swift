import GRDB

/// The ledger's tables, created by named migrations so that a newer chimera can add to a file
/// an older one created (and every process sharing the file agrees on what is applied).
enum LedgerSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-ledger") { db in
            try db.execute(sql: """
                -- One row per request handed a key. AUTOINCREMENT so that an id is never reused:
                -- commit and release are idempotent by id, and a late one must not hit a new row.
                CREATE TABLE reservation (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    key_id TEXT NOT NULL,
                    account TEXT NOT NULL,
                    model TEXT NOT NULL,
                    scoped INTEGER NOT NULL,
                    priority INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
                    day INTEGER NOT NULL,
                    reserved_at INTEGER NOT NULL,
                    settled_at INTEGER,
                    tokens INTEGER NOT NULL DEFAULT 0,
                    pid INTEGER NOT NULL,
                    status INTEGER,
                    outcome TEXT,
                    latency_ms INTEGER,
                    cost_usd REAL,
                    served_model TEXT
                );
                -- The rolling-minute windows. Partial: only counted scoped rows matter, so
                -- unlimited (unscoped) traffic never lengthens the scan; queries repeat the
                -- WHERE terms verbatim so that SQLite can use them.
                CREATE INDEX reservation_account_window ON reservation (account, reserved_at)
                    WHERE scoped = 1 AND state <> 'released';
                CREATE INDEX reservation_key_window ON reservation (key_id, reserved_at)
                    WHERE scoped = 1 AND state <> 'released';
                -- Forecast totals and the pending count of correctDailyUsage.
                CREATE INDEX reservation_day ON reservation (day, account)
                    WHERE scoped = 1 AND state <> 'released';

                -- Daily counters, bumped in the reserving transaction: reading one row is cheaper
                -- than counting a day's rows, and upstream's count can overwrite it. A new UTC day
                -- has no row yet, which is the daily reset.
                CREATE TABLE account_day (
                    account TEXT NOT NULL,
                    day INTEGER NOT NULL,
                    used INTEGER NOT NULL,
                    PRIMARY KEY (account, day)
                ) WITHOUT ROWID;
                CREATE TABLE key_day (
                    key_id TEXT NOT NULL,
                    day INTEGER NOT NULL,
                    used INTEGER NOT NULL,
                    PRIMARY KEY (key_id, day)
                ) WITHOUT ROWID;

                -- An upstream daily-cap 429 said the account is spent until spent_until.
                CREATE TABLE account_state (
                    account TEXT NOT NULL PRIMARY KEY,
                    spent_until INTEGER NOT NULL,
                    spent_reason TEXT NOT NULL,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;

                CREATE TABLE key_health (
                    key_id TEXT NOT NULL PRIMARY KEY,
                    state TEXT NOT NULL,
                    until INTEGER,
                    reason TEXT NOT NULL,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;

                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    key_id TEXT,
                    account TEXT,
                    action TEXT NOT NULL,
                    from_state TEXT,
                    to_state TEXT,
                    reason TEXT NOT NULL
                );
                CREATE INDEX audit_at ON audit (at);
                CREATE INDEX audit_key_at ON audit (key_id, at);

                CREATE TABLE event (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    key_id TEXT,
                    account TEXT,
                    message TEXT NOT NULL
                );
                CREATE INDEX event_at ON event (at);
                """)
        }
        migrator.registerMigration("v2-cost-estimate") { db in
            // 1 when cost_usd was estimated from catalog prices because the response had no cost.
            try db.execute(sql: "ALTER TABLE reservation ADD COLUMN cost_is_estimate INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }
}
