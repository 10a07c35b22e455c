import ArgumentParser
import ChimeraRuntime

/// `chimera worker`: the built-in worker process. The coordinator starts it; people rarely do.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve the worker protocol (docs/PROTOCOL.md) on stdin/stdout with the built-in handlers."
    )

    @Option(help: "Name reported in the handshake.")
    var name = "chimera-builtin"

    @Option(help: "Tasks accepted at once (declared in the handshake).")
    var maxConcurrency = 128

    @Option(help: "Longest accepted request line in bytes.")
    var maxLineBytes = 8 << 20

    @Flag(help: "Also serve the misbehaving test handlers (sleep, fail, crash, hang, garbage, fds, stream).")
    var testHandlers = false

    @Option(help: "Run as an agent worker for this agent profile: also serve llm.chat (external calls).")
    var agent: String?

    @Flag(help: "With --agent: serve only llm.chat, with stdin and stdout on the HTTP client's event loop (no thread hop per call).")
    var nio = false

    func validate() throws {
        guard maxConcurrency >= 1 else { throw ValidationError("--max-concurrency must be at least 1") }
        guard maxLineBytes >= 1024 else { throw ValidationError("--max-line-bytes must be at least 1024") }
    }

    func run() throws {
        // Taken before the loop opens anything: what this process inherited from its parent.
        if nio, agent != nil, !testHandlers {
            do {
                try NIOAgentWorker.run(name: name, maxConcurrency: maxConcurrency, maxLineBytes: maxLineBytes)
            } catch {
                printError("chimera worker: \(error) (stdin and stdout must be pipes: the coordinator starts workers)")
                throw ExitCode(ExitCodes.usage)
            }
            return
        }
        let inherited = FileIO.openDescriptors()
        let loop = try EventLoop()
        var options = WorkerServer.Options()
        options.name = name
        options.maxConcurrency = maxConcurrency
        options.maxLineBytes = maxLineBytes
        var handlers = BuiltinHandlers.standard + (testHandlers ? BuiltinHandlers.test(inheritedDescriptors: inherited) : [])
        if agent != nil { handlers.append(ExternalChatHandler(loop: loop)) }
        do {
            let server = try WorkerServer(loop: loop, handlers: handlers, options: options)
            try server.run()
        } catch {
            printError("chimera worker: \(error) (stdin and stdout must be pipes: the coordinator starts workers; to try one by hand, pipe JSON-RPC lines into it)")
            try? loop.close()
            throw ExitCode(ExitCodes.usage)
        }
        try loop.close()
    }
}
