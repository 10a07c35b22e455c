import CLibUV
import Synchronization

/// A `uv_async_t`: the one way another thread may reach the loop.
///
/// Other threads call ``send()``; the loop thread runs the callback (several sends before the
/// loop wakes may run it once, as libuv coalesces them). Pair it with a queue for the payload,
/// e.g. ``LoopInbox``.
public final class AsyncWakeup: LoopHandle, @unchecked Sendable {
    // @unchecked: only `send()` is used off the loop thread, and `uv_async_send` is thread-safe.
    private var callback: (() -> Void)?

    public init(loop: EventLoop, _ callback: @escaping () -> Void) throws(UVError) {
        self.callback = callback
        super.init(loop: loop, type: UV_ASYNC)
        try UVError.check(uv_async_init(loop.raw, raw.assumingMemoryBound(to: uv_async_t.self), { handle in
            LoopHandle.owner(handle, as: AsyncWakeup.self).callback?()
        }), "uv_async_init")
        didInitialise()
    }

    /// Wakes the loop; safe from any thread.
    public func send() { uv_async_send(raw.assumingMemoryBound(to: uv_async_t.self)) }

    override func willClose() { callback = nil }
}

/// A thread-safe mailbox drained on the loop thread: other threads `post` values, the loop
/// receives them in order in one callback per wake-up.
public final class LoopInbox<Message: Sendable>: Sendable {
    private final class Pending: Sendable {
        /// The messages, and whether the inbox was closed (then posts are dropped: the handle is gone).
        let state = Mutex<(messages: [Message], closed: Bool)>(([], false))
    }
    private let pending = Pending()
    private let wakeup: AsyncWakeup

    /// - Parameter receive: runs on the loop thread with each batch of posted messages.
    public init(loop: EventLoop, receive: @escaping ([Message]) -> Void) throws(UVError) {
        let pending = self.pending
        wakeup = try AsyncWakeup(loop: loop) {
            let batch = pending.state.withLock { state in
                let taken = state.messages
                state.messages.removeAll()
                return taken
            }
            if !batch.isEmpty { receive(batch) }
        }
    }

    /// Posts a message from any thread. After ``close(_:)`` the message is dropped.
    public func post(_ message: Message) {
        // The send happens under the lock so that close() cannot free the handle in between.
        pending.state.withLock { state in
            guard !state.closed else { return }
            state.messages.append(message)
            wakeup.send()
        }
    }

    /// Closes the underlying handle (on the loop thread); later posts are dropped.
    public func close(_ then: (() -> Void)? = nil) {
        pending.state.withLock { $0.closed = true }
        wakeup.close(then)
    }

    /// Whether the inbox keeps the loop running.
    public var keepsLoopAlive: Bool {
        get { wakeup.keepsLoopAlive }
        set { wakeup.keepsLoopAlive = newValue }
    }
}
