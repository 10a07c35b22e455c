import ChimeraCore
import ChimeraOpenRouter
#if canImport(Glibc)
import Glibc
#endif

/// When each `llm.chat` call in an agent worker reached each step, for `chimera bench gateway
/// --breakdown`. Recorded only when `CHIMERA_GATEWAY_TRACE` names a directory (the bench sets it
/// in the agent pool's environment); the worker then writes one line per call to
/// `DIR/worker-PID.tsv` when it stops. Otherwise nothing is recorded (one nil check per call).
///
/// Instants are `CLOCK_MONOTONIC` nanoseconds (``ChatCallTiming/now()``, the clock of
/// `uv_hrtime`), so they compare with the coordinator's.
public final class GatewayTrace {
    /// One call's instants; 0 where a step was not reached.
    public struct Call: Sendable {
        /// The coordinator's task id (`t-N`).
        public var task: String
        /// The handler got the task (the worker read and parsed the line).
        public var received: UInt64 = 0
        /// The handler handed the call to the HTTP client (on the worker's loop).
        public var started: UInt64 = 0
        /// The client's request was handed to the HTTP stack, its response head arrived, it ended.
        public var sent: UInt64 = 0
        public var head: UInt64 = 0
        public var end: UInt64 = 0
        /// The answer was serialized (on the HTTP client's event loop), the worker's loop got it,
        /// and handed it to the task's responder (the write follows at the end of that loop turn).
        public var serialized: UInt64 = 0
        public var looped: UInt64 = 0
        public var written: UInt64 = 0

        public init(task: String) { self.task = task }

        public static let columns = ["task", "received", "started", "sent", "head", "end", "serialized", "looped", "written"]

        var line: String {
            ([task] + [received, started, sent, head, end, serialized, looped, written].map { String($0) }).joined(separator: "\t")
        }

        init?(line: Substring) {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == Self.columns.count else { return nil }
            let n = fields.dropFirst().map { UInt64($0) ?? 0 }
            task = String(fields[0])
            (received, started, sent, head, end, serialized, looped, written) = (n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7])
        }
    }

    public static let environmentVariable = "CHIMERA_GATEWAY_TRACE"
    private let path: String
    private var calls: [Call] = []

    /// A trace when `CHIMERA_GATEWAY_TRACE` is set, else nil.
    static func fromEnvironment() -> GatewayTrace? {
        guard let dir = getenv(environmentVariable).map({ String(cString: $0) }), !dir.isEmpty else { return nil }
        return GatewayTrace(path: dir + "/worker-\(getpid()).tsv")
    }

    private init(path: String) {
        self.path = path
        calls.reserveCapacity(1 << 16)
    }

    func record(_ call: Call) { calls.append(call) }

    /// Writes the calls recorded so far (the worker is stopping).
    func write() {
        var text = Call.columns.joined(separator: "\t") + "\n"
        for call in calls { text += call.line + "\n" }
        guard let file = fopen(path, "w") else { return }
        _ = text.withCString { fputs($0, file) }
        fclose(file)
        calls.removeAll()
    }

    /// Every call in every `worker-*.tsv` file of `directory`.
    public static func read(directory: String) -> [Call] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [Call] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix("worker-"), name.hasSuffix(".tsv"), let file = fopen(directory + "/" + name, "r") else { continue }
            var text = ""
            var buffer = [CChar](repeating: 0, count: 4096)
            while fgets(&buffer, Int32(buffer.count), file) != nil {
                text += buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
            fclose(file)
            for line in text.split(separator: "\n").dropFirst() {
                if let call = Call(line: line) { out.append(call) }
            }
        }
        return out
    }
}
