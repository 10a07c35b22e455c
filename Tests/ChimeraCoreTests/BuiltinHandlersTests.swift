import Testing
@testable import ChimeraCore

/// Runs the offline handler `name` on `input` (JSON text).
private func run(_ name: String, _ input: String) throws -> JSONValue {
    try BuiltinTextHandlers.run(name, input: JSONParser.parse(input))
}

/// Runs `name` on `input` and returns the `output` string.
private func output(_ name: String, _ input: JSONValue) throws -> String? {
    try BuiltinTextHandlers.run(name, input: input)["output"]?.stringValue
}

/// The invalid-input message `name` fails with on `input`, or nil if it succeeds.
private func failure(_ name: String, _ input: JSONValue) -> String? {
    do throws(TaskFailure) {
        _ = try BuiltinTextHandlers.run(name, input: input)
        return nil
    } catch {
        #expect(error.kind == .invalidInput)
        return error.message
    }
}

private func obj(_ members: (String, JSONValue)...) -> JSONValue { .object(members.map { JSONMember($0.0, $0.1) }) }

private func mathError(_ expression: String) -> MathEvaluator.MathError? {
    do throws(MathEvaluator.MathError) {
        _ = try MathEvaluator.evaluate(expression)
        return nil
    } catch {
        return error
    }
}

private let solarText = """
Solar power is growing quickly around the world. My neighbour bought a red bicycle last week. \
Solar panels convert sunlight into electric power for homes. Cheap solar panels make electric power \
affordable for many homes. The weather was cloudy on Tuesday. Governments support solar power with \
subsidies for panels on homes. Cats sleep most of the day.
"""

@Suite struct BuiltinHandlerSpecTests {
    @Test func specs_coverEveryHandler_withHonestPriors() throws {
        let names = BuiltinTextHandlers.names
        #expect(names == ["text.summarize", "text.keywords", "text.classify", "text.sentiment", "json.extract", "json.repair", "json.validate", "math.eval",
                          "text.stats", "template.render"])
        for spec in BuiltinTextHandlers.all {
            #expect((0...1).contains(spec.capability) && !spec.kinds.isEmpty && spec.maxInputTokens > 0)
            #expect(spec.handlerCapability.handler == spec.name)
        }
        #expect(BuiltinTextHandlers.all.first { $0.name == "math.eval" }?.kinds == ["math"])
        // The built-in worker's standard set: echo and noop, then these.
        #expect(BuiltinHandlerNames.standard == ["echo", "noop"] + names)
        #expect(Set(names).isSubset(of: Set(BuiltinHandlerNames.standard)))
    }

    @Test func everyHandler_acceptsTaskRouterShape() throws {
        let prompt = "What is 2 + 2? Great question. {\"a\": 1}"
        for name in BuiltinTextHandlers.names where !["text.classify", "json.validate", "text.stats", "template.render"].contains(name) {
            let input = obj(("kind", .string("x")), ("text", .string(prompt)), ("prompt", .string(prompt)))
            #expect(try output(name, input) != nil, "\(name)")
        }
        #expect(failure("text.summarize", obj(("prompt", .string("x"))))?.contains("\"text\"") == true)
    }
}

@Suite struct BuiltinSummarizerTests {
    @Test func sentences_abbreviationsDecimalsInitials() {
        #expect(SentenceSplitter.split("Dr. Smith arrived at 3.5 p.m. on Monday. He used tools, e.g. hammers and saws. It went well!")
            == ["Dr. Smith arrived at 3.5 p.m. on Monday.", "He used tools, e.g. hammers and saws.", "It went well!"])
        #expect(SentenceSplitter.split("J. K. Rowling wrote books. They sold well.") == ["J. K. Rowling wrote books.", "They sold well."])
        #expect(SentenceSplitter.split("We bought apples, pears, etc. Then we left. \"Why?\" she asked.")
            == ["We bought apples, pears, etc.", "Then we left.", "\"Why?\" she asked."])
        #expect(SentenceSplitter.split("Heading without stop\n\nBody text here. More") == ["Heading without stop", "Body text here.", "More"])
        #expect(SentenceSplitter.split("Version 2.0 shipped... finally!! Yes.") == ["Version 2.0 shipped...", "finally!!", "Yes."])
    }

    @Test func picksCentralSentences_inOriginalOrder() {
        let medium = TextRankSummarizer.summarize(solarText, sentences: 4).map(\.index)
        #expect(medium == [0, 2, 3, 5])
        let short = TextRankSummarizer.summarize(solarText, sentences: 2).map(\.index)
        #expect(short.count == 2 && short == short.sorted() && Set(short).isSubset(of: [2, 3, 5]))
        // More sentences than the text has: all of them.
        #expect(TextRankSummarizer.summarize("One sentence only.", sentences: 4).map(\.sentence) == ["One sentence only."])
    }

    @Test func styles_andLengths() throws {
        let bullets = try #require(try output("text.summarize", obj(("text", .string(solarText)), ("style", .string("bullets")), ("length", .string("short")))))
        #expect(bullets.split(separator: "\n").count == 2 && bullets.split(separator: "\n").allSatisfy { $0.hasPrefix("- ") })
        let paragraph = try #require(try output("text.summarize", obj(("text", .string(solarText)), ("length", .string("medium")))))
        #expect(paragraph.hasPrefix("Solar power is growing quickly") && !paragraph.contains("\n") && !paragraph.contains("bicycle"))
        let long = try run("text.summarize", #"{"text": "\#(solarText)", "length": "long"}"#)
        #expect(long["sentences"].map { if case .array(let a) = $0 { a.count } else { 0 } } == 7)
        let structured = try #require(try output("text.summarize", obj(("text", .string(solarText)), ("style", .string("structured")), ("sentences", .number(3)))))
        #expect(structured.hasPrefix("Summary: ") && structured.contains("\n\nKey points:\n- "))
        #expect(structured.split(separator: "\n").filter { $0.hasPrefix("- ") }.count == 2)
        #expect(failure("text.summarize", obj(("text", .string(solarText)), ("style", .string("poem"))))?.contains("\"style\"") == true)
        #expect(failure("text.summarize", obj(("text", .string(solarText)), ("length", .string("huge"))))?.contains("\"length\"") == true)
        #expect(failure("text.summarize", obj(("text", .string(solarText)), ("sentences", .number(0))))?.contains("\"sentences\"") == true)
    }

    @Test func stripsLeadingInstruction() throws {
        #expect(TextRankSummarizer.stripInstruction("Summarize this report: The plant opened. It hired staff.") == "The plant opened. It hired staff.")
        #expect(TextRankSummarizer.stripInstruction("Summarize:\nA. B.") == "A. B.")
        #expect(TextRankSummarizer.stripInstruction("Note: the plant opened.") == "Note: the plant opened.")
        let out = try output("text.summarize", .string("Please summarize the following: The plant opened."))
        #expect(out == "The plant opened.")
    }
}

extension BuiltinSummarizerTests {
    @Test func instructionWords_setStyleAndLength_unlessOptionsSay() throws {
        #expect(TextRankSummarizer.instructionHints("Summarize this in 3 bullets: A. B.") == (.bullets, 3))
        #expect(TextRankSummarizer.instructionHints("Give a brief summary: A.") == (nil, 2))
        #expect(TextRankSummarizer.instructionHints("Summarize the key points in two sentences: A.") == (.structured, 2))
        #expect(TextRankSummarizer.instructionHints("No instruction. 3 bullets here.") == (nil, nil))
        let bullets = try #require(try output("text.summarize", .string("Summarize in 2 bullets: " + solarText)))
        #expect(bullets.split(separator: "\n").count == 2 && bullets.hasPrefix("- "))
        let overridden = try #require(try output("text.summarize", obj(("text", .string("Summarize in 2 bullets: " + solarText)), ("style", .string("paragraph")), ("sentences", .number(3)))))
        #expect(!overridden.hasPrefix("- ") && SentenceSplitter.split(overridden).count == 3)
    }
}

@Suite struct BuiltinKeywordTests {
    @Test func knownText_ranksRecurringPhraseFirst() throws {
        let text = "Machine learning is a field of study. Machine learning uses data. The data is noisy, and machine learning needs clean data. Cats are cute."
        let keywords = KeywordExtractor.extract(text, count: 5).map(\.keyword)
        #expect(keywords.first == "machine learning")
        #expect(keywords.contains("data") && keywords.count == 5)
        let result = try run("text.keywords", #"{"text": "\#(text)", "count": 3}"#)
        let out = try #require(result["output"]?.stringValue)
        #expect(out.hasPrefix("machine learning, ") && out.split(separator: ",").count == 3)
        guard case .array(let items)? = result["keywords"] else { Issue.record("no keywords array"); return }
        #expect(items.count == 3 && items[0]["score"]?.numberValue ?? 0 > 0)
        #expect(failure("text.keywords", obj(("text", .string("x")), ("count", .string("many"))))?.contains("\"count\"") == true)
    }

    @Test func stopWordsAndNumbersSplitPhrases() {
        #expect(KeywordExtractor.candidates("The quick fox and 42 lazy dogs") == [["quick", "fox"], ["lazy", "dogs"]])
    }
}

@Suite struct BuiltinClassifierTests {
    @Test func stemmer() {
        #expect(["refund", "refunds", "refunded", "refunding"].map(SimpleStemmer.stem) == Array(repeating: "refund", count: 4))
        #expect(["charge", "charges", "charged", "charging"].map(SimpleStemmer.stem) == Array(repeating: "charg", count: 4))
        #expect(["ship", "ships", "shipped", "shipping"].map(SimpleStemmer.stem) == Array(repeating: "ship", count: 4))
        #expect(SimpleStemmer.stem("batteries") == "battery" && SimpleStemmer.stem("classes") == "class" && SimpleStemmer.stem("bus") == "bus")
    }

    @Test func objectLabels_scoreKeywordMatches() throws {
        let input = try JSONParser.parse(#"""
        {"text": "I was charged twice and want my money refunded. The app also crashed.",
         "labels": {"billing": ["charge", "refund", "invoice", "money"], "bug": ["crash", "error"], "shipping": "delivery"}}
        """#)
        let result = try BuiltinTextHandlers.run("text.classify", input: input)
        #expect(result["output"] == .string("billing") && result["label"] == .string("billing"))
        #expect(result["score"] == .number(3))
        #expect(result["scores"] == obj(("billing", .number(3)), ("bug", .number(1)), ("shipping", .number(0))))
        #expect(result["confidence"] == .number(0.75))
    }

    @Test func listLabels_useTheirNames_andMultiWordKeywordsMatchAsPhrases() throws {
        #expect(try output("text.classify", obj(("text", .string("Our sports team won the football match.")), ("labels", .array([.string("politics"), .string("sports"), .string("science")])))) == "sports")
        let rules = try KeywordClassifier.parseRules(obj(("support", .array([.string("customer service")])), ("other", .array([.string("service")]))))
        let r = KeywordClassifier.classify("The service was fine; customer service was slow.", rules: rules)
        #expect(r.label == "other" && r.scores.map(\.score) == [1, 2])
        let none = try run("text.classify", #"{"text": "Nothing relevant.", "labels": ["cooking"]}"#)
        #expect(none["output"] == .string("unclassified") && none["label"] == .null)
    }

    @Test func missingOrBadLabels_areClearErrors() {
        #expect(failure("text.classify", obj(("text", .string("hello")))) == "missing \"labels\": expected a list of label names or an object {label: [keywords]}")
        #expect(failure("text.classify", obj(("text", .string("hello")), ("labels", .number(3))))?.hasPrefix("\"labels\": expected") == true)
        #expect(failure("text.classify", obj(("text", .string("hello")), ("labels", .array([]))))?.contains("at least one label") == true)
        #expect(failure("text.classify", obj(("text", .string("hello")), ("labels", obj(("a", .number(1))))))?.contains("\"labels\".\"a\"") == true)
    }
}

@Suite struct BuiltinSentimentTests {
    @Test func polarity_negation_intensifiers() {
        let good = SentimentAnalyzer.analyze("The food was good.")
        #expect(good.label == "positive" && good.score > 0 && good.score <= 1)
        #expect(SentimentAnalyzer.analyze("The food was not good.").label == "negative")
        #expect(SentimentAnalyzer.analyze("This isn't bad at all").label == "positive")
        #expect(SentimentAnalyzer.analyze("It was never great").label == "negative")
        #expect(SentimentAnalyzer.analyze("The box is on the table.").label == "neutral")
        #expect(SentimentAnalyzer.analyze("The box is on the table.").score == 0)
        #expect(SentimentAnalyzer.analyze("very good").score > SentimentAnalyzer.analyze("good").score)
        #expect(SentimentAnalyzer.analyze("extremely bad").score < SentimentAnalyzer.analyze("bad").score)
        #expect(SentimentAnalyzer.analyze("slightly bad").score > SentimentAnalyzer.analyze("bad").score)
        let terrible = SentimentAnalyzer.analyze("Terrible, awful, horrible, the worst service ever. Absolutely disgusting.")
        #expect(terrible.label == "negative" && terrible.score >= -1 && terrible.score < -0.8)
        // Negation reaches three words back, not four.
        #expect(SentimentAnalyzer.analyze("not one of the good").label == "positive")
    }

    @Test func handlerOutput() throws {
        let r = try run("text.sentiment", #"{"text": "I love it, really great!"}"#)
        #expect(r["output"] == .string("positive") && r["positive"] == .array([.string("love"), .string("great")]))
    }
}

@Suite struct BuiltinJSONToolsTests {
    @Test func extract_fromFencesAndBare() throws {
        let fenced = "Here you go:\n```json\n{\"a\": [1, 2], \"b\": \"}\"}\n```\nThanks."
        #expect(JSONTools.extract(fenced) == obj(("a", .array([.number(1), .number(2)])), ("b", .string("}"))))
        #expect(JSONTools.extract("The list is [1, 2, 3] and {\"x\": 1}.") == .array([.number(1), .number(2), .number(3)]))
        #expect(JSONTools.extract("Not [this one] but {\"ok\": true}") == obj(("ok", .bool(true))))
        #expect(JSONTools.extract("no json here") == nil)
        #expect(try output("json.extract", .string("```\n[\"x\"]\n```")) == "[\"x\"]")
        #expect(failure("json.extract", .string("plain text"))?.contains("\"text\"") == true)
    }

    private func repaired(_ text: String) throws -> (String, [String]) {
        let r = try JSONTools.repair(text)
        return (r.value.serialized, r.repairs)
    }

    @Test func repair_eachCase() throws {
        #expect(try repaired(#"{"a": 1}"#) == (#"{"a":1}"#, []))
        #expect(try repaired(#"{"a": [1, 2,], }"#) == (#"{"a":[1,2]}"#, ["removed a trailing comma"]))
        #expect(try repaired(#"{'a': 'it\'s "x"'}"#) == (#"{"a":"it's \"x\""}"#, ["converted single quotes to double quotes"]))
        #expect(try repaired(#"{name: "Ann", age_2: 3}"#) == (#"{"name":"Ann","age_2":3}"#, ["quoted unquoted keys"]))
        #expect(try repaired(#"{"a": {"b": [1, 2"#) == (#"{"a":{"b":[1,2]}}"#, ["closed unclosed brackets"]))
        #expect(try repaired(#"{"ok": True, "no": False, "x": None}"#) == (#"{"ok":true,"no":false,"x":null}"#, ["converted Python literals"]))
        #expect(try repaired("{\"a\": 1 // one\n \"b\": 2}") == (#"{"a":1,"b":2}"#, ["removed a comment", "inserted a missing comma"]))
        #expect(try repaired(#"Sure! {"a": "unterminated"#).0 == #"{"a":"unterminated"}"#)
        #expect(try repaired(#"{"a": 1, "b":"#).0 == #"{"a":1,"b":null}"#)
        let out = try run("json.repair", #"{"text": "```json\n{a: 1,}\n```"}"#)
        #expect(out["output"] == .string(#"{"a":1}"#) && out["json"] == obj(("a", .number(1))))
        #expect(failure("json.repair", .string("no json at all"))?.hasPrefix("\"text\": no JSON object or array") == true)
    }

    @Test func validate_viaSchema() throws {
        let schema = #"{"type": "object", "required": ["name", "age"], "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}"#
        let ok = try run("json.validate", #"{"json": {"name": "Ann", "age": 3}, "schema": \#(schema)}"#)
        #expect(ok["valid"] == .bool(true) && ok["output"] == .string("valid") && ok["violations"] == .array([]))
        let bad = try run("json.validate", #"{"json": "{\"name\": 5}", "schema": \#(schema)}"#)
        #expect(bad["valid"] == .bool(false))
        guard case .array(let violations)? = bad["violations"] else { Issue.record("no violations"); return }
        #expect(violations.count == 2 && bad["output"]?.stringValue?.hasPrefix("invalid: ") == true)
        let fromText = try run("json.validate", #"{"text": "Result: ```json\n{\"name\": \"B\", \"age\": 1}\n```", "schema": \#(schema)}"#)
        #expect(fromText["valid"] == .bool(true))
        #expect(failure("json.validate", obj(("json", .number(1))))?.hasPrefix("missing \"schema\"") == true)
        #expect(failure("json.validate", obj(("json", .number(1)), ("schema", .number(2))))?.hasPrefix("\"schema\"") == true)
        #expect(failure("json.validate", obj(("schema", obj())))?.hasPrefix("missing \"json\"") == true)
    }
}

@Suite struct BuiltinMathEvaluatorTests {
    @Test func precedence_associativity_unary() throws {
        #expect(try MathEvaluator.evaluate("2 + 3 * 4") == 14)
        #expect(try MathEvaluator.evaluate("(2 + 3) * 4") == 20)
        #expect(try MathEvaluator.evaluate("10 - 4 - 3") == 3)
        #expect(try MathEvaluator.evaluate("24 / 4 / 2") == 3)
        #expect(try MathEvaluator.evaluate("2 ^ 3 ^ 2") == 512)
        #expect(try MathEvaluator.evaluate("2 ** 3") == 8)
        #expect(try MathEvaluator.evaluate("-2 ^ 2") == -4)
        #expect(try MathEvaluator.evaluate("2 ^ -1") == 0.5)
        #expect(try MathEvaluator.evaluate("--3 + -(-2)") == 5)
        #expect(try MathEvaluator.evaluate("7 % 3 + .5 + 1e2") == 101.5)
        #expect(try MathEvaluator.evaluate("6 × 7 ÷ 2 − 1") == 20)
    }

    @Test func functions_andConstants() throws {
        #expect(try MathEvaluator.evaluate("sqrt(16) + abs(-3)") == 7)
        #expect(try MathEvaluator.evaluate("min(4, 2, 8) * max(1, 5)") == 10)
        #expect(abs(try MathEvaluator.evaluate("round(2.5) + round(3.14159, 2)") - 6.14) < 1e-12)
        #expect(try MathEvaluator.evaluate("floor(2.7) + ceil(2.1)") == 5)
        #expect(abs(try MathEvaluator.evaluate("2 * pi") - 6.283185307179586) < 1e-12)
        #expect(abs(try MathEvaluator.evaluate("e ^ 1") - 2.718281828459045) < 1e-12)
        #expect(MathEvaluator.format(0.1 + 0.2) == "0.3" && MathEvaluator.format(27) == "27" && MathEvaluator.format(-0.5) == "-0.5")
    }

    @Test func errors_namePositions() {
        #expect(mathError("1 / (2 - 2)")?.description == "division by zero at character 3")
        #expect(mathError("5 % 0")?.message == "remainder by zero")
        #expect(mathError("2 + * 3")?.description == "expected a number, found \"*\" at character 5")
        #expect(mathError("(1 + 2")?.description == "missing \")\" to close this \"(\" at character 1")
        #expect(mathError("(1 2)")?.description == "expected \")\" or an operator, found \"2\" at character 4")
        #expect(mathError("1 + 2)")?.description == "unexpected \")\" at character 6")
        #expect(mathError("foo(2)")?.description == "unknown name \"foo\" at character 1")
        #expect(mathError("sqrt(-4)")?.message == "sqrt of a negative number")
        #expect(mathError("sqrt(1, 2)")?.message == "sqrt takes 1 argument, found 2")
        #expect(mathError("")?.position == 1)
        #expect(mathError("(-8) ^ 0.5")?.message == "-8^0.5 is not a real number")
    }

    @Test func findsExpressionInQuestion() throws {
        #expect(MathEvaluator.findExpression("What is 3 * (4 + 5)?") == "3 * (4 + 5)")
        #expect(MathEvaluator.findExpression("Compute sqrt(2) * 2 for me.") == "sqrt(2) * 2")
        #expect(MathEvaluator.findExpression("In 2024, what is 12.5 + 7.5 - 3?") == "12.5 + 7.5 - 3")
        #expect(MathEvaluator.findExpression("no numbers here") == nil)
        #expect(MathEvaluator.findExpression("What is 7 times 6 plus 2?") == "7 * 6 + 2")
        #expect(MathEvaluator.findExpression("What is 5 squared divided by 5?") == "5 ^ 2 / 5")
        let r = try run("math.eval", #"{"kind": "math", "text": "What is 3 * (4 + 5)?", "prompt": "What is 3 * (4 + 5)?"}"#)
        #expect(r["output"] == .string("27") && r["value"] == .number(27) && r["expression"] == .string("3 * (4 + 5)"))
        #expect(try output("math.eval", obj(("expression", .string("1/4")))) == "0.25")
        #expect(failure("math.eval", .string("What is 1 / 0?")) == "\"expression\" \"1 / 0\": division by zero at character 3")
        #expect(failure("math.eval", .string("hello"))?.contains("found none") == true)
    }
}

@Suite struct BuiltinTextStatsTests {
    @Test func syllables_followTheDocumentedRules() {
        let expected = ["make": 1, "table": 2, "little": 2, "whale": 1, "the": 1, "jumped": 1, "wanted": 2, "added": 2,
                        "makes": 1, "boxes": 2, "uses": 2, "happy": 2, "readability": 5, "Chimera": 3, "1999": 1, "Dr": 1]
        for (word, count) in expected {
            #expect(TextStatistics.syllableCount(word) == count, "\(word)")
        }
    }

    @Test func counts_andReadability_exact() throws {
        let text = "The cat sat on the mat. It was happy!\n  \nDr. Smith arrived at 3.5 p.m. today. —"
        // The lone dash is neither a word nor a sentence; "Dr." and "p.m." end none; the blank line holds spaces.
        #expect(try run("text.stats", JSONValue.object([JSONMember("text", .string(text))]).serialized) == obj(
            ("characters", .number(79)), ("words", .number(16)), ("sentences", .number(3)), ("paragraphs", .number(2)),
            ("reading_time_seconds", .number(5)), ("average_sentence_words", .number(5.33)), ("syllables", .number(19)),
            // 206.835 − 1.015 × 16/3 − 84.6 × 19/16 = 100.959…
            ("flesch_reading_ease", .number(101))))
        let plain = TextStatistics.analyze("Chimera runs tasks. It supervises workers!")
        #expect(plain.words == 6 && plain.syllables == 12 && plain.readingTimeSeconds == 2)
        #expect(plain.json["flesch_reading_ease"] == .number(34.6))  // 206.835 − 3.045 − 169.2
    }

    @Test func emptyText_hasNoReadability() throws {
        let report = TextStatistics.analyze("  \n ")
        #expect(report.words == 0 && report.sentences == 0 && report.paragraphs == 0 && report.fleschReadingEase == nil)
        #expect(report.json["flesch_reading_ease"] == .null && report.json["average_sentence_words"] == .number(0))
        #expect(failure("text.stats", .number(3)) == "expected a string or an object with a \"text\" string, found a number")
    }

    @Test func templateRender_isDeclared_butRunsInTheWorker() {
        let spec = BuiltinTextHandlers.all.first { $0.name == "template.render" }
        #expect(spec?.kinds == ["template", "template.render"])
        do throws(TaskFailure) {
            _ = try BuiltinTextHandlers.run("template.render", input: .string("x"))
            Issue.record("ChimeraCore rendered a template")
        } catch {
            #expect(error.kind == .unknownHandler)
        }
    }
}
