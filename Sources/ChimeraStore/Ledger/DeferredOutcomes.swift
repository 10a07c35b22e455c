import ChimeraCore
import Dispatch
import GRDB
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Outcomes of sent requests, written after the fact in batches on a thread of their own.
///
/// Recording an outcome (a commit, or the record of a paid call) is a write transaction — about
/// 80 µs of SQLite, file locks and WAL writes — that used to run on the coordinator's loop right
/// after each answer, holding up whatever arrived next, and costing that much CPU per call.
/// Batched, one transaction writes every outcome of the last few milliseconds.
///
/// What waits here changes no quota decision: a reservation is counted from the moment it is
/// reserved, committed or not, and a paid call draws on no request quota. Every synchronous
/// method of the ledger writes what is pending first, so a process always reads its own
/// outcomes. Pending outcomes are written when the batch is full or ``maxDelay`` after the first
/// of them, when the ledger is released, and at process exit; a process killed outright
/// (SIGKILL) loses at most the last ``maxDelay`` of outcomes: its reservations stay counted, as
/// for any process that dies mid-call, and the cost and tokens of those calls are not recorded.
final class DeferredOutcomes: Sendable {
    enum Item: Sendable {
        case commit(id: Int64, outcome: ReservationOutcome, at: EpochMillis)
        case record(ReservationRequest, outcome: ReservationOutcome, at: EpochMillis)
    }

    /// The longest an outcome waits before it is written.
    static let maxDelay = DispatchTimeInterval.milliseconds(10)
    /// Outcomes written in one transaction at most; a full batch is written at once.
    static let maxBatch = 128

    private let pending = Mutex<(items: [Item], scheduled: Bool)>(([], false))
    /// Held while a batch is taken and written: a caller that flushes waits for a batch that is
    /// being written by the timer, so that it never reads before an outcome recorded earlier.
    private let writing = Mutex<Void>(())
    private let queue = DispatchQueue(label: "ChimeraStore.QuotaLedger.outcomes", qos: .utility)
    private let failureHandler = Mutex<(@Sendable (LedgerError) -> Void)?>(nil)

    /// Writes a batch; set by the ledger.
    private let write: @Sendable ([Item]) throws(LedgerError) -> Void

    init(write: @escaping @Sendable ([Item]) throws(LedgerError) -> Void) {
        self.write = write
    }

    /// Called with the error when a batch written in the background fails (its outcomes are
    /// then lost; their reservations stay counted).
    func onFailure(_ handler: @escaping @Sendable (LedgerError) -> Void) {
        failureHandler.withLock { $0 = handler }
    }

    func add(_ item: Item) {
        let (full, schedule) = pending.withLock { state -> (Bool, Bool) in
            state.items.append(item)
            let full = state.items.count >= Self.maxBatch
            let schedule = !state.scheduled && !full
            if schedule { state.scheduled = true }
            return (full, schedule)
        }
        if full {
            queue.async { self.flushReportingFailure() }
        } else if schedule {
            queue.asyncAfter(deadline: .now() + Self.maxDelay) { self.flushReportingFailure() }
        }
    }

    var isEmpty: Bool { pending.withLock { $0.items.isEmpty } }

    /// Writes everything pending now, on the calling thread. A batch that fails is dropped (its
    /// outcomes are lost, their reservations stay counted), so it cannot fail every later use.
    func flush() throws(LedgerError) {
        try writing.withLock { _ throws(LedgerError) in
            let items = pending.withLock { state -> [Item] in
                let taken = state.items
                state.items.removeAll(keepingCapacity: true)
                state.scheduled = false
                return taken
            }
            guard !items.isEmpty else { return }
            try write(items)
        }
    }

    /// ``flush()``, with a failure reported to the handler instead of thrown: for the timer, and
    /// before the ledger's own operations, which should not fail because of another write.
    func flushReportingFailure() {
        do {
            try flush()
        } catch {
            failureHandler.withLock { $0 }?(error)
        }
    }
}

/// Every open ledger, so that what is pending is written when the process exits.
enum LedgerRegistry {
    private final class Weak: Sendable {
        weak let ledger: QuotaLedger?
        init(_ ledger: QuotaLedger) { self.ledger = ledger }
    }
    private static let ledgers = Mutex<(entries: [Weak], hooked: Bool)>(([], false))

    static func add(_ ledger: QuotaLedger) {
        let hook = ledgers.withLock { state -> Bool in
            state.entries.removeAll { $0.ledger == nil }
            state.entries.append(Weak(ledger))
            defer { state.hooked = true }
            return !state.hooked
        }
        if hook { atexit { LedgerRegistry.flushAll() } }
    }

    static func flushAll() {
        let open = ledgers.withLock { $0.entries.compactMap(\.ledger) }
        for ledger in open { ledger.deferred.flushReportingFailure() }
    }
}
