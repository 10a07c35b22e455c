import CLibUV

/// A `uv_signal_t`: delivers a POSIX signal as a callback on the loop thread.
public final class SignalWatcher: LoopHandle {
    private var callback: ((Int32) -> Void)?

    public init(loop: EventLoop) {
        super.init(loop: loop, type: UV_SIGNAL)
        uv_signal_init(loop.raw, raw.assumingMemoryBound(to: uv_signal_t.self))
        didInitialise()
    }

    /// Starts watching `signal` (e.g. `SIGTERM`).
    public func start(signal: Int32, _ callback: @escaping (Int32) -> Void) throws(UVError) {
        self.callback = callback
        try UVError.check(uv_signal_start(raw.assumingMemoryBound(to: uv_signal_t.self), { handle, signum in
            LoopHandle.owner(handle, as: SignalWatcher.self).callback?(signum)
        }, signal), "watch signal \(signal)")
    }

    public func stop() { uv_signal_stop(raw.assumingMemoryBound(to: uv_signal_t.self)) }

    override func willClose() { callback = nil }
}
