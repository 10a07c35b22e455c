/// One way a JSON value fails a ``JSONSchema``: where (a JSON path into the value) and why.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// JSON path of the offending value: `$`, `$.items[2].name`.
    public var path: String
    /// What was expected and what was found: `expected a string, found a number`.
    public var message: String

    /// A violation at `path` in the validated value.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `$.items[2].name: expected a string, found a number`.
    public var description: String { "\(path): \(message)" }
}

/// A schema that cannot be used: where in the schema (a JSON path) and why.
public struct JSONSchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// JSON path inside the schema document: `$.properties.name.type`.
    public var path: String
    /// What is wrong: `unknown type "strin"; known types: string, number, …`.
    public var message: String

    /// A problem at `path` in the schema document.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `$.properties.name.type: unknown type "strin"; …`.
    public var description: String { "\(path): \(message)" }
}

/// A JSON Schema validator for the subset that pipelines and scorers need.
///
/// Hand-written: no Swift JSON Schema library is mirrored for this build, and ChimeraCore stays
/// free of Foundation. The supported keywords follow draft 2020-12 semantics:
///
/// - `type` (one name or an array of names: `string`, `number`, `integer` — a number with no
///   fractional part —, `boolean`, `object`, `array`, `null`), `enum`, `const`;
/// - objects: `properties`, `required`, `additionalProperties` (a boolean or a schema);
/// - arrays: `items` (one schema for every item), `minItems`, `maxItems`, `uniqueItems`;
/// - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, not the
///   draft-4 booleans), `multipleOf`;
/// - strings: `minLength`, `maxLength` (counted in `Character`s, i.e. grapheme clusters, where
///   the specification counts code points), `pattern` (a Swift `Regex`, searched unanchored like
///   ECMA-262's `RegExp.test`);
/// - combinators: `anyOf`, `oneOf`, `allOf`;
/// - `true` and `false` as whole schemas (accept everything / nothing).
///
/// `format`, `title`, `description`, `$schema`, `$id`, `$comment`, `default`, `examples` and any
/// other keyword this validator does not know are annotations and are ignored, as the
/// specification says. Validation keywords it knows but does not implement (`$ref`, `$defs`,
/// `patternProperties`, `dependencies`, `if`/`then`/`else`, `not`, `prefixItems`, `contains`,
/// `propertyNames`, `minProperties`…) are refused by ``init(_:)`` rather than silently skipped,
/// so a schema never looks stricter than it is.
///
/// Equality of JSON values (`enum`, `const`, `uniqueItems`) ignores object member order, as the
/// specification requires.
public struct JSONSchema: Sendable, Equatable {
    /// The schema document as given.
    public let source: JSONValue
    let root: SchemaNode

    /// Compiles `schema`, refusing anything this validator cannot honour.
    ///
    /// - Throws: ``JSONSchemaError`` with the JSON path inside `schema` of the first problem: a
    ///   schema that is not an object or a boolean, a keyword whose value has the wrong type, an
    ///   unsupported keyword, an invalid `pattern`.
    public init(_ schema: JSONValue) throws(JSONSchemaError) {
        source = schema
        root = try SchemaNode.compile(schema, path: "$")
    }

    /// Two schemas are equal when their documents are.
    public static func == (lhs: JSONSchema, rhs: JSONSchema) -> Bool { lhs.source == rhs.source }

    /// Every way `value` fails this schema, in document order (a value's own problems before
    /// those of its members and items); empty when `value` is valid.
    public func validate(_ value: JSONValue) -> [SchemaViolation] {
        var validator = SchemaValidator()
        validator.check(root, value, path: "$", position: [])
        return validator.sortedViolations()
    }

    /// Whether `value` satisfies this schema.
    public func accepts(_ value: JSONValue) -> Bool { validate(value).isEmpty }
}

// MARK: - Compiled form

/// The JSON types a `type` keyword can name.
enum SchemaType: String, Sendable, CaseIterable {
    case string, number, integer, boolean, object, array, null

    /// How messages say it: `a string`, `an integer`, `null`.
    var phrase: String {
        switch self {
        case .string: return "a string"
        case .number: return "a number"
        case .integer: return "an integer"
        case .boolean: return "a boolean"
        case .object: return "an object"
        case .array: return "an array"
        case .null: return "null"
        }
    }

    func matches(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string, .string), (.number, .number), (.boolean, .bool), (.object, .object), (.array, .array), (.null, .null):
            return true
        case (.integer, .number(let d)):
            return d.isFinite && d == d.rounded(.towardZero)
        default:
            return false
        }
    }
}

/// A schema after checking: either a boolean schema or a set of rules.
indirect enum SchemaNode: Sendable {
    case always(Bool)
    case rules(SchemaRules)
}

/// A schema's member schema under `properties`.
struct PropertyRule: Sendable {
    var name: String
    var schema: SchemaNode
}

/// The keywords of one object schema, checked and converted.
struct SchemaRules: Sendable {
    var types: [SchemaType]?
    /// `enum` values with their canonical text (so comparisons ignore member order).
    var enumValues: [(value: JSONValue, canonical: String)]?
    var constValue: (value: JSONValue, canonical: String)?
    var properties: [PropertyRule] = []
    var required: [String] = []
    var additionalProperties: SchemaNode?
    var items: SchemaNode?
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false
    var minimum: Double?
    var maximum: Double?
    var exclusiveMinimum: Double?
    var exclusiveMaximum: Double?
    var multipleOf: Double?
    var minLength: Int?
    var maxLength: Int?
    /// The pattern's source. `Regex` is not `Sendable`, so validation compiles it again (once
    /// per ``JSONSchema/validate(_:)`` call); ``SchemaNode/compile(_:path:)`` proved it compiles.
    var pattern: String?
    var anyOf: [SchemaNode] = []
    var oneOf: [SchemaNode] = []
    var allOf: [SchemaNode] = []

    func property(_ name: String) -> SchemaNode? {
        properties.last(where: { $0.name == name })?.schema
    }
}

extension SchemaNode {
    /// Keywords that are part of JSON Schema validation but not of this subset.
    static let unsupported: Set<String> = [
        "$ref", "$defs", "definitions", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
        "patternProperties", "dependencies", "dependentRequired", "dependentSchemas",
        "if", "then", "else", "not", "prefixItems", "additionalItems", "contains", "minContains", "maxContains",
        "propertyNames", "minProperties", "maxProperties", "unevaluatedProperties", "unevaluatedItems",
    ]

    static func compile(_ schema: JSONValue, path: String) throws(JSONSchemaError) -> SchemaNode {
        switch schema {
        case .bool(let b): return .always(b)
        case .object(let members):
            var rules = SchemaRules()
            for member in members {
                try rules.read(member, path: JSONPath.appending(key: member.key, to: path))
            }
            return .rules(rules)
        default:
            throw JSONSchemaError(path: path, message: "a schema must be an object or a boolean, found \(schema.typeName)")
        }
    }
}

extension SchemaRules {
    /// Reads one keyword of a schema object, or throws why it cannot be used.
    mutating func read(_ member: JSONMember, path: String) throws(JSONSchemaError) {
        let key = member.key
        let value = member.value
        func fail(_ message: String) -> JSONSchemaError { JSONSchemaError(path: path, message: message) }

        if SchemaNode.unsupported.contains(key) {
            throw fail("\"\(key)\" is not supported by this validator")
        }
        switch key {
        case "type":
            types = try SchemaRules.readTypes(value, path: path)
        case "enum":
            guard case .array(let options) = value else { throw fail("\"enum\" must be an array, found \(value.typeName)") }
            guard !options.isEmpty else { throw fail("\"enum\" must not be empty") }
            enumValues = options.map { ($0, $0.canonicalForm.serialized) }
        case "const":
            constValue = (value, value.canonicalForm.serialized)
        case "properties":
            guard case .object(let members) = value else { throw fail("\"properties\" must be an object of schemas, found \(value.typeName)") }
            properties = []
            for m in members {
                properties.append(PropertyRule(name: m.key, schema: try SchemaNode.compile(m.value, path: JSONPath.appending(key: m.key, to: path))))
            }
        case "required":
            guard case .array(let names) = value else { throw fail("\"required\" must be an array of strings, found \(value.typeName)") }
            var seen: Set<String> = []
            required = []
            for (i, name) in names.enumerated() {
                guard case .string(let s) = name else {
                    throw JSONSchemaError(path: "\(path)[\(i)]", message: "\"required\" entries must be strings, found \(name.typeName)")
                }
                guard seen.insert(s).inserted else {
                    throw JSONSchemaError(path: "\(path)[\(i)]", message: "duplicate required property \"\(s)\"")
                }
                required.append(s)
            }
        case "additionalProperties":
            additionalProperties = try SchemaNode.compile(value, path: path)
        case "items":
            if case .array = value {
                throw fail("\"items\" must be one schema; the array (tuple) form is not supported")
            }
            items = try SchemaNode.compile(value, path: path)
        case "minItems": minItems = try SchemaRules.readCount(value, key: key, path: path)
        case "maxItems": maxItems = try SchemaRules.readCount(value, key: key, path: path)
        case "minLength": minLength = try SchemaRules.readCount(value, key: key, path: path)
        case "maxLength": maxLength = try SchemaRules.readCount(value, key: key, path: path)
        case "uniqueItems":
            guard case .bool(let b) = value else { throw fail("\"uniqueItems\" must be a boolean, found \(value.typeName)") }
            uniqueItems = b
        case "minimum": minimum = try SchemaRules.readNumber(value, key: key, path: path)
        case "maximum": maximum = try SchemaRules.readNumber(value, key: key, path: path)
        case "exclusiveMinimum", "exclusiveMaximum":
            if case .bool = value {
                throw fail("\"\(key)\" must be a number (draft 2020 style), found a boolean (the draft 4 form is not supported)")
            }
            let bound = try SchemaRules.readNumber(value, key: key, path: path)
            if key == "exclusiveMinimum" { exclusiveMinimum = bound } else { exclusiveMaximum = bound }
        case "multipleOf":
            let m = try SchemaRules.readNumber(value, key: key, path: path)
            guard m > 0 else { throw fail("\"multipleOf\" must be greater than 0, found \(value.serialized)") }
            multipleOf = m
        case "pattern":
            guard case .string(let source) = value else { throw fail("\"pattern\" must be a string, found \(value.typeName)") }
            do {
                _ = try Regex(source)
            } catch {
                throw fail("\"pattern\" is not a valid regular expression: \(error)")
            }
            pattern = source
        case "anyOf": anyOf = try SchemaRules.readSchemas(value, key: key, path: path)
        case "oneOf": oneOf = try SchemaRules.readSchemas(value, key: key, path: path)
        case "allOf": allOf = try SchemaRules.readSchemas(value, key: key, path: path)
        case "format":
            // An annotation only: formats vary too much between validators to enforce.
            guard case .string = value else { throw fail("\"format\" must be a string, found \(value.typeName)") }
        default:
            // title, description, $schema, $id, default, examples, vendor extensions: annotations.
            break
        }
    }

    static func readTypes(_ value: JSONValue, path: String) throws(JSONSchemaError) -> [SchemaType] {
        func one(_ name: JSONValue, at path: String) throws(JSONSchemaError) -> SchemaType {
            guard case .string(let s) = name else {
                throw JSONSchemaError(path: path, message: "a type name must be a string, found \(name.typeName)")
            }
            guard let type = SchemaType(rawValue: s) else {
                let known = SchemaType.allCases.map(\.rawValue).joined(separator: ", ")
                throw JSONSchemaError(path: path, message: "unknown type \"\(s)\"; known types: \(known)")
            }
            return type
        }
        switch value {
        case .string: return [try one(value, at: path)]
        case .array(let names):
            guard !names.isEmpty else { throw JSONSchemaError(path: path, message: "\"type\" must not be an empty array") }
            var types: [SchemaType] = []
            for (i, name) in names.enumerated() {
                let type = try one(name, at: "\(path)[\(i)]")
                guard !types.contains(type) else {
                    throw JSONSchemaError(path: "\(path)[\(i)]", message: "duplicate type \"\(type.rawValue)\"")
                }
                types.append(type)
            }
            return types
        default:
            throw JSONSchemaError(path: path, message: "\"type\" must be a type name or an array of type names, found \(value.typeName)")
        }
    }

    static func readNumber(_ value: JSONValue, key: String, path: String) throws(JSONSchemaError) -> Double {
        guard case .number(let d) = value, d.isFinite else {
            throw JSONSchemaError(path: path, message: "\"\(key)\" must be a number, found \(value.typeName)")
        }
        return d
    }

    static func readCount(_ value: JSONValue, key: String, path: String) throws(JSONSchemaError) -> Int {
        guard case .number(let d) = value, d.isFinite, d >= 0, d == d.rounded(.towardZero) else {
            let found = value.numberValue.map { JSONValue.number($0).serialized } ?? value.typeName
            throw JSONSchemaError(path: path, message: "\"\(key)\" must be a non-negative integer, found \(found)")
        }
        // Bounds beyond Int's range cannot be reached by any real document; clamp instead of trapping.
        return d >= 9.0e18 ? Int.max : Int(d)
    }

    static func readSchemas(_ value: JSONValue, key: String, path: String) throws(JSONSchemaError) -> [SchemaNode] {
        guard case .array(let items) = value, !items.isEmpty else {
            let found = value == .array([]) ? "an empty array" : value.typeName
            throw JSONSchemaError(path: path, message: "\"\(key)\" must be a non-empty array of schemas, found \(found)")
        }
        var nodes: [SchemaNode] = []
        for (i, item) in items.enumerated() {
            nodes.append(try SchemaNode.compile(item, path: "\(path)[\(i)]"))
        }
        return nodes
    }
}

// MARK: - Validation

/// Walks a value against a compiled schema, collecting violations with their document position.
struct SchemaValidator {
    /// A violation and the position of its value in the document (member/item indices from the
    /// root), so violations found out of order (through `allOf`, say) can be put in order.
    struct Located {
        var position: [Int]
        var serial: Int
        var violation: SchemaViolation
    }

    var found: [Located] = []
    /// Patterns compiled during this validation, by source.
    var regexes: [String: Regex<AnyRegexOutput>] = [:]

    mutating func report(_ path: String, _ position: [Int], _ message: String) {
        found.append(Located(position: position, serial: found.count, violation: SchemaViolation(path: path, message: message)))
    }

    func sortedViolations() -> [SchemaViolation] {
        found.sorted { a, b in
            if a.position != b.position { return a.position.lexicographicallyPrecedes(b.position) }
            return a.serial < b.serial
        }.map(\.violation)
    }

    /// Whether `value` satisfies `node`, without keeping what failed (for `anyOf`/`oneOf`).
    mutating func trial(_ node: SchemaNode, _ value: JSONValue, path: String, position: [Int]) -> [Located] {
        let saved = found
        found = []
        check(node, value, path: path, position: position)
        let result = found
        found = saved
        return result
    }

    mutating func check(_ node: SchemaNode, _ value: JSONValue, path: String, position: [Int]) {
        switch node {
        case .always(true): return
        case .always(false): report(path, position, "no value is allowed here (the schema is false)")
        case .rules(let rules): check(rules, value, path: path, position: position)
        }
    }

    mutating func check(_ rules: SchemaRules, _ value: JSONValue, path: String, position: [Int]) {
        if let types = rules.types, !types.contains(where: { $0.matches(value) }) {
            var found = value.typeName
            if types.contains(.integer), case .number(let d) = value { found = "the number \(JSONValue.number(d).serialized)" }
            report(path, position, "expected \(SchemaValidator.phrase(types)), found \(found)")
        }
        if let options = rules.enumValues {
            let canonical = value.canonicalForm.serialized
            if !options.contains(where: { $0.canonical == canonical }) {
                let shown = options.prefix(10).map { SchemaValidator.excerpt($0.value) }.joined(separator: ", ")
                let more = options.count > 10 ? ", … (\(options.count - 10) more)" : ""
                report(path, position, "expected one of \(shown)\(more); found \(SchemaValidator.excerpt(value))")
            }
        }
        if let constant = rules.constValue, constant.canonical != value.canonicalForm.serialized {
            report(path, position, "expected \(SchemaValidator.excerpt(constant.value)), found \(SchemaValidator.excerpt(value))")
        }
        switch value {
        case .number(let d): checkNumber(rules, d, path: path, position: position)
        case .string(let s): checkString(rules, s, path: path, position: position)
        case .array(let items): checkArray(rules, items, path: path, position: position)
        case .object(let members): checkObject(rules, members, path: path, position: position)
        case .null, .bool: break
        }
        for sub in rules.allOf { check(sub, value, path: path, position: position) }
        if !rules.anyOf.isEmpty { checkAnyOf(rules.anyOf, value, path: path, position: position) }
        if !rules.oneOf.isEmpty { checkOneOf(rules.oneOf, value, path: path, position: position) }
    }

    mutating func checkNumber(_ rules: SchemaRules, _ d: Double, path: String, position: [Int]) {
        let shown = JSONValue.number(d).serialized
        func text(_ x: Double) -> String { JSONValue.number(x).serialized }
        if let m = rules.minimum, !(d >= m) { report(path, position, "expected at least \(text(m)), found \(shown)") }
        if let m = rules.maximum, !(d <= m) { report(path, position, "expected at most \(text(m)), found \(shown)") }
        if let m = rules.exclusiveMinimum, !(d > m) { report(path, position, "expected more than \(text(m)), found \(shown)") }
        if let m = rules.exclusiveMaximum, !(d < m) { report(path, position, "expected less than \(text(m)), found \(shown)") }
        if let m = rules.multipleOf, !SchemaValidator.isMultiple(d, of: m) {
            report(path, position, "expected a multiple of \(text(m)), found \(shown)")
        }
    }

    /// `d` is a multiple of `m` (> 0), tolerating binary rounding so that 0.3 is a multiple of 0.1.
    static func isMultiple(_ d: Double, of m: Double) -> Bool {
        let q = d / m
        guard q.isFinite else { return d.truncatingRemainder(dividingBy: m) == 0 }
        return abs(q - q.rounded()) <= 1e-9 * max(1, abs(q))
    }

    mutating func checkString(_ rules: SchemaRules, _ s: String, path: String, position: [Int]) {
        if rules.minLength != nil || rules.maxLength != nil {
            let count = s.count
            if let m = rules.minLength, count < m {
                report(path, position, "expected at least \(SchemaValidator.plural(m, "character")), found \(count)")
            }
            if let m = rules.maxLength, count > m {
                report(path, position, "expected at most \(SchemaValidator.plural(m, "character")), found \(count)")
            }
        }
        if let source = rules.pattern {
            let regex: Regex<AnyRegexOutput>?
            if let cached = regexes[source] {
                regex = cached
            } else {
                regex = try? Regex(source)
                if let regex { regexes[source] = regex }
            }
            // `compile` proved the pattern valid, so `regex` is never nil here.
            if let regex, s.firstMatch(of: regex) == nil {
                report(path, position, "expected a string matching /\(source)/, found \(SchemaValidator.excerpt(.string(s)))")
            }
        }
    }

    mutating func checkArray(_ rules: SchemaRules, _ items: [JSONValue], path: String, position: [Int]) {
        if let m = rules.minItems, items.count < m {
            report(path, position, "expected at least \(SchemaValidator.plural(m, "item")), found \(items.count)")
        }
        if let m = rules.maxItems, items.count > m {
            report(path, position, "expected at most \(SchemaValidator.plural(m, "item")), found \(items.count)")
        }
        if rules.uniqueItems {
            var first: [String: Int] = [:]
            for (i, item) in items.enumerated() {
                let key = item.canonicalForm.serialized
                if let j = first[key] {
                    report(path, position, "expected unique items, found item \(i) equal to item \(j)")
                } else {
                    first[key] = i
                }
            }
        }
        if let schema = rules.items {
            for (i, item) in items.enumerated() {
                check(schema, item, path: "\(path)[\(i)]", position: position + [i])
            }
        }
    }

    mutating func checkObject(_ rules: SchemaRules, _ members: [JSONMember], path: String, position: [Int]) {
        for name in rules.required where !members.contains(where: { $0.key == name }) {
            report(path, position, "missing required property \(SchemaValidator.quoted(name))")
        }
        for (i, member) in members.enumerated() {
            let memberPath = JSONPath.appending(key: member.key, to: path)
            if let schema = rules.property(member.key) {
                check(schema, member.value, path: memberPath, position: position + [i])
            } else if let extra = rules.additionalProperties {
                if case .always(false) = extra {
                    report(path, position + [i], "unexpected property \(SchemaValidator.quoted(member.key))")
                } else {
                    check(extra, member.value, path: memberPath, position: position + [i])
                }
            }
        }
    }

    mutating func checkAnyOf(_ options: [SchemaNode], _ value: JSONValue, path: String, position: [Int]) {
        var closest: (index: Int, found: [Located])?
        for (i, option) in options.enumerated() {
            let found = trial(option, value, path: path, position: position)
            if found.isEmpty { return }
            if closest.map({ found.count < $0.found.count }) ?? true { closest = (i, found) }
        }
        report(path, position, "expected to match at least one anyOf schema, matched none" + SchemaValidator.hint("anyOf", closest))
    }

    mutating func checkOneOf(_ options: [SchemaNode], _ value: JSONValue, path: String, position: [Int]) {
        var matched: [Int] = []
        var closest: (index: Int, found: [Located])?
        for (i, option) in options.enumerated() {
            let found = trial(option, value, path: path, position: position)
            if found.isEmpty {
                matched.append(i)
            } else if closest.map({ found.count < $0.found.count }) ?? true {
                closest = (i, found)
            }
        }
        if matched.isEmpty {
            report(path, position, "expected to match exactly one oneOf schema, matched none" + SchemaValidator.hint("oneOf", closest))
        } else if matched.count > 1 {
            let which = matched.map { "oneOf[\($0)]" }.joined(separator: ", ")
            report(path, position, "expected to match exactly one oneOf schema, matched \(matched.count) (\(which))")
        }
    }

    /// `; closest: anyOf[1] ($.a: expected a string, found a number)`: the option that failed
    /// least, so the reader (often a model asked to fix its output) knows what to change.
    static func hint(_ keyword: String, _ closest: (index: Int, found: [Located])?) -> String {
        guard let closest else { return "" }
        let first = closest.found.min { a, b in
            a.position != b.position ? a.position.lexicographicallyPrecedes(b.position) : a.serial < b.serial
        }
        guard let first else { return "" }
        let more = closest.found.count > 1 ? " and \(closest.found.count - 1) more" : ""
        return "; closest: \(keyword)[\(closest.index)] (\(first.violation)\(more))"
    }

    static func phrase(_ types: [SchemaType]) -> String {
        let phrases = types.map(\.phrase)
        guard phrases.count > 1, let last = phrases.last else { return phrases.first ?? "nothing" }
        return phrases.dropLast().joined(separator: ", ") + " or " + last
    }

    static func plural(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }

    static func quoted(_ s: String) -> String { JSONValue.string(s).serialized }

    /// A value as JSON text, cut to 60 characters so a huge value cannot flood a message.
    static func excerpt(_ value: JSONValue) -> String {
        let text = value.serialized
        guard text.count > 60 else { return text }
        return String(text.prefix(57)) + "…"
    }
}

// MARK: - Canonical form

extension JSONValue {
    /// This value with every object's members sorted by key (recursively) and repeated keys
    /// reduced to the last one, which is the one ``subscript(key:)`` reads. Two values are equal
    /// as JSON when their canonical forms serialize to the same text.
    var canonicalForm: JSONValue {
        switch self {
        case .array(let items): return .array(items.map(\.canonicalForm))
        case .object(let members):
            var last: [String: Int] = [:]
            for (i, m) in members.enumerated() { last[m.key] = i }
            let kept = members.enumerated().filter { last[$0.element.key] == $0.offset }.map { JSONMember($0.element.key, $0.element.value.canonicalForm) }
            // Sort by UTF-8 bytes, not String's Unicode ordering, so the order is the same everywhere.
            return .object(kept.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) })
        default: return self
        }
    }
}
