/// One dispatched server-sent event.
///
/// `event` is nil for the default type (the spec's `message`). `id` is the stream's *last event
/// ID* at dispatch time, as the WHATWG algorithm defines it: it persists from event to event until
/// an `id` field changes it, and nil stands for the empty string. `retry` is likewise the stream's
/// reconnection time (milliseconds) as last set by a valid `retry` field, nil if none was seen;
/// a reconnecting client needs the latest value, not only one seen in this very event.
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    public var data: String
    public var id: String?
    public var retry: Int?

    public init(event: String? = nil, data: String, id: String? = nil, retry: Int? = nil) {
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry
    }
}

/// What the parser reports, in stream order.
public enum SSEItem: Sendable, Equatable {
    case event(SSEEvent)
    /// A comment line's text after the `:` (one leading space removed). Reported, not dropped, so
    /// that a client can reset its idle timer on keep-alives such as `: OPENROUTER PROCESSING`.
    case comment(String)
}

/// An incremental parser for `text/event-stream`, following the WHATWG "event stream
/// interpretation" algorithm
/// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
///
/// * Lines end with CRLF, LF or CR. A CR that ends one chunk and an LF that starts the next are
///   one line end, so results never depend on where the transport split the bytes.
/// * A UTF-8 byte order mark is skipped only at the very start of the stream.
/// * `:` starts a comment; `name:value` loses one space after the colon; a line without a colon
///   is a field with an empty value. Fields: `event`, `data` (lines joined with `\n`), `id`
///   (ignored when it contains NUL), `retry` (ASCII digits only); others are ignored.
/// * A blank line dispatches the event; with an empty data buffer nothing is dispatched, but the
///   event type still resets.
/// * At the end of the stream an incomplete event (no blank line yet) is discarded.
///
/// The parser works on bytes: lines are collected in one reusable `[UInt8]` buffer and only the
/// field values that survive into an item are decoded (invalid UTF-8 becomes U+FFFD, as the
/// spec's UTF-8 decode does). A line that lies wholly inside one chunk is never copied.
///
/// Memory is bounded by the longest event; the HTTP layer caps the body size.
public struct SSEParser: Sendable {
    /// The bytes of an unfinished line that began in an earlier chunk.
    private var line: [UInt8] = []
    /// The previous chunk ended with a CR; an LF at the start of the next one belongs to it.
    private var pendingCR = false
    /// How many bytes of a leading BOM have been seen while the stream start is undecided.
    private var bomMatched = 0
    /// Whether the stream start (BOM or not) has been decided.
    private var bomDecided = false

    private var data: [UInt8] = []
    private var eventType: [UInt8] = []
    /// The spec's last event ID buffer (it is not reset by a dispatch).
    public private(set) var lastEventID: String = ""
    /// The reconnection time in milliseconds from the latest valid `retry` field.
    public private(set) var reconnectionTime: Int?

    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    private static let cr: UInt8 = 0x0D
    private static let lf: UInt8 = 0x0A
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")

    public init() {}

    /// Feeds the next bytes of the stream and returns the items they completed.
    public mutating func feed<C: Collection>(_ bytes: C) -> [SSEItem] where C.Element == UInt8 {
        var items: [SSEItem] = []
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            consume(buffer, into: &items)
        }
        if handled == nil {
            Array(bytes).withUnsafeBufferPointer { consume($0, into: &items) }
        }
        return items
    }

    /// Ends the stream. An event without its closing blank line, and an unterminated last line,
    /// are discarded (the spec's "pending data"), so this returns no items today; it exists so
    /// that callers have one place to end a stream. The parser is then ready for a new stream
    /// (a reconnection): ``lastEventID`` and ``reconnectionTime`` survive, as the spec keeps them
    /// per event source, and everything else starts afresh.
    public mutating func finish() -> [SSEItem] {
        var fresh = SSEParser()
        fresh.lastEventID = lastEventID
        fresh.reconnectionTime = reconnectionTime
        self = fresh
        return []
    }

    private mutating func consume(_ chunk: UnsafeBufferPointer<UInt8>, into items: inout [SSEItem]) {
        var i = 0
        let n = chunk.count
        // Decide the stream start: a BOM is skipped; a partial match that fails is ordinary text.
        while !bomDecided && i < n {
            if chunk[i] == Self.bom[bomMatched] {
                bomMatched += 1
                i += 1
                if bomMatched == Self.bom.count { bomDecided = true }
            } else {
                bomDecided = true
                // None of the BOM bytes is a line end, so they simply start the first line.
                line.append(contentsOf: Self.bom[0..<bomMatched])
            }
        }
        while i < n {
            if pendingCR {
                pendingCR = false
                if chunk[i] == Self.lf {
                    i += 1
                    continue
                }
            }
            var j = i
            while j < n, chunk[j] != Self.cr, chunk[j] != Self.lf { j += 1 }
            if j == n {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[i..<n]))
                return
            }
            if line.isEmpty {
                processLine(UnsafeBufferPointer(rebasing: chunk[i..<j]), into: &items)
            } else {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[i..<j]))
                // Swap the buffer out so that processing can mutate `self` while reading it.
                var complete: [UInt8] = []
                swap(&complete, &line)
                complete.withUnsafeBufferPointer { processLine($0, into: &items) }
                complete.removeAll(keepingCapacity: true)
                swap(&complete, &line)
            }
            pendingCR = chunk[j] == Self.cr
            i = j + 1
        }
    }

    private mutating func processLine(_ line: UnsafeBufferPointer<UInt8>, into items: inout [SSEItem]) {
        if line.isEmpty {
            dispatch(into: &items)
            return
        }
        let colonIndex = line.firstIndex(of: Self.colon)
        if colonIndex == 0 {
            items.append(.comment(Self.string(Self.value(of: line, after: 0))))
            return
        }
        let name = UnsafeBufferPointer(rebasing: line[0..<(colonIndex ?? line.count)])
        let value = colonIndex.map { Self.value(of: line, after: $0) } ?? UnsafeBufferPointer(rebasing: line[line.count...])
        if name.elementsEqual("data".utf8) {
            data.append(contentsOf: value)
            data.append(Self.lf)
        } else if name.elementsEqual("event".utf8) {
            eventType.removeAll(keepingCapacity: true)
            eventType.append(contentsOf: value)
        } else if name.elementsEqual("id".utf8) {
            if !value.contains(0) { lastEventID = Self.string(value) }
        } else if name.elementsEqual("retry".utf8) {
            if let millis = Self.digitsValue(value) { reconnectionTime = millis }
        }
        // Any other field name is ignored, as the spec requires.
    }

    private mutating func dispatch(into items: inout [SSEItem]) {
        defer {
            data.removeAll(keepingCapacity: true)
            eventType.removeAll(keepingCapacity: true)
        }
        guard !data.isEmpty else { return }
        data.removeLast()  // the LF appended after the last data line
        items.append(.event(SSEEvent(
            event: eventType.isEmpty ? nil : Self.string(eventType),
            data: Self.string(data),
            id: lastEventID.isEmpty ? nil : lastEventID,
            retry: reconnectionTime
        )))
    }

    /// The bytes after the colon at `colon`, without one leading space.
    private static func value(of line: UnsafeBufferPointer<UInt8>, after colon: Int) -> UnsafeBufferPointer<UInt8> {
        var start = colon + 1
        if start < line.count, line[start] == space { start += 1 }
        return UnsafeBufferPointer(rebasing: line[start...])
    }

    /// A non-empty run of ASCII digits as an Int; nil otherwise, or if it does not fit.
    private static func digitsValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var result = 0
        for byte in bytes {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (times10, o1) = result.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(byte - 0x30))
            if o1 || o2 { return nil }
            result = sum
        }
        return result
    }

    private static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes, as: UTF8.self)
    }
}
