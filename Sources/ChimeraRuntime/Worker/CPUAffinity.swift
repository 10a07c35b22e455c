#if canImport(Glibc)
import Glibc
#endif

/// Keeping an agent worker's threads on one CPU.
///
/// An `llm.chat` call crosses two threads inside the worker: the worker's libuv loop hands it to
/// the HTTP client's NIO event loop, which hands the answer back. On the project's machine (a
/// 2-vCPU VM whose idle vCPUs halt at once) waking a thread on the *other* CPU costs tens of
/// microseconds each way, while a hand-off on the same CPU is a plain context switch. Agent
/// worker N therefore pins its loop thread, before it starts any NIO thread (which inherit the
/// affinity), to the N-th CPU it may run on, round robin; `chimera bench gateway` measured the
/// added p50 about 100 µs lower with it, and the p99 lower too (docs/BENCHMARKS.md, Gateway).
///
/// Linux only (elsewhere nothing happens). `CHIMERA_AGENT_CPU_PIN=0` turns it off, for example
/// in a pool's `environment` when its workers should float.
enum CPUAffinity {
    static let environmentVariable = "CHIMERA_AGENT_CPU_PIN"

    /// Pins the calling thread (and the threads it starts from now on) to one allowed CPU, chosen
    /// by `slot` (0-based). Returns the CPU, or nil when nothing was done: turned off, a single
    /// allowed CPU, or not supported here.
    @discardableResult
    static func pinCallingThread(slot: Int) -> Int? {
        #if os(Linux)
        if let value = getenv(environmentVariable).map({ String(cString: $0) }), value == "0" || value.lowercased() == "off" { return nil }
        typealias Affinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        guard let get = dlsym(nil, "sched_getaffinity").map({ unsafeBitCast($0, to: Affinity.self) }),
              let set = dlsym(nil, "sched_setaffinity").map({ unsafeBitCast($0, to: Affinity.self) }) else { return nil }
        var mask = [UInt8](repeating: 0, count: 128)  // cpu_set_t: 1,024 CPUs
        guard mask.withUnsafeMutableBytes({ get(0, $0.count, $0.baseAddress!) }) == 0 else { return nil }
        let allowed = (0..<(mask.count * 8)).filter { mask[$0 / 8] & (1 << ($0 % 8)) != 0 }
        guard allowed.count > 1 else { return nil }
        let cpu = allowed[max(0, slot) % allowed.count]
        var one = [UInt8](repeating: 0, count: mask.count)
        one[cpu / 8] = 1 << (cpu % 8)
        return one.withUnsafeMutableBytes({ set(0, $0.count, $0.baseAddress!) }) == 0 ? cpu : nil
        #else
        return nil
        #endif
    }

    /// The 0-based slot of a worker named by the coordinator (`agents#2` or, restarted,
    /// `agents#2.1` is slot 1); 0 for any other name.
    static func slot(workerName: String?) -> Int {
        guard let name = workerName, let hash = name.lastIndex(of: "#") else { return 0 }
        let digits = name[name.index(after: hash)...].prefix { $0.isNumber }
        return max(0, (Int(digits) ?? 1) - 1)
    }
}
