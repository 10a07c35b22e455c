/// `text.sentiment`: lexicon-based sentiment, in the manner of VADER (Hutto & Gilbert 2014) but
/// much smaller.
///
/// Method: each word found in a built-in lexicon of about 160 common English words contributes
/// its valence (±1 mild, ±2 strong). An intensifier (`very`, `extremely`, …) within the two
/// preceding words multiplies it by 1.5, a dampener (`slightly`, `somewhat`) by 0.5; a negator
/// (`not`, `never`, `no`, `n't`, …) within the three preceding words flips it and weakens it
/// (× −0.75). The sum `s` is squashed to `s / √(s² + 15)` in (−1, 1); above 0.05 is
/// positive, below −0.05 negative, otherwise neutral.
///
/// Limits: no sarcasm, no domain words, no phrase-level meaning ("not bad at all"), English only.
///
/// Input: text. Output: `{"output": label, "label", "score", "positive": [...], "negative": [...]}`.
public enum SentimentAnalyzer {
    /// Word valences.
    static let lexicon: [String: Double] = {
        var l: [String: Double] = [:]
        let positive1 = ["good", "nice", "like", "liked", "likes", "happy", "glad", "pleased", "enjoy", "enjoyed", "fine",
                         "helpful", "useful", "easy", "fast", "quick", "clean", "comfortable", "friendly", "fair", "fun",
                         "recommend", "recommended", "satisfied", "smooth", "reliable", "worth", "works", "worked", "win",
                         "success", "successful", "improve", "improved", "better", "positive", "benefit", "beautiful",
                         "pretty", "cool", "thanks", "thank", "appreciate", "appreciated", "love", "loved", "loves",
                         "lovely", "impressive", "impressed", "solid", "stable", "effective", "efficient", "kind",
                         "polite", "correct", "accurate", "affordable", "cheap", "secure", "safe", "calm", "clear",
                         "elegant", "favorite", "favourite", "hope", "hopeful", "praise", "strong", "support"]
        let positive2 = ["great", "excellent", "amazing", "awesome", "fantastic", "wonderful", "perfect", "outstanding",
                         "brilliant", "superb", "best", "delighted", "incredible", "exceptional", "flawless", "adore",
                         "thrilled", "excited", "masterpiece"]
        let negative1 = ["bad", "poor", "slow", "hard", "difficult", "problem", "problems", "issue", "issues", "bug",
                         "bugs", "broken", "broke", "fail", "failed", "fails", "failure", "error", "errors", "wrong",
                         "sad", "unhappy", "angry", "annoying", "annoyed", "disappointed", "disappointing",
                         "frustrated", "frustrating", "confusing", "confused", "expensive", "overpriced", "ugly",
                         "dirty", "rude", "late", "delay", "delayed", "missing", "lost", "crash", "crashed", "crashes",
                         "complain", "complaint", "worse", "negative", "weak", "unreliable", "unstable",
                         "useless", "waste", "wasted", "noisy", "boring", "hate", "hated", "dislike", "sorry", "worry",
                         "worried", "risk", "damaged", "defective", "unfortunately", "lacking", "mediocre", "painful",
                         "unfair", "inaccurate", "incorrect", "insecure", "unsafe", "fear", "concern"]
        let negative2 = ["terrible", "awful", "horrible", "worst", "hate", "disgusting", "pathetic", "garbage",
                         "furious", "disaster", "unacceptable", "atrocious", "dreadful", "scam", "nightmare", "abysmal"]
        for w in positive1 { l[w] = 1 }
        for w in positive2 { l[w] = 2 }
        for w in negative1 { l[w] = -1 }
        for w in negative2 { l[w] = -2 }
        return l
    }()

    static let negators: Set<String> = ["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere",
                                        "cannot", "without", "hardly", "barely"]
    /// First halves of `n't` contractions as ``TextSimilarity/tokens(_:)`` splits them (`don`, `t`).
    static let contractionHeads: Set<String> = ["don", "doesn", "didn", "isn", "wasn", "aren", "weren", "couldn", "wouldn",
                                                "shouldn", "won", "can", "hasn", "haven", "hadn", "ain", "mustn", "needn"]
    static let intensifiers: Set<String> = ["very", "extremely", "really", "so", "incredibly", "highly", "absolutely",
                                            "totally", "super", "truly", "completely", "exceptionally", "remarkably"]
    static let dampeners: Set<String> = ["slightly", "somewhat", "fairly", "marginally", "kinda", "mildly"]

    /// A sentiment reading.
    public struct Result: Sendable, Equatable {
        /// `positive`, `negative` or `neutral`.
        public var label: String
        /// In [−1, 1].
        public var score: Double
        /// The words that counted positive (after negation).
        public var positive: [String]
        /// The words that counted negative (after negation).
        public var negative: [String]
    }

    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let r = analyze(try HandlerInput.text(input))
        return .object([
            JSONMember("output", .string(r.label)),
            JSONMember("label", .string(r.label)),
            JSONMember("score", .number((r.score * 1000).rounded() / 1000)),
            JSONMember("positive", .array(r.positive.map { .string($0) })),
            JSONMember("negative", .array(r.negative.map { .string($0) })),
        ])
    }

    /// The sentiment of `text`.
    public static func analyze(_ text: String) -> Result {
        let words = TextSimilarity.tokens(text)
        // Where a negation is: a negator, or the `t` of `n't`.
        var negation = [Bool](repeating: false, count: words.count)
        for (i, w) in words.enumerated() {
            if negators.contains(w) || w.hasSuffix("n't") { negation[i] = true }
            if w == "t", i > 0, contractionHeads.contains(words[i - 1]) { negation[i] = true }
        }
        var sum = 0.0
        var positive: [String] = []
        var negative: [String] = []
        for (i, w) in words.enumerated() {
            guard var v = lexicon[w] else { continue }
            for k in max(0, i - 2)..<i {
                if intensifiers.contains(words[k]) { v *= 1.5 }
                if dampeners.contains(words[k]) { v *= 0.5 }
            }
            if (max(0, i - 3)..<i).contains(where: { negation[$0] }) { v *= -0.75 }
            sum += v
            if v > 0 { positive.append(w) } else if v < 0 { negative.append(w) }
        }
        let score = sum / (sum * sum + 15).squareRoot()
        let label = score > 0.05 ? "positive" : (score < -0.05 ? "negative" : "neutral")
        return Result(label: label, score: score, positive: positive, negative: negative)
    }
}
