/// Appends JSON-RPC 2.0 messages, one per line, to a byte buffer.
///
/// Payloads (`params`, `result`, task input and output) are spliced in as raw JSON bytes that
/// the caller already holds, so a message costs one append of a few fixed pieces rather than an
/// encoder pass. Every function writes a complete line ending in `\n`.
public enum RPCWriter {
    /// `{"jsonrpc":"2.0","id":ID,"method":"M","params":P}\n`; omit `params` with `nil`.
    public static func request(id: Int64, method: String, params: [UInt8]?, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        appendInteger(id, to: &out)
        out.append(contentsOf: #","method":"#.utf8)
        JSONValue.writeString(method, to: &out)
        if let params {
            out.append(contentsOf: #","params":"#.utf8)
            out.append(contentsOf: params)
        }
        out.append(contentsOf: "}\n".utf8)
    }

    /// `{"jsonrpc":"2.0","method":"M","params":P}\n`.
    public static func notification(method: String, params: [UInt8]?, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","method":"#.utf8)
        JSONValue.writeString(method, to: &out)
        if let params {
            out.append(contentsOf: #","params":"#.utf8)
            out.append(contentsOf: params)
        }
        out.append(contentsOf: "}\n".utf8)
    }

    /// The `task/delta` notification for task `id`: `{"id":ID,"delta":"TEXT"}`.
    public static func taskDelta(id: Int64, text: String, to out: inout [UInt8]) {
        var params: [UInt8] = Array(#"{"id":"#.utf8)
        appendInteger(id, to: &params)
        params.append(contentsOf: #","delta":"#.utf8)
        JSONValue.writeString(text, to: &params)
        params.append(UInt8(ascii: "}"))
        notification(method: RPCMethod.taskDelta, params: params, to: &out)
    }

    /// The `initialize` result a worker answers with: protocol version, its name, its handlers
    /// (each `{"name", "kinds", …extra}`) and how many tasks it takes at once.
    public static func handshake(name: String, handlers: [(name: String, kinds: [String], extra: [JSONMember])], maxConcurrency: Int) -> String {
        JSONValue.object([
            JSONMember("protocol_version", .number(Double(RPCMethod.protocolVersion))),
            JSONMember("name", .string(name)),
            JSONMember("handlers", .array(handlers.map { handler in
                .object([JSONMember("name", .string(handler.name)), JSONMember("kinds", .array(handler.kinds.map { .string($0) }))] + handler.extra)
            })),
            JSONMember("max_concurrency", .number(Double(maxConcurrency))),
        ]).serialized
    }

    /// The `task/run` request, written field by field because it is the hot path.
    ///
    /// - Parameters:
    ///   - input: the task input, already valid JSON.
    ///   - deadlineMs: milliseconds the worker has before the coordinator cancels the task.
    public static func taskRun(id: Int64, task: String, handler: String, kind: String, input: [UInt8], deadlineMs: Int64, attempt: Int, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        appendInteger(id, to: &out)
        out.append(contentsOf: #","method":"task/run","params":{"task":"#.utf8)
        JSONValue.writeString(task, to: &out)
        out.append(contentsOf: #","handler":"#.utf8)
        JSONValue.writeString(handler, to: &out)
        out.append(contentsOf: #","kind":"#.utf8)
        JSONValue.writeString(kind, to: &out)
        out.append(contentsOf: #","input":"#.utf8)
        out.append(contentsOf: input)
        out.append(contentsOf: #","deadline_ms":"#.utf8)
        appendInteger(deadlineMs, to: &out)
        out.append(contentsOf: #","attempt":"#.utf8)
        appendInteger(Int64(attempt), to: &out)
        out.append(contentsOf: "}}\n".utf8)
    }

    /// `{"jsonrpc":"2.0","id":ID,"result":R}\n` where `result` is raw JSON.
    public static func result(id: RPCEnvelope.ID, result: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        appendID(id, to: &out)
        out.append(contentsOf: #","result":"#.utf8)
        out.append(contentsOf: result)
        out.append(contentsOf: "}\n".utf8)
    }

    /// `{"jsonrpc":"2.0","id":ID,"result":{"output":O}}\n`, the answer to `task/run`.
    public static func taskOutput(id: RPCEnvelope.ID, output: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        appendID(id, to: &out)
        out.append(contentsOf: #","result":{"output":"#.utf8)
        out.append(contentsOf: output)
        out.append(contentsOf: "}}\n".utf8)
    }

    /// An error response; `kind` goes in `error.data.kind` so callers can act on it.
    public static func error(id: RPCEnvelope.ID?, code: Int, message: String, kind: String, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        if let id { appendID(id, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","error":{"code":"#.utf8)
        appendInteger(Int64(code), to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONValue.writeString(message, to: &out)
        out.append(contentsOf: #","data":{"kind":"#.utf8)
        JSONValue.writeString(kind, to: &out)
        out.append(contentsOf: "}}}\n".utf8)
    }

    static func appendID(_ id: RPCEnvelope.ID, to out: inout [UInt8]) {
        switch id {
        case .number(let n): appendInteger(n, to: &out)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .null: out.append(contentsOf: "null".utf8)
        }
    }

    /// Appends the decimal digits of `value` without going through `String`.
    public static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value == 0 { out.append(0x30); return }
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[19 - count] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
                magnitude /= 10
                count += 1
            }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }
}
