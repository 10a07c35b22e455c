#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream into newline-terminated lines, with a cap on line length.
///
/// Chunks may split a line anywhere; the framer keeps only the unfinished tail between calls,
/// and complete lines inside one chunk are handed out without copying. A `\r` before the `\n`
/// is removed, so CRLF peers work too.
///
/// A line longer than `maxLineBytes` is not buffered: the framer reports `.tooLong` once,
/// discards bytes up to the next newline, and then resumes normally. This bounds memory per
/// peer whatever the peer writes.
///
/// - Complexity: O(n) in the bytes appended; the scan uses `memchr`.
public struct LineFramer: Sendable {
    /// One framing event.
    public enum Event {
        /// A complete line without its terminator. Valid only during the callback.
        case line(UnsafeRawBufferPointer)
        /// A line exceeded the cap; `prefix` holds its first bytes (for a log entry).
        case tooLong(prefix: [UInt8], cap: Int)
    }

    /// The largest line accepted, in bytes, not counting the terminator.
    public let maxLineBytes: Int
    private var buffer: [UInt8] = []
    private var discarding = false

    /// Creates a framer that accepts lines of at most `maxLineBytes` bytes.
    public init(maxLineBytes: Int) {
        precondition(maxLineBytes > 0, "maxLineBytes must be positive")
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes of an unfinished line held back until its newline arrives.
    public var bufferedByteCount: Int { buffer.count }

    /// The unfinished tail, for example to recognise a `Content-Length:` header before a newline.
    public var bufferedBytes: [UInt8] { buffer }

    /// Feeds `chunk` and calls `emit` for every event it completes, in order.
    public mutating func append(_ chunk: UnsafeRawBufferPointer, _ emit: (Event) -> Void) {
        guard let base = chunk.baseAddress, chunk.count > 0 else { return }
        var start = 0
        let end = chunk.count
        while start < end {
            let found = memchr(base + start, 0x0A, end - start)
            guard let newline = found else {
                // No terminator in the rest of the chunk: keep it, unless it is already too long.
                keepTail(UnsafeRawBufferPointer(start: base + start, count: end - start), emit)
                return
            }
            let newlineIndex = UnsafeRawPointer(newline) - base
            let piece = UnsafeRawBufferPointer(start: base + start, count: newlineIndex - start)
            start = newlineIndex + 1
            if discarding {
                discarding = false
                continue
            }
            if buffer.isEmpty {
                emitLine(piece, emit)
            } else {
                if buffer.count + piece.count > maxLineBytes + 1 {
                    var prefix = Array(buffer.prefix(64))
                    if prefix.count < 64 { prefix.append(contentsOf: piece.prefix(64 - prefix.count)) }
                    buffer.removeAll(keepingCapacity: true)
                    emit(.tooLong(prefix: prefix, cap: maxLineBytes))
                    continue
                }
                buffer.append(contentsOf: piece)
                buffer.withUnsafeBytes { emitLine($0, emit) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    private mutating func keepTail(_ tail: UnsafeRawBufferPointer, _ emit: (Event) -> Void) {
        if discarding { return }
        // `+ 1` leaves room for a `\r` that a CRLF peer puts before the newline.
        if buffer.count + tail.count > maxLineBytes + 1 {
            var prefix = Array(buffer.prefix(64))
            if prefix.count < 64 { prefix.append(contentsOf: tail.prefix(64 - prefix.count)) }
            buffer.removeAll(keepingCapacity: false)
            discarding = true
            emit(.tooLong(prefix: prefix, cap: maxLineBytes))
            return
        }
        buffer.append(contentsOf: tail)
    }

    private func emitLine(_ line: UnsafeRawBufferPointer, _ emit: (Event) -> Void) {
        var line = line
        if line.count > 0, line[line.count - 1] == 0x0D {
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        if line.count > maxLineBytes {
            emit(.tooLong(prefix: Array(line.prefix(64)), cap: maxLineBytes))
        } else {
            emit(.line(line))
        }
    }
}
