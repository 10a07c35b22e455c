import Testing
@testable import ChimeraCore
#if canImport(Glibc)
import Glibc
#endif

/// What the corpus is checked against: the built-in agents and the built-in worker's handlers.
let corpusContext = PipelineValidationContext(knownAgents: ["default", "specialized", "creative", "reasoning", "cost-aware"],
                                              knownHandlers: Set(BuiltinHandlerNames.standard))

private func decode(_ text: String, context: PipelineValidationContext = corpusContext) -> PipelineDecodeResult {
    PipelineDecoder.decode(Array(text.utf8), file: "p.json", context: context)
}

@Suite struct PipelineDecoderTests {
    static let invalidDirectory = PackageFiles.root + "/Tests/Fixtures/pipelines/invalid"
    static let validDirectory = PackageFiles.root + "/Tests/Fixtures/pipelines/valid"

    static var invalidCases: [String] {
        PackageFiles.list("Tests/Fixtures/pipelines/invalid").filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    }

    /// Every `invalid/NAME.json` reports exactly the lines of `invalid/NAME.expected`.
    /// (`CHIMERA_UPDATE_FIXTURES=1` rewrites the expected files; review the diff before committing.)
    @Test(arguments: invalidCases)
    func invalidCorpus_reportsExactlyTheExpectedDiagnostics(_ name: String) throws {
        let bytes = try #require(PackageFiles.read("\(Self.invalidDirectory)/\(name).json"))
        let result = PipelineDecoder.decode(bytes, file: "\(name).json", context: corpusContext)
        let actual = result.diagnostics.map(\.description).joined(separator: "\n") + "\n"
        let expectedPath = "\(Self.invalidDirectory)/\(name).expected"
        if getenv("CHIMERA_UPDATE_FIXTURES") != nil {
            let file = try #require(fopen(expectedPath, "wbe"))
            fputs(actual, file)
            fclose(file)
        }
        let expected = String(decoding: try #require(PackageFiles.read(expectedPath), "missing \(expectedPath)"), as: UTF8.self)
        #expect(actual == expected)
        #expect(result.pipeline == nil, "an invalid pipeline is not returned")
        let sorted = result.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
        #expect(result.diagnostics.map(\.description) == sorted.map(\.description), "diagnostics are in file order")
    }

    @Test func invalidCorpus_hasAtLeastFifteenCases() {
        #expect(Self.invalidCases.count >= 15)
    }

    @Test func validFixtures_decodeWithoutDiagnostics() throws {
        let names = PackageFiles.list("Tests/Fixtures/pipelines/valid").filter { $0.hasSuffix(".json") }
        #expect(!names.isEmpty)
        for name in names {
            let bytes = try #require(PackageFiles.read("\(Self.validDirectory)/\(name)"))
            let result = PipelineDecoder.decode(bytes, file: name, context: corpusContext)
            #expect(result.diagnostics.isEmpty, "\(name): \(result.diagnostics.map(\.description))")
            #expect(result.pipeline != nil)
        }
    }

    @Test func everyField_decodesIntoTheModel() throws {
        let result = decode("""
        {
          "$schema": "../Pipelines/pipeline.schema.json",
          "name": "research",
          "description": "Research, then write.",
          "inputs": {
            "topic": {"type": "string", "description": "What to write about"},
            "articles": {"type": "array", "default": [{"title": "a"}]},
            "limit": {"type": "integer", "default": 3},
            "strict": "boolean",
            "ratio": {"type": "number", "default": 0.5},
            "extra": {"type": "object", "default": {}}
          },
          "steps": [
            {"id": "split", "agent": "specialized", "kind": "extraction", "prompt": "Split {{inputs.topic}} ({{inputs.limit}}, {{inputs.ratio}}, {{inputs.extra}}).",
             "system": "You split topics.", "route": "external", "model": ["openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct:free"],
             "output": {"format": "json", "schema": {"type": "object", "required": ["items"]}}, "max_tokens": 400, "temperature": 0.2,
             "retry": {"max_attempts": 3, "backoff_ms": 250}, "timeout": "30s"},
            {"id": "each", "prompt": "Summarize {{item.title}} (#{{index}}).", "foreach": "steps.split.json.items", "merge": "concat",
             "needs": "split", "when": "inputs.strict || steps.split.json.items contains 'x'", "retry": 2, "timeout": 1500,
             "quality": {"min_score": 0.7, "scorers": ["format", "reference:2", {"name": "agreement", "weight": 0.5}], "reference": "About {{inputs.topic}}"}},
            {"id": "stats", "handler": "text.stats", "input": {"text": "{{steps.each.output}}", "n": 1}, "needs": ["each"], "timeout": "2m",
             "output": "json"},
            {"id": "per-article", "prompt": "{{item.title}}", "foreach": "inputs.articles", "route": "internal", "kind": "summarize", "timeout": "0.5s"}
          ],
          "outputs": {"summary": "{{steps.each.output}}", "words": "{{steps.stats.json.words}}", "items": "{{#steps.each.outputs}}{{output}}{{/steps.each.outputs}}"}
        }
        """)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))")
        let pipeline = try #require(result.pipeline)

        var split = PipelineStep(id: "split", kind: "extraction", prompt: "Split {{inputs.topic}} ({{inputs.limit}}, {{inputs.ratio}}, {{inputs.extra}}).")
        split.agent = "specialized"
        split.system = "You split topics."
        split.route = .external
        split.models = ["openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct:free"]
        split.output = StepOutputSpec(format: .json, schema: try JSONParser.parse(#"{"type": "object", "required": ["items"]}"#))
        split.maxTokens = 400
        split.temperature = 0.2
        split.retry = StepRetry(maxAttempts: 3, backoffMs: 250)
        split.timeoutMs = 30_000

        var each = PipelineStep(id: "each", prompt: "Summarize {{item.title}} (#{{index}}).", needs: ["split"])
        each.foreach = "steps.split.json.items"
        each.merge = .concat
        each.when = "inputs.strict || steps.split.json.items contains 'x'"
        each.retry = StepRetry(maxAttempts: 2)
        each.timeoutMs = 1_500
        each.quality = StepQuality(minScore: 0.7, scorers: [StepScorer(name: "format"), StepScorer(name: "reference", weight: 2), StepScorer(name: "agreement", weight: 0.5)],
                                   reference: "About {{inputs.topic}}")

        var stats = PipelineStep(id: "stats", needs: ["each"])
        stats.handler = "text.stats"
        stats.input = try JSONParser.parse(#"{"text": "{{steps.each.output}}", "n": 1}"#)
        stats.timeoutMs = 120_000
        stats.output = StepOutputSpec(format: .json)

        var perArticle = PipelineStep(id: "per-article", kind: "summarize", prompt: "{{item.title}}")
        perArticle.foreach = "inputs.articles"
        perArticle.route = .internal
        perArticle.timeoutMs = 500

        let expected = PipelineDefinition(
            name: "research", description: "Research, then write.",
            inputs: [
                PipelineInput(name: "topic", type: .string, description: "What to write about"),
                PipelineInput(name: "articles", type: .array, defaultValue: try JSONParser.parse(#"[{"title": "a"}]"#)),
                PipelineInput(name: "limit", type: .integer, defaultValue: .number(3)),
                PipelineInput(name: "strict", type: .boolean),
                PipelineInput(name: "ratio", type: .number, defaultValue: .number(0.5)),
                PipelineInput(name: "extra", type: .object, defaultValue: .object([])),
            ],
            steps: [split, each, stats, perArticle],
            outputs: [
                PipelineOutput(name: "summary", template: "{{steps.each.output}}"),
                PipelineOutput(name: "words", template: "{{steps.stats.json.words}}"),
                PipelineOutput(name: "items", template: "{{#steps.each.outputs}}{{output}}{{/steps.each.outputs}}"),
            ])
        #expect(pipeline == expected)
        #expect(pipeline.inputs.map(\.isRequired) == [true, false, false, true, false, false])
    }

    @Test func defaults_areTheModelsDefaults() throws {
        let pipeline = try #require(decode(#"{"name": "n", "steps": [{"id": "a", "prompt": "hi"}]}"#).pipeline)
        #expect(pipeline.steps == [PipelineStep(id: "a", prompt: "hi")])
        let step = pipeline.steps[0]
        #expect(step.kind == "general" && step.route == .auto && step.retry == StepRetry() && step.output == StepOutputSpec())
        #expect(step.timeoutMs == nil && step.quality == nil && step.agent == nil && step.merge == nil)
    }

    @Test func aSchemaWithoutFormat_meansJSON() throws {
        let pipeline = try #require(decode(#"{"name": "n", "steps": [{"id": "a", "prompt": "hi", "output": {"schema": {"type": "array"}}}]}"#).pipeline)
        #expect(pipeline.steps[0].output.format == .json)
    }

    @Test func warningsAlone_leaveThePipelineValid() throws {
        let result = decode(#"{"name": "n", "inputs": {"unused": "string"}, "steps": [{"id": "a", "prompt": "hi"}]}"#)
        #expect(result.pipeline != nil)
        #expect(result.errors.isEmpty)
        #expect(result.diagnostics.map(\.description) == [
            "p.json:1:36: warning: input \"unused\" is never used (at $.inputs.unused)\n  hint: use it in a template as {{inputs.unused}}, or remove it",
        ])
    }

    @Test func withoutAContext_agentsAndHandlersAreNotChecked() {
        let text = #"{"name": "n", "steps": [{"id": "a", "prompt": "hi", "agent": "mine"}, {"id": "b", "handler": "my.tool"}]}"#
        #expect(decode(text, context: PipelineValidationContext()).diagnostics.isEmpty)
        #expect(decode(text).errors.count == 2)
    }

    @Test func diagnostic_descriptionAndJSON_sayTheSameThing() {
        let d = PipelineDiagnostic(file: "x.json", line: 3, column: 7, path: "$.steps[0].needs[0]", message: "step \"a\" needs unknown step \"b\"", hint: "did you mean \"c\"?")
        #expect(d.description == "x.json:3:7: error: step \"a\" needs unknown step \"b\" (at $.steps[0].needs[0])\n  hint: did you mean \"c\"?")
        #expect(d.jsonValue.serialized == #"{"file":"x.json","line":3,"column":7,"path":"$.steps[0].needs[0]","severity":"error","message":"step \"a\" needs unknown step \"b\"","hint":"did you mean \"c\"?"}"#)
        var warning = d
        warning.hint = nil
        warning.severity = .warning
        #expect(warning.description == "x.json:3:7: warning: step \"a\" needs unknown step \"b\" (at $.steps[0].needs[0])")
        #expect(warning.jsonValue["hint"] == nil)
    }

    @Test func columnsInsideTemplates_countEscapesAsTheirBytes() {
        // `\n` is two bytes in the file and one in the template; `\u00e9` is six and two; the
        // surrogate pair is twelve and four.
        let text = #"{"name": "n", "steps": [{"id": "a", "prompt": "\n\u00e9\ud83d\ude00 {{inputs.nope}}"}]}"#
        let d = decode(text).diagnostics
        let bytes = Array(text.utf8)
        let nameOffset = bytes.indices.first { bytes[$0...].starts(with: Array("inputs.nope".utf8)) }!
        #expect(d.map(\.line) == [1])
        #expect(d.map(\.column) == [nameOffset + 1])
        #expect(d.first?.message == "unknown input \"nope\" in inputs.nope")
    }

    @Test func aDuration_acceptsUnitsAndMilliseconds() {
        #expect(PipelineChecker.parseDuration("500ms") == 500)
        #expect(PipelineChecker.parseDuration("30s") == 30_000)
        #expect(PipelineChecker.parseDuration("1.5s") == 1_500)
        #expect(PipelineChecker.parseDuration("2m") == 120_000)
        #expect(PipelineChecker.parseDuration("1h") == 3_600_000)
        #expect(PipelineChecker.parseDuration("0.0001s") == nil, "not a whole millisecond")
        #expect(PipelineChecker.parseDuration("30") == nil)
        #expect(PipelineChecker.parseDuration("s") == nil)
        #expect(PipelineChecker.parseDuration("-1s") == nil)
        #expect(PipelineChecker.parseDuration("2d") == nil)
    }

    /// `Pipelines/pipeline.schema.json` names exactly the fields the decoder knows, level by
    /// level, and the same enumerations, so the two cannot drift apart.
    @Test func jsonSchema_matchesTheDecodersFieldsAndEnums() throws {
        let bytes = try #require(PackageFiles.read("Pipelines/pipeline.schema.json"))
        let schema = try JSONParser.parse(bytes).value
        func keys(_ value: JSONValue?) -> [String] {
            guard case .object(let members)? = value?["properties"] else { return [] }
            return members.map(\.key)
        }
        func strings(_ value: JSONValue?) -> [String] {
            guard case .array(let items)? = value else { return [] }
            return items.compactMap(\.stringValue)
        }
        let defs = schema["$defs"]
        #expect(schema["$schema"]?.stringValue == "https://json-schema.org/draft/2020-12/schema")
        #expect(keys(schema) == PipelineDecoder.pipelineKeys)
        guard case .array(let inputForms)? = defs?["input"]?["oneOf"] else { Issue.record("no $defs.input.oneOf"); return }
        #expect(keys(inputForms.last) == PipelineDecoder.inputKeys)
        #expect(keys(defs?["step"]) == PipelineDecoder.stepKeys)
        #expect(keys(defs?["quality"]) == PipelineDecoder.qualityKeys)
        #expect(keys(defs?["scorer"]) == PipelineDecoder.scorerKeys)
        #expect(keys(defs?["retry"]) == PipelineDecoder.retryKeys)
        #expect(keys(defs?["output"]) == PipelineDecoder.outputKeys)

        let step = defs?["step"]?["properties"]
        #expect(strings(step?["route"]?["enum"]) == RoutePreference.allCases.map(\.rawValue))
        #expect(strings(step?["merge"]?["enum"]) == MergeStrategy.allCases.map(\.rawValue))
        #expect(strings(defs?["valueType"]?["enum"]) == PipelineValueType.allCases.map(\.rawValue))
        #expect(strings(defs?["output"]?["properties"]?["format"]?["enum"]) == StepOutputSpec.Format.allCases.map(\.rawValue))
        #expect(strings(defs?["scorer"]?["properties"]?["name"]?["enum"]) == ScorerSpec.knownNames)
    }
}

extension PipelineDecoderTests {
    @Test func aMisspeltNeed_isReportedOnce_notAgainAtEveryUseOfTheStep() {
        let result = decode("""
        {"name": "n", "steps": [
          {"id": "research", "prompt": "r"},
          {"id": "draft", "needs": ["reserch"], "prompt": "{{steps.research.output}}"},
          {"id": "other", "prompt": "{{steps.research.output}}"}
        ]}
        """)
        #expect(result.errors.map(\.message) == [
            "step \"draft\" needs unknown step \"reserch\"",
            "step \"other\" uses steps.research but does not need it",
        ])
    }
}

extension PipelineDecoderTests {
    /// Damaged copies of a valid pipeline never crash the decoder, and every diagnostic points
    /// inside the file.
    @Test(arguments: 1...8)
    func damagedPipelines_reportLocatedDiagnostics_andNeverCrash(seed: UInt64) throws {
        let original = try #require(PackageFiles.read("Tests/Fixtures/pipelines/valid/research.json"))
        var rng = SplitMix64(seed: seed)
        let junk = Array("{}[]\",:{{#/}}\\ ab0-!=|&'".utf8)
        for _ in 0..<100 {
            var bytes = original
            for _ in 0..<rng.int(in: 1...4) {
                let at = rng.int(in: 0...(bytes.count - 1))
                switch rng.int(in: 0...2) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(rng.pick(junk), at: at)
                default: bytes[at] = rng.pick(junk)
                }
            }
            let result = PipelineDecoder.decode(bytes, file: "x.json", context: corpusContext)
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            for d in result.diagnostics {
                #expect(d.line >= 1 && d.line <= lines.count && d.column >= 1 && d.column <= lines[d.line - 1].count + 1, "\(d)")
            }
            #expect((result.pipeline == nil) == result.diagnostics.contains { $0.severity == .error })
        }
    }
}
