#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `math.eval`: arithmetic by a recursive-descent parser over doubles.
///
/// Grammar (lowest precedence first; `^` and `**` are right-associative and bind tighter than
/// unary minus, so `-2^2` is −4 and `2^3^2` is 512):
///
///     expr    := term (("+" | "-") term)*
///     term    := unary (("*" | "/" | "%") unary)*
///     unary   := ("-" | "+") unary | power
///     power   := primary (("^" | "**") unary)?
///     primary := number | constant | function "(" expr ("," expr)* ")" | "(" expr ")"
///
/// Numbers are decimals (`3`, `2.5`, `.5`, `1e3`); `×`, `÷` and `−` are accepted. Constants:
/// `pi`, `e`. Functions: `sqrt`, `abs`, `min`, `max` (one or more arguments), `round` (to an
/// integer, or `round(x, digits)`), `floor`, `ceil`. `%` is the remainder (sign of the dividend).
///
/// Limits: no variables, no implicit multiplication (`2(3)`), no number words (`seven`);
/// doubles, so results are exact only up to 2^53. Errors name a 1-based character position.
///
/// In a prompt ("What is 3 * (4 + 5)?") the expression is the longest span of arithmetic
/// characters and known names containing a digit or constant, after operator words become
/// symbols ("7 times 6" → `7 * 6`, see ``spellingOutOperators(_:)``).
public enum MathEvaluator {
    /// A syntax or arithmetic error at a 1-based character position of the expression.
    public struct MathError: Error, Sendable, Equatable, CustomStringConvertible {
        /// 1-based character position in the expression.
        public var position: Int
        /// What is wrong there.
        public var message: String
        /// `message at character N`.
        public var description: String { "\(message) at character \(position)" }
    }

    static let functions: Set<String> = ["sqrt", "abs", "min", "max", "round", "floor", "ceil"]
    static let constants: [String: Double] = ["pi": Double.pi, "e": exp(1.0)]

    /// The value of `expression`.
    public static func evaluate(_ expression: String) throws(MathError) -> Double {
        var parser = Parser(Array(expression))
        let value = try parser.parseExpr()
        parser.skipSpaces()
        if parser.i < parser.chars.count {
            throw MathError(position: parser.i + 1, message: "unexpected \"\(parser.chars[parser.i])\"")
        }
        guard value.isFinite else { throw MathError(position: 1, message: "the result is not a finite number") }
        return value
    }

    /// The arithmetic in `text`: the whole text if it is only arithmetic, else its longest
    /// arithmetic span; `nil` when there is none.
    public static func findExpression(_ text: String) -> String? {
        let chars = Array(spellingOutOperators(text))
        var spans: [String] = []
        var current = ""
        var i = 0
        func endSpan() {
            var s = HandlerInput.trimmed(current)
            // A sentence's final period or a trailing "=" is not part of the expression.
            while let last = s.last, last == "." || last == "=" || last == "," { s.removeLast() }
            s = HandlerInput.trimmed(s)
            if s.contains(where: { $0.isNumber }) || TextSimilarity.tokens(s).contains(where: { constants[$0] != nil }) { spans.append(s) }
            current = ""
        }
        while i < chars.count {
            let c = chars[i]
            if c.isLetter {
                var word = ""
                var j = i
                while j < chars.count, chars[j].isLetter { word.append(chars[j]); j += 1 }
                let lower = word.lowercased()
                let isFunction = functions.contains(lower) && {
                    var k = j
                    while k < chars.count, chars[k] == " " { k += 1 }
                    return k < chars.count && chars[k] == "("
                }()
                if isFunction || constants[lower] != nil { current += word } else { endSpan() }
                i = j
                continue
            }
            if c.isNumber || " .,+-*/^%()×÷−\t".contains(c) { current.append(c) } else { endSpan() }
            i += 1
        }
        endSpan()
        // Prefer the longest span by its digits and operators, not its spaces.
        return spans.max { a, b in a.filter { !$0.isWhitespace }.count < b.filter { !$0.isWhitespace }.count }
    }

    /// Operator words as symbols, `text` lowercased: `plus` → `+`, `minus` → `-`, `times` and
    /// `multiplied by` → `*`, `divided by` → `/`, `to the power of` → `^`, `squared` → `^2`,
    /// `cubed` → `^3`, `mod`/`modulo` → `%`.
    static func spellingOutOperators(_ text: String) -> String {
        var s = " " + text.lowercased() + " "
        let words: [(String, String)] = [
            (" multiplied by ", " * "), (" divided by ", " / "), (" to the power of ", " ^ "), (" plus ", " + "),
            (" minus ", " - "), (" times ", " * "), (" squared", " ^ 2"), (" cubed", " ^ 3"), (" modulo ", " % "), (" mod ", " % "),
        ]
        for (word, symbol) in words { s = s.replacing(word, with: symbol) }
        return s
    }

    /// `value` as text: integers without a fraction, others to at most 10 decimals.
    public static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        let scaled = (value * 1e10).rounded() / 1e10
        return "\(scaled)"
    }

    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let expression: String
        if let given = try HandlerInput.string(input, "expression") {
            expression = given
        } else {
            let text = try HandlerInput.text(input)
            guard let found = (try? evaluate(text)) != nil ? text : findExpression(text) else {
                throw TaskFailure(.invalidInput, "\"text\": expected an arithmetic expression, found none")
            }
            expression = HandlerInput.trimmed(found)
        }
        do {
            let value = try evaluate(expression)
            return .object([
                JSONMember("output", .string(format(value))),
                JSONMember("value", .number(value)),
                JSONMember("expression", .string(expression)),
            ])
        } catch {
            throw TaskFailure(.invalidInput, "\"expression\" \"\(expression)\": \(error.description)")
        }
    }

    struct Parser {
        let chars: [Character]
        var i = 0
        /// Nesting depth, bounded so a hostile input cannot overflow the stack.
        var depth = 0

        init(_ chars: [Character]) { self.chars = chars }

        mutating func skipSpaces() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

        mutating func peek() -> Character? {
            skipSpaces()
            return i < chars.count ? chars[i] : nil
        }

        func error(_ message: String, at position: Int? = nil) -> MathError {
            MathError(position: (position ?? i) + 1, message: message)
        }

        mutating func parseExpr() throws(MathError) -> Double {
            depth += 1
            defer { depth -= 1 }
            guard depth < 200 else { throw error("the expression nests too deeply") }
            var value = try parseTerm()
            while let c = peek(), c == "+" || c == "-" || c == "−" {
                i += 1
                let rhs = try parseTerm()
                value = c == "+" ? value + rhs : value - rhs
            }
            return value
        }

        mutating func parseTerm() throws(MathError) -> Double {
            var value = try parseUnary()
            while let c = peek(), c == "*" || c == "/" || c == "%" || c == "×" || c == "÷" {
                if c == "*", i + 1 < chars.count, chars[i + 1] == "*" { break }
                let at = i
                i += 1
                let rhs = try parseUnary()
                switch c {
                case "*", "×": value *= rhs
                case "%":
                    guard rhs != 0 else { throw error("remainder by zero", at: at) }
                    value = value.truncatingRemainder(dividingBy: rhs)
                default:
                    guard rhs != 0 else { throw error("division by zero", at: at) }
                    value /= rhs
                }
            }
            return value
        }

        mutating func parseUnary() throws(MathError) -> Double {
            if let c = peek(), c == "-" || c == "+" || c == "−" {
                i += 1
                depth += 1
                defer { depth -= 1 }
                guard depth < 200 else { throw error("the expression nests too deeply") }
                let v = try parseUnary()
                return c == "+" ? v : -v
            }
            return try parsePower()
        }

        mutating func parsePower() throws(MathError) -> Double {
            let base = try parsePrimary()
            guard let c = peek() else { return base }
            if c == "^" {
                i += 1
            } else if c == "*", i + 1 < chars.count, chars[i + 1] == "*" {
                i += 2
            } else {
                return base
            }
            let at = i - 1
            let exponent = try parseUnary()
            let v = pow(base, exponent)
            guard !v.isNaN else { throw error("\(MathEvaluator.format(base))^\(MathEvaluator.format(exponent)) is not a real number", at: at) }
            return v
        }

        mutating func parsePrimary() throws(MathError) -> Double {
            guard let c = peek() else { throw error("expected a number, found the end of the expression") }
            if c.isNumber || c == "." { return try parseNumber() }
            if c == "(" {
                let open = i
                i += 1
                let v = try parseExpr()
                guard let close = peek() else { throw error("missing \")\" to close this \"(\"", at: open) }
                guard close == ")" else { throw error("expected \")\" or an operator, found \"\(close)\"") }
                i += 1
                return v
            }
            if c.isLetter {
                let start = i
                var name = ""
                while i < chars.count, chars[i].isLetter || chars[i].isNumber { name.append(chars[i]); i += 1 }
                let lower = name.lowercased()
                if let k = MathEvaluator.constants[lower] { return k }
                guard MathEvaluator.functions.contains(lower) else { throw error("unknown name \"\(name)\"", at: start) }
                guard peek() == "(" else { throw error("expected \"(\" after \(lower)") }
                i += 1
                var args = [try parseExpr()]
                while peek() == "," { i += 1; args.append(try parseExpr()) }
                guard peek() == ")" else { throw error("expected \")\" to close \(lower)(") }
                i += 1
                return try apply(lower, args, at: start)
            }
            throw error("expected a number, found \"\(c)\"")
        }

        func apply(_ name: String, _ args: [Double], at start: Int) throws(MathError) -> Double {
            func arity(_ n: ClosedRange<Int>) throws(MathError) {
                guard n.contains(args.count) else {
                    let expected = n.lowerBound == n.upperBound ? "\(n.lowerBound)" : "\(n.lowerBound) to \(n.upperBound)"
                    throw error("\(name) takes \(expected) argument\(n.upperBound == 1 ? "" : "s"), found \(args.count)", at: start)
                }
            }
            switch name {
            case "sqrt":
                try arity(1...1)
                guard args[0] >= 0 else { throw error("sqrt of a negative number", at: start) }
                return args[0].squareRoot()
            case "abs": try arity(1...1); return abs(args[0])
            case "floor": try arity(1...1); return args[0].rounded(.down)
            case "ceil": try arity(1...1); return args[0].rounded(.up)
            case "min": return args.min() ?? 0
            case "max": return args.max() ?? 0
            default: // round
                try arity(1...2)
                guard args.count == 2 else { return args[0].rounded(.toNearestOrAwayFromZero) }
                guard args[1] == args[1].rounded(), (0...15).contains(args[1]) else { throw error("round's digits must be a whole number from 0 to 15", at: start) }
                let scale = pow(10, args[1])
                return (args[0] * scale).rounded(.toNearestOrAwayFromZero) / scale
            }
        }

        mutating func parseNumber() throws(MathError) -> Double {
            let start = i
            var s = ""
            while i < chars.count, chars[i].isASCII, chars[i].isNumber { s.append(chars[i]); i += 1 }
            if i < chars.count, chars[i] == "." {
                s.append("."); i += 1
                while i < chars.count, chars[i].isASCII, chars[i].isNumber { s.append(chars[i]); i += 1 }
            }
            // An exponent, only when digits follow (`2e3`, but `2e` is 2 then a name).
            if i < chars.count, chars[i] == "e" || chars[i] == "E" {
                var j = i + 1
                var exp = "e"
                if j < chars.count, chars[j] == "+" || chars[j] == "-" { exp.append(chars[j]); j += 1 }
                var digits = ""
                while j < chars.count, chars[j].isASCII, chars[j].isNumber { digits.append(chars[j]); j += 1 }
                if !digits.isEmpty { s += exp + digits; i = j }
            }
            if s.hasPrefix(".") { s = "0" + s }
            if s.hasSuffix(".") { s += "0" }
            guard s != "0.0" || start + 1 < i || chars[start] != ".", let v = Double(s) else { throw error("malformed number", at: start) }
            return v
        }
    }
}
