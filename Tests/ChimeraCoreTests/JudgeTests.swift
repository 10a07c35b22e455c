import Testing
@testable import ChimeraCore

@Suite struct JudgeTests {
    @Test func scores_areReadFromTheLastVerdict_inSeveralForms() {
        #expect(JudgeVerdict.score(from: "Good answer.\nScore: 7/10") == 0.7)
        #expect(JudgeVerdict.score(from: "score : 9") == 0.9)
        #expect(JudgeVerdict.score(from: "Rating: [[6]]") == 0.6)
        #expect(JudgeVerdict.score(from: "I'd say 8.5/10 overall") == 0.85)
        #expect(JudgeVerdict.score(from: "First 3/10, on reflection Score: 5/10") == 0.5, "the last verdict counts")
        #expect(JudgeVerdict.score(from: "Score: 14/10") == 1, "clamped")
        #expect(JudgeVerdict.score(from: "It has 3 parts and 12 words.") == nil, "numbers that are no verdict")
        #expect(JudgeVerdict.score(from: "") == nil)
    }

    @Test func preferences_areReadFromTheLastBracket() {
        #expect(JudgeVerdict.preference(from: "A is clearer. [[A]]") == .first)
        #expect(JudgeVerdict.preference(from: "[[a]] no wait [[B]]") == .second)
        #expect(JudgeVerdict.preference(from: "Equal. [[C]]") == .tie)
        #expect(JudgeVerdict.preference(from: "B, I think") == nil)
    }

    @Test func pairs_winOnlyWhenBothOrdersAgree() {
        typealias P = PairwiseJudging.Pair
        #expect(P(i: 0, j: 1, forward: .first, backward: .second).shareOfI == 1, "i shown first wins, i shown second wins")
        #expect(P(i: 0, j: 1, forward: .first, backward: .first).shareOfI == 0.5, "always the first shown: position bias, a tie")
        #expect(P(i: 0, j: 1, forward: .second, backward: .first).shareOfI == 0)
        #expect(P(i: 0, j: 1, forward: .tie, backward: .tie).shareOfI == 0.5)
        #expect(P(i: 0, j: 1, forward: nil, backward: .second).shareOfI == 1, "one verdict decides alone")
        #expect(P(i: 0, j: 1, forward: nil, backward: nil).shareOfI == nil)
    }

    @Test func candidateScores_areMeanSharesOverTheirPairs() {
        // Three candidates: 0 beats 1 and 2 in both orders; 1 and 2 split.
        let pairs = [
            PairwiseJudging.Pair(i: 0, j: 1, forward: .first, backward: .second),
            PairwiseJudging.Pair(i: 0, j: 2, forward: .first, backward: .second),
            PairwiseJudging.Pair(i: 1, j: 2, forward: .first, backward: .first),
        ]
        let scores = PairwiseJudging.scores(count: 4, pairs: pairs)
        #expect(scores[0]?.score == 1 && scores[1]?.score == 0.25 && scores[2]?.score == 0.25)
        #expect(scores[3] == nil, "not judged")
        #expect(scores[1]?.explanation.contains("1 verdict changed with the order") == true)
    }

    @Test func prompts_carryTheTaskAnswersAndFormat() {
        let single = JudgePrompt.single(task: "Sum 2+2", answer: "4")
        #expect(single.contains("<task>\nSum 2+2\n</task>") && single.contains("<answer>\n4\n</answer>") && single.contains("Score: N/10"))
        let pair = JudgePrompt.pairwise(task: "t", first: "one", second: "two", rubric: "Be strict.")
        #expect(pair.contains("Be strict.") && pair.contains("<answer_a>\none\n</answer_a>") && pair.contains("[[C]]"))
    }

    @Test func precomputedScores_weighInLikeAnyScorer() {
        let context = ScoringContext(candidates: [Candidate(arm: .external, target: "m", output: "x"), Candidate(arm: .external, target: "m", output: "y")])
        let set = ScorerSet([(PrecomputedScorer(name: "judge", scores: [0: QualityScore(0.9, "graded 9/10")]), 1), (FormatScorer(), 1)])
        #expect(set.score(0, in: context).score == 0.95)
        #expect(set.score(1, in: context).parts.first?.score.explanation == "judge: no verdict for this candidate")
    }
}

@Suite struct AdversarialScorerTests {
    @Test func aReferenceDifferingOnlyInCaseAndPunctuation_scoresFull() {
        let context = ScoringContext(candidates: [Candidate(arm: .external, target: "m", output: "the CAPITAL of france is PARIS!!")],
                                     reference: "The capital of France is Paris.")
        #expect(ReferenceScorer().score(0, in: context).score == 1)
    }

    @Test func jsonThatParsesButBreaksItsSchema_failsTheSchemaCheck() throws {
        let schema = try JSONSchema(JSONParser.parse(#"{"type": "object", "required": ["name"], "properties": {"age": {"type": "integer", "minimum": 0}}}"#))
        let scorer = FormatScorer(schema: schema)
        let context = ScoringContext(candidates: [Candidate(arm: .external, target: "m", output: #"{"age": -3.5}"#)])
        let score = scorer.score(0, in: context)
        #expect(score.score == 0.5, "valid JSON, invalid schema: \(score.explanation)")
        #expect(score.explanation.contains("missing required property \"name\""))
        #expect(score.explanation.contains("$.age"))
    }
}
