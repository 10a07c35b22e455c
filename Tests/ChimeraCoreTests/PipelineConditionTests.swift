import Testing
@testable import ChimeraCore

/// The context a step sees: inputs, earlier steps, and a foreach item.
private let context = try! JSONParser.parse("""
{
  "inputs": {"flag": true, "off": false, "count": 3, "zero": 0, "name": "ada", "empty": "", "langs": ["en", "fr"],
             "none": [], "meta": {"owner": "ops"}, "blank": {}, "ratio": 1.0},
  "steps": {"classify": {"output": "urgent", "json": {"label": "urgent", "score": 0.9, "tags": ["a", "b"]}, "skipped": false},
            "skipme": {"output": "", "skipped": true}},
  "item": {"lang": "fr", "size": 10},
  "index": 0
}
""")

private func holds(_ text: String) throws -> Bool {
    try PipelineCondition.parse(text).evaluate(in: context)
}

private func parseError(_ text: String) -> PipelineConditionError? {
    do throws(PipelineConditionError) {
        _ = try PipelineCondition.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct PipelineConditionTests {
    @Test func aPathAlone_testsTruthiness_andNullFalseZeroEmptyAreFalse() throws {
        #expect(try holds("inputs.flag"))
        #expect(try holds("inputs.count"))
        #expect(try holds("inputs.name"))
        #expect(try holds("inputs.langs"))
        #expect(try holds("inputs.meta"))
        #expect(try !holds("inputs.off"))
        #expect(try !holds("inputs.zero"))
        #expect(try !holds("inputs.empty"))
        #expect(try !holds("inputs.none"))
        #expect(try !holds("inputs.blank"))
        #expect(try !holds("null"))
        #expect(try holds("true"))
        #expect(try !holds("0"))
        #expect(try holds("'x'"))
        #expect(try !holds("''"))
    }

    @Test func missingPaths_areNull() throws {
        #expect(try !holds("inputs.nope"))
        #expect(try !holds("steps.ghost.json.label"))
        #expect(try holds("inputs.nope == null"))
        #expect(try holds("steps.classify.json.tags[5] == null"))
        #expect(try holds("inputs.name.length == null"), "a key below a string is missing, not an error")
        #expect(try !holds("inputs.nope < 3"))
    }

    @Test func indexesAndNestedPaths_resolve() throws {
        #expect(try holds("inputs.langs[1] == 'fr'"))
        #expect(try holds("steps.classify.json.tags[0] == \"a\""))
        #expect(try holds("item.lang == inputs.langs[1]"))
        #expect(try holds("index == 0"))
    }

    @Test func equality_comparesJSONValues() throws {
        #expect(try holds("inputs.ratio == 1"), "1.0 == 1")
        #expect(try holds("inputs.count == 3.0"))
        #expect(try !holds("inputs.count == '3'"), "a string never equals a number")
        #expect(try holds("inputs.count != '3'"))
        #expect(try holds("inputs.flag == true"))
        #expect(try holds("steps.skipme.skipped == true"))
        #expect(try holds("inputs.name != 'bob'"))
        #expect(try holds("-2.5e1 == -25"))
    }

    @Test func ordering_worksOnNumbersAndOnStrings_andIsFalseOtherwise() throws {
        #expect(try holds("inputs.count > 2"))
        #expect(try holds("inputs.count >= 3"))
        #expect(try !holds("inputs.count < 3"))
        #expect(try holds("inputs.count <= 3"))
        #expect(try holds("steps.classify.json.score > 0.5"))
        #expect(try holds("'apple' < 'banana'"))
        #expect(try holds("inputs.name >= 'ada'"))
        #expect(try !holds("inputs.name < 5"), "mixed types never compare")
        #expect(try !holds("inputs.name >= 5"))
        #expect(try !holds("inputs.langs > 1"))
    }

    @Test func contains_isSubstringElementOrKey() throws {
        #expect(try holds("steps.classify.output contains 'urg'"))
        #expect(try !holds("steps.classify.output contains 'calm'"))
        #expect(try holds("inputs.langs contains 'fr'"))
        #expect(try !holds("inputs.langs contains 'de'"))
        #expect(try holds("inputs.meta contains 'owner'"))
        #expect(try !holds("inputs.meta contains 'ops'"))
        #expect(try !holds("inputs.count contains 3"))
    }

    @Test func precedence_notBindsLooserThanComparison_andBindsTighterThanOr() throws {
        // && binds tighter than ||: true || (false && false)
        #expect(try holds("inputs.flag || inputs.off && inputs.off"))
        // (true || false) && false would be false; the grammar gives true.
        #expect(try !holds("(inputs.flag || inputs.off) && inputs.off"))
        // ! applies to the comparison: !(count == 3)
        #expect(try !holds("!inputs.count == 3"))
        #expect(try holds("!inputs.off && inputs.flag"))
        #expect(try holds("!!inputs.flag"))
        #expect(try holds("! (inputs.flag && inputs.off)"))
        #expect(try holds("inputs.count == 3 && item.lang == 'fr' || false"))
    }

    @Test func paths_listsEveryPathRead_inOrder() throws {
        let condition = try PipelineCondition.parse("steps.classify.json.label == 'urgent' && !(inputs.flag || item.langs[0] contains index)")
        #expect(condition.paths == ["steps.classify.json.label", "inputs.flag", "item.langs[0]", "index"])
        #expect(condition.pathReferences.map(\.offset) == [0, 43, 58, 81])
        #expect(try PipelineCondition.parse("true && 'inputs.x' == null").paths.isEmpty)
    }

    @Test func stringLiterals_takeBothQuotesAndEscapes() throws {
        #expect(try holds(#"'it\'s' == "it's""#))
        #expect(try holds(#""a\"b" contains '"'"#))
        #expect(try holds(#"'x\ny' contains '\n'"#))
    }

    @Test func errors_nameTheProblemAndItsOffset() {
        #expect(parseError("") == PipelineConditionError(offset: 0, message: "the condition is empty"))
        #expect(parseError("inputs.a ==") == PipelineConditionError(offset: 11, message: "expected a value (a path, a string, a number, true, false, null or '('), found the end of the condition"))
        #expect(parseError("inputs.a = 1") == PipelineConditionError(offset: 9, message: "'=' is not an operator; use '==' to compare"))
        #expect(parseError("inputs.a & inputs.b") == PipelineConditionError(offset: 9, message: "'&' is not an operator; use '&&'"))
        #expect(parseError("inputs.a | inputs.b") == PipelineConditionError(offset: 9, message: "'|' is not an operator; use '||'"))
        #expect(parseError("(inputs.a && inputs.b") == PipelineConditionError(offset: 21, message: "expected ')' to close the '(', found the end of the condition"))
        #expect(parseError("inputs.a == 'abc") == PipelineConditionError(offset: 12, message: "unterminated string (no closing ')"))
        #expect(parseError("inputs. == 1") == PipelineConditionError(offset: 7, message: "expected a name after '.', found ' '"))
        #expect(parseError("inputs.a[x]") == PipelineConditionError(offset: 9, message: "expected an array index (digits) after '[', found 'x'"))
        #expect(parseError("inputs.a inputs.b") == PipelineConditionError(offset: 9, message: "expected an operator ('&&', '||', '==', …) or the end of the condition, found 'i'"))
        #expect(parseError("[1] contains 1")?.offset == 0)
        #expect(parseError("contains 'x'") == PipelineConditionError(offset: 0, message: "expected a value before 'contains'"))
        #expect(parseError("3abc == 1") == PipelineConditionError(offset: 0, message: "a number cannot run into a name"))
        #expect(parseError(#"'a\q'"#) == PipelineConditionError(offset: 2, message: #"unknown escape '\q' in a string (known: \\ \' \" \n \t)"#))
        #expect(parseError("inputs.a == 1 )")?.description == "offset 14: expected an operator ('&&', '||', '==', …) or the end of the condition, found ')'")
    }

    @Test func deepNesting_isRefused_notACrash() {
        let deep = String(repeating: "(", count: 5_000) + "true" + String(repeating: ")", count: 5_000)
        #expect(parseError(deep)?.message == "the condition nests deeper than 200 levels")
        let nots = String(repeating: "!", count: 5_000) + "true"
        #expect(parseError(nots)?.message == "the condition nests deeper than 200 levels")
    }
}

/// Random expressions printed with as few parentheses as the grammar allows must parse back to
/// the same tree: a differential check of precedence and associativity.
@Suite struct PipelineConditionRoundTripTests {
    static let paths: [[PathComponent]] = [
        [.key("inputs"), .key("flag")], [.key("steps"), .key("classify"), .key("json"), .key("label")],
        [.key("item"), .key("lang")], [.key("index")], [.key("inputs"), .key("langs"), .index(1)], [.key("steps"), .key("a-b"), .key("output")],
    ]
    static let literals: [JSONValue] = [.null, .bool(true), .bool(false), .number(0), .number(-3), .number(2.5), .string(""), .string("it's"), .string("a\"b\\c")]
    static let operators: [ComparisonOperator] = [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .contains]

    static func randomNode(_ rng: inout SplitMix64, depth: Int) -> ConditionNode {
        let leaf = depth <= 0 || rng.chance(1, in: 4)
        if leaf {
            return rng.chance(1, in: 2) ? .path(rng.pick(paths)) : .literal(rng.pick(literals))
        }
        switch rng.int(in: 0...3) {
        case 0: return .not(randomNode(&rng, depth: depth - 1))
        case 1: return .and(randomNode(&rng, depth: depth - 1), randomNode(&rng, depth: depth - 1))
        case 2: return .or(randomNode(&rng, depth: depth - 1), randomNode(&rng, depth: depth - 1))
        default: return .compare(rng.pick(operators), randomNode(&rng, depth: depth - 1), randomNode(&rng, depth: depth - 1))
        }
    }

    static func precedence(_ node: ConditionNode) -> Int {
        switch node {
        case .or: return 1
        case .and: return 2
        case .not: return 3
        case .compare: return 4
        case .path, .literal: return 5
        }
    }

    /// `node` as text, parenthesized only where a tree of lower precedence stands where `minimum` is needed.
    static func render(_ node: ConditionNode, minimum: Int = 1) -> String {
        guard precedence(node) >= minimum else { return "(" + render(node) + ")" }
        switch node {
        case .or(let l, let r): return render(l, minimum: 1) + " || " + render(r, minimum: 2)
        case .and(let l, let r): return render(l, minimum: 2) + " && " + render(r, minimum: 3)
        case .not(let x): return "!" + render(x, minimum: 3)
        case .compare(let op, let l, let r): return render(l, minimum: 5) + " \(op.rawValue) " + render(r, minimum: 5)
        case .literal(.string(let s)):
            return "'" + s.map { $0 == "\\" || $0 == "'" ? "\\\($0)" : String($0) }.joined() + "'"
        case .literal(let value): return value.serialized
        case .path(let components):
            return components.enumerated().map { i, c in
                switch c {
                case .key(let k): return (i == 0 ? "" : ".") + k
                case .index(let n): return "[\(n)]"
                }
            }.joined()
        }
    }

    @Test(arguments: 1...20)
    func minimalParentheses_parseBackToTheSameTree(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<200 {
            let node = Self.randomNode(&rng, depth: 5)
            let text = Self.render(node)
            let parsed = try PipelineCondition.parse(text)
            #expect(parsed.root == node, "\(text)")
        }
    }

    @Test(arguments: 1...10)
    func randomText_eitherParsesOrFailsInsideTheText(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let pieces = ["inputs.a", "steps.b.json.c", "[0]", "[", "]", "(", ")", "!", "!=", "==", "=", "<", "<=", ">", ">=", "&&", "&", "||", "|",
                      "contains", "'x'", "'", "\"", "\\", "1", "-", "2.5", "1e3", "true", "null", " ", ".", "é", "{{"]
        for _ in 0..<300 {
            let text = (0..<rng.int(in: 0...12)).map { _ in rng.pick(pieces) }.joined()
            do throws(PipelineConditionError) {
                _ = try PipelineCondition.parse(text).evaluate(in: .object([]))
            } catch {
                #expect((0...text.utf8.count).contains(error.offset), "\(text): \(error)")
            }
        }
    }
}
