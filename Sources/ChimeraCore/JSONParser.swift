/// A JSON syntax error at a byte offset of the input.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the offending character (0-based).
    public var offset: Int
    /// What was wrong, in words: "expected ',' or '}' after an object member".
    public var reason: String
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 JSON parser and validator over bytes.
///
/// Two modes share one grammar: ``parse(_:recordPaths:)`` builds a ``JSONValue`` (and can record
/// the byte offset of every value by its JSON path, so config errors can say line and column),
/// while ``RPCEnvelope`` uses ``skipValue()`` to validate a payload without building anything.
/// Strings must be valid UTF-8 with no raw control characters; nesting is capped at 512 levels
/// so hostile input cannot exhaust the stack.
public struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var depth = 0
    static let maxDepth = 512

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON document; trailing non-space bytes are an error.
    ///
    /// - Parameters:
    ///   - recordPaths: when true, the result's `offsets` maps JSON paths (`$`, `$.pools[0].size`)
    ///     to the byte offset where that value starts.
    public static func parse(_ bytes: [UInt8], recordPaths: Bool = false) throws(JSONSyntaxError) -> (value: JSONValue, offsets: [String: Int]) {
        let outcome = bytes.withUnsafeBytes { raw -> Result<(value: JSONValue, offsets: [String: Int]), JSONSyntaxError> in
            var parser = JSONParser(raw)
            var offsets: [String: Int] = [:]
            do throws(JSONSyntaxError) {
                parser.skipSpace()
                let value = try parser.parseValue(path: recordPaths ? "$" : nil, offsets: &offsets)
                parser.skipSpace()
                if parser.index != raw.count { throw parser.error("unexpected data after the JSON value") }
                return .success((value, offsets))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    /// Parses a JSON document from a string.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8)).value
    }

    func error(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, reason: reason) }

    var atEnd: Bool { index >= bytes.count }
    var current: UInt8 { bytes[index] }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input in a literal") }
        for i in 0..<count where bytes[index + i] != literal.utf8Start[i] {
            throw JSONSyntaxError(offset: index + i, reason: "invalid literal (expected \(literal))")
        }
        index += count
    }

    // MARK: Validation only

    /// Validates one value starting at `index` (no leading space) and moves past it.
    mutating func skipValue() throws(JSONSyntaxError) {
        guard !atEnd else { throw error("unexpected end of input, expected a value") }
        switch current {
        case UInt8(ascii: "{"):
            try enter()
            index += 1
            skipSpace()
            if !atEnd, current == UInt8(ascii: "}") { index += 1; depth -= 1; return }
            while true {
                guard !atEnd, current == UInt8(ascii: "\"") else { throw error("expected a string key in an object") }
                _ = try scanString()
                skipSpace()
                guard !atEnd, current == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
                index += 1
                skipSpace()
                try skipValue()
                skipSpace()
                guard !atEnd else { throw error("unexpected end of input in an object") }
                if current == UInt8(ascii: ",") { index += 1; skipSpace(); continue }
                if current == UInt8(ascii: "}") { index += 1; depth -= 1; return }
                throw error("expected ',' or '}' after an object member")
            }
        case UInt8(ascii: "["):
            try enter()
            index += 1
            skipSpace()
            if !atEnd, current == UInt8(ascii: "]") { index += 1; depth -= 1; return }
            while true {
                try skipValue()
                skipSpace()
                guard !atEnd else { throw error("unexpected end of input in an array") }
                if current == UInt8(ascii: ",") { index += 1; skipSpace(); continue }
                if current == UInt8(ascii: "]") { index += 1; depth -= 1; return }
                throw error("expected ',' or ']' after an array element")
            }
        case UInt8(ascii: "\""): _ = try scanString()
        case UInt8(ascii: "t"): try expect("true")
        case UInt8(ascii: "f"): try expect("false")
        case UInt8(ascii: "n"): try expect("null")
        default: _ = try scanNumber()
        }
    }

    mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > JSONParser.maxDepth { throw error("nesting deeper than \(JSONParser.maxDepth) levels") }
    }

    /// Scans a string at `index` (on its opening quote). Returns the range of its content and
    /// whether it holds escapes (so callers can take a fast path when it does not).
    mutating func scanString() throws(JSONSyntaxError) -> (range: Range<Int>, hasEscapes: Bool) {
        index += 1
        let start = index
        var hasEscapes = false
        var hasNonASCII = false
        while true {
            guard index < bytes.count else { throw JSONSyntaxError(offset: start - 1, reason: "unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                index += 1
                guard index < bytes.count else { throw error("unterminated escape sequence") }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    guard index + 4 < bytes.count else { throw error("truncated \\u escape") }
                    for i in 1...4 where JSONParser.hexValue(bytes[index + i]) == nil {
                        throw JSONSyntaxError(offset: index + i, reason: "invalid hex digit in \\u escape")
                    }
                    index += 5
                default:
                    throw error("invalid escape character")
                }
                continue
            }
            if byte < 0x20 { throw error("raw control character in a string (must be escaped)") }
            if byte >= 0x80 { hasNonASCII = true }
            index += 1
        }
        let range = start..<index
        index += 1
        if hasNonASCII, let bad = UTF8Validation.firstInvalidByte(in: UnsafeRawBufferPointer(rebasing: bytes[range])) {
            throw JSONSyntaxError(offset: range.lowerBound + bad, reason: "invalid UTF-8 in a string")
        }
        return (range, hasEscapes)
    }

    /// Scans a number per RFC 8259 and returns its text's range.
    mutating func scanNumber() throws(JSONSyntaxError) -> Range<Int> {
        let start = index
        if !atEnd, current == UInt8(ascii: "-") { index += 1 }
        guard !atEnd else { throw error("unexpected end of input in a number") }
        if current == UInt8(ascii: "0") {
            index += 1
        } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(current) {
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
        } else {
            throw JSONSyntaxError(offset: start, reason: "expected a JSON value")
        }
        if !atEnd, current == UInt8(ascii: ".") {
            index += 1
            guard !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) else { throw error("expected a digit after '.'") }
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
        }
        if !atEnd, current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if !atEnd, current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) else { throw error("expected a digit in the exponent") }
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
        }
        return start..<index
    }

    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    // MARK: Building values

    mutating func parseValue(path: String?, offsets: inout [String: Int]) throws(JSONSyntaxError) -> JSONValue {
        guard !atEnd else { throw error("unexpected end of input, expected a value") }
        if let path { offsets[path] = index }
        switch current {
        case UInt8(ascii: "{"):
            try enter()
            index += 1
            skipSpace()
            var members: [JSONMember] = []
            if !atEnd, current == UInt8(ascii: "}") { index += 1; depth -= 1; return .object(members) }
            while true {
                guard !atEnd, current == UInt8(ascii: "\"") else { throw error("expected a string key in an object") }
                let key = try decodeString()
                skipSpace()
                guard !atEnd, current == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
                index += 1
                skipSpace()
                let value = try parseValue(path: path.map { JSONPath.appending(key: key, to: $0) }, offsets: &offsets)
                members.append(JSONMember(key, value))
                skipSpace()
                guard !atEnd else { throw error("unexpected end of input in an object") }
                if current == UInt8(ascii: ",") { index += 1; skipSpace(); continue }
                if current == UInt8(ascii: "}") { index += 1; depth -= 1; return .object(members) }
                throw error("expected ',' or '}' after an object member")
            }
        case UInt8(ascii: "["):
            try enter()
            index += 1
            skipSpace()
            var items: [JSONValue] = []
            if !atEnd, current == UInt8(ascii: "]") { index += 1; depth -= 1; return .array(items) }
            while true {
                items.append(try parseValue(path: path.map { "\($0)[\(items.count)]" }, offsets: &offsets))
                skipSpace()
                guard !atEnd else { throw error("unexpected end of input in an array") }
                if current == UInt8(ascii: ",") { index += 1; skipSpace(); continue }
                if current == UInt8(ascii: "]") { index += 1; depth -= 1; return .array(items) }
                throw error("expected ',' or ']' after an array element")
            }
        case UInt8(ascii: "\""): return .string(try decodeString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default:
            let start = index
            let range = try scanNumber()
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            guard let number = Double(text), number.isFinite else {
                throw JSONSyntaxError(offset: start, reason: "number \(text) is out of range")
            }
            return .number(number)
        }
    }

    mutating func decodeString() throws(JSONSyntaxError) -> String {
        let (range, hasEscapes) = try scanString()
        let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
        if !hasEscapes { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let byte = raw[i]
            guard byte == UInt8(ascii: "\\") else { out.append(byte); i += 1; continue }
            let escaped = raw[i + 1]
            i += 2
            switch escaped {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = JSONParser.hex4(raw, i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar), i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u") {
                    let low = JSONParser.hex4(raw, i + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                // A lone surrogate cannot be represented in UTF-8; U+FFFD is what decoders agree on.
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default: out.append(escaped)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex4(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | (hexValue(raw[at + k]) ?? 0) }
        return v
    }
}

/// JSON path strings in the form error messages use: `$.pools[0].size`, `$["odd key"]`.
public enum JSONPath {
    /// Appends an object key to `path`, quoting keys that are not plain identifiers.
    public static func appending(key: String, to path: String) -> String {
        let plain = !key.isEmpty && key.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D
        }
        if plain { return "\(path).\(key)" }
        var quoted: [UInt8] = []
        JSONValue.writeString(key, to: &quoted)
        return "\(path)[\(String(decoding: quoted, as: UTF8.self))]"
    }
}

/// UTF-8 well-formedness per the Unicode standard (no overlongs, no surrogates, ≤ U+10FFFF).
public enum UTF8Validation {
    /// The offset of the first byte that starts an ill-formed sequence, or `nil` if all is well.
    public static func firstInvalidByte(in bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let need: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; upper = 0x9F
            case 0xF0: need = 3; lower = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; upper = 0x8F
            default: return i
            }
            if i + need >= n { return i }
            let b1 = bytes[i + 1]
            if b1 < lower || b1 > upper { return i }
            var k = 2
            while k <= need {
                let bk = bytes[i + k]
                if bk < 0x80 || bk > 0xBF { return i }
                k += 1
            }
            i += need + 1
        }
        return nil
    }

    /// Whether `bytes` is entirely well-formed UTF-8.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool { firstInvalidByte(in: bytes) == nil }
}

extension JSONParser {
    /// Validates `raw` as one JSON object and calls `visit` for each top-level member with the
    /// member's unescaped-key bytes (or `nil` if the key has escapes) and the byte range of its
    /// value. Nothing is allocated; this is how hot-path messages are read.
    public static func forEachMember(
        of raw: UnsafeRawBufferPointer,
        _ visit: (_ key: UnsafeRawBufferPointer?, _ value: Range<Int>) throws -> Void
    ) throws {
        var parser = JSONParser(raw)
        parser.skipSpace()
        guard !parser.atEnd, parser.current == UInt8(ascii: "{") else { throw parser.error("expected a JSON object") }
        parser.index += 1
        parser.depth = 1
        parser.skipSpace()
        if !parser.atEnd, parser.current == UInt8(ascii: "}") {
            parser.index += 1
        } else {
            while true {
                guard !parser.atEnd, parser.current == UInt8(ascii: "\"") else { throw parser.error("expected a string key in an object") }
                let (keyRange, keyEscaped) = try parser.scanString()
                parser.skipSpace()
                guard !parser.atEnd, parser.current == UInt8(ascii: ":") else { throw parser.error("expected ':' after an object key") }
                parser.index += 1
                parser.skipSpace()
                let valueStart = parser.index
                try parser.skipValue()
                try visit(keyEscaped ? nil : UnsafeRawBufferPointer(rebasing: raw[keyRange]), valueStart..<parser.index)
                parser.skipSpace()
                guard !parser.atEnd else { throw parser.error("unexpected end of input in an object") }
                if parser.current == UInt8(ascii: ",") { parser.index += 1; parser.skipSpace(); continue }
                if parser.current == UInt8(ascii: "}") { parser.index += 1; break }
                throw parser.error("expected ',' or '}' after an object member")
            }
        }
        parser.skipSpace()
        if !parser.atEnd { throw parser.error("unexpected data after the JSON object") }
    }

    /// Validates `raw` as a single JSON value (of any type).
    public static func validate(_ raw: UnsafeRawBufferPointer) throws(JSONSyntaxError) {
        var parser = JSONParser(raw)
        parser.skipSpace()
        try parser.skipValue()
        parser.skipSpace()
        if !parser.atEnd { throw parser.error("unexpected data after the JSON value") }
    }

    /// The decoded string if `raw` is exactly one JSON string, else `nil`.
    public static func decodeString(_ raw: UnsafeRawBufferPointer) -> String? {
        guard raw.first == UInt8(ascii: "\"") else { return nil }
        var parser = JSONParser(raw)
        guard let s = try? parser.decodeString(), parser.index == raw.count else { return nil }
        return s
    }
}

extension JSONParser {
    /// Valid JSON text with the whitespace between tokens removed, byte for byte otherwise
    /// (numbers keep their exact digits). JSON strings cannot contain raw newlines, so the
    /// result is always a single line.
    public static func removingWhitespace(_ json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count)
        var inString = false
        var escaped = false
        for byte in json {
            if inString {
                out.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else {
                switch byte {
                case 0x20, 0x09, 0x0A, 0x0D: continue
                case UInt8(ascii: "\""): inString = true; out.append(byte)
                default: out.append(byte)
                }
            }
        }
        return out
    }
}
