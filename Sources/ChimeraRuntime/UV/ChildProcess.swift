import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public struct ChildExitStatus: Sendable, Equatable, CustomStringConvertible {
    public var code: Int64
    /// The signal that killed it, or 0.
    public var signal: Int32

    public var description: String {
        if signal != 0 { return "killed by signal \(signal) (\(ChildExitStatus.signalName(signal)))" }
        return "exited with status \(code)"
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGKILL: return "SIGKILL"
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGILL: return "SIGILL"
        case SIGTRAP: return "SIGTRAP"
        case SIGPIPE: return "SIGPIPE"
        case SIGBUS: return "SIGBUS"
        default: return "signal \(signal)"
        }
    }
}

/// A child process started with `uv_spawn`, its stdio connected to three ``PipeStream``s.
///
/// Life: spawned → exited (the exit callback) → closed. The handle is closed by this class
/// right after the exit callback and never before it, so libuv always reaps the child (no
/// zombies). File descriptors libuv opens are close-on-exec, so children inherit only 0–2.
public final class ChildProcess: LoopHandle {
    /// What to run.
    public struct Options: Sendable {
        public var executable: String
        public var arguments: [String]
        /// Variables added to (or replacing those of) the parent's environment.
        public var environment: [String: String]
        public var workingDirectory: String?
        /// Start the child in a session of its own (`setsid`, libuv's `UV_PROCESS_DETACHED`): it
        /// leaves the terminal's foreground process group, so a Ctrl-C typed there (SIGINT to
        /// that group) reaches the parent only. The child is still watched and reaped as usual.
        public var detached = false

        public init(executable: String, arguments: [String] = [], environment: [String: String] = [:], workingDirectory: String? = nil) {
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.workingDirectory = workingDirectory
        }
    }

    /// The child's process id.
    public private(set) var pid: Int32 = 0
    /// Set once the child has exited.
    public private(set) var exitStatus: ChildExitStatus?
    private var onExit: ((ChildExitStatus) -> Void)?

    /// Spawns the child. `stdin`, `stdout` and `stderr` must be fresh, unopened pipes.
    ///
    /// - Throws: ``UVError`` if the child cannot be started (for example `ENOENT`); the caller
    ///   still owns and must close the three pipes.
    public init(loop: EventLoop, options: Options, stdin: PipeStream, stdout: PipeStream, stderr: PipeStream,
                onExit: @escaping (ChildExitStatus) -> Void) throws(UVError) {
        super.init(loop: loop, type: UV_PROCESS)
        self.onExit = onExit
        didInitialise()
        // Real pipes, not libuv's UV_CREATE_PIPE socketpairs: a pipe round trip costs ~4 µs less
        // (docs/BENCHMARKS.md). Each is created close-on-exec; the child gets its end as fd 0–2.
        var childEnds: [Int32] = []
        var parentEnds: [Int32] = []
        var status: Int32 = 0
        for index in 0..<3 {
            var fds: [uv_file] = [-1, -1]
            status = uv_pipe(&fds, 0, 0)
            if status < 0 { break }
            // fds[0] reads, fds[1] writes: the child reads stdin and writes stdout and stderr.
            childEnds.append(index == 0 ? fds[0] : fds[1])
            parentEnds.append(index == 0 ? fds[1] : fds[0])
        }
        if status == 0 {
            status = ChildProcess.spawn(loop: loop, process: raw.assumingMemoryBound(to: uv_process_t.self), options: options,
                                        childFDs: childEnds)
        }
        for fd in childEnds { Glibc.close(fd) }
        if status == 0 {
            for (stream, fd) in zip([stdin, stdout, stderr], parentEnds) {
                let opened = uv_pipe_open(stream.raw.assumingMemoryBound(to: uv_pipe_t.self), fd)
                if opened < 0 { Glibc.close(fd) }
            }
        } else {
            for fd in parentEnds { Glibc.close(fd) }
        }
        if status < 0 {
            // libuv requires closing the handle even when spawning failed.
            self.onExit = nil
            close()
            throw UVError(code: status, operation: "start \(options.executable)")
        }
        pid = raw.assumingMemoryBound(to: uv_process_t.self).pointee.pid
    }

    private static func spawn(loop: EventLoop, process: UnsafeMutablePointer<uv_process_t>, options: Options,
                              childFDs: [Int32]) -> Int32 {
        var env = ProcessEnvironment.current
        for (key, value) in options.environment { env[key] = value }

        let args = ([options.executable] + options.arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let cwd = options.workingDirectory.map { strdup($0) }
        defer {
            args.forEach { free($0) }
            envp.forEach { free($0) }
            cwd.flatMap { free($0) }
        }
        // Descriptors opened since the coordinator started (by libraries, or other threads) may
        // lack FD_CLOEXEC; mark them now so the child inherits only its three pipes.
        FileIO.markInheritedDescriptorsCloseOnExec()
        var stdio = [uv_stdio_container_t](repeating: uv_stdio_container_t(), count: 3)
        for index in 0..<3 {
            stdio[index].flags = UV_INHERIT_FD
            stdio[index].data.fd = childFDs[index]
        }

        return args.withUnsafeBufferPointer { argv in
            envp.withUnsafeBufferPointer { envv in
                stdio.withUnsafeMutableBufferPointer { stdioBuffer in
                    var opts = uv_process_options_t()
                    opts.exit_cb = { process, status, signal in
                        let owner = LoopHandle.owner(process, as: ChildProcess.self)
                        let exit = ChildExitStatus(code: status, signal: signal)
                        owner.exitStatus = exit
                        let callback = owner.onExit
                        owner.onExit = nil
                        callback?(exit)
                        if !owner.isClosing { owner.close() }
                    }
                    opts.file = UnsafePointer(argv[0])
                    opts.args = UnsafeMutablePointer(mutating: argv.baseAddress!)
                    opts.env = UnsafeMutablePointer(mutating: envv.baseAddress!)
                    if let directory = cwd ?? nil { opts.cwd = UnsafePointer(directory) }
                    opts.stdio_count = 3
                    opts.stdio = stdioBuffer.baseAddress
                    if options.detached { opts.flags |= UV_PROCESS_DETACHED.rawValue }
                    return uv_spawn(loop.raw, process, &opts)
                }
            }
        }
    }

    /// Sends `signal` to the child, if it is still running.
    @discardableResult
    public func kill(_ signal: Int32) -> Bool {
        guard exitStatus == nil, !isClosing else { return false }
        return uv_process_kill(raw.assumingMemoryBound(to: uv_process_t.self), signal) == 0
    }

    override func willClose() {
        precondition(exitStatus != nil || pid == 0, "a process handle may be closed only after its exit callback")
    }
}
