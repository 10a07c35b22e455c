import ArgumentParser
import ChimeraRuntime
import ChimeraSimulator
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// `chimera sim …`: local simulators of the services Chimera talks to.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a local simulator of a remote API (no network needed).",
        subcommands: [SimOpenRouterCommand.self]
    )
}

/// `chimera sim openrouter`: a faithful local OpenRouter on 127.0.0.1.
struct SimOpenRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openrouter",
        abstract: "Serve a simulated OpenRouter API on 127.0.0.1 until SIGINT or SIGTERM.",
        discussion: """
        The simulator answers /api/v1/chat/completions (JSON and SSE), /models, /key, /auth/key, /credits and \
        /generation with OpenRouter's shapes, enforces the free-model limits per account (20 per minute, 50 or 1000 \
        per UTC day) with OpenRouter's 429s, and injects faults on request: put [[sim:status=502]], \
        [[sim:midstream-error]], [[sim:drop]], [[sim:hang]], [[sim:latency=500]] … in the last user message. \
        Admin: GET /_sim/stats, POST /_sim/reset, POST /_sim/clock {"now_ms": N}.
        """
    )

    @Option(help: "Port on 127.0.0.1 (0 picks a free one).")
    var port: Int = 8089

    @Option(help: "Simulator config file (JSON: accounts, models, latency_ms, chunk_delay_ms, keep_alive_comments, error_rates, seed).")
    var config: String?

    @Option(name: .customLong("latency-ms"), help: "Latency before each answer, in milliseconds (overrides the config).")
    var latencyMs: Int?

    @Option(help: "Seed for injected error rates and generation ids (overrides the config).")
    var seed: UInt64?

    @Flag(name: .customLong("print-keys"), help: "Also print the simulated accounts' API keys as export lines.")
    var printKeys = false

    /// Synchronous, like every command (see `runBlocking`).
    func run() throws {
        let command = self
        try runBlocking { try await command.serve() }
    }

    private func serve() async throws {
        guard (0...65_535).contains(port) else {
            printError("--port must be in 0...65535, got \(port)")
            throw ExitCode(ExitCodes.usage)
        }
        var simConfig = SimulatorConfig.standard
        if let path = config {
            do {
                simConfig = try SimulatorConfig.decode(FileIO.readAll(path), file: path)
            } catch {
                printError("\(error)")
                throw ExitCode(ExitCodes.usage)
            }
        }
        if let latencyMs {
            guard latencyMs >= 0 else {
                printError("--latency-ms cannot be negative")
                throw ExitCode(ExitCodes.usage)
            }
            simConfig.latencyMs = latencyMs
        }
        if let seed { simConfig.seed = seed }

        let signals = SignalWaiter([SIGINT, SIGTERM])
        let simulator = OpenRouterSimulator(config: simConfig)
        do {
            _ = try await simulator.start(port: port)
        } catch let error as SimulatorStartError {
            printError(error.addressInUse
                ? "port \(port) on 127.0.0.1 is already in use (another simulator?); choose another with --port, or --port 0 for any free port"
                : "\(error)")
            throw ExitCode(ExitCodes.usage)
        }
        printLine("OpenRouter simulator listening on \(simulator.baseURL)")
        if printKeys { printLine(Self.keyListing(simConfig, baseURL: simulator.baseURL)) }
        let signal = await signals.next()
        FileIO.writeAll(Array("chimera sim: \(signal == SIGTERM ? "SIGTERM" : "SIGINT"), stopping\n".utf8), fd: 2)
        await simulator.stop()
    }

    /// `export OPENROUTER_API_KEY…=` lines grouped by account, numbered the way Chimera reads
    /// them (`OPENROUTER_API_KEY`, `_2` … `_N`), then `OPENROUTER_BASE_URL`.
    static func keyListing(_ config: SimulatorConfig, baseURL: String) -> String {
        var lines: [String] = []
        var n = 0
        for account in config.accounts {
            let daily = account.creditsPurchased >= 10 ? 1000 : 50
            let note = account.balance < 0 ? ", negative balance (402)" : ""
            lines.append("# account \"\(account.name)\": \(daily) free-model requests/day, \(account.perMinute)/min, shared by its \(account.keys.count) key(s)\(note)")
            for key in account.keys {
                n += 1
                lines.append("export OPENROUTER_API_KEY\(n == 1 ? "" : "_\(n)")=\(key)")
            }
        }
        lines.append("export OPENROUTER_BASE_URL=\(baseURL)")
        return lines.joined(separator: "\n")
    }
}

/// Delivers SIGINT/SIGTERM as an async value instead of killing the process.
final class SignalWaiter {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(_ numbers: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    /// The next signal received.
    func next() async -> Int32 {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next() ?? SIGTERM
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
