import Testing
@testable import ChimeraCore

/// The violations (as `path: message`) of `value` against `schema`, both given as JSON text.
private func schemaViolations(_ schema: String, _ value: String) throws -> [String] {
    try JSONSchema(JSONParser.parse(schema)).validate(JSONParser.parse(value)).map(\.description)
}

/// The error compiling `schema` (JSON text), as `path: message`, or nil if it compiles.
private func schemaRefusal(_ schema: String) throws -> String? {
    let document = try JSONParser.parse(schema)
    do throws(JSONSchemaError) {
        _ = try JSONSchema(document)
        return nil
    } catch {
        return error.description
    }
}

@Suite struct JSONSchemaTests {
    // MARK: type

    @Test func type_single_andList() throws {
        #expect(try schemaViolations(#"{"type":"string"}"#, #""x""#) == [])
        #expect(try schemaViolations(#"{"type":"string"}"#, "5") == ["$: expected a string, found a number"])
        #expect(try schemaViolations(#"{"type":["string","null"]}"#, "null") == [])
        #expect(try schemaViolations(#"{"type":["string","null"]}"#, "true") == ["$: expected a string or null, found a boolean"])
        #expect(try schemaViolations(#"{"type":["object","array","boolean"]}"#, "1") == ["$: expected an object, an array or a boolean, found a number"])
        #expect(try schemaViolations(#"{"type":"object"}"#, "[]") == ["$: expected an object, found an array"])
        #expect(try schemaViolations(#"{"type":"array"}"#, "{}") == ["$: expected an array, found an object"])
        #expect(try schemaViolations(#"{"type":"null"}"#, #""""#) == ["$: expected null, found a string"])
    }

    @Test func type_integer_isANumberWithoutFraction() throws {
        #expect(try schemaViolations(#"{"type":"integer"}"#, "2.0") == [])
        #expect(try schemaViolations(#"{"type":"integer"}"#, "-7") == [])
        #expect(try schemaViolations(#"{"type":"integer"}"#, "1.5") == ["$: expected an integer, found the number 1.5"])
        #expect(try schemaViolations(#"{"type":"integer"}"#, #""2""#) == ["$: expected an integer, found a string"])
        // Every integer is a number.
        #expect(try schemaViolations(#"{"type":"number"}"#, "3") == [])
    }

    // MARK: enum, const

    @Test func enum_andConst() throws {
        #expect(try schemaViolations(#"{"enum":["a","b"]}"#, #""a""#) == [])
        #expect(try schemaViolations(#"{"enum":["a","b"]}"#, #""c""#) == [#"$: expected one of "a", "b"; found "c""#])
        #expect(try schemaViolations(#"{"enum":[1,null,[1]]}"#, "[2]") == ["$: expected one of 1, null, [1]; found [2]"])
        // Object equality ignores member order.
        #expect(try schemaViolations(#"{"enum":[{"a":1,"b":2}]}"#, #"{"b":2,"a":1}"#) == [])
        #expect(try schemaViolations(#"{"const":"x"}"#, #""x""#) == [])
        #expect(try schemaViolations(#"{"const":"x"}"#, #""y""#) == [#"$: expected "x", found "y""#])
        #expect(try schemaViolations(#"{"const":{"k":[1,2]}}"#, #"{"k":[2,1]}"#) == [#"$: expected {"k":[1,2]}, found {"k":[2,1]}"#])
    }

    @Test func enum_longListsAndValues_areShortenedInMessages() throws {
        let options = (1...12).map(String.init).joined(separator: ",")
        #expect(try schemaViolations("{\"enum\":[\(options)]}", "13") == ["$: expected one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … (2 more); found 13"])
        let long = String(repeating: "x", count: 100)
        let message = try schemaViolations(#"{"const":"a"}"#, "\"\(long)\"")
        #expect(message == [#"$: expected "a", found ""# + String(repeating: "x", count: 56) + "…"])
    }

    // MARK: objects

    @Test func properties_required_additionalProperties() throws {
        let schema = #"{"properties":{"name":{"type":"string"}},"required":["name","age"]}"#
        #expect(try schemaViolations(schema, #"{"name":"Ada","age":36,"extra":1}"#) == [])
        #expect(try schemaViolations(schema, #"{"age":3}"#) == [#"$: missing required property "name""#])
        #expect(try schemaViolations(schema, #"{"name":5,"age":1}"#) == ["$.name: expected a string, found a number"])
        // Object keywords ignore values that are not objects.
        #expect(try schemaViolations(schema, "7") == [])

        let closed = #"{"properties":{"a":{}},"additionalProperties":false}"#
        #expect(try schemaViolations(closed, #"{"a":1}"#) == [])
        #expect(try schemaViolations(closed, #"{"a":1,"x":2,"odd key":3}"#) == [#"$: unexpected property "x""#, #"$: unexpected property "odd key""#])

        let typed = #"{"properties":{"id":{"type":"integer"}},"additionalProperties":{"type":"number"}}"#
        #expect(try schemaViolations(typed, #"{"id":1,"k":2.5}"#) == [])
        #expect(try schemaViolations(typed, #"{"k":"v","odd key":null}"#) == [
            "$.k: expected a number, found a string",
            #"$["odd key"]: expected a number, found null"#,
        ])
    }

    // MARK: arrays

    @Test func items_minItems_maxItems() throws {
        #expect(try schemaViolations(#"{"items":{"type":"string"}}"#, #"["a",1,"b",null]"#) == [
            "$[1]: expected a string, found a number",
            "$[3]: expected a string, found null",
        ])
        #expect(try schemaViolations(#"{"minItems":2}"#, "[1]") == ["$: expected at least 2 items, found 1"])
        #expect(try schemaViolations(#"{"minItems":1}"#, "[]") == ["$: expected at least 1 item, found 0"])
        #expect(try schemaViolations(#"{"maxItems":3}"#, "[1,2,3,4,5]") == ["$: expected at most 3 items, found 5"])
        #expect(try schemaViolations(#"{"minItems":1,"maxItems":3}"#, "[1,2,3]") == [])
    }

    @Test func uniqueItems_comparesAsJSON() throws {
        #expect(try schemaViolations(#"{"uniqueItems":true}"#, #"[1,"1",[1],{"a":1}]"#) == [])
        #expect(try schemaViolations(#"{"uniqueItems":true}"#, #"[1,2,1.0,{"a":1,"b":2},{"b":2,"a":1}]"#) == [
            "$: expected unique items, found item 2 equal to item 0",
            "$: expected unique items, found item 4 equal to item 3",
        ])
        #expect(try schemaViolations(#"{"uniqueItems":false}"#, "[1,1]") == [])
    }

    // MARK: numbers

    @Test func numericBounds() throws {
        #expect(try schemaViolations(#"{"minimum":5}"#, "5") == [])
        #expect(try schemaViolations(#"{"minimum":5}"#, "3") == ["$: expected at least 5, found 3"])
        #expect(try schemaViolations(#"{"maximum":10}"#, "10") == [])
        #expect(try schemaViolations(#"{"maximum":10}"#, "12.5") == ["$: expected at most 10, found 12.5"])
        #expect(try schemaViolations(#"{"exclusiveMinimum":5}"#, "5") == ["$: expected more than 5, found 5"])
        #expect(try schemaViolations(#"{"exclusiveMinimum":5}"#, "5.001") == [])
        #expect(try schemaViolations(#"{"exclusiveMaximum":10}"#, "10") == ["$: expected less than 10, found 10"])
        #expect(try schemaViolations(#"{"exclusiveMaximum":10}"#, "-1") == [])
        // Numeric keywords ignore values that are not numbers.
        #expect(try schemaViolations(#"{"minimum":5}"#, #""3""#) == [])
    }

    @Test func multipleOf_toleratesBinaryRounding() throws {
        #expect(try schemaViolations(#"{"multipleOf":0.1}"#, "0.3") == [])
        #expect(try schemaViolations(#"{"multipleOf":3}"#, "-9") == [])
        #expect(try schemaViolations(#"{"multipleOf":0.5}"#, "1.3") == ["$: expected a multiple of 0.5, found 1.3"])
        #expect(try schemaViolations(#"{"multipleOf":2}"#, "7") == ["$: expected a multiple of 2, found 7"])
        // A quotient that overflows must not trap (the remainder decides).
        _ = try schemaViolations(#"{"multipleOf":1e-320}"#, "1e300")
    }

    // MARK: strings

    @Test func stringLength_countsCharacters() throws {
        #expect(try schemaViolations(#"{"minLength":3}"#, #""ab""#) == ["$: expected at least 3 characters, found 2"])
        #expect(try schemaViolations(#"{"maxLength":2}"#, #""héllo""#) == ["$: expected at most 2 characters, found 5"])
        #expect(try schemaViolations(#"{"maxLength":1}"#, #""x""#) == [])
        #expect(try schemaViolations(#"{"minLength":1}"#, #""""#) == ["$: expected at least 1 character, found 0"])
        // A flag is two code points but one Character.
        #expect(try schemaViolations(#"{"maxLength":1}"#, "\"\u{1F1FA}\u{1F1F8}\"") == [])
    }

    @Test func pattern_isAnUnanchoredSearch() throws {
        #expect(try schemaViolations(#"{"pattern":"b"}"#, #""abc""#) == [])
        #expect(try schemaViolations(#"{"pattern":"^[a-z]+$"}"#, #""abc""#) == [])
        #expect(try schemaViolations(#"{"pattern":"^[a-z]+$"}"#, #""ABC""#) == [#"$: expected a string matching /^[a-z]+$/, found "ABC""#])
        #expect(try schemaViolations(#"{"pattern":"\\d{3}"}"#, #""a12b""#) == [#"$: expected a string matching /\d{3}/, found "a12b""#])
        // The same pattern under many items: every item is checked.
        #expect(try schemaViolations(#"{"items":{"pattern":"^x"}}"#, #"["x1","y","x2","z"]"#) == [
            #"$[1]: expected a string matching /^x/, found "y""#,
            #"$[3]: expected a string matching /^x/, found "z""#,
        ])
    }

    @Test func format_andAnnotations_areIgnored() throws {
        let schema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:x","title":"T","description":"D",
         "default":1,"examples":[1],"$comment":"c","x-vendor":{"anything":true},"format":"email","type":"string"}
        """#
        #expect(try schemaViolations(schema, #""not an email""#) == [])
    }

    // MARK: combinators, boolean schemas

    @Test func anyOf_reportsTheClosestOption() throws {
        let schema = #"{"anyOf":[{"type":"string"},{"type":"number","minimum":10}]}"#
        #expect(try schemaViolations(schema, #""x""#) == [])
        #expect(try schemaViolations(schema, "12") == [])
        #expect(try schemaViolations(schema, "5") == ["$: expected to match at least one anyOf schema, matched none; closest: anyOf[0] ($: expected a string, found a number)"])
        let nested = #"{"anyOf":[{"required":["a","b"]},{"required":["c"]}]}"#
        #expect(try schemaViolations(nested, "{}") == [#"$: expected to match at least one anyOf schema, matched none; closest: anyOf[1] ($: missing required property "c")"#])
        #expect(try schemaViolations(#"{"anyOf":[{"required":["a","b"]}]}"#, "{}") == [#"$: expected to match at least one anyOf schema, matched none; closest: anyOf[0] ($: missing required property "a" and 1 more)"#])
    }

    @Test func oneOf_exactlyOne() throws {
        let schema = #"{"oneOf":[{"type":"number"},{"type":"integer"}]}"#
        #expect(try schemaViolations(schema, "2.5") == [])
        #expect(try schemaViolations(schema, "3") == ["$: expected to match exactly one oneOf schema, matched 2 (oneOf[0], oneOf[1])"])
        #expect(try schemaViolations(schema, #""s""#) == ["$: expected to match exactly one oneOf schema, matched none; closest: oneOf[0] ($: expected a number, found a string)"])
    }

    @Test func allOf_everySchemaApplies() throws {
        let schema = #"{"allOf":[{"minimum":1},{"maximum":3},{"multipleOf":2}]}"#
        #expect(try schemaViolations(schema, "2") == [])
        #expect(try schemaViolations(schema, "5") == ["$: expected at most 3, found 5", "$: expected a multiple of 2, found 5"])
    }

    @Test func booleanSchemas() throws {
        #expect(try schemaViolations("true", #"{"any":[1,"thing"]}"#) == [])
        #expect(try schemaViolations("false", "null") == ["$: no value is allowed here (the schema is false)"])
        #expect(try schemaViolations(#"{"properties":{"x":false,"y":true}}"#, #"{"x":1,"y":2}"#) == ["$.x: no value is allowed here (the schema is false)"])
        #expect(try schemaViolations("{}", "[1,{}]") == [])
    }

    // MARK: many violations

    @Test func everyViolation_reportedAtOnce_inDocumentOrder() throws {
        let schema = #"""
        {"type":"object","required":["id","tags"],"additionalProperties":false,
         "properties":{
           "id":{"type":"integer"},
           "items":{"type":"array","maxItems":2,"items":{"properties":{"name":{"type":"string"}}}}},
         "allOf":[{"properties":{"id":{"minimum":1}}}]}
        """#
        let value = #"{"id":0.5,"items":[{"name":"a"},{"name":1},{"name":"c"}],"x":true}"#
        // The allOf violation about $.id is found last but belongs with $.id's own problem.
        #expect(try schemaViolations(schema, value) == [
            #"$: missing required property "tags""#,
            "$.id: expected an integer, found the number 0.5",
            "$.id: expected at least 1, found 0.5",
            "$.items: expected at most 2 items, found 3",
            "$.items[1].name: expected a string, found a number",
            #"$: unexpected property "x""#,
        ])
    }

    @Test func violationDescription_andAccepts() throws {
        let violation = SchemaViolation(path: "$.items[2].name", message: "expected a string, found a number")
        #expect(violation.description == "$.items[2].name: expected a string, found a number")
        let schema = try JSONSchema(JSONParser.parse(#"{"type":"string"}"#))
        #expect(schema.accepts(.string("a")))
        #expect(!schema.accepts(.null))
        #expect(schema == (try JSONSchema(JSONParser.parse(#"{"type":"string"}"#))))
        #expect(schema != (try JSONSchema(JSONParser.parse(#"{"type":"number"}"#))))
    }

    // MARK: invalid schemas

    @Test func invalidSchemas_refusedWithTheirPath() throws {
        let cases: [(String, String)] = [
            ("5", "$: a schema must be an object or a boolean, found a number"),
            (#"{"type":"strin"}"#, #"$.type: unknown type "strin"; known types: string, number, integer, boolean, object, array, null"#),
            (#"{"type":3}"#, #"$.type: "type" must be a type name or an array of type names, found a number"#),
            (#"{"type":["string",5]}"#, "$.type[1]: a type name must be a string, found a number"),
            (#"{"type":[]}"#, #"$.type: "type" must not be an empty array"#),
            (#"{"type":["string","string"]}"#, #"$.type[1]: duplicate type "string""#),
            (#"{"enum":"a"}"#, #"$.enum: "enum" must be an array, found a string"#),
            (#"{"enum":[]}"#, #"$.enum: "enum" must not be empty"#),
            (#"{"properties":[]}"#, #"$.properties: "properties" must be an object of schemas, found an array"#),
            (#"{"properties":{"a":{"type":"x"}}}"#, #"$.properties.a.type: unknown type "x"; known types: string, number, integer, boolean, object, array, null"#),
            (#"{"properties":{"a":7}}"#, "$.properties.a: a schema must be an object or a boolean, found a number"),
            (#"{"required":"a"}"#, #"$.required: "required" must be an array of strings, found a string"#),
            (#"{"required":["a",1]}"#, #"$.required[1]: "required" entries must be strings, found a number"#),
            (#"{"required":["a","a"]}"#, #"$.required[1]: duplicate required property "a""#),
            (#"{"additionalProperties":"no"}"#, "$.additionalProperties: a schema must be an object or a boolean, found a string"),
            (#"{"items":[{}]}"#, #"$.items: "items" must be one schema; the array (tuple) form is not supported"#),
            (#"{"items":{"items":{"minItems":-1}}}"#, #"$.items.items.minItems: "minItems" must be a non-negative integer, found -1"#),
            (#"{"maxItems":1.5}"#, #"$.maxItems: "maxItems" must be a non-negative integer, found 1.5"#),
            (#"{"minLength":"3"}"#, #"$.minLength: "minLength" must be a non-negative integer, found a string"#),
            (#"{"maxLength":null}"#, #"$.maxLength: "maxLength" must be a non-negative integer, found null"#),
            (#"{"uniqueItems":1}"#, #"$.uniqueItems: "uniqueItems" must be a boolean, found a number"#),
            (#"{"minimum":"1"}"#, #"$.minimum: "minimum" must be a number, found a string"#),
            (#"{"maximum":[]}"#, #"$.maximum: "maximum" must be a number, found an array"#),
            (#"{"exclusiveMinimum":true}"#, #"$.exclusiveMinimum: "exclusiveMinimum" must be a number (draft 2020 style), found a boolean (the draft 4 form is not supported)"#),
            (#"{"exclusiveMaximum":"9"}"#, #"$.exclusiveMaximum: "exclusiveMaximum" must be a number, found a string"#),
            (#"{"multipleOf":0}"#, #"$.multipleOf: "multipleOf" must be greater than 0, found 0"#),
            (#"{"multipleOf":-2}"#, #"$.multipleOf: "multipleOf" must be greater than 0, found -2"#),
            (#"{"pattern":5}"#, #"$.pattern: "pattern" must be a string, found a number"#),
            (#"{"format":5}"#, #"$.format: "format" must be a string, found a number"#),
            (#"{"anyOf":[]}"#, #"$.anyOf: "anyOf" must be a non-empty array of schemas, found an empty array"#),
            (#"{"allOf":{}}"#, #"$.allOf: "allOf" must be a non-empty array of schemas, found an object"#),
            (#"{"oneOf":[{},{"type":"x"}]}"#, #"$.oneOf[1].type: unknown type "x"; known types: string, number, integer, boolean, object, array, null"#),
        ]
        for (schema, expected) in cases {
            #expect(try schemaRefusal(schema) == expected, "\(schema)")
        }
    }

    @Test func unsupportedKeywords_refusedWithTheirPath() throws {
        let cases: [(String, String)] = [
            (##"{"properties":{"a":{"$ref":"#/$defs/x"}}}"##, #"$.properties.a["$ref"]: "$ref" is not supported by this validator"#),
            (#"{"$defs":{}}"#, #"$["$defs"]: "$defs" is not supported by this validator"#),
            (#"{"patternProperties":{}}"#, #"$.patternProperties: "patternProperties" is not supported by this validator"#),
            (#"{"dependencies":{}}"#, #"$.dependencies: "dependencies" is not supported by this validator"#),
            (#"{"items":{"if":{}}}"#, #"$.items.if: "if" is not supported by this validator"#),
            (#"{"then":{}}"#, #"$.then: "then" is not supported by this validator"#),
            (#"{"else":{}}"#, #"$.else: "else" is not supported by this validator"#),
            (#"{"anyOf":[{"not":{}}]}"#, #"$.anyOf[0].not: "not" is not supported by this validator"#),
            (#"{"minProperties":1}"#, #"$.minProperties: "minProperties" is not supported by this validator"#),
        ]
        for (schema, expected) in cases {
            #expect(try schemaRefusal(schema) == expected, "\(schema)")
        }
    }

    @Test func invalidPattern_refused() throws {
        let refusal = try schemaRefusal(#"{"properties":{"code":{"pattern":"a("}}}"#)
        #expect(refusal?.hasPrefix(#"$.properties.code.pattern: "pattern" is not a valid regular expression: "#) == true)
    }

    @Test func deepAndLargeInputs_doNotCrash() throws {
        let schema = try JSONSchema(JSONParser.parse(#"{"items":{"items":{"type":"string"}},"uniqueItems":true}"#))
        let many = JSONValue.array((0..<2_000).map { .array([.number(Double($0 % 1_000))]) })
        let found = schema.validate(many)
        // 2,000 inner numbers that are not strings, plus 1,000 duplicates.
        #expect(found.count == 3_000)
        #expect(found.first?.description == "$: expected unique items, found item 1000 equal to item 0")
        #expect(found.last?.description == "$[1999][0]: expected a string, found a number")
    }
}
