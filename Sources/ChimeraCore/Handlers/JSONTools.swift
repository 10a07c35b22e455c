/// `json.extract`, `json.repair` and `json.validate`: getting usable JSON out of model text.
///
/// - `json.extract` returns the first JSON object or array in the text: first inside a Markdown
///   code fence (```` ``` ```` or ```` ```json ````), then bare, found by matching brackets
///   (outside strings) from each `{` or `[` and keeping the first span that parses.
/// - `json.repair` parses the text as is if it can; otherwise it rewrites it token by token:
///   trailing commas removed, single-quoted strings and unquoted keys double-quoted, Python
///   `True`/`False`/`None` (and `undefined`, `NaN`) made JSON, `//` and `/* */` comments
///   dropped, missing commas between values inserted, an unterminated string and unclosed
///   brackets closed (a dangling `"key":` gets `null`). Limits: it guesses; a bare word in value
///   position becomes a string, and text with no JSON at all cannot be repaired.
/// - `json.validate` checks `json` against `schema` with ``JSONSchema`` (the subset that type
///   supports) and lists every violation.
public enum JSONTools {
    // MARK: Extract

    /// The first JSON object or array in `text`, fenced or bare; `nil` when there is none.
    public static func extract(_ text: String) -> JSONValue? {
        for block in fencedBlocks(text) {
            if let v = try? JSONParser.parse(block), isContainer(v) { return v }
            if let v = firstBareContainer(block) { return v }
        }
        return firstBareContainer(text)
    }

    static func isContainer(_ v: JSONValue) -> Bool {
        switch v {
        case .object, .array: return true
        default: return false
        }
    }

    /// The contents of each ```` ``` ```` fenced block, without its info string.
    static func fencedBlocks(_ text: String) -> [String] {
        var blocks: [String] = []
        var rest = Substring(text)
        while let open = rest.firstRange(of: "```") {
            var body = rest[open.upperBound...]
            // Skip the info string (`json`) up to the end of the line.
            if let newline = body.firstIndex(where: \.isNewline), body[..<newline].allSatisfy({ !$0.isWhitespace }) {
                body = body[body.index(after: newline)...]
            }
            guard let close = body.firstRange(of: "```") else { blocks.append(String(body)); break }
            blocks.append(String(body[..<close.lowerBound]))
            rest = body[close.upperBound...]
        }
        return blocks
    }

    /// The first balanced `{…}` or `[…]` span of `text` that parses.
    static func firstBareContainer(_ text: String) -> JSONValue? {
        let chars = Array(text)
        for start in chars.indices where chars[start] == "{" || chars[start] == "[" {
            guard let end = matchingClose(chars, from: start) else { continue }
            if let v = try? JSONParser.parse(String(chars[start...end])) { return v }
        }
        return nil
    }

    /// The index of the bracket closing the one at `start`, skipping strings.
    static func matchingClose(_ chars: [Character], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var i = start
        while i < chars.count {
            let c = chars[i]
            if inString {
                if c == "\\" { i += 1 } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "{" || c == "[" {
                depth += 1
            } else if c == "}" || c == "]" {
                depth -= 1
                if depth == 0 { return i }
            }
            i += 1
        }
        return nil
    }

    static func handleExtract(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let text = try HandlerInput.text(input)
        guard let value = extract(text) else {
            throw TaskFailure(.invalidInput, "\"text\": expected text containing a JSON object or array, found none")
        }
        return .object([JSONMember("output", .string(value.serialized)), JSONMember("json", value)])
    }

    // MARK: Repair

    /// A repaired document and what was changed.
    public struct Repair: Sendable, Equatable {
        /// The parsed document.
        public var value: JSONValue
        /// What was fixed, in the order first met (empty when the text parsed as it was).
        public var repairs: [String]
    }

    /// Why text could not be repaired.
    public struct RepairError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What went wrong.
        public var message: String
        /// The message.
        public var description: String { message }
    }

    /// `text` (a fence around it removed) as JSON, repaired if need be.
    public static func repair(_ text: String) throws(RepairError) -> Repair {
        var body = CodeFence.strip(text)
        if let v = try? JSONParser.parse(body) { return Repair(value: v, repairs: []) }
        // Start at the first bracket when prose comes first.
        if let start = body.firstIndex(where: { $0 == "{" || $0 == "[" }), start != body.startIndex {
            body = String(body[start...])
            if let v = try? JSONParser.parse(body) { return Repair(value: v, repairs: ["dropped text before the JSON"]) }
        }
        guard body.contains(where: { $0 == "{" || $0 == "[" }) else {
            throw RepairError(message: "no JSON object or array to repair (expected text starting with { or [)")
        }
        var fixer = Fixer(Array(body))
        let fixed = fixer.run()
        do {
            return Repair(value: try JSONParser.parse(fixed), repairs: fixer.repairs)
        } catch {
            throw RepairError(message: "could not repair the JSON: \(error.description) of the repaired text \(fixed)")
        }
    }

    /// The token-by-token rewriter behind ``repair(_:)``.
    struct Fixer {
        let chars: [Character]
        var i = 0
        var out = ""
        var stack: [Character] = []
        /// The last thing written ended a value, so another value needs a comma first.
        var afterValue = false
        var repairs: [String] = []

        init(_ chars: [Character]) { self.chars = chars }

        mutating func note(_ repair: String) { if !repairs.contains(repair) { repairs.append(repair) } }

        mutating func beginValue() {
            if afterValue, !stack.isEmpty { out.append(","); note("inserted a missing comma") }
            afterValue = false
        }

        /// Skips whitespace and comments from `j`; returns the next significant index.
        mutating func skipTrivia(_ start: Int, noting: Bool = true) -> Int {
            var j = start
            while j < chars.count {
                if chars[j].isWhitespace { j += 1; continue }
                if chars[j] == "/", j + 1 < chars.count, chars[j + 1] == "/" {
                    while j < chars.count, !chars[j].isNewline { j += 1 }
                    if noting { note("removed a comment") }
                    continue
                }
                if chars[j] == "/", j + 1 < chars.count, chars[j + 1] == "*" {
                    j += 2
                    while j + 1 < chars.count, !(chars[j] == "*" && chars[j + 1] == "/") { j += 1 }
                    j = min(chars.count, j + 2)
                    if noting { note("removed a comment") }
                    continue
                }
                break
            }
            return j
        }

        mutating func run() -> String {
            while true {
                i = skipTrivia(i)
                guard i < chars.count else { break }
                let c = chars[i]
                switch c {
                case "{", "[":
                    beginValue()
                    out.append(c); stack.append(c == "{" ? "}" : "]"); i += 1
                case "}", "]":
                    if let k = stack.lastIndex(of: c) {
                        if out.last == ":" { out.append("null"); note("gave a dangling key null") }
                        if k < stack.count - 1 { note("closed unclosed brackets") }
                        while stack.count > k { out.append(stack.removeLast()) }
                        afterValue = true
                    } else {
                        note("removed an unmatched \(c)")
                    }
                    i += 1
                case ",":
                    let next = skipTrivia(i + 1, noting: false)
                    if next >= chars.count || chars[next] == "}" || chars[next] == "]" || chars[next] == "," || !afterValue {
                        note("removed a trailing comma")
                    } else {
                        out.append(",")
                    }
                    afterValue = false
                    i += 1
                case ":":
                    out.append(":"); afterValue = false; i += 1
                case "\"", "'":
                    beginValue()
                    if c == "'" { note("converted single quotes to double quotes") }
                    readString(quote: c)
                    afterValue = true
                default:
                    if c.isNumber || c == "-" || c == "+" || c == "." {
                        beginValue()
                        readNumber()
                        afterValue = true
                    } else if c.isLetter || c == "_" || c == "$" {
                        beginValue()
                        readWord()
                        afterValue = true
                    } else {
                        note("removed a stray \(c)")
                        i += 1
                    }
                }
            }
            if out.last == ":" { out.append("null"); note("gave a dangling key null") }
            if !stack.isEmpty {
                note("closed unclosed brackets")
                while let close = stack.popLast() { out.append(close) }
            }
            return out
        }

        mutating func readString(quote: Character) {
            var j = i + 1
            var s = "\""
            var closed = false
            while j < chars.count {
                let c = chars[j]
                if c == "\\", j + 1 < chars.count {
                    let n = chars[j + 1]
                    if n == "'" { s.append("'") } else { s.append(c); s.append(n) }
                    j += 2; continue
                }
                if c == quote { closed = true; j += 1; break }
                if c == "\"" { s.append("\\\"") } else if c == "\n" { s.append("\\n") } else if c == "\t" { s.append("\\t") } else if c != "\r" { s.append(c) }
                j += 1
            }
            if !closed { note("closed an unterminated string") }
            s.append("\"")
            out.append(s)
            i = j
        }

        mutating func readNumber() {
            var j = i
            var s = ""
            while j < chars.count, chars[j].isNumber || "+-.eE".contains(chars[j]) { s.append(chars[j]); j += 1 }
            if s.hasPrefix("+") { s.removeFirst(); note("fixed a number") }
            if s.hasPrefix(".") { s = "0" + s; note("fixed a number") }
            if s.hasPrefix("-.") { s = "-0" + s.dropFirst(); note("fixed a number") }
            if s.hasSuffix(".") { s += "0"; note("fixed a number") }
            out.append(s)
            i = j
        }

        mutating func readWord() {
            var j = i
            var word = ""
            while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "$" || chars[j] == "-" {
                word.append(chars[j]); j += 1
            }
            i = j
            let next = skipTrivia(j, noting: false)
            if next < chars.count, chars[next] == ":" {
                var key: [UInt8] = []
                JSONValue.writeString(word, to: &key)
                out.append(String(decoding: key, as: UTF8.self))
                note("quoted unquoted keys")
                return
            }
            switch word {
            case "true", "false", "null": out.append(word)
            case "True", "TRUE": out.append("true"); note("converted Python literals")
            case "False", "FALSE": out.append("false"); note("converted Python literals")
            case "None", "NULL", "Null", "undefined", "NaN", "nil": out.append("null"); note("converted Python literals")
            default:
                var quoted: [UInt8] = []
                JSONValue.writeString(word, to: &quoted)
                out.append(String(decoding: quoted, as: UTF8.self))
                note("quoted a bare word")
            }
        }
    }

    static func handleRepair(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let text: String
        if case .string(let s)? = input["json"] { text = s } else { text = try HandlerInput.text(input) }
        do {
            let r = try repair(text)
            return .object([
                JSONMember("output", .string(r.value.serialized)),
                JSONMember("json", r.value),
                JSONMember("repairs", .array(r.repairs.map { .string($0) })),
            ])
        } catch {
            throw TaskFailure(.invalidInput, "\"text\": \(error.message)")
        }
    }

    // MARK: Validate

    /// The violations of `value` against `schema`.
    public static func validate(_ value: JSONValue, schema: JSONValue) throws(TaskFailure) -> [SchemaViolation] {
        do {
            return try JSONSchema(schema).validate(value)
        } catch {
            throw TaskFailure(.invalidInput, "\"schema\": unsupported or invalid schema at \(error.path): \(error.message)")
        }
    }

    static func handleValidate(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        guard let schema = input["schema"] else {
            throw TaskFailure(.invalidInput, "missing \"schema\": expected a JSON Schema object")
        }
        let value: JSONValue
        switch input["json"] {
        case .string(let s)?:
            // A string is JSON text; a fence or prose around it is tolerated.
            if let v = try? JSONParser.parse(CodeFence.strip(s)) {
                value = v
            } else if let v = extract(s) {
                value = v
            } else {
                throw TaskFailure(.invalidInput, "\"json\": expected JSON (a value or JSON text), found text that does not parse")
            }
        case let v?:
            value = v
        case nil:
            guard case .string(let text)? = input["text"], let v = extract(text) ?? (try? JSONParser.parse(CodeFence.strip(text))) else {
                throw TaskFailure(.invalidInput, "missing \"json\": expected the JSON to validate (or a \"text\" containing it)")
            }
            value = v
        }
        let violations = try validate(value, schema: schema)
        let output = violations.isEmpty ? "valid" : "invalid: " + violations.map(\.description).joined(separator: "; ")
        return .object([
            JSONMember("output", .string(output)),
            JSONMember("valid", .bool(violations.isEmpty)),
            JSONMember("violations", .array(violations.map {
                .object([JSONMember("path", .string($0.path)), JSONMember("message", .string($0.message))])
            })),
        ])
    }
}
