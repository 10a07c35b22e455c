/// Why a line is not an acceptable JSON-RPC 2.0 message.
public struct RPCParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The top level of one JSON-RPC 2.0 message, with its payloads left as raw byte ranges.
///
/// The coordinator reads tens of thousands of these per second. Building a full value tree for
/// each would cost more than the pipe itself (see docs/BENCHMARKS.md), so this validates the
/// whole line strictly but only materialises what routing needs: the id, the method and where
/// `params`, `result` and `error` sit in the line. Whoever needs a payload copies or parses it.
public struct RPCEnvelope: Sendable {
    /// A JSON-RPC id. Chimera's own ids are integers; strings are accepted from peers.
    public enum ID: Sendable, Equatable, Hashable {
        case number(Int64)
        case string(String)
        case null
    }

    /// What the message is, by the JSON-RPC 2.0 rules.
    public enum Kind: Sendable, Equatable {
        case request, notification, response
    }

    public var kind: Kind
    /// The id, absent for notifications.
    public var id: ID?
    /// The method of a request or notification.
    public var method: String?
    /// Byte range of `params` in the line.
    public var params: Range<Int>?
    /// Byte range of `result` in the line (a success response).
    public var result: Range<Int>?
    /// Byte range of `error` in the line (an error response).
    public var error: Range<Int>?

    /// Parses and validates one message.
    ///
    /// - Complexity: O(n) in the line length, no allocation for the common shapes.
    public static func parse(_ line: UnsafeRawBufferPointer) throws(RPCParseError) -> RPCEnvelope {
        do {
            return try scan(line)
        } catch let error as RPCParseError {
            throw error
        } catch let syntax as JSONSyntaxError {
            throw RPCParseError("invalid JSON: \(syntax)")
        } catch {
            throw RPCParseError("\(error)")
        }
    }

    private static func scan(_ line: UnsafeRawBufferPointer) throws -> RPCEnvelope {
        var first = 0
        while first < line.count, line[first] == 0x20 || line[first] == 0x09 { first += 1 }
        guard first < line.count else { throw RPCParseError("empty line (expected a JSON-RPC message)") }
        guard line[first] == UInt8(ascii: "{") else {
            if line.hasPrefix("Content-Length:") {
                throw RPCParseError("LSP-style 'Content-Length:' header; Chimera messages are one JSON object per line, with no headers (docs/PROTOCOL.md, Framing)")
            }
            throw RPCParseError("not a JSON object (expected a JSON-RPC message)")
        }
        var sawVersion = false
        var id: ID?
        var method: String?
        var params: Range<Int>?
        var result: Range<Int>?
        var error: Range<Int>?
        try JSONParser.forEachMember(of: line) { key, valueRange in
            guard let key else { return }
            let valueStart = valueRange.lowerBound
            switch key.count {
            case 2 where key.equals("id"):
                id = try parseID(UnsafeRawBufferPointer(rebasing: line[valueRange]))
            case 7 where key.equals("jsonrpc"):
                guard UnsafeRawBufferPointer(rebasing: line[valueRange]).equals("\"2.0\"") else {
                    throw RPCParseError("\"jsonrpc\" must be \"2.0\"")
                }
                sawVersion = true
            case 6 where key.equals("method"):
                guard line[valueStart] == UInt8(ascii: "\""), let name = JSONParser.decodeString(UnsafeRawBufferPointer(rebasing: line[valueRange])) else {
                    throw RPCParseError("\"method\" must be a string")
                }
                method = name
            case 6 where key.equals("params"): params = valueRange
            case 6 where key.equals("result"): result = valueRange
            case 5 where key.equals("error"): error = valueRange
            default: break
            }
        }
        guard sawVersion else { throw RPCParseError("missing \"jsonrpc\": \"2.0\"") }
        if let method {
            guard result == nil, error == nil else { throw RPCParseError("a message has both \"method\" and \"result\"/\"error\"") }
            if let params, line[params.lowerBound] != UInt8(ascii: "{"), line[params.lowerBound] != UInt8(ascii: "[") {
                throw RPCParseError("\"params\" must be an object or an array")
            }
            return RPCEnvelope(kind: id == nil ? .notification : .request, id: id, method: method, params: params, result: nil, error: nil)
        }
        guard let id else { throw RPCParseError("a message needs \"method\" or an \"id\" with \"result\"/\"error\"") }
        guard (result == nil) != (error == nil) else {
            throw RPCParseError("a response needs exactly one of \"result\" and \"error\"")
        }
        return RPCEnvelope(kind: .response, id: id, method: nil, params: nil, result: result, error: error)
    }

    static func parseID(_ raw: UnsafeRawBufferPointer) throws(RPCParseError) -> ID {
        let first = raw[0]
        if first == UInt8(ascii: "\"") {
            return .string(JSONParser.decodeString(raw) ?? "")
        }
        if first == UInt8(ascii: "n") { return .null }
        var value: Int64 = 0
        var negative = false
        for (i, byte) in raw.enumerated() {
            if i == 0, byte == UInt8(ascii: "-") { negative = true; continue }
            guard byte >= 0x30, byte <= 0x39 else { throw RPCParseError("\"id\" must be an integer or a string") }
            // Accumulate with the sign so Int64.min, whose magnitude Int64 cannot hold, parses too.
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let digit = Int64(byte - 0x30)
            let (a, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
            if o1 || o2 { throw RPCParseError("\"id\" is out of range") }
            value = a
        }
        return .number(value)
    }
}

/// JSON-RPC error codes Chimera uses (the standard ones plus two of its own).
public enum RPCErrorCode {
    public static let parseError: Int = -32700
    public static let invalidRequest: Int = -32600
    public static let methodNotFound: Int = -32601
    public static let invalidParams: Int = -32602
    public static let internalError: Int = -32603
    /// The handler ran and failed; `data.kind` says how.
    public static let handlerError: Int = -32000
    /// The task was cancelled (the LSP code, for familiarity).
    public static let cancelled: Int = -32800
}

/// Method names of the worker protocol, version ``protocolVersion``.
public enum RPCMethod {
    public static let protocolVersion = 1
    public static let initialize = "initialize"
    public static let taskRun = "task/run"
    public static let taskDelta = "task/delta"
    public static let taskCancel = "task/cancel"
    public static let heartbeat = "heartbeat"
    public static let shutdown = "shutdown"
    public static let exit = "exit"
}
