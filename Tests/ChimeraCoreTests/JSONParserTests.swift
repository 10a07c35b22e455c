import Testing
@testable import ChimeraCore

/// The syntax error `JSONParser.parse` reports for `bytes`, or `nil` if it parses.
func parseError(_ bytes: [UInt8]) -> JSONSyntaxError? {
    do throws(JSONSyntaxError) {
        _ = try JSONParser.parse(bytes)
        return nil
    } catch {
        return error
    }
}

/// The syntax error the validating (non-building) path reports for `bytes`, or `nil`.
func validateError(_ bytes: [UInt8]) -> JSONSyntaxError? {
    bytes.withUnsafeBytes { raw in
        do throws(JSONSyntaxError) {
            try JSONParser.validate(raw)
            return nil
        } catch {
            return error
        }
    }
}

/// One input the parser must refuse, and where the error must point.
struct RejectCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var offset: Int
    var reason: String

    init(_ name: String, _ text: String, offset: Int, _ reason: String) {
        self.init(name, Array(text.utf8), offset: offset, reason)
    }

    init(_ name: String, _ bytes: [UInt8], offset: Int, _ reason: String) {
        self.name = name
        self.bytes = bytes
        self.offset = offset
        self.reason = reason
    }

    var testDescription: String { name }
}

let quote = UInt8(ascii: "\"")

let rejectCases: [RejectCase] = [
    RejectCase("trailing comma in an array", "[1,2,]", offset: 5, "expected a JSON value"),
    RejectCase("trailing comma in an object", #"{"a":1,}"#, offset: 7, "expected a string key in an object"),
    RejectCase("leading zero", "01", offset: 1, "unexpected data after the JSON value"),
    RejectCase("negative leading zero", "-01", offset: 2, "unexpected data after the JSON value"),
    RejectCase("leading zero in an array", "[01]", offset: 2, "expected ',' or ']' after an array element"),
    RejectCase("lone minus", "-", offset: 1, "unexpected end of input in a number"),
    RejectCase("minus before a bracket", "[-]", offset: 1, "expected a JSON value"),
    RejectCase("fraction without digits", "1.", offset: 2, "expected a digit after '.'"),
    RejectCase("fraction then exponent", "1.e5", offset: 2, "expected a digit after '.'"),
    RejectCase("exponent without digits", "1e", offset: 2, "expected a digit in the exponent"),
    RejectCase("signed exponent without digits", "1e+", offset: 3, "expected a digit in the exponent"),
    RejectCase("leading dot", ".5", offset: 0, "expected a JSON value"),
    RejectCase("leading plus", "+1", offset: 0, "expected a JSON value"),
    RejectCase("NaN", "NaN", offset: 0, "expected a JSON value"),
    RejectCase("single quotes", "'a'", offset: 0, "expected a JSON value"),
    RejectCase("raw control byte in a string", [quote, 0x61, 0x01, 0x62, quote], offset: 2, "raw control character in a string (must be escaped)"),
    RejectCase("raw newline in a string", [quote, 0x61, 0x0A, quote], offset: 2, "raw control character in a string (must be escaped)"),
    RejectCase("raw tab in a string", [quote, 0x09, quote], offset: 1, "raw control character in a string (must be escaped)"),
    RejectCase("invalid escape", #""a\x""#, offset: 3, "invalid escape character"),
    RejectCase("escaped apostrophe", #""\'""#, offset: 2, "invalid escape character"),
    RejectCase("bad hex digit in \\u", #""\u12G4""#, offset: 5, "invalid hex digit in \\u escape"),
    RejectCase("truncated \\u", #""\u12""#, offset: 2, "truncated \\u escape"),
    RejectCase("unterminated string", #"["abc"#, offset: 1, "unterminated string"),
    RejectCase("unterminated escape", #""abc\"#, offset: 5, "unterminated escape sequence"),
    RejectCase("0xFF in a string", [quote, 0x61, 0xFF, quote], offset: 2, "invalid UTF-8 in a string"),
    RejectCase("overlong NUL", [quote, 0xC0, 0x80, quote], offset: 1, "invalid UTF-8 in a string"),
    RejectCase("overlong 3-byte", [quote, 0xE0, 0x80, 0xAF, quote], offset: 1, "invalid UTF-8 in a string"),
    RejectCase("overlong 4-byte", [quote, 0xF0, 0x8F, 0xBF, 0xBF, quote], offset: 1, "invalid UTF-8 in a string"),
    RejectCase("encoded surrogate", [quote, 0x78, 0xED, 0xA0, 0x80, quote], offset: 2, "invalid UTF-8 in a string"),
    RejectCase("above U+10FFFF", [quote, 0xF4, 0x90, 0x80, 0x80, quote], offset: 1, "invalid UTF-8 in a string"),
    RejectCase("lone continuation byte", [quote, 0x61, 0x62, 0x80, quote], offset: 3, "invalid UTF-8 in a string"),
    RejectCase("truncated sequence", [quote, 0xE2, 0x82, quote], offset: 1, "invalid UTF-8 in a string"),
    RejectCase("bad byte in an object key", [0x7B, quote, 0xFE, quote, 0x3A, 0x31, 0x7D], offset: 2, "invalid UTF-8 in a string"),
    RejectCase("trailing garbage", "{} x", offset: 3, "unexpected data after the JSON value"),
    RejectCase("two documents", "[1] [2]", offset: 4, "unexpected data after the JSON value"),
    RejectCase("literal with extra letters", "truex", offset: 4, "unexpected data after the JSON value"),
    RejectCase("misspelt literal", "nulL", offset: 3, "invalid literal (expected null)"),
    RejectCase("truncated literal", "fals", offset: 0, "unexpected end of input in a literal"),
    RejectCase("empty input", "", offset: 0, "unexpected end of input, expected a value"),
    RejectCase("only spaces", "   ", offset: 3, "unexpected end of input, expected a value"),
    RejectCase("missing colon", #"{"a" 1}"#, offset: 5, "expected ':' after an object key"),
    RejectCase("unquoted key", "{a:1}", offset: 1, "expected a string key in an object"),
    RejectCase("missing comma", "[1 2]", offset: 3, "expected ',' or ']' after an array element"),
    RejectCase("missing comma in an object", #"{"a":1 "b":2}"#, offset: 7, "expected ',' or '}' after an object member"),
    RejectCase("unclosed array", "[1,", offset: 3, "unexpected end of input, expected a value"),
    RejectCase("unclosed object", #"{"a":1"#, offset: 6, "unexpected end of input in an object"),
    RejectCase("nesting 513 deep", String(repeating: "[", count: 513) + String(repeating: "]", count: 513), offset: 512, "nesting deeper than 512 levels"),
]

/// A random JSON value of bounded depth: every type, awkward strings and awkward numbers.
func randomJSON(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
    let kind = depth <= 0 ? rng.int(in: 0...3) : rng.int(in: 0...5)
    switch kind {
    case 0: return .null
    case 1: return .bool(rng.chance(1, in: 2))
    case 2: return .number(randomNumber(&rng))
    case 3: return .string(randomString(&rng))
    case 4: return .array((0..<rng.int(in: 0...4)).map { _ in randomJSON(&rng, depth: depth - 1) })
    default:
        return .object((0..<rng.int(in: 0...4)).map { _ in JSONMember(randomString(&rng), randomJSON(&rng, depth: depth - 1)) })
    }
}

func randomNumber(_ rng: inout SplitMix64) -> Double {
    switch rng.int(in: 0...4) {
    case 0: return Double(rng.int(in: -1_000...1_000))
    case 1: return Double(rng.int(in: -(1 << 53)...(1 << 53)))
    case 2: return Double(rng.int(in: -100_000...100_000)) / 1_000
    case 3: return rng.pick([0.1, -2.5e-8, 1e21, 9e15, 8_999_999_999_999_999, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude, -0.0, 123.456e-7])
    default:
        // Any finite double, from its bits.
        while true {
            let d = Double(bitPattern: rng.next())
            if d.isFinite { return d }
        }
    }
}

func randomString(_ rng: inout SplitMix64) -> String {
    var scalars = String.UnicodeScalarView()
    for _ in 0..<rng.int(in: 0...10) {
        let value: UInt32
        switch rng.int(in: 0...5) {
        case 0: value = UInt32(rng.int(in: 0...0x1F))                       // control characters
        case 1: value = UInt32(rng.pick(Array("\"\\/ \u{7F}".unicodeScalars)).value)
        case 2: value = UInt32(rng.int(in: 0x20...0x7E))                    // printable ASCII
        case 3: value = UInt32(rng.int(in: 0x80...0x7FF))                   // two bytes
        case 4: value = UInt32(rng.pick([0x800, 0x20AC, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF]))
        default: value = UInt32(rng.int(in: 0x10000...0x10FFFF))            // four bytes
        }
        scalars.append(Unicode.Scalar(value)!)
    }
    return String(scalars)
}

/// Writes `value` like `JSONValue.write(to:)` but with random JSON whitespace between tokens.
func writeSpaced(_ value: JSONValue, _ rng: inout SplitMix64, to out: inout [UInt8]) {
    func space(_ rng: inout SplitMix64, _ out: inout [UInt8]) {
        for _ in 0..<rng.int(in: 0...2) { out.append(rng.pick([0x20, 0x09, 0x0A, 0x0D])) }
    }
    space(&rng, &out)
    switch value {
    case .array(let items):
        out.append(UInt8(ascii: "["))
        for (i, item) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            writeSpaced(item, &rng, to: &out)
        }
        space(&rng, &out)
        out.append(UInt8(ascii: "]"))
    case .object(let members):
        out.append(UInt8(ascii: "{"))
        for (i, member) in members.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            space(&rng, &out)
            JSONValue.writeString(member.key, to: &out)
            space(&rng, &out)
            out.append(UInt8(ascii: ":"))
            writeSpaced(member.value, &rng, to: &out)
        }
        space(&rng, &out)
        out.append(UInt8(ascii: "}"))
    default:
        value.write(to: &out)
    }
    space(&rng, &out)
}

@Suite struct JSONParserTests {
    // MARK: Round trips

    @Test func parser_everyValueType_roundTripsThroughSerialized() throws {
        let documents: [(String, JSONValue)] = [
            ("null", .null),
            ("true", .bool(true)),
            ("false", .bool(false)),
            ("0", .number(0)),
            ("-12", .number(-12)),
            ("3.25", .number(3.25)),
            ("-1.5e3", .number(-1500)),
            ("2E-2", .number(0.02)),
            (#""text""#, .string("text")),
            ("[]", .array([])),
            ("{}", .object([])),
            (" [ 1 , \"two\" , [ null ] , { } ] ", .array([.number(1), .string("two"), .array([.null]), .object([])])),
            ("\t{\r\n \"b\" : 1 , \"a\" : { \"c\" : [ true , false ] } }\n",
             .object([JSONMember("b", .number(1)), JSONMember("a", .object([JSONMember("c", .array([.bool(true), .bool(false)]))]))])),
        ]
        for (text, expected) in documents {
            let parsed = try JSONParser.parse(text)
            #expect(parsed == expected, "\(text)")
            let again = try JSONParser.parse(parsed.serialized)
            #expect(again == expected, "\(text) -> \(parsed.serialized)")
        }
    }

    @Test func parser_randomDocuments_roundTripAndSerializeStably() throws {
        for seed in UInt64(1)...300 {
            var rng = SplitMix64(seed: seed)
            let value = randomJSON(&rng, depth: 4)
            let text = value.serialized
            let parsed = try JSONParser.parse(Array(text.utf8)).value
            #expect(parsed == value, "seed \(seed): \(text)")
            #expect(parsed.serialized == text, "seed \(seed)")
            #expect(validateError(Array(text.utf8)) == nil, "seed \(seed)")
        }
    }

    @Test func parser_objectMembers_keepSourceOrderAndDuplicates() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":2,"z":3}"#)
        #expect(value == .object([JSONMember("z", .number(1)), JSONMember("a", .number(2)), JSONMember("z", .number(3))]))
        #expect(value["z"] == .number(3))
        #expect(value["missing"] == nil)
        #expect(value.serialized == #"{"z":1,"a":2,"z":3}"#)
    }

    @Test func parser_nesting512Deep_isAccepted() throws {
        let arrays = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(parseError(Array(arrays.utf8)) == nil)
        #expect(validateError(Array(arrays.utf8)) == nil)
        let objects = String(repeating: #"{"a":"#, count: 512) + "1" + String(repeating: "}", count: 512)
        #expect(parseError(Array(objects.utf8)) == nil)
        let tooDeep = String(repeating: #"{"a":"#, count: 513) + "1" + String(repeating: "}", count: 513)
        let error = try #require(parseError(Array(tooDeep.utf8)))
        #expect(error.offset == 512 * 5)
        #expect(error.reason == "nesting deeper than 512 levels")
    }

    @Test func forEachMember_valueNesting_countsTheEnclosingObjectTowardTheCap() {
        func scan(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBytes { raw in
                (try? JSONParser.forEachMember(of: raw) { _, _ in }) != nil
            }
        }
        let fits = #"{"p":"# + String(repeating: "[", count: 511) + String(repeating: "]", count: 511) + "}"
        let tooDeep = #"{"p":"# + String(repeating: "[", count: 512) + String(repeating: "]", count: 512) + "}"
        #expect(scan(fits))
        #expect(!scan(tooDeep))
    }

    // MARK: Strictness

    @Test(arguments: rejectCases)
    func parser_invalidInput_isRejectedAtTheOffendingByte(_ reject: RejectCase) throws {
        let error = try #require(parseError(reject.bytes), "\(reject.name) was accepted")
        #expect(error.offset == reject.offset)
        #expect(error.reason == reject.reason)
        #expect(error.description == "\(reject.reason) at byte \(reject.offset)")
    }

    @Test(arguments: rejectCases)
    func validator_invalidInput_reportsTheSameErrorAsTheParser(_ reject: RejectCase) {
        #expect(validateError(reject.bytes) == parseError(reject.bytes))
    }

    @Test func parser_minusBeforeALetter_isRejected() {
        #expect(parseError(Array("-x".utf8)) != nil)
        #expect(parseError(Array("--1".utf8)) != nil)
    }

    @Test func parser_validMultiByteUTF8_isAccepted() throws {
        let text = "\"é € 😀 \u{10FFFF} \u{D7FF} \u{E000}\""
        #expect(try JSONParser.parse(text) == .string("é € 😀 \u{10FFFF} \u{D7FF} \u{E000}"))
    }

    // MARK: Escapes

    @Test func parser_escapes_decodeToTheirCharacters() throws {
        let value = try JSONParser.parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC""#)
        #expect(value == .string("\"\\/\u{08}\u{0C}\n\r\tAé€"))
    }

    @Test func parser_surrogatePairEscape_decodesToOneScalar() throws {
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSONParser.parse(#""\uD83D\uDE00!""#) == .string("😀!"))
        #expect(try JSONParser.parse(#""a\udbff\udfffb""#) == .string("a\u{10FFFF}b"))
    }

    @Test func parser_loneSurrogateEscapes_decodeToReplacementCharacter() throws {
        #expect(try JSONParser.parse(#""\ud800""#) == .string("\u{FFFD}"))
        #expect(try JSONParser.parse(#""\udc00x""#) == .string("\u{FFFD}x"))
        #expect(try JSONParser.parse(#""\ud83d\u0041""#) == .string("\u{FFFD}A"))
        #expect(try JSONParser.parse(#""\ud83d\ud83d\ude00""#) == .string("\u{FFFD}😀"))
    }

    @Test func parser_escapedNul_decodes() throws {
        #expect(try JSONParser.parse(#""a\u0000b""#) == .string("a\u{0}b"))
    }

    // MARK: Paths

    @Test func parser_recordPaths_givesTheOffsetOfEveryValue() throws {
        let text = #"{"a": [1, {"b": true}], "odd key": null, "": 2}"#
        let bytes = Array(text.utf8)
        let (_, offsets) = try JSONParser.parse(bytes, recordPaths: true)
        func offset(of needle: String, from: Int = 0) -> Int {
            let n = Array(needle.utf8)
            return (from...(bytes.count - n.count)).first { Array(bytes[$0..<($0 + n.count)]) == n }!
        }
        #expect(offsets["$"] == 0)
        #expect(offsets["$.a"] == offset(of: "[1"))
        #expect(offsets["$.a[0]"] == offset(of: "1,"))
        #expect(offsets["$.a[1]"] == offset(of: #"{"b""#))
        #expect(offsets["$.a[1].b"] == offset(of: "true"))
        #expect(offsets["$.a[1].b"] == 16)
        #expect(offsets[#"$["odd key"]"#] == offset(of: "null"))
        #expect(offsets[#"$[""]"#] == offset(of: "2}"))
        #expect(offsets.count == 7)
    }

    @Test func parser_withoutRecordPaths_recordsNothing() throws {
        let (_, offsets) = try JSONParser.parse(Array(#"{"a":[1]}"#.utf8))
        #expect(offsets.isEmpty)
    }

    @Test func jsonPath_keysThatAreNotIdentifiers_areQuoted() {
        #expect(JSONPath.appending(key: "pools", to: "$") == "$.pools")
        #expect(JSONPath.appending(key: "max_line-bytes9", to: "$.a") == "$.a.max_line-bytes9")
        #expect(JSONPath.appending(key: "odd key", to: "$") == #"$["odd key"]"#)
        #expect(JSONPath.appending(key: "", to: "$") == #"$[""]"#)
        #expect(JSONPath.appending(key: "a.b", to: "$") == #"$["a.b"]"#)
        #expect(JSONPath.appending(key: "q\"", to: "$") == #"$["q\""]"#)
    }

    // MARK: Member scanning and helpers

    @Test func forEachMember_reportsKeysAndExactValueRanges() throws {
        let text = #" { "a" : [1, 2] , "b\u0041" : "x" , "c":{"d":null} } "#
        let bytes = Array(text.utf8)
        var seen: [(String?, String)] = []
        try bytes.withUnsafeBytes { raw in
            try JSONParser.forEachMember(of: raw) { key, range in
                seen.append((key.map { String(decoding: $0, as: UTF8.self) }, String(decoding: bytes[range], as: UTF8.self)))
            }
        }
        #expect(seen.map(\.0) == ["a", nil, "c"])
        #expect(seen.map(\.1) == ["[1, 2]", #""x""#, #"{"d":null}"#])
    }

    @Test func forEachMember_nonObjectsAndTrailingData_areRejected() {
        for text in ["[1]", "", #"{"a":1} x"#, #"{"a":1,}"#, #"{"a":01}"#] {
            let bytes = Array(text.utf8)
            #expect(throws: JSONSyntaxError.self, "\(text)") {
                try bytes.withUnsafeBytes { raw in try JSONParser.forEachMember(of: raw) { _, _ in } }
            }
        }
    }

    @Test func decodeString_acceptsExactlyOneString() {
        func decode(_ text: String) -> String? { Array(text.utf8).withUnsafeBytes { JSONParser.decodeString($0) } }
        #expect(decode(#""a\nb""#) == "a\nb")
        #expect(decode(#""""#) == "")
        #expect(decode(#""a" "#) == nil)
        #expect(decode("abc") == nil)
        #expect(decode(#""abc"#) == nil)
    }

    @Test func utf8Validation_firstInvalidByte_pointsAtTheStartOfTheBadSequence() {
        func first(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { UTF8Validation.firstInvalidByte(in: $0) } }
        #expect(first(Array("plain ascii".utf8)) == nil)
        #expect(first(Array("é€😀".utf8)) == nil)
        #expect(first([0x61, 0xFF]) == 1)
        #expect(first([0xC1, 0xBF]) == 0)
        #expect(first([0x61, 0x62, 0xED, 0xBF, 0xBF]) == 2)
        #expect(first([0xF5, 0x80, 0x80, 0x80]) == 0)
        #expect(first([0xE2, 0x82, 0xAC, 0xE2, 0x82]) == 3)
        #expect(first([0xC3, 0x41]) == 0)
        #expect([UInt8]([0xEF, 0xBF, 0xBF]).withUnsafeBytes { UTF8Validation.isValid($0) })
        #expect(![UInt8]([0xEF, 0xBF]).withUnsafeBytes { UTF8Validation.isValid($0) })
    }

    // MARK: Serialization

    @Test func serialized_numbers_areIntegersWhenWholeAndNullWhenNotFinite() {
        #expect(JSONValue.number(1).serialized == "1")
        #expect(JSONValue.number(-0.0).serialized == "0")
        #expect(JSONValue.number(-42).serialized == "-42")
        #expect(JSONValue.number(0.5).serialized == "0.5")
        #expect(JSONValue.number(8_999_999_999_999_999).serialized == "8999999999999999")
        #expect(JSONValue.number(.infinity).serialized == "null")
        #expect(JSONValue.number(-.infinity).serialized == "null")
        #expect(JSONValue.number(.nan).serialized == "null")
    }

    @Test func serialized_strings_escapeOnlyWhatJSONRequires() {
        #expect(JSONValue.string("a\"b\\c/d\n\r\t\u{01}\u{1F}\u{08}é😀").serialized == #""a\"b\\c/d\n\r\t\u0001\u001f\u0008é😀""#)
    }

    @Test func jsonValue_accessors_describeTheValue() {
        #expect(JSONValue.string("s").stringValue == "s")
        #expect(JSONValue.number(1).stringValue == nil)
        #expect(JSONValue.null["a"] == nil)
        #expect([JSONValue.null, .bool(true), .number(1), .string(""), .array([]), .object([])].map(\.typeName)
            == ["null", "a boolean", "a number", "a string", "an array", "an object"])
    }

    // MARK: Whitespace removal

    @Test func removingWhitespace_randomlySpacedDocuments_giveTheCompactSerialization() throws {
        for seed in UInt64(400)...599 {
            var rng = SplitMix64(seed: seed)
            let value = randomJSON(&rng, depth: 4)
            var spaced: [UInt8] = []
            writeSpaced(value, &rng, to: &spaced)
            #expect(try JSONParser.parse(spaced).value == value, "seed \(seed)")
            let compact = JSONParser.removingWhitespace(spaced)
            #expect(compact == Array(value.serialized.utf8), "seed \(seed)")
            #expect(!compact.contains(0x0A), "seed \(seed)")
        }
    }

    @Test func removingWhitespace_keepsSpacesInsideStringsAndNumberDigits() {
        let text = " { \"a b\" : [ 1.50 , -0e+3 , \"x\\\" \\\\\" ] }\n"
        #expect(String(decoding: JSONParser.removingWhitespace(Array(text.utf8)), as: UTF8.self) == #"{"a b":[1.50,-0e+3,"x\" \\"]}"#)
    }
}
