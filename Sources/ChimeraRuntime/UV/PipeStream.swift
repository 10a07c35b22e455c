import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A `uv_pipe_t` with batched writes.
///
/// ``write(_:)`` only appends to an outgoing buffer and marks the stream dirty; the loop's
/// before-sleep hook calls ``flush()``, which hands everything written during the iteration to
/// libuv in a single `uv_write`. Reads are delivered as byte chunks that are valid only during
/// the callback (one 64 KiB buffer is reused for every read).
///
/// Backpressure: ``queuedBytes`` counts what is buffered or still queued in libuv; callers stop
/// producing past their own high-water mark. A peer that went away shows up as a write error
/// (`EPIPE`, since the coordinator ignores SIGPIPE) through `onWriteError`, never as a signal.
public final class PipeStream: LoopHandle {
    /// What a read produced.
    public enum ReadEvent {
        case data(UnsafeRawBufferPointer)
        case eof
        case error(UVError)
    }

    private var onRead: ((ReadEvent) -> Void)?
    /// Called once per failed write (for example `EPIPE` when the peer has exited).
    public var onWriteError: ((UVError) -> Void)?
    private var outgoing: [UInt8] = []
    private var isDirty = false
    private var readBuffer: UnsafeMutableRawPointer?
    private static let readBufferSize = 64 * 1024
    /// Name used in error messages ("builtin#1 stdin").
    public var label: String

    public init(loop: EventLoop, label: String) {
        self.label = label
        super.init(loop: loop, type: UV_NAMED_PIPE)
        uv_pipe_init(loop.raw, raw.assumingMemoryBound(to: uv_pipe_t.self), 0)
        didInitialise()
    }

    var stream: UnsafeMutablePointer<uv_stream_t> { chimera_stream(raw) }

    /// Whether `fd` is a pipe or socket, the only kinds of descriptor libuv can poll as a stream
    /// (a regular file or a terminal is not: libuv aborts on a file).
    public static func isPollable(fd: Int32) -> Bool { uv_guess_handle(fd) == UV_NAMED_PIPE }

    /// Wraps an existing file descriptor (a worker's stdin or stdout).
    public func open(fd: Int32) throws(UVError) {
        try UVError.check(uv_pipe_open(raw.assumingMemoryBound(to: uv_pipe_t.self), fd), "open fd \(fd) as a pipe")
    }

    /// Starts delivering reads to `callback`.
    public func startReading(_ callback: @escaping (ReadEvent) -> Void) throws(UVError) {
        onRead = callback
        if readBuffer == nil { readBuffer = .allocate(byteCount: PipeStream.readBufferSize, alignment: 16) }
        try UVError.check(uv_read_start(stream, { handle, _, buf in
            let owner = LoopHandle.owner(handle, as: PipeStream.self)
            buf!.pointee = uv_buf_init(owner.readBuffer!.assumingMemoryBound(to: CChar.self), UInt32(PipeStream.readBufferSize))
        }, { stream, nread, _ in
            let owner = LoopHandle.owner(stream, as: PipeStream.self)
            if nread > 0 {
                owner.onRead?(.data(UnsafeRawBufferPointer(start: owner.readBuffer, count: nread)))
            } else if nread == Int(UV_EOF.rawValue) {
                uv_read_stop(stream)
                owner.onRead?(.eof)
            } else if nread < 0 {
                uv_read_stop(stream)
                owner.onRead?(.error(UVError(code: Int32(nread), operation: "read from \(owner.label)")))
            }
        }), "read from \(label)")
    }

    /// Stops reading.
    public func stopReading() { uv_read_stop(stream) }

    /// Queues `bytes`; they go out at the end of this loop iteration.
    public func write(_ bytes: [UInt8]) {
        guard !isClosing else { return }
        outgoing.append(contentsOf: bytes)
        markDirty()
    }

    /// Lets the caller append to the outgoing buffer directly (no intermediate array).
    public func withOutgoingBuffer<R>(_ body: (inout [UInt8]) -> R) -> R {
        let result = body(&outgoing)
        if !isClosing { markDirty() } else { outgoing.removeAll() }
        return result
    }

    private func markDirty() {
        if !isDirty, !outgoing.isEmpty {
            isDirty = true
            loop.markDirty(self)
        }
    }

    /// Bytes buffered here plus bytes libuv has not yet written to the pipe.
    public var queuedBytes: Int { outgoing.count + Int(uv_stream_get_write_queue_size(stream)) }

    /// Hands the buffered bytes to libuv now, in one write request.
    public func flush() {
        flush(closing: false)
    }

    private func flush(closing: Bool) {
        isDirty = false
        guard !outgoing.isEmpty, closing || !isClosing else { return }
        let count = outgoing.count
        let storage = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 1)
        outgoing.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: count) }
        outgoing.removeAll(keepingCapacity: outgoing.capacity <= 1 << 20)
        let request = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        request.pointee.data = storage
        var buffer = uv_buf_init(storage.assumingMemoryBound(to: CChar.self), UInt32(count))
        let status = uv_write(request, stream, &buffer, 1) { request, status in
            let owner = LoopHandle.owner(request!.pointee.handle, as: PipeStream.self)
            request!.pointee.data.deallocate()
            request!.deallocate()
            if status < 0, status != UV_ECANCELED.rawValue {
                owner.onWriteError?(UVError(code: status, operation: "write to \(owner.label)"))
            }
        }
        if status < 0 {
            storage.deallocate()
            request.deallocate()
            onWriteError?(UVError(code: status, operation: "write to \(label)"))
        }
    }

    override func willClose() {
        // Whatever was written before close() still goes out (libuv completes queued writes
        // with ECANCELED on close, so flush first and let the kernel take it).
        if !outgoing.isEmpty { flush(closing: true) }
        onRead = nil
        onWriteError = nil
        outgoing = []
    }

    deinit {
        readBuffer?.deallocate()
    }
}
