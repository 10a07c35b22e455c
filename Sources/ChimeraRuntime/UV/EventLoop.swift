import CLibUV

/// One libuv loop: the thread that runs it owns every handle on it.
///
/// The loop also keeps the "before sleep" hook (a `uv_prepare_t`, as Redis's `beforeSleep`):
/// pipe writes issued during an iteration are collected per stream and flushed there in one
/// `uv_write` each, which is what makes many small messages cheap (see docs/BENCHMARKS.md).
public final class EventLoop {
    let raw: UnsafeMutablePointer<uv_loop_t>
    private var flushHook: UnsafeMutablePointer<uv_prepare_t>?
    var dirtyStreams: [PipeStream] = []
    private var isClosed = false

    /// Creates and initialises a loop.
    public init() throws(UVError) {
        raw = .allocate(capacity: 1)
        let status = uv_loop_init(raw)
        guard status == 0 else {
            raw.deallocate()
            throw UVError(code: status, operation: "uv_loop_init")
        }
        let hook = UnsafeMutablePointer<uv_prepare_t>.allocate(capacity: 1)
        uv_prepare_init(raw, hook)
        hook.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        uv_prepare_start(hook) { hook in
            let loop = Unmanaged<EventLoop>.fromOpaque(hook!.pointee.data).takeUnretainedValue()
            loop.flushDirtyStreams()
        }
        // The hook must not keep the loop alive on its own.
        uv_unref(chimera_handle(hook))
        flushHook = hook
    }

    deinit {
        // A loop that was never closed may still be referenced by open handles: leak it rather
        // than free memory libuv could touch.
        if isClosed { raw.deallocate() }
    }

    /// Runs until no referenced handle is active, or `stop()` is called.
    public func run() { uv_run(raw, UV_RUN_DEFAULT) }

    /// Runs one iteration; with `wait`, blocks for I/O if there is nothing ready.
    @discardableResult
    public func runOnce(wait: Bool = true) -> Bool { uv_run(raw, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT) != 0 }

    /// Makes `run()` return after the current iteration.
    public func stop() { uv_stop(raw) }

    /// The loop's cached time in milliseconds (monotonic, updated each iteration).
    public var now: UInt64 { uv_now(raw) }

    /// Refreshes the cached time, for use after long work inside a callback.
    public func updateTime() { uv_update_time(raw) }

    /// A high-resolution monotonic time in nanoseconds.
    public static func hrtime() -> UInt64 { uv_hrtime() }

    func markDirty(_ stream: PipeStream) { dirtyStreams.append(stream) }

    /// Flushes every stream that has pending writes; normally done by the before-sleep hook.
    public func flushDirtyStreams() {
        guard !dirtyStreams.isEmpty else { return }
        let streams = dirtyStreams
        dirtyStreams.removeAll(keepingCapacity: true)
        for stream in streams { stream.flush() }
    }

    /// Descriptions of the handles still open, for leak reports ("timer (active)").
    public func openHandles() -> [String] {
        final class Box {
            var names: [String] = []
            var ownHook: UnsafeMutableRawPointer?
        }
        let box = Box()
        box.ownHook = flushHook.map { UnsafeMutableRawPointer($0) }
        uv_walk(raw, { handle, arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeUnretainedValue()
            // The flush hook belongs to the loop itself, not to anyone who could close it.
            guard uv_is_closing(handle) == 0, UnsafeMutableRawPointer(handle) != box.ownHook else { return }
            let name = String(cString: uv_handle_type_name(handle!.pointee.type))
            box.names.append(name + (uv_is_active(handle) != 0 ? " (active)" : ""))
        }, Unmanaged.passUnretained(box).toOpaque())
        return box.names
    }

    /// Closes the loop. Fails with the list of handles still open: every handle must be closed
    /// (and its close callback run) first. This is the leak check every test ends with.
    public func close() throws(LoopCloseError) {
        precondition(!isClosed, "EventLoop closed twice")
        // Let pending close callbacks run.
        uv_run(raw, UV_RUN_NOWAIT)
        let open = openHandles()
        guard open.isEmpty else { throw LoopCloseError(openHandles: open) }
        if let hook = flushHook {
            uv_close(chimera_handle(hook)) { handle in UnsafeMutableRawPointer(handle!).deallocate() }
            flushHook = nil
            uv_run(raw, UV_RUN_NOWAIT)
        }
        let status = uv_loop_close(raw)
        guard status == 0 else { throw LoopCloseError(openHandles: openHandles() + ["(uv_loop_close: \(UVError(code: status, operation: "close")))"]) }
        isClosed = true
    }
}

/// The loop could not be closed because handles were left open.
public struct LoopCloseError: Error, Sendable, CustomStringConvertible {
    public let openHandles: [String]
    public var description: String { "loop still has open handles: \(openHandles.joined(separator: ", "))" }
}
