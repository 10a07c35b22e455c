import ChimeraCore
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The entry point of your own worker binary: serves ``ChimeraHandler``s over the worker
/// protocol (docs/PROTOCOL.md) on stdin/stdout, as `chimera worker` serves the built-in ones.
///
/// ```swift
/// import ChimeraRuntime
///
/// @main struct AcmeWorker {
///     static func main() { ChimeraWorker.main(handlers: [Slugify(), WordFrequency()]) }
/// }
/// ```
///
/// Then declare each handler in the config (`<binary> --describe` prints these entries):
///
/// ```json
/// {"handlers": [{"name": "acme.slugify", "command": "/path/to/acme-worker", "kinds": ["slugify"], "capability": 0.9}]}
/// ```
///
/// The worker answers the handshake with every handler's name, kinds, capability and docs,
/// answers heartbeats on its loop thread while handlers run on Swift's cooperative pool, turns
/// `task/cancel` into Swift `Task` cancellation, and exits when its input ends or `exit`
/// arrives (after giving cancelled handlers ``exitGraceMs`` to return). Descriptor 1 is kept
/// for the protocol and the process's stdout is pointed at stderr, so a handler's `print`
/// lands in the coordinator's log instead of breaking the protocol.
///
/// Command line: no arguments serve; `--describe` prints the config entries as JSON;
/// `--help` says what the binary is. Run from a terminal it refuses (exit 2): the coordinator
/// starts it with pipes.
public enum ChimeraWorker {
    /// How long, at exit, cancelled handlers have to return before the process exits anyway.
    public static let exitGraceMs = 1_000

    /// Serves `handlers` until the coordinator stops the worker, then exits the process.
    ///
    /// - Parameters:
    ///   - name: the worker's name in the handshake (default: the executable's file name).
    ///   - handlers: the handlers, with distinct names; a later duplicate replaces an earlier one.
    ///   - maxConcurrency: tasks run at once (declared in the handshake; the config may lower it).
    /// - Returns: never; the process exits with 0 when served, 2 on a usage error.
    public static func main(name: String? = nil, handlers: [any ChimeraHandler], maxConcurrency: Int = 64) -> Never {
        let executable = FileIO.executablePath()
        let arguments = Array(CommandLine.arguments.dropFirst())
        let workerName = name ?? String(executable.split(separator: "/").last ?? "worker")
        switch arguments.first {
        case nil:
            exit(serve(name: workerName, handlers: handlers, maxConcurrency: maxConcurrency))
        case "--describe"? where arguments.count == 1:
            FileIO.writeAll(Array((describe(handlers, executable: executable).serialized + "\n").utf8))
            exit(0)
        case "--help"?, "-h"?:
            let names = handlers.map { "  \($0.name)  kinds: \($0.kinds.joined(separator: ", "))" + ($0.docs.isEmpty ? "" : "\n      \($0.docs)") }
            FileIO.writeAll(Array("""
                \(workerName): a Chimera worker (docs/PROTOCOL.md). The coordinator starts it; declare its handlers in the
                config's "handlers" (\(workerName) --describe prints the entries). Handlers:
                \(names.joined(separator: "\n"))

                """.utf8))
            exit(0)
        default:
            printToStderr("\(workerName): unexpected arguments \(arguments.joined(separator: " ")) (use --describe or --help; the coordinator starts the worker with none)")
            exit(2)
        }
    }

    /// The config's `handlers[]` entries for this binary: `{"handlers": [{name, command, kinds, capability}]}`.
    static func describe(_ handlers: [any ChimeraHandler], executable: String) -> JSONValue {
        .object([JSONMember("handlers", .array(handlers.map { handler in
            .object([
                JSONMember("name", .string(handler.name)),
                JSONMember("command", .string(executable)),
                JSONMember("kinds", .array(handler.kinds.map { .string($0) })),
                JSONMember("capability", .number(handler.capability)),
            ])
        }))])
    }

    /// Runs the server; returns the exit status.
    static func serve(name: String, handlers: [any ChimeraHandler], maxConcurrency: Int) -> Int32 {
        // The protocol keeps a private copy of stdout; descriptor 1 then goes to the log.
        let output = fcntl(1, F_DUPFD_CLOEXEC, 3)
        guard output >= 0 else {
            printToStderr("\(name): cannot duplicate stdout: \(String(cString: strerror(errno)))")
            return 2
        }
        let loop: EventLoop
        do { loop = try EventLoop() } catch {
            printToStderr("\(name): cannot start the event loop: \(error)")
            return 2
        }
        var options = WorkerServer.Options()
        options.name = name
        options.maxConcurrency = max(1, maxConcurrency)
        options.outputDescriptor = output
        let adapters = handlers.map { AsyncHandlerAdapter($0, loop: loop) }
        do {
            let server = try WorkerServer(loop: loop, handlers: adapters, options: options)
            dup2(2, 1)
            try server.run()
        } catch {
            printToStderr("\(name): \(error) (stdin and stdout must be pipes: the Chimera coordinator starts this worker; declare it in the config's \"handlers\", or pipe JSON-RPC lines into it to try it by hand)")
            try? loop.close()
            return 2
        }
        awaitCancelled(adapters.flatMap { Array($0.cancelled.values) }, timeoutMs: exitGraceMs)
        try? loop.close()
        return 0
    }

    /// Blocks until every task in `tasks` has returned, or `timeoutMs` passed.
    static func awaitCancelled(_ tasks: [Task<Void, Never>], timeoutMs: Int) {
        guard !tasks.isEmpty else { return }
        let done = DispatchSemaphore(value: 0)
        Task {
            for task in tasks { await task.value }
            done.signal()
        }
        _ = done.wait(timeout: .now() + .milliseconds(timeoutMs))
    }

    static func printToStderr(_ line: String) {
        FileIO.writeAll(Array((line + "\n").utf8), fd: 2)
    }
}
