/// LLM-as-judge, the pure parts: the prompts, reading the verdicts, and combining pairwise
/// verdicts taken in both orders so that a judge's preference for a position cancels out.
/// (The calls themselves go through the normal external routing path, in ChimeraRuntime.)
public enum JudgePrompt {
    /// What a good answer is, unless the task brings its own rubric.
    public static let defaultRubric = """
        Judge how well the answer does the task: correct, complete, faithful to the task's input, \
        clear, and in the form the task asks for. Do not reward length for its own sake.
        """

    /// Single-answer grading: the reply must end with `Score: N/10`.
    public static func single(task: String, answer: String, rubric: String = defaultRubric) -> String {
        """
        You are an impartial judge. \(rubric)

        <task>
        \(task)
        </task>

        <answer>
        \(answer)
        </answer>

        Explain your judgement in one or two sentences, then end with a line of the form "Score: N/10", \
        where N is an integer from 0 (useless) to 10 (perfect).
        """
    }

    /// Pairwise comparison: the reply must end with `[[A]]`, `[[B]]` or `[[C]]` (a tie).
    public static func pairwise(task: String, first: String, second: String, rubric: String = defaultRubric) -> String {
        """
        You are an impartial judge comparing two answers to the same task. \(rubric) \
        The order in which the answers are shown must not influence you.

        <task>
        \(task)
        </task>

        <answer_a>
        \(first)
        </answer_a>

        <answer_b>
        \(second)
        </answer_b>

        Explain your judgement in one or two sentences, then end with exactly one of: "[[A]]" if answer A \
        is better, "[[B]]" if answer B is better, "[[C]]" for a tie.
        """
    }
}

/// Reading a judge's reply.
public enum JudgeVerdict {
    /// Which of two answers the judge preferred, in the order shown.
    public enum Preference: String, Sendable, Equatable {
        case first, second, tie
    }

    /// The score in [0, 1] from the last `Score: N/10` (also `N/10`, `[[N]]`, `Rating: N`); nil
    /// when the reply has none. N may be fractional; it is clamped to 0…10.
    public static func score(from reply: String) -> Double? {
        let text = Array(reply.lowercased())
        var found: Double?
        var i = 0
        while i < text.count {
            // "score:" / "rating:" N, or "[[" N "]]", or N "/10".
            if let (value, end) = number(in: text, at: i) {
                let before = String(text[max(0, i - 8)..<i]).replacingSpaces()
                let after = String(text[end..<min(text.count, end + 4)]).replacingSpaces()
                if before.hasSuffix("score:") || before.hasSuffix("rating:") || before.hasSuffix("[[") || after.hasPrefix("/10") {
                    found = min(10, max(0, value)) / 10
                }
                i = end
            } else {
                i += 1
            }
        }
        return found
    }

    /// The last `[[A]]`, `[[B]]` or `[[C]]` in the reply; nil when there is none.
    public static func preference(from reply: String) -> Preference? {
        var result: Preference?
        var rest = Substring(reply.uppercased())
        while let open = rest.firstRange(of: "[[") {
            let after = rest[open.upperBound...]
            if after.hasPrefix("A]]") { result = .first } else if after.hasPrefix("B]]") { result = .second } else if after.hasPrefix("C]]") { result = .tie }
            rest = after
        }
        return result
    }

    /// A decimal number starting at `i` (digits, one optional point), and where it ends.
    private static func number(in text: [Character], at i: Int) -> (Double, Int)? {
        guard text[i].isASCII, text[i].isNumber, i == 0 || !(text[i - 1].isASCII && (text[i - 1].isNumber || text[i - 1] == ".")) else { return nil }
        var end = i
        var sawPoint = false
        while end < text.count, text[end].isASCII, text[end].isNumber || (text[end] == "." && !sawPoint && end + 1 < text.count && text[end + 1].isNumber) {
            if text[end] == "." { sawPoint = true }
            end += 1
        }
        guard let value = Double(String(text[i..<end])) else { return nil }
        return (value, end)
    }
}

private extension String {
    func replacingSpaces() -> String { filter { $0 != " " } }
}

/// Pairwise judging in both orders (A, B) and (B, A), as MT-Bench does against position bias:
/// a candidate wins a pair only if it wins in both orders; a split, or two ties, is a tie.
public enum PairwiseJudging {
    /// One pair's two verdicts: `forward` shows `i` first, `backward` shows `j` first.
    public struct Pair: Sendable, Equatable {
        public var i: Int
        public var j: Int
        public var forward: JudgeVerdict.Preference?
        public var backward: JudgeVerdict.Preference?

        public init(i: Int, j: Int, forward: JudgeVerdict.Preference?, backward: JudgeVerdict.Preference?) {
            self.i = i
            self.j = j
            self.forward = forward
            self.backward = backward
        }

        /// `i`'s share of this pair (1 win, 0.5 tie, 0 loss); nil when neither verdict was read.
        /// With one verdict only, that verdict decides (position bias then uncancelled).
        public var shareOfI: Double? {
            let f: Double? = forward.map { $0 == .first ? 1 : $0 == .second ? 0 : 0.5 }
            let b: Double? = backward.map { $0 == .second ? 1 : $0 == .first ? 0 : 0.5 }
            switch (f, b) {
            case let (f?, b?): return f == b ? f : 0.5
            case let (f?, nil): return f
            case let (nil, b?): return b
            case (nil, nil): return nil
            }
        }
    }

    /// Each candidate's mean share over its pairs with a verdict (nil when it has none), and a
    /// line saying how the pairs went.
    public static func scores(count: Int, pairs: [Pair]) -> [QualityScore?] {
        var sums = Array(repeating: 0.0, count: count)
        var counts = Array(repeating: 0, count: count)
        var splits = Array(repeating: 0, count: count)
        for pair in pairs {
            guard let share = pair.shareOfI, pair.i < count, pair.j < count else { continue }
            sums[pair.i] += share
            sums[pair.j] += 1 - share
            counts[pair.i] += 1
            counts[pair.j] += 1
            if pair.forward != nil, pair.backward != nil, share == 0.5, pair.forward != .tie || pair.backward != .tie {
                splits[pair.i] += 1
                splits[pair.j] += 1
            }
        }
        return (0..<count).map { k in
            guard counts[k] > 0 else { return nil }
            let mean = sums[k] / Double(counts[k])
            let split = splits[k] > 0 ? "; \(splits[k]) verdict\(splits[k] == 1 ? "" : "s") changed with the order (counted as ties)" : ""
            return QualityScore(mean, "pairwise, both orders: won \(ComplexityEstimate.format(sums[k])) of \(counts[k]) comparison\(counts[k] == 1 ? "" : "s")\(split)")
        }
    }
}

/// Scores computed elsewhere (a judge model, a custom scoring process) as a scorer, so that
/// ``ScorerSet`` weighs them with the others.
public struct PrecomputedScorer: QualityScorer {
    public let name: String
    public let scores: [Int: QualityScore]

    public init(name: String, scores: [Int: QualityScore]) {
        self.name = name
        self.scores = scores
    }

    public func applies(to context: ScoringContext) -> Bool { !scores.isEmpty }

    /// The stored score; a candidate without one gets 0.5 ("no verdict"), neither reward nor penalty.
    public func score(_ index: Int, in context: ScoringContext) -> QualityScore {
        scores[index] ?? QualityScore(0.5, "\(name): no verdict for this candidate")
    }
}
