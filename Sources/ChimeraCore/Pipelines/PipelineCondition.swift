/// A step's `when` expression, parsed once and evaluated over the template context.
///
/// Grammar (lowest precedence first):
///
/// ```
/// expr    := or
/// or      := and ('||' and)*
/// and     := not ('&&' not)*
/// not     := '!' not | cmp
/// cmp     := primary (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'contains') primary)?
/// primary := path | string | number | 'true' | 'false' | 'null' | '(' expr ')'
/// path    := name ('.' name | '[' digits ']')*        name := [A-Za-z_][A-Za-z0-9_-]*
/// string  := '…' or "…"  (backslash escapes \\ \' \" \n \t)
/// ```
///
/// `!` binds looser than a comparison: `!a == b` is `!(a == b)`.
///
/// Semantics, over JSON values:
/// - a path that does not resolve is `null`;
/// - truthiness: `null`, `false`, `0`, `""`, `[]` and `{}` are false, everything else is true;
/// - `==` / `!=` compare JSON values (`1 == 1.0`; a string never equals a number; object member
///   order does not matter);
/// - `<`, `<=`, `>`, `>=` compare two numbers, or two strings lexicographically; anything else
///   is false;
/// - `a contains b`: substring when both are strings, element when `a` is an array, key when `a`
///   is an object and `b` a string; anything else is false.
///
/// ```swift
/// let when = try PipelineCondition.parse("steps.classify.json.label == 'urgent' && !inputs.dry_run")
/// when.paths                 // ["steps.classify.json.label", "inputs.dry_run"]
/// when.evaluate(in: context) // true or false
/// ```
public struct PipelineCondition: Sendable, Equatable {
    /// The expression as written.
    public let text: String
    let root: ConditionNode
    /// Each path read, with its UTF-8 offset in ``text``, in the order they appear.
    let pathReferences: [(path: String, offset: Int)]

    /// Parses `text`.
    ///
    /// - Throws: ``PipelineConditionError`` with the UTF-8 offset in `text` of the first problem.
    public static func parse(_ text: String) throws(PipelineConditionError) -> PipelineCondition {
        var parser = ConditionParser(Array(text.utf8))
        let root = try parser.parseExpression()
        parser.skipSpace()
        if !parser.atEnd {
            throw parser.unexpected("an operator ('&&', '||', '==', …) or the end of the condition")
        }
        return PipelineCondition(text: text, root: root, pathReferences: parser.paths)
    }

    /// Every path the expression reads (`inputs.flag`, `steps.classify.json.label`, `item.lang`),
    /// as written, in the order they appear.
    public var paths: [String] { pathReferences.map(\.path) }

    /// Evaluates over the template context object (see ``PipelineDefinition``'s doc comment).
    public func evaluate(in context: JSONValue) -> Bool {
        root.value(in: context).isTruthy
    }

    /// Two conditions are equal when their texts are.
    public static func == (lhs: PipelineCondition, rhs: PipelineCondition) -> Bool { lhs.text == rhs.text }
}

/// Why a `when` expression cannot be parsed, and where.
public struct PipelineConditionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// UTF-8 offset in the expression's text (0-based) of the offending character.
    public var offset: Int
    /// What was expected and what was found.
    public var message: String

    /// An error at UTF-8 `offset` of the expression.
    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    /// `offset 7: expected a value, found the end of the condition`.
    public var description: String { "offset \(offset): \(message)" }
}

// MARK: - Tree and evaluation

/// One step of a path: an object key or an array index.
enum PathComponent: Sendable, Equatable {
    case key(String)
    case index(Int)
}

enum ComparisonOperator: String, Sendable, Equatable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", contains
}

indirect enum ConditionNode: Sendable, Equatable {
    case path([PathComponent])
    case literal(JSONValue)
    case not(ConditionNode)
    case and(ConditionNode, ConditionNode)
    case or(ConditionNode, ConditionNode)
    case compare(ComparisonOperator, ConditionNode, ConditionNode)

    func value(in context: JSONValue) -> JSONValue {
        switch self {
        case .path(let components): return context.resolve(components) ?? .null
        case .literal(let value): return value
        case .not(let operand): return .bool(!operand.value(in: context).isTruthy)
        case .and(let lhs, let rhs): return .bool(lhs.value(in: context).isTruthy && rhs.value(in: context).isTruthy)
        case .or(let lhs, let rhs): return .bool(lhs.value(in: context).isTruthy || rhs.value(in: context).isTruthy)
        case .compare(let op, let lhs, let rhs): return .bool(op.apply(lhs.value(in: context), rhs.value(in: context)))
        }
    }
}

extension ComparisonOperator {
    func apply(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch self {
        case .equal: return a.canonicalForm == b.canonicalForm
        case .notEqual: return a.canonicalForm != b.canonicalForm
        case .less: return order(a, b).map { $0 < 0 } ?? false
        case .lessOrEqual: return order(a, b).map { $0 <= 0 } ?? false
        case .greater: return order(a, b).map { $0 > 0 } ?? false
        case .greaterOrEqual: return order(a, b).map { $0 >= 0 } ?? false
        case .contains:
            switch (a, b) {
            case (.string(let haystack), .string(let needle)): return needle.isEmpty || haystack.contains(needle)
            case (.array(let items), _):
                let wanted = b.canonicalForm
                return items.contains { $0.canonicalForm == wanted }
            case (.object, .string(let key)): return a[key] != nil
            default: return false
            }
        }
    }

    /// -1, 0 or 1 for two numbers or two strings; nil for anything else (which compares false).
    func order(_ a: JSONValue, _ b: JSONValue) -> Int? {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.string(let x), .string(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        default: return nil
        }
    }
}

extension JSONValue {
    /// False for `null`, `false`, `0`, `""`, `[]` and `{}`; true otherwise.
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .number(let d): return d != 0 && !d.isNaN
        case .string(let s): return !s.isEmpty
        case .array(let items): return !items.isEmpty
        case .object(let members): return !members.isEmpty
        }
    }

    /// The value at `components` below this one, or nil when a key or index is missing.
    func resolve(_ components: [PathComponent]) -> JSONValue? {
        var current = self
        for component in components {
            switch component {
            case .key(let key):
                guard let next = current[key] else { return nil }
                current = next
            case .index(let i):
                guard case .array(let items) = current, items.indices.contains(i) else { return nil }
                current = items[i]
            }
        }
        return current
    }
}

// MARK: - Parser

/// Recursive descent over the UTF-8 bytes of a condition.
struct ConditionParser {
    let bytes: [UInt8]
    var index = 0
    var paths: [(path: String, offset: Int)] = []
    /// Parentheses and `!` nest; cap it so a hostile condition cannot exhaust the stack.
    var depth = 0
    static let maxDepth = 200

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }

    mutating func skipSpace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D {
            index += 1
        }
    }

    /// True (and consumes it) when the next token is `token`.
    mutating func accept(_ token: String) -> Bool {
        skipSpace()
        let t = Array(token.utf8)
        guard index + t.count <= bytes.count, Array(bytes[index..<(index + t.count)]) == t else { return false }
        index += t.count
        return true
    }

    func error(_ message: String, at offset: Int? = nil) -> PipelineConditionError {
        PipelineConditionError(offset: offset ?? index, message: message)
    }

    /// "expected X, found Y" at the current position.
    func unexpected(_ expected: String) -> PipelineConditionError {
        guard !atEnd else { return error("expected \(expected), found the end of the condition") }
        var end = index + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        let found = String(decoding: bytes[index..<end], as: UTF8.self)
        return error("expected \(expected), found '\(found)'")
    }

    mutating func parseExpression() throws(PipelineConditionError) -> ConditionNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("the condition nests deeper than \(Self.maxDepth) levels") }
        skipSpace()
        if atEnd && depth == 1 { throw error("the condition is empty") }
        var node = try parseAnd()
        while accept("||") { node = .or(node, try parseAnd()) }
        return node
    }

    mutating func parseAnd() throws(PipelineConditionError) -> ConditionNode {
        var node = try parseNot()
        while accept("&&") { node = .and(node, try parseNot()) }
        return node
    }

    mutating func parseNot() throws(PipelineConditionError) -> ConditionNode {
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "!"), index + 1 >= bytes.count || bytes[index + 1] != UInt8(ascii: "=") {
            index += 1
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw error("the condition nests deeper than \(Self.maxDepth) levels") }
            return .not(try parseNot())
        }
        return try parseComparison()
    }

    mutating func parseComparison() throws(PipelineConditionError) -> ConditionNode {
        let lhs = try parsePrimary()
        skipSpace()
        let start = index
        // Longest operators first, so `<=` is not read as `<`.
        for op in [ComparisonOperator.equal, .notEqual, .lessOrEqual, .greaterOrEqual, .less, .greater] where accept(op.rawValue) {
            return .compare(op, lhs, try parsePrimary())
        }
        if acceptKeyword("contains") { return .compare(.contains, lhs, try parsePrimary()) }
        // Common slips, named precisely rather than "expected the end".
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "="): throw error("'=' is not an operator; use '==' to compare", at: start)
            case UInt8(ascii: "&") where !(index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "&")):
                throw error("'&' is not an operator; use '&&'", at: start)
            case UInt8(ascii: "|") where !(index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "|")):
                throw error("'|' is not an operator; use '||'", at: start)
            default: break
            }
        }
        return lhs
    }

    /// `word` as a whole identifier (not the start of a longer name).
    mutating func acceptKeyword(_ word: String) -> Bool {
        skipSpace()
        let start = index
        guard let name = readName(), name == word else {
            index = start
            return false
        }
        return true
    }

    mutating func parsePrimary() throws(PipelineConditionError) -> ConditionNode {
        skipSpace()
        guard !atEnd else { throw unexpected("a value (a path, a string, a number, true, false, null or '(')") }
        let start = index
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "("):
            index += 1
            let inner = try parseExpression()
            guard accept(")") else { throw unexpected("')' to close the '('") }
            return inner
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .literal(.string(try parseString()))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .literal(.number(try parseNumber()))
        default:
            guard Self.isNameStart(byte) else { throw unexpected("a value (a path, a string, a number, true, false, null or '(')") }
            let name = readName()!
            switch name {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "null": return .literal(.null)
            case "contains": throw error("expected a value before 'contains'", at: start)
            default: return .path(try parsePath(first: name, start: start))
            }
        }
    }

    mutating func parsePath(first: String, start: Int) throws(PipelineConditionError) -> [PathComponent] {
        var components: [PathComponent] = [.key(first)]
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, Self.isNameStart(bytes[index]) else { throw unexpected("a name after '.'") }
                components.append(.key(readName()!))
            } else if bytes[index] == UInt8(ascii: "[") {
                index += 1
                let digitsStart = index
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
                guard index > digitsStart, index - digitsStart <= 9 else {
                    index = digitsStart
                    throw unexpected("an array index (digits) after '['")
                }
                let n = Int(String(decoding: bytes[digitsStart..<index], as: UTF8.self))!
                guard index < bytes.count, bytes[index] == UInt8(ascii: "]") else { throw unexpected("']' after the index") }
                index += 1
                components.append(.index(n))
            } else {
                break
            }
        }
        paths.append((String(decoding: bytes[start..<index], as: UTF8.self), start))
        return components
    }

    static func isNameStart(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F
    }

    static func isNameByte(_ b: UInt8) -> Bool {
        isNameStart(b) || (b >= 0x30 && b <= 0x39) || b == 0x2D
    }

    /// A name at the current position, or nil (nothing consumed).
    mutating func readName() -> String? {
        guard index < bytes.count, Self.isNameStart(bytes[index]) else { return nil }
        let start = index
        while index < bytes.count, Self.isNameByte(bytes[index]) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func parseString() throws(PipelineConditionError) -> String {
        let start = index
        let quote = bytes[index]
        index += 1
        var out: [UInt8] = []
        while index < bytes.count {
            let b = bytes[index]
            if b == quote {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { break }
                switch bytes[index + 1] {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(bytes[index + 1])
                default: throw error("unknown escape '\\\(String(decoding: [bytes[index + 1]], as: UTF8.self))' in a string (known: \\\\ \\' \\\" \\n \\t)")
                }
                index += 2
                continue
            }
            out.append(b)
            index += 1
        }
        throw error("unterminated string (no closing \(quote == UInt8(ascii: "'") ? "'" : "\""))", at: start)
    }

    mutating func parseNumber() throws(PipelineConditionError) -> Double {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ p: inout ConditionParser) -> Int {
            let s = p.index
            while p.index < p.bytes.count, p.bytes[p.index] >= 0x30, p.bytes[p.index] <= 0x39 { p.index += 1 }
            return p.index - s
        }
        guard digits(&self) > 0 else { throw error("expected digits in a number", at: start) }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw error("expected digits after the decimal point", at: start) }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw error("expected digits in the exponent", at: start) }
        }
        if index < bytes.count, Self.isNameStart(bytes[index]) { throw error("a number cannot run into a name", at: start) }
        guard let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)), value.isFinite else {
            throw error("number out of range", at: start)
        }
        return value
    }
}
