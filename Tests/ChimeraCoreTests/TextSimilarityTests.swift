import Testing
@testable import ChimeraCore

/// Whether two similarity values are equal up to floating-point rounding.
private func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-12 }

@Suite struct TextSimilarityTests {
    // MARK: Tokens

    @Test func tokens_lowercasedLetterAndDigitRuns_unicodeAware() {
        #expect(TextSimilarity.tokens("Hello, World! It's 2024 — Café_naïve ÉTÉ") == ["hello", "world", "it", "s", "2024", "café", "naïve", "été"])
        #expect(TextSimilarity.tokens("") == [])
        #expect(TextSimilarity.tokens("  ...!?  \n\t") == [])
        #expect(TextSimilarity.tokens("x1y2 3.14") == ["x1y2", "3", "14"])
    }

    @Test func tokens_unspacedScripts_oneTokenPerCharacter() {
        #expect(TextSimilarity.tokens("我爱Swift语言") == ["我", "爱", "swift", "语", "言"])
        #expect(TextSimilarity.tokens("ひらがな") == ["ひ", "ら", "が", "な"])
    }

    // MARK: ROUGE-L

    @Test func rougeL_handComputed() {
        // c = the cat sat on the mat (6), r = the cat was on the mat (6).
        // LCS = the cat on the mat = 5; P = 5/6, R = 5/6, F = 2PR/(P+R) = 5/6.
        #expect(close(TextSimilarity.rougeL(candidate: "The cat sat on the mat.", reference: "the cat was on the mat"), 5.0 / 6.0))
        // c = a b c d (4), r = a c e (3). LCS = a c = 2; P = 2/4, R = 2/3,
        // F = 2·(1/2)(2/3) / (1/2 + 2/3) = (2/3) / (7/6) = 4/7.
        #expect(close(TextSimilarity.rougeL(candidate: "a b c d", reference: "a c e"), 4.0 / 7.0))
        // Order matters: c = b a, r = a b. LCS = 1; P = R = 1/2, F = 1/2.
        #expect(close(TextSimilarity.rougeL(candidate: "b a", reference: "a b"), 0.5))
        #expect(TextSimilarity.rougeL(candidate: "Same words.", reference: "same WORDS") == 1)
        #expect(TextSimilarity.rougeL(candidate: "x y", reference: "z") == 0)
    }

    @Test func rougeL_isSymmetric_withBetaOne() {
        let a = "the quick brown fox jumps over the lazy dog"
        let b = "a quick fox jumped over a dog"
        #expect(TextSimilarity.rougeL(candidate: a, reference: b) == TextSimilarity.rougeL(candidate: b, reference: a))
    }

    @Test func emptyTexts_bothEmptyIsOne_oneEmptyIsZero() {
        #expect(TextSimilarity.rougeL(candidate: "", reference: "") == 1)
        #expect(TextSimilarity.rougeL(candidate: "!!!", reference: " ") == 1)   // no tokens on either side
        #expect(TextSimilarity.rougeL(candidate: "", reference: "word") == 0)
        #expect(TextSimilarity.rougeL(candidate: "word", reference: "") == 0)
        #expect(TextSimilarity.tokenF1(candidate: "", reference: "") == 1)
        #expect(TextSimilarity.tokenF1(candidate: "", reference: "word") == 0)
        #expect(TextSimilarity.tokenF1(candidate: "word", reference: "...") == 0)
    }

    @Test func rougeL_capsEachSideAt4000Tokens() {
        // The only shared token sits past the reference's cap, so ROUGE-L sees none;
        // token F1 (linear, uncapped) still sees it: 2·1 / (1 + 4001).
        let reference = String(repeating: "a ", count: TextSimilarity.maxRougeTokens) + "b"
        #expect(TextSimilarity.rougeL(candidate: "b", reference: reference) == 0)
        #expect(close(TextSimilarity.tokenF1(candidate: "b", reference: reference), 2.0 / 4002.0))
        // Huge inputs on both sides stay bounded and in range.
        let huge = String(repeating: "lorem ipsum ", count: 50_000)
        let r = TextSimilarity.rougeL(candidate: huge, reference: "ipsum lorem")
        #expect(r > 0 && r <= 1)
    }

    // MARK: Token F1

    @Test func tokenF1_handComputed_withMultiplicity() {
        // c = the the the cat (4): {the: 3, cat: 1}; r = the cat cat (3): {the: 1, cat: 2}.
        // Shared = min(3, 1) + min(1, 2) = 2; P = 2/4, R = 2/3, F1 = 4/7.
        #expect(close(TextSimilarity.tokenF1(candidate: "the the the cat", reference: "the cat cat"), 4.0 / 7.0))
        // Order does not matter: b a vs a b share both tokens, F1 = 1.
        #expect(TextSimilarity.tokenF1(candidate: "b a", reference: "a b") == 1)
        // c = new york city (3), r = york (1): shared 1; P = 1/3, R = 1, F1 = (2/3)/(4/3) = 1/2.
        #expect(close(TextSimilarity.tokenF1(candidate: "New York City", reference: "york"), 0.5))
    }

    // MARK: Normalised answers

    @Test func normalizedAnswer_text() {
        #expect(TextSimilarity.normalizedAnswer("  The answer is\n\n  Paris.  ") == "the answer is paris")
        #expect(TextSimilarity.normalizedAnswer("'Yes'.") == "yes")
        #expect(TextSimilarity.normalizedAnswer("“Yes!”") == "yes")
        #expect(TextSimilarity.normalizedAnswer("YES!!!") == "yes")
        #expect(TextSimilarity.normalizedAnswer("Dr. Who?") == "dr. who?")
        #expect(TextSimilarity.normalizedAnswer("") == "")
        #expect(TextSimilarity.normalizedAnswer(" ... ") == "")
        #expect(TextSimilarity.normalizedAnswer("\"") == "\"")
    }

    @Test func normalizedAnswer_json_isCanonical() {
        #expect(TextSimilarity.normalizedAnswer(#"{"b": 1, "a": [true, null, {"d": 2, "c": 3}]}"#) == #"{"a":[true,null,{"c":3,"d":2}],"b":1}"#)
        #expect(TextSimilarity.normalizedAnswer("```json\n{\"b\":1,\"a\":2}\n```") == #"{"a":2,"b":1}"#)
        #expect(TextSimilarity.normalizedAnswer("42") == TextSimilarity.normalizedAnswer("42.0"))
        #expect(TextSimilarity.normalizedAnswer("42") == TextSimilarity.normalizedAnswer("42."))
        // A JSON string is compared as text, so quoting does not split a vote.
        #expect(TextSimilarity.normalizedAnswer(#""Paris""#) == TextSimilarity.normalizedAnswer("paris."))
        // Repeated keys: the last wins, as JSONValue's subscript reads it.
        #expect(TextSimilarity.normalizedAnswer(#"{"a":1,"a":2}"#) == #"{"a":2}"#)
    }

    @Test func codeFence_strip() {
        #expect(CodeFence.strip("```\n[1]\n```") == "[1]")
        #expect(CodeFence.strip("  ```JSON\n{}\n```  ") == "{}")
        #expect(CodeFence.strip("```{}```") == "{}")
        #expect(CodeFence.strip("``````") == "")
        #expect(CodeFence.strip("text ```x```") == "text ```x```")
        #expect(CodeFence.strip("```") == "```")
    }
}
