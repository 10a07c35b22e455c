import CLibUV

/// A `uv_timer_t`: calls back after a delay, once or repeatedly.
public final class Timer: LoopHandle {
    private var callback: (() -> Void)?

    public init(loop: EventLoop) {
        super.init(loop: loop, type: UV_TIMER)
        uv_timer_init(loop.raw, raw.assumingMemoryBound(to: uv_timer_t.self))
        didInitialise()
    }

    private var timer: UnsafeMutablePointer<uv_timer_t> { raw.assumingMemoryBound(to: uv_timer_t.self) }

    /// Starts (or restarts) the timer: `callback` runs after `timeoutMs`, then every `repeatMs` if non-zero.
    public func start(after timeoutMs: UInt64, repeat repeatMs: UInt64 = 0, _ callback: @escaping () -> Void) {
        precondition(!isClosing, "Timer used after close()")
        self.callback = callback
        uv_timer_start(timer, { timer in
            LoopHandle.owner(timer, as: Timer.self).callback?()
        }, timeoutMs, repeatMs)
    }

    /// Stops the timer; it can be started again.
    public func stop() { uv_timer_stop(timer) }

    /// Whether the timer is armed.
    public var isActive: Bool { uv_is_active(handle) != 0 }

    override func willClose() { callback = nil }
}
