import Testing
@testable import ChimeraCore

/// Splits off the `\n` every writer function ends with, checking it is there exactly once.
func singleLine(_ out: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
    #expect(out.last == 0x0A, "a message must end in a newline", sourceLocation: sourceLocation)
    #expect(out.filter { $0 == 0x0A }.count == 1, "a message must be exactly one line", sourceLocation: sourceLocation)
    return Array(out.dropLast())
}

/// The members of the JSON object `bytes[range]`, with each value's raw text.
func rawMembers(_ bytes: [UInt8], _ range: Range<Int>) throws -> [(key: String?, raw: [UInt8])] {
    let object = Array(bytes[range])
    var members: [(key: String?, raw: [UInt8])] = []
    try object.withUnsafeBytes { raw in
        try JSONParser.forEachMember(of: raw) { key, value in
            members.append((key.map { String(decoding: $0, as: UTF8.self) }, Array(object[value])))
        }
    }
    return members
}

@Suite struct RPCWriterTests {
    @Test func writer_request_parsesBackWithTheSameIDMethodAndParams() throws {
        let params = Array(#"{"protocol":1,"names":["a","b"],"nested":{"x":[{}]}}"#.utf8)
        var out: [UInt8] = []
        RPCWriter.request(id: 17, method: "initialize", params: params, to: &out)
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .request)
        #expect(e.id == .number(17))
        #expect(e.method == "initialize")
        let range = try #require(e.params)
        #expect(Array(line[range]) == params)
    }

    @Test func writer_requestWithoutParams_hasNoParams() throws {
        var out: [UInt8] = []
        RPCWriter.request(id: 0, method: "heartbeat", params: nil, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"heartbeat\"}\n")
        let e = try parseEnvelope(singleLine(out)).get()
        #expect(e.kind == .request && e.params == nil)
    }

    @Test func writer_notification_parsesBackWithoutAnID() throws {
        let params = Array(#"[1,"two",null]"#.utf8)
        var out: [UInt8] = []
        RPCWriter.notification(method: "task/delta", params: params, to: &out)
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .notification)
        #expect(e.id == nil)
        #expect(e.method == "task/delta")
        #expect(Array(line[try #require(e.params)]) == params)
    }

    @Test func writer_methodNamesNeedingEscapes_roundTrip() throws {
        var out: [UInt8] = []
        RPCWriter.notification(method: "odd \"name\"\n\\", params: nil, to: &out)
        #expect(try parseEnvelope(singleLine(out)).get().method == "odd \"name\"\n\\")
    }

    @Test func writer_taskRun_carriesEveryFieldAndTheExactInput() throws {
        let input = Array(#"{"text":"h\u00e9llo \"q\"","n":[1,-2.5e3,{"x":null}],"e":{}}"#.utf8)
        var out: [UInt8] = []
        RPCWriter.taskRun(id: 9_001, task: "t-1", handler: "text.stats", kind: "text \"stats\"", input: input, deadlineMs: 30_000, attempt: 2, to: &out)
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .request)
        #expect(e.id == .number(9_001))
        #expect(e.method == RPCMethod.taskRun)
        let paramsRange = try #require(e.params)

        let members = try rawMembers(line, paramsRange)
        #expect(members.map(\.key) == ["task", "handler", "kind", "input", "deadline_ms", "attempt"])
        #expect(members.first { $0.key == "input" }?.raw == input)

        let params = try JSONParser.parse(Array(line[paramsRange])).value
        #expect(params["task"] == .string("t-1"))
        #expect(params["handler"] == .string("text.stats"))
        #expect(params["kind"] == .string("text \"stats\""))
        #expect(params["deadline_ms"] == .number(30_000))
        #expect(params["attempt"] == .number(2))
        #expect(params["input"] == (try JSONParser.parse(input).value))
    }

    @Test func writer_taskRunWithScalarInput_keepsTheInputBytes() throws {
        for input in ["null", "\"just text\"", "-0.5", "[]"] {
            var out: [UInt8] = []
            RPCWriter.taskRun(id: -1, task: "t", handler: "echo", kind: "", input: Array(input.utf8), deadlineMs: 0, attempt: 1, to: &out)
            let line = singleLine(out)
            let e = try parseEnvelope(line).get()
            #expect(e.id == .number(-1))
            let members = try rawMembers(line, try #require(e.params))
            #expect(members.first { $0.key == "input" }?.raw == Array(input.utf8), "\(input)")
        }
    }

    @Test(arguments: [RPCEnvelope.ID.number(5), .number(-12), .string("req \"1\" \\ é\n"), .string(""), .null])
    func writer_result_parsesBackWithTheSameIDAndResult(id: RPCEnvelope.ID) throws {
        let result = Array(#"{"ok":true,"list":[1,2,3]}"#.utf8)
        var out: [UInt8] = []
        result.withUnsafeBytes { RPCWriter.result(id: id, result: $0, to: &out) }
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .response)
        #expect(e.id == id)
        #expect(Array(line[try #require(e.result)]) == result)
        #expect(e.error == nil)
    }

    @Test func writer_plainStringID_roundTrips() throws {
        var out: [UInt8] = []
        Array("1".utf8).withUnsafeBytes { RPCWriter.result(id: .string("job-42"), result: $0, to: &out) }
        #expect(try parseEnvelope(singleLine(out)).get().id == .string("job-42"))
    }

    @Test func writer_taskOutput_wrapsTheOutputInAResultObject() throws {
        let output = Array(#"{"words":3,"chars":[1,2]}"#.utf8)
        var out: [UInt8] = []
        output.withUnsafeBytes { RPCWriter.taskOutput(id: .number(77), output: $0, to: &out) }
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .response)
        #expect(e.id == .number(77))
        let members = try rawMembers(line, try #require(e.result))
        #expect(members.count == 1)
        #expect(members.first?.key == "output")
        #expect(members.first?.raw == output)
    }

    @Test func writer_error_parsesBackAsAnErrorResponseWithCodeMessageAndKind() throws {
        var out: [UInt8] = []
        RPCWriter.error(id: .number(4), code: RPCErrorCode.handlerError, message: "boom: \"bad\"\n", kind: TaskFailureKind.handlerError.rawValue, to: &out)
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .response)
        #expect(e.id == .number(4))
        #expect(e.result == nil)
        let error = try JSONParser.parse(Array(line[try #require(e.error)])).value
        #expect(error == .object([
            JSONMember("code", .number(-32000)),
            JSONMember("message", .string("boom: \"bad\"\n")),
            JSONMember("data", .object([JSONMember("kind", .string("handler_error"))])),
        ]))
    }

    @Test func writer_errorWithoutID_writesNullID() throws {
        var out: [UInt8] = []
        RPCWriter.error(id: nil, code: RPCErrorCode.parseError, message: "not JSON", kind: "invalid_input", to: &out)
        let line = singleLine(out)
        let e = try parseEnvelope(line).get()
        #expect(e.kind == .response)
        #expect(e.id == .null)
        let error = try JSONParser.parse(Array(line[try #require(e.error)])).value
        #expect(error["code"] == .number(-32700))
    }

    // MARK: Integers

    @Test(arguments: [Int64(0), 1, -1, 9, 10, -10, 99, 100, 1_234_567_890, Int64.max, Int64.min, Int64.min + 1, Int64.max - 1])
    func writer_appendInteger_matchesDecimalDescription(value: Int64) {
        var out: [UInt8] = [0x78]
        RPCWriter.appendInteger(value, to: &out)
        #expect(out == [0x78] + Array(String(value).utf8))
    }

    @Test func writer_appendInteger_randomValuesMatchDecimalDescription() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            let value = Int64(bitPattern: rng.next()) >> rng.int(in: 0...63)
            var out: [UInt8] = []
            RPCWriter.appendInteger(value, to: &out)
            #expect(out == Array(String(value).utf8), "\(value)")
        }
    }

    @Test(arguments: [Int64(0), -1, 1, Int64.max, -Int64.max])
    func writer_requestIDs_roundTripThroughTheEnvelope(id: Int64) throws {
        var out: [UInt8] = []
        RPCWriter.request(id: id, method: "m", params: nil, to: &out)
        #expect(try parseEnvelope(singleLine(out)).get().id == .number(id))
    }

    @Test func writer_int64MinRequestID_roundTripsThroughTheEnvelope() throws {
        var out: [UInt8] = []
        RPCWriter.request(id: .min, method: "m", params: nil, to: &out)
        let e = try parseEnvelope(singleLine(out)).get()
        #expect(e.id == .number(.min))
    }
}
