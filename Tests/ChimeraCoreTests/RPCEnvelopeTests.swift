import Testing
@testable import ChimeraCore

/// Parses `bytes` (one line, without its newline) as a JSON-RPC envelope.
func parseEnvelope(_ bytes: [UInt8]) -> Result<RPCEnvelope, RPCParseError> {
    bytes.withUnsafeBytes { raw in
        do throws(RPCParseError) {
            return .success(try RPCEnvelope.parse(raw))
        } catch {
            return .failure(error)
        }
    }
}

func parseEnvelope(_ text: String) -> Result<RPCEnvelope, RPCParseError> { parseEnvelope(Array(text.utf8)) }

/// The envelope of `text`, failing the test if it does not parse.
func envelope(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> RPCEnvelope {
    let result = parseEnvelope(text)
    if case .failure(let error) = result { Issue.record("rejected: \(error)", sourceLocation: sourceLocation) }
    return try result.get()
}

/// The message for which `text` is rejected, or `nil` if it is accepted.
func rejection(_ text: String) -> String? { parseEnvelope(text).failure?.message }

/// The text of `range` in `text`.
func slice(_ text: String, _ range: Range<Int>?) -> String? {
    range.map { String(decoding: Array(text.utf8)[$0], as: UTF8.self) }
}

@Suite struct RPCEnvelopeTests {
    // MARK: Classification

    @Test func envelope_withMethodAndID_isARequest() throws {
        let line = #"{"jsonrpc":"2.0","id":1,"method":"task/run","params":{"a":[1,2]}}"#
        let e = try envelope(line)
        #expect(e.kind == .request)
        #expect(e.id == .number(1))
        #expect(e.method == "task/run")
        #expect(slice(line, e.params) == #"{"a":[1,2]}"#)
        #expect(e.result == nil && e.error == nil)
    }

    @Test func envelope_withMethodAndNoID_isANotification() throws {
        let line = #"{"method":"task/delta","params":[1,"two"],"jsonrpc":"2.0"}"#
        let e = try envelope(line)
        #expect(e.kind == .notification)
        #expect(e.id == nil)
        #expect(e.method == "task/delta")
        #expect(slice(line, e.params) == #"[1,"two"]"#)
    }

    @Test func envelope_withoutParams_hasNoParamsRange() throws {
        let e = try envelope(#"{"jsonrpc":"2.0","method":"exit"}"#)
        #expect(e.kind == .notification)
        #expect(e.params == nil)
    }

    @Test func envelope_withResult_isASuccessResponse() throws {
        let line = #"{"jsonrpc":"2.0","id":"abc","result":{"output":"x"}}"#
        let e = try envelope(line)
        #expect(e.kind == .response)
        #expect(e.id == .string("abc"))
        #expect(e.method == nil)
        #expect(slice(line, e.result) == #"{"output":"x"}"#)
        #expect(e.error == nil && e.params == nil)
    }

    @Test func envelope_withNullResult_isStillASuccessResponse() throws {
        let line = #"{"jsonrpc":"2.0","id":3,"result":null}"#
        let e = try envelope(line)
        #expect(e.kind == .response)
        #expect(slice(line, e.result) == "null")
    }

    @Test func envelope_withErrorAndNullID_isAnErrorResponse() throws {
        let line = #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#
        let e = try envelope(line)
        #expect(e.kind == .response)
        #expect(e.id == .null)
        #expect(slice(line, e.error) == #"{"code":-32700,"message":"parse error"}"#)
        #expect(e.result == nil)
    }

    @Test func envelope_withNullIDAndMethod_isARequest() throws {
        #expect(try envelope(#"{"jsonrpc":"2.0","id":null,"method":"m"}"#).kind == .request)
    }

    @Test func envelope_rangesWithWhitespace_sliceExactlyTheRawValue() throws {
        let line = " \t{ \"jsonrpc\" : \"2.0\" , \"id\" : 7 , \"method\" : \"m\" , \"params\" : [ 1 , { \"k\" : \"v\\n\" } ] }  "
        let e = try envelope(line)
        #expect(e.kind == .request)
        #expect(e.id == .number(7))
        #expect(slice(line, e.params) == #"[ 1 , { "k" : "v\n" } ]"#)

        let response = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\" :\t\"a \\\"quoted\\\" }\" }"
        #expect(slice(response, try envelope(response).result) == #""a \"quoted\" }""#)
    }

    @Test func envelope_unknownMembers_areIgnored() throws {
        let e = try envelope(#"{"jsonrpc":"2.0","id":2,"method":"m","extra":{"deep":[1,2,3]}}"#)
        #expect(e.kind == .request)
        #expect(e.method == "m")
    }

    @Test func envelope_escapedMethodName_isDecoded() throws {
        #expect(try envelope(#"{"jsonrpc":"2.0","method":"task\/run"}"#).method == "task/run")
    }

    // MARK: IDs

    @Test(arguments: [
        ("0", Int64(0)), ("-5", -5), ("42", 42), ("-0", 0),
        ("9223372036854775807", Int64.max), ("-9223372036854775807", -Int64.max),
    ])
    func envelope_integerIDs_areParsed(text: String, value: Int64) throws {
        #expect(try envelope(#"{"jsonrpc":"2.0","id":\#(text),"result":1}"#).id == .number(value))
    }

    @Test func envelope_int64MinID_isParsed() throws {
        // RPCWriter.appendInteger writes Int64.min, so the envelope should read it back.
        let e = try envelope(#"{"jsonrpc":"2.0","id":-9223372036854775808,"result":1}"#)
        #expect(e.id == .number(.min))
    }

    @Test func envelope_idBeyondInt64_isRejectedAsOutOfRange() {
        #expect(rejection(#"{"jsonrpc":"2.0","id":9223372036854775808,"result":1}"#) == #""id" is out of range"#)
        #expect(rejection(#"{"jsonrpc":"2.0","id":-99999999999999999999,"result":1}"#) == #""id" is out of range"#)
    }

    @Test(arguments: ["1.5", "1e3", "-2.0", "true", "false", "{}", "[1]"])
    func envelope_nonIntegerID_isRejected(id: String) {
        #expect(rejection(#"{"jsonrpc":"2.0","id":\#(id),"method":"m"}"#) == #""id" must be an integer or a string"#)
    }

    @Test func envelope_stringIDs_arePreserved() throws {
        #expect(try envelope(#"{"jsonrpc":"2.0","id":"","result":1}"#).id == .string(""))
        #expect(try envelope(#"{"jsonrpc":"2.0","id":"req-7 é","result":1}"#).id == .string("req-7 é"))
    }

    @Test func envelope_stringIDWithEscapes_isDecoded() throws {
        #expect(try envelope(#"{"jsonrpc":"2.0","id":"a\"b","result":1}"#).id == .string("a\"b"))
        #expect(try envelope(#"{"jsonrpc":"2.0","id":"\u0041\ud83d\ude00","result":1}"#).id == .string("A😀"))
    }

    // MARK: Rejections

    @Test func envelope_missingJSONRPCVersion_isRejected() {
        #expect(rejection(#"{"id":1,"method":"m"}"#) == #"missing "jsonrpc": "2.0""#)
    }

    @Test(arguments: [#""1.0""#, "2.0", #""2.00""#, "null", #"" 2.0""#])
    func envelope_wrongJSONRPCVersion_isRejected(version: String) {
        #expect(rejection(#"{"jsonrpc":\#(version),"id":1,"method":"m"}"#) == #""jsonrpc" must be "2.0""#)
    }

    @Test func envelope_contentLengthHeader_getsAMessageNamingIt() throws {
        let message = try #require(rejection("Content-Length: 57"))
        #expect(message.contains("Content-Length"))
        #expect(message != rejection("Hello"))
    }

    @Test func envelope_resultAndErrorTogether_areRejected() {
        #expect(rejection(#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}}"#) == #"a response needs exactly one of "result" and "error""#)
    }

    @Test func envelope_responseWithNeitherResultNorError_isRejected() {
        #expect(rejection(#"{"jsonrpc":"2.0","id":1}"#) == #"a response needs exactly one of "result" and "error""#)
    }

    @Test func envelope_resultWithoutID_isRejected() {
        #expect(rejection(#"{"jsonrpc":"2.0","result":1}"#) == #"a message needs "method" or an "id" with "result"/"error""#)
    }

    @Test func envelope_methodWithResult_isRejected() {
        #expect(rejection(#"{"jsonrpc":"2.0","id":1,"method":"m","result":1}"#) == #"a message has both "method" and "result"/"error""#)
        #expect(rejection(#"{"jsonrpc":"2.0","method":"m","error":{}}"#) == #"a message has both "method" and "result"/"error""#)
    }

    @Test(arguments: ["1", #""s""#, "null", "true"])
    func envelope_scalarParams_areRejected(params: String) {
        #expect(rejection(#"{"jsonrpc":"2.0","id":1,"method":"m","params":\#(params)}"#) == #""params" must be an object or an array"#)
    }

    @Test(arguments: ["1", "null", "[]", "{}"])
    func envelope_nonStringMethod_isRejected(method: String) {
        #expect(rejection(#"{"jsonrpc":"2.0","id":1,"method":\#(method)}"#) == #""method" must be a string"#)
    }

    @Test func envelope_emptyOrBlankLine_isRejected() {
        #expect(rejection("") == "empty line (expected a JSON-RPC message)")
        #expect(rejection(" \t ") == "empty line (expected a JSON-RPC message)")
    }

    @Test func envelope_nonObjectLine_isRejected() {
        #expect(rejection("[1,2]") == "not a JSON object (expected a JSON-RPC message)")
        #expect(rejection("\"2.0\"") == "not a JSON object (expected a JSON-RPC message)")
    }

    @Test func envelope_malformedJSON_isRejectedWithTheSyntaxError() throws {
        let truncated = try #require(rejection(#"{"jsonrpc":"2.0","id":1,"#))
        #expect(truncated.hasPrefix("invalid JSON: "))
        let trailing = try #require(rejection(#"{"jsonrpc":"2.0","id":1,"result":1} x"#))
        #expect(trailing == "invalid JSON: unexpected data after the JSON object at byte 36")
        let badPayload = try #require(rejection(#"{"jsonrpc":"2.0","id":1,"result":[1,]}"#))
        #expect(badPayload == "invalid JSON: expected a JSON value at byte 36")
        let badUTF8 = parseEnvelope(Array(#"{"jsonrpc":"2.0","id":1,"result":""#.utf8) + [0xFF] + Array(#""}"#.utf8))
        #expect(badUTF8.failure?.message == "invalid JSON: invalid UTF-8 in a string at byte 34")
    }
}
