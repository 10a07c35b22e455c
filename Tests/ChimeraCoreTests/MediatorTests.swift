import Testing
@testable import ChimeraCore

/// A candidate answer; external, from model `target`, unless told otherwise.
private func answer(_ output: String, _ target: String = "m", arm: RouteArm = .external,
                    failed: String? = nil, shadow: Bool = false) -> Candidate {
    Candidate(arm: arm, target: target, output: output, errorKind: failed, shadow: shadow)
}

/// A scorer that always gives the same score, for exact weighting tests.
private struct FixedScorer: QualityScorer {
    var name: String
    var value: Double
    var applicable = true
    func score(_ index: Int, in context: ScoringContext) -> QualityScore { QualityScore(value, "fixed") }
    func applies(to context: ScoringContext) -> Bool { applicable }
}

private func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-12 }

private func schema(_ text: String) throws -> JSONSchema { try JSONSchema(JSONParser.parse(text)) }

private func formatScore(_ scorer: FormatScorer, _ output: String) -> QualityScore {
    scorer.score(0, in: ScoringContext(candidates: [answer(output)]))
}

@Suite struct FormatScorerTests {
    @Test func nothingConfigured_nonEmptyOutputPasses() {
        #expect(formatScore(FormatScorer(), "hi") == QualityScore(1, "non-empty output"))
        #expect(formatScore(FormatScorer(), " \n ") == QualityScore(0, "empty output"))
    }

    @Test func failedCall_andMissingCandidate_scoreZero() {
        let context = ScoringContext(candidates: [answer("", failed: "timeout")])
        #expect(FormatScorer(requireJSON: true).score(0, in: context) == QualityScore(0, "the call failed: timeout"))
        #expect(FormatScorer().score(5, in: context) == QualityScore(0, "no candidate at index 5 (there are 1)"))
        #expect(FormatScorer().score(-1, in: context).score == 0)
    }

    @Test func requireJSON_acceptsOneSurroundingFence() {
        let scorer = FormatScorer(requireJSON: true)
        #expect(formatScore(scorer, "```json\n{\"a\": 1}\n```") == QualityScore(1, "valid JSON"))
        #expect(formatScore(scorer, "```\n[1, 2]\n```\n") == QualityScore(1, "valid JSON"))
        #expect(formatScore(scorer, "hello") == QualityScore(0, "not valid JSON (expected a JSON value at byte 0)"))
        #expect(formatScore(scorer, "Here it is: {\"a\": 1}").score == 0)
    }

    @Test func schema_impliesJSON_andListsUpToThreeViolations() throws {
        let scorer = FormatScorer(schema: try schema(#"{"type":"object","required":["a","b"],"properties":{"a":{"type":"number"}}}"#), maxLength: 100)
        let output = "```json\n{\"a\":\"x\"}\n```"
        // JSON passes, the schema fails, the length (21 characters) passes: 2 of 3 checks.
        let s = formatScore(scorer, output)
        #expect(close(s.score, 2.0 / 3.0))
        #expect(s.explanation == #"valid JSON; schema: 2 violations ($: missing required property "b"; $.a: expected a number, found a string); length 21 within 0…100"#)

        let strict = FormatScorer(schema: try schema(#"{"required":["a","b","c","d"]}"#))
        #expect(formatScore(strict, "{}") == QualityScore(0.5, #"valid JSON; schema: 4 violations ($: missing required property "a"; $: missing required property "b"; $: missing required property "c"; …)"#))
        #expect(formatScore(strict, #"{"a":1,"b":2,"c":3,"d":4}"#) == QualityScore(1, "valid JSON; schema: valid"))
        #expect(formatScore(strict, "nope") == QualityScore(0, "not valid JSON (invalid literal (expected null) at byte 1); schema: not checked"))
    }

    @Test func requiredSections_headingsOrTitleLines_partialCredit() {
        let scorer = FormatScorer(requiredSections: ["Summary", "Risks", "Next Steps", "Budget"])
        let output = """
        # Summary
        All good.
        ## 2. Next steps:
        Ship it.
        **Risks:** none
        The budget: unknown
        """
        #expect(formatScore(scorer, output) == QualityScore(0.75, #"sections 3/4 (missing "Budget")"#))
        #expect(formatScore(FormatScorer(requiredSections: ["risks"]), "RISKS: low").score == 1)
        #expect(formatScore(FormatScorer(requiredSections: ["Risks"]), "### Risks ###\n- a").score == 1)
        // A heading that merely starts with the title is another section.
        #expect(formatScore(FormatScorer(requiredSections: ["Risks"]), "## Risks and mitigations") == QualityScore(0, #"sections 0/1 (missing "Risks")"#))
        // Blank titles are not sections.
        #expect(formatScore(FormatScorer(requiredSections: [" "]), "x") == QualityScore(1, "non-empty output"))
    }

    @Test func lengthBounds_inCharacters() {
        #expect(formatScore(FormatScorer(minLength: 5, maxLength: 10), "hello world!") == QualityScore(0, "length 12 outside 5…10"))
        #expect(formatScore(FormatScorer(minLength: 5, maxLength: 12), "hello world!") == QualityScore(1, "length 12 within 5…12"))
        #expect(formatScore(FormatScorer(minLength: 5), "héllo") == QualityScore(1, "length 5 within 5…"))
        #expect(formatScore(FormatScorer(maxLength: 1), "\u{1F1FA}\u{1F1F8}") == QualityScore(1, "length 1 within 0…1"))
    }

    @Test func checksCountEqually() {
        // Sections 1/2 (0.5) and length passed (1): (0.5 + 1) / 2.
        let scorer = FormatScorer(requiredSections: ["Plan", "Risks"], minLength: 1)
        #expect(formatScore(scorer, "Plan: do it") == QualityScore(0.75, #"sections 1/2 (missing "Risks"); length 11 within 1…"#))
    }
}

@Suite struct SimilarityScorerTests {
    @Test func reference_metrics() {
        // c = b a, r = a b: ROUGE-L 1/2 (LCS 1), token F1 1, mean 3/4.
        let context = ScoringContext(candidates: [answer("B a"), answer("", failed: "quota_exhausted")], reference: "a b")
        #expect(ReferenceScorer().score(0, in: context) == QualityScore(0.75, "mean of ROUGE-L 0.50 and token F1 1.00 against the reference"))
        #expect(ReferenceScorer(metric: .rougeL).score(0, in: context) == QualityScore(0.5, "ROUGE-L 0.50 against the reference"))
        #expect(ReferenceScorer(metric: .tokenF1).score(0, in: context) == QualityScore(1, "token F1 1.00 against the reference"))
        #expect(ReferenceScorer().score(1, in: context) == QualityScore(0, "the call failed: quota_exhausted"))
        #expect(ReferenceScorer().applies(to: context))
        #expect(SimilarityMetric.mean.similarity("b a", "a b") == 0.75)
    }

    @Test func reference_withoutReference_isNeutral_andDoesNotApply() {
        let context = ScoringContext(candidates: [answer("x")])
        #expect(!ReferenceScorer().applies(to: context))
        #expect(ReferenceScorer().score(0, in: context) == QualityScore(0.5, "no reference given"))
    }

    @Test func agreement_meanSimilarityToTheOtherSuccessfulCandidates() {
        let context = ScoringContext(candidates: [
            answer("Paris is the capital"),
            answer("paris is the capital."),
            answer("Lyon"),
            answer("", failed: "timeout"),
            answer("Paris is the capital city", shadow: true),
        ])
        let scorer = AgreementScorer()
        #expect(scorer.applies(to: context))
        // Peers of 0: 1 (ROUGE-L 1), 2 (0), 4 (LCS 4 of 4 and 5 tokens: 2·4/9 = 8/9); the failed 3 is no peer.
        // Mean = (1 + 0 + 8/9) / 3 = 17/27.
        let s = scorer.score(0, in: context)
        #expect(close(s.score, 17.0 / 27.0))
        #expect(s.explanation == "mean ROUGE-L 0.63 against 3 other answers")
        #expect(scorer.score(3, in: context) == QualityScore(0, "the call failed: timeout"))
        // Lyon agrees with nobody.
        #expect(scorer.score(2, in: context) == QualityScore(0, "mean ROUGE-L 0.00 against 3 other answers"))
    }

    @Test func agreement_needsTwoSuccesses() {
        let context = ScoringContext(candidates: [answer("a"), answer("", failed: "timeout")])
        #expect(!AgreementScorer().applies(to: context))
        #expect(AgreementScorer().score(0, in: context) == QualityScore(0.5, "no other successful candidate to compare with"))
    }
}

@Suite struct ScorerSetTests {
    @Test func weightedMean_overScorersThatApply_renormalised() {
        let context = ScoringContext(candidates: [answer("b a")], reference: "a b")
        let set = ScorerSet([(FormatScorer(), 1), (ReferenceScorer(), 3), (AgreementScorer(), 2)])
        // Agreement does not apply (one candidate): weights 1 and 3 become 1/4 and 3/4.
        // 1.00 × 0.25 + 0.75 × 0.75 = 0.8125.
        let combined = set.score(0, in: context)
        #expect(combined == CombinedScore(score: 0.8125, parts: [
            ScorePart(scorer: "format", weight: 0.25, score: QualityScore(1, "non-empty output")),
            ScorePart(scorer: "reference", weight: 0.75, score: QualityScore(0.75, "mean of ROUGE-L 0.50 and token F1 1.00 against the reference")),
        ]))
        #expect(combined.explanation == "0.81 = format 1.00×0.25 + reference 0.75×0.75")
    }

    @Test func exactWeights_andExplanation() {
        let context = ScoringContext(candidates: [answer("x")])
        let set = ScorerSet([
            (FixedScorer(name: "a", value: 0.9), 1),
            (FixedScorer(name: "b", value: 0.3), 2),
            (FixedScorer(name: "skipped", value: 0, applicable: false), 5),
            (FixedScorer(name: "zero", value: 0), 0),
            (FixedScorer(name: "negative", value: 0), -1),
            (FixedScorer(name: "nan", value: 0), .nan),
            (FixedScorer(name: "infinite", value: 0), .infinity),
        ])
        // (0.9 × 1 + 0.3 × 2) / 3 = 0.5.
        let combined = set.score(0, in: context)
        #expect(close(combined.score, 0.5))
        #expect(combined.parts.map(\.scorer) == ["a", "b"])
        #expect(combined.explanation == "0.50 = a 0.90×0.33 + b 0.30×0.67")
    }

    @Test func noScorerApplies_fallsBackToTheDefaultFormatCheck() {
        let context = ScoringContext(candidates: [answer("x")])
        let expected = CombinedScore(score: 1, parts: [ScorePart(scorer: "format", weight: 1, score: QualityScore(1, "non-empty output"))])
        #expect(ScorerSet([(ReferenceScorer(), 1)]).score(0, in: context) == expected)
        #expect(ScorerSet().score(0, in: context) == expected)
        #expect(expected.explanation == "1.00 = format 1.00×1")
        // NaN scores from a scorer become 0 rather than poisoning the mean.
        #expect(ScorerSet([(FixedScorer(name: "n", value: .nan), 1)]).score(0, in: context).score == 0)
    }

    @Test func scoreText() {
        #expect(ScoreText.fixed(0.8125) == "0.81")
        #expect(ScoreText.fixed(1) == "1.00")
        #expect(ScoreText.fixed(-0.5) == "-0.50")
        #expect(ScoreText.fixed(-0.001) == "0.00")
        #expect(ScoreText.compact(0.5) == "0.5")
        #expect(ScoreText.compact(1) == "1")
        #expect(ScoreText.compact(1.0 / 3.0) == "0.33")
        #expect(ScoreText.fixed(.nan) == "nan")
    }
}

@Suite struct ScorerSpecTests {
    @Test func parses_nameAndWeight() throws {
        #expect(try ScorerSpec.parse("format") == ("format", 1))
        #expect(try ScorerSpec.parse("reference:0.5") == ("reference", 0.5))
        #expect(try ScorerSpec.parse(" Agreement : 2 ") == ("agreement", 2))
        #expect(try ScorerSpec.parse("judge") == ("judge", 1))
        #expect(try ScorerSpec.parse("custom:3") == ("custom", 3))
    }

    @Test func refusesBadSpecs() {
        func message(_ spec: String) -> String? {
            do throws(ScorerSpecError) {
                _ = try ScorerSpec.parse(spec)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(message("foo") == #"invalid scorer "foo": unknown scorer "foo"; known scorers: format, reference, agreement, judge, custom"#)
        #expect(message("foo:2") == #"invalid scorer "foo:2": unknown scorer "foo"; known scorers: format, reference, agreement, judge, custom"#)
        #expect(message("") == #"invalid scorer "": empty scorer spec; expected NAME or NAME:WEIGHT"#)
        #expect(message(":2") == #"invalid scorer ":2": missing scorer name before ':'"#)
        #expect(message("reference:") == #"invalid scorer "reference:": missing weight after ':'"#)
        #expect(message("reference:abc") == #"invalid scorer "reference:abc": weight "abc" is not a number"#)
        #expect(message("reference:0") == #"invalid scorer "reference:0": weight must be a finite number greater than 0, found 0"#)
        #expect(message("reference:-1") == #"invalid scorer "reference:-1": weight must be a finite number greater than 0, found -1"#)
        #expect(message("reference:nan") == #"invalid scorer "reference:nan": weight must be a finite number greater than 0, found nan"#)
        #expect(message("reference:inf") == #"invalid scorer "reference:inf": weight must be a finite number greater than 0, found inf"#)
        #expect(message("reference:1:2") == #"invalid scorer "reference:1:2": weight "1:2" is not a number"#)
    }
}

@Suite struct MergerTests {
    /// Candidates of every kind: two agreeing answers, a failure, a shadow, a dissent, a blank.
    private let mixed = [
        answer("Paris.", "gpt"),
        answer("paris", "local", arm: .internal("summarizer")),
        answer("", "gpt", failed: "timeout"),
        answer("Lyon", "big", shadow: true),
        answer("Lyon", "claude"),
        answer("   ", "x"),
    ]
    private let mixedScores: [Double?] = [0.6, 0.9, nil, 1.0, 0.8, nil]

    @Test func strategies_rawValues() {
        #expect(MergeStrategy.allCases.map(\.rawValue) == ["best", "vote", "first_success", "concat", "synthesize"])
        #expect(MergeStrategy(rawValue: "first_success") == .firstSuccess)
    }

    @Test func qualifying_excludesShadowsFailuresAndBlanks() {
        #expect(Merger.qualifying(mixed) == [0, 1, 4])
    }

    @Test func best_highestScore_shadowNeverWins() {
        #expect(Merger.merge(.best, mixed, scores: mixedScores)
                == MergeResult(output: "paris", used: [1], explanation: "best score 0.90: candidate 2 (internal:summarizer, local)"))
    }

    @Test func best_tiesGoToTheEarliest_nilAndNaNRankLast() {
        let two = [answer("a"), answer("b")]
        #expect(Merger.merge(.best, two, scores: [0.7, 0.7])
                == MergeResult(output: "a", used: [0], explanation: "best score 0.70: candidate 1 (external, m) (tied with 1 later candidate; the earliest wins)"))
        #expect(Merger.merge(.best, two, scores: [nil, 0.1])?.used == [1])
        #expect(Merger.merge(.best, two, scores: [.nan, 0.2])?.used == [1])
        #expect(Merger.merge(.best, two, scores: [])
                == MergeResult(output: "a", used: [0], explanation: "no candidate is scored; took the first: candidate 1 (external, m)"))
        // More scores than candidates are ignored.
        #expect(Merger.merge(.best, two, scores: [0.1, 0.2, 0.9])?.used == [1])
    }

    @Test func vote_majority_representativeIsBestScored() {
        #expect(Merger.merge(.vote, mixed, scores: mixedScores) == MergeResult(
            output: "paris", used: [0, 1],
            explanation: "2 of 3 answers agree; answer of candidate 2 (internal:summarizer, local), score 0.90"))
    }

    @Test func vote_tieBetweenGroups_brokenByScore_thenByOrder() {
        let answers = [answer("yes"), answer("no"), answer("Yes!"), answer("NO")]
        #expect(Merger.merge(.vote, answers, scores: [0.5, 0.9, 0.4, nil]) == MergeResult(
            output: "no", used: [1, 3],
            explanation: "2 of 4 answers agree; tie between 2 groups of 2 broken by score; answer of candidate 2 (external, m), score 0.90"))
        #expect(Merger.merge(.vote, answers, scores: []) == MergeResult(
            output: "yes", used: [0, 2],
            explanation: "2 of 4 answers agree; tie between 2 groups of 2 broken by order (the earliest wins); answer of candidate 1 (external, m)"))
        #expect(Merger.merge(.vote, answers, scores: [0.5, 0.5, nil, nil])?.used == [0, 2])
    }

    @Test func vote_noAgreement_single_andJSON() {
        #expect(Merger.merge(.vote, [answer("a"), answer("b"), answer("c")], scores: [0.1, 0.3, 0.2]) == MergeResult(
            output: "b", used: [1],
            explanation: "no two of 3 answers agree; tie broken by score; answer of candidate 2 (external, m), score 0.30"))
        #expect(Merger.merge(.vote, [answer("only")], scores: [nil]) == MergeResult(
            output: "only", used: [0], explanation: "only 1 answer; answer of candidate 1 (external, m)"))
        let json = [answer(#"{"a":1,"b":2}"#), answer("```json\n{\"b\": 2, \"a\": 1}\n```"), answer(#"{"a":2}"#)]
        #expect(Merger.merge(.vote, json, scores: [nil, nil, nil])?.used == [0, 1])
    }

    @Test func firstSuccess_skipsFailuresAndShadows() {
        let answers = [answer("", failed: "timeout"), answer("s", shadow: true), answer("x", "m2"), answer("y")]
        #expect(Merger.merge(.firstSuccess, answers, scores: [])
                == MergeResult(output: "x", used: [2], explanation: "first successful answer: candidate 3 (external, m2)"))
    }

    @Test func concat_exactFormatting() {
        let answers = [
            answer("Answer one\n", "openai/gpt-4o-mini"),
            answer("shadow", "s", shadow: true),
            answer("", "f", failed: "timeout"),
            answer("  Answer two", "local", arm: .internal("summarizer")),
        ]
        #expect(Merger.merge(.concat, answers, scores: []) == MergeResult(
            output: "### Candidate 1 (external, openai/gpt-4o-mini)\n\nAnswer one\n\n### Candidate 4 (internal:summarizer, local)\n\nAnswer two",
            used: [0, 3], explanation: "2 answers concatenated"))
    }

    @Test func nothingQualifies_orSynthesize_isNil() {
        let none = [answer("", failed: "timeout"), answer("s", shadow: true), answer("")]
        for strategy in MergeStrategy.allCases {
            #expect(Merger.merge(strategy, none, scores: [1, 1, 1]) == nil)
            #expect(Merger.merge(strategy, [], scores: []) == nil)
        }
        #expect(Merger.merge(.synthesize, mixed, scores: mixedScores) == nil)
    }

    @Test func synthesisPrompt_numbersOnlyQualifyingCandidates() {
        let prompt = SynthesisPrompt.build(task: "  Summarize X.\n", candidates: [
            answer("A\n"), answer("SHADOW", shadow: true), answer("", failed: "timeout"), answer("B"),
        ])
        #expect(prompt.hasPrefix("You are given a task and 2 candidate responses to it"))
        #expect(prompt.contains("do not mention the candidate responses"))
        #expect(prompt.contains("critically"))
        #expect(prompt.hasSuffix("""
        <task>
        Summarize X.
        </task>

        <response id="1">
        A
        </response>

        <response id="2">
        B
        </response>

        Now write the synthesized response to the task.
        """))
        #expect(!prompt.contains("SHADOW"))
        #expect(SynthesisPrompt.build(task: "t", candidates: []).contains("No candidate response is available"))
    }
}
