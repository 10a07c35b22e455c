#if canImport(Glibc)
import Glibc
#endif
import ChimeraCore
import ChimeraStore

/// `chimera bench keys`: the cost of handing out a key.
///
/// * `select_reserve_us_N`: in-memory selection plus reservation (``KeyPool/acquire``) with N
///   keys, each in its own account, on a quota-scoped model, so every limit check runs; every
///   lease is completed so that nothing runs out. Reported per strategy; the headline figures are
///   for the default, `round_robin`.
/// * `durable_reservations_per_sec`: reservations through the SQLite ledger on a file (WAL),
///   one transaction each, as ``KeyBroker`` makes them; `…_batched` puts 64 in one transaction.
///   50 accounts, one request every 60 ms of simulated time (20 per account per minute).
/// * `broker_leases_per_sec`: the whole path a lease takes: select, durable reserve, commit.
public enum KeysBenchmark {
    public struct Report: Sendable {
        public var selectReserveMicros: [String: Double] = [:]
        public var durablePerSec = 0.0
        public var durableBatchedPerSec = 0.0
        public var brokerLeasePerSec = 0.0

        public var json: JSONValue {
            func r(_ v: Double, _ places: Double) -> JSONValue { .number((v * places).rounded() / places) }
            var members: [JSONMember] = []
            for n in [50, 1000] {
                members.append(JSONMember("select_reserve_us_\(n)", r(selectReserveMicros["round_robin/\(n)"] ?? 0, 1000)))
            }
            for (name, value) in selectReserveMicros.sorted(by: { $0.key < $1.key }) {
                let parts = name.split(separator: "/")
                members.append(JSONMember("select_reserve_us_\(parts[1])_\(parts[0])", r(value, 1000)))
            }
            members.append(JSONMember("durable_reservations_per_sec", r(durablePerSec, 1)))
            members.append(JSONMember("durable_reservations_per_sec_batched", r(durableBatchedPerSec, 1)))
            members.append(JSONMember("broker_leases_per_sec", r(brokerLeasePerSec, 1)))
            return .object(members)
        }
    }

    public static func run(operations: Int = 200_000, durable: Int = 5_000, directory: String, progress: (String) -> Void = { _ in }) throws -> Report {
        var report = Report()
        let now: EpochMillis = 1_800_000_000_000
        for strategy in KeySelectionStrategy.allCases {
            for n in [50, 1000] {
                progress("select+reserve, \(strategy.rawValue), \(n) keys")
                report.selectReserveMicros["\(strategy.rawValue)/\(n)"] = selectReserve(keys: n, strategy: strategy, operations: operations, now: now)
            }
        }
        progress("durable reservations, one transaction each")
        let ledger = try QuotaLedger(path: directory + "/bench-ledger.sqlite")
        let limits = QuotaLimits(perDay: 1_000_000_000, perMinute: 1_000_000_000)
        // 50 accounts, one request every 60 ms: each account sees 20 a minute, OpenRouter's free
        // rate, so the rolling-window query reads what it reads in production.
        func request(_ i: Int) -> ReservationRequest {
            ReservationRequest(keyId: "k_\(i % 50)", account: "a\(i % 50)", model: "m:free", scoped: true, accountLimits: limits, at: now + EpochMillis(i) * 60)
        }
        var start = monotonicNanos()
        for i in 0..<durable { _ = try ledger.reserve(request(i)) }
        report.durablePerSec = Double(durable) / seconds(since: start)

        progress("durable reservations, 64 per transaction")
        let batched = durable * 8
        start = monotonicNanos()
        var i = 0
        while i < batched {
            let batch = (i..<min(batched, i + 64)).map { request(durable + $0) }
            _ = try ledger.reserveBatch(batch)
            i += batch.count
        }
        report.durableBatchedPerSec = Double(batched) / seconds(since: start)

        progress("broker: select, durable reserve, commit")
        let brokerLedger = try QuotaLedger(path: directory + "/bench-broker.sqlite")
        var keys = ResolvedKeys()
        for k in 0..<50 {
            keys.accounts.append(KeyPoolAccount(name: "a\(k)", tier: .custom, limits: limits))
            keys.entries.append(KeyPoolEntry(id: "k_\(k)", masked: "sk-or-…\(k)", account: "a\(k)"))
        }
        let clock = ManualClock(now)
        let broker = try KeyBroker(keys: keys, config: KeysConfig(), ledger: brokerLedger, clock: clock)
        start = monotonicNanos()
        for _ in 0..<durable {
            clock.advance(by: 60)
            if case .success(let lease) = broker.acquireNow(KeyRequest(model: "m:free")) { broker.complete(lease, .success(latencyMs: 100)) }
        }
        report.brokerLeasePerSec = Double(durable) / seconds(since: start)
        return report
    }

    static func selectReserve(keys n: Int, strategy: KeySelectionStrategy, operations: Int, now: EpochMillis) -> Double {
        var settings = KeyPoolSettings()
        settings.strategy = strategy
        let accounts = (0..<n).map { KeyPoolAccount(name: "a\($0)", tier: .custom, limits: QuotaLimits(perDay: 1_000_000_000, perMinute: 1_000_000_000)) }
        let entries = (0..<n).map { KeyPoolEntry(id: "k_\($0)", masked: "sk-or-…\($0)", account: "a\($0)") }
        let pool = KeyPool(accounts: accounts, keys: entries, settings: settings, now: now)
        // One lease per millisecond keeps each key's minute window realistic (≤ 60,000 / n entries).
        var elapsed: UInt64 = 0
        for i in 0..<operations {
            let t = now + EpochMillis(i)
            let start = monotonicNanos()
            let (acquisition, _) = pool.acquire(model: "m:free", at: t)
            elapsed += monotonicNanos() - start
            if case .leased(let lease) = acquisition { _ = pool.complete(lease, outcome: .success, latencyMs: 100, at: t) }
        }
        return Double(elapsed) / Double(operations) / 1000
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func seconds(since start: UInt64) -> Double { Double(monotonicNanos() - start) / 1e9 }
}
