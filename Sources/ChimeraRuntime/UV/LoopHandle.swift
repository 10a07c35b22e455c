import CLibUV

/// The base of every libuv handle wrapper, keeping libuv's handle life in one place:
///
/// ```
/// init (uv_*_init) ──▶ active (start/stop any number of times) ──▶ close() ──▶ closed (close callback)
/// ```
///
/// Rules the class enforces:
/// - The C handle lives in its own allocation (libuv needs a stable address), freed only in the
///   close callback, never earlier.
/// - An initialised handle holds a strong reference to its wrapper in `handle->data`, released
///   in the close callback: a wrapper can never be freed while libuv may still call it, and a
///   handle nobody closed shows up as an open handle when the loop is closed (a leak, loudly).
/// - `close()` twice is a programming error and traps.
/// - Callbacks are released at close, which breaks reference cycles through closures.
///
/// Everything runs on the loop's thread; none of these types is `Sendable`, except
/// ``AsyncWakeup``'s `send()`.
public class LoopHandle {
    let raw: UnsafeMutableRawPointer
    /// The loop this handle belongs to.
    public unowned let loop: EventLoop
    /// True once `close()` was called.
    public private(set) var isClosing = false
    private var initialised = false
    private var closeCallback: (() -> Void)?

    init(loop: EventLoop, type: uv_handle_type) {
        self.loop = loop
        let size = uv_handle_size(type)
        raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    }

    deinit {
        // Reached only for a handle whose init failed (an initialised one owns itself until closed).
        if !initialised { raw.deallocate() }
    }

    var handle: UnsafeMutablePointer<uv_handle_t> { chimera_handle(raw) }

    /// Call right after a successful `uv_*_init`.
    func didInitialise() {
        initialised = true
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Closes the handle; `then` runs in the close callback, when libuv is done with it.
    public func close(_ then: (() -> Void)? = nil) {
        precondition(!isClosing, "\(type(of: self)) closed twice")
        precondition(initialised, "\(type(of: self)) was never initialised")
        isClosing = true
        closeCallback = then
        willClose()
        uv_close(handle) { handle in
            let owner = Unmanaged<LoopHandle>.fromOpaque(handle!.pointee.data).takeRetainedValue()
            owner.raw.deallocate()
            let callback = owner.closeCallback
            owner.closeCallback = nil
            callback?()
        }
    }

    /// Subclasses drop their callbacks here.
    func willClose() {}

    /// Whether the handle keeps the loop running (`uv_ref`/`uv_unref`).
    public var keepsLoopAlive: Bool {
        get { uv_has_ref(handle) != 0 }
        set { newValue ? uv_ref(handle) : uv_unref(handle) }
    }

    static func owner<T: LoopHandle>(_ handle: UnsafeMutableRawPointer?, as: T.Type) -> T {
        let data = chimera_handle(handle!).pointee.data!
        return unsafeDowncast(Unmanaged<LoopHandle>.fromOpaque(data).takeUnretainedValue(), to: T.self)
    }
}
