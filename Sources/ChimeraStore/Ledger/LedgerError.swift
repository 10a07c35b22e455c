import Foundation
import GRDB

/// A failure of the quota ledger: names the file, the operation and SQLite's (or the OS's)
/// message, and says what to do about it.
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    /// The class of failure, for callers that react differently (e.g. retry when busy).
    public enum Kind: String, Sendable, Equatable {
        /// Another connection held the write lock for longer than the busy timeout.
        case busy
        /// The file or its directory is not writable.
        case readOnly
        /// The file is damaged or not an SQLite database.
        case corrupt
        /// The file or its directory could not be opened or created.
        case cannotOpen
        /// The disk is full.
        case diskFull
        /// Any other I/O error.
        case io
        /// Anything else (a bug, a schema from a newer version, ...).
        case other
    }

    public var kind: Kind
    /// The ledger file; nil for an in-memory ledger.
    public var path: String?
    /// What the ledger was doing: `"open"`, `"reserve"`, `"commit"`, ...
    public var operation: String
    /// SQLite's or the OS's message.
    public var message: String
    /// SQLite's extended result code, when SQLite failed.
    public var sqliteCode: Int32?

    public init(kind: Kind, path: String?, operation: String, message: String, sqliteCode: Int32? = nil) {
        self.kind = kind
        self.path = path
        self.operation = operation
        self.message = message
        self.sqliteCode = sqliteCode
    }

    /// Wraps whatever GRDB or the OS threw.
    init(_ error: any Error, path: String?, operation: String) {
        if let error = error as? LedgerError {
            self = error
            return
        }
        guard let dbError = error as? DatabaseError else {
            self.init(kind: .other, path: path, operation: operation, message: "\(error)")
            return
        }
        let kind: Kind = switch dbError.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: .busy
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH: .readOnly
        case .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_FORMAT: .corrupt
        case .SQLITE_CANTOPEN: .cannotOpen
        case .SQLITE_FULL: .diskFull
        case .SQLITE_IOERR: .io
        default: .other
        }
        self.init(kind: kind, path: path, operation: operation,
                  message: dbError.message ?? "SQLite error \(dbError.extendedResultCode.rawValue)",
                  sqliteCode: dbError.extendedResultCode.rawValue)
    }

    /// What the operator should do.
    public var hint: String {
        let file = path ?? "the ledger"
        switch kind {
        case .busy:
            return "another process held the ledger's write lock for over \(Int(QuotaLedger.busyTimeoutSeconds)) s; "
                + "look for a hung chimera process (`fuser \(file)`) and retry"
        case .readOnly:
            return "make \(file), its -wal and -shm files and their directory writable by this user "
                + "(the ledger is meant to be mode 0600 in a 0700 directory)"
        case .corrupt:
            return "the file is damaged or not a ledger; stop all chimera processes and move \(file) "
                + "(with its -wal and -shm files) aside: a new empty ledger is created, and today's "
                + "counts come back from upstream (GET /key)"
        case .cannotOpen:
            return "check that the directory of \(file) exists or can be created, and is writable"
        case .diskFull:
            return "free disk space on the volume holding \(file)"
        case .io:
            return "the disk or file system reported an error; check the volume holding \(file)"
        case .other:
            return "this is likely a bug or a ledger written by a newer chimera; please report it"
        }
    }

    public var description: String {
        let code = sqliteCode.map { " (SQLite code \($0))" } ?? ""
        return "quota ledger \(path ?? ":memory:"): \(operation) failed: \(message)\(code); \(hint)"
    }
}
