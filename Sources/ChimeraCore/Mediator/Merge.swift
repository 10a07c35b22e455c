/// How a step's answer is made from its candidates.
public enum MergeStrategy: String, Sendable, CaseIterable {
    /// The highest-scored candidate.
    case best
    /// The answer most candidates agree on (after ``TextSimilarity/normalizedAnswer(_:)``).
    case vote
    /// The first candidate that succeeded, in order.
    case firstSuccess = "first_success"
    /// Every candidate, one section each.
    case concat
    /// An agent fuses the answers into one (see ``SynthesisPrompt``); not done by ``Merger``.
    case synthesize
}

/// A step's merged answer.
public struct MergeResult: Sendable, Equatable {
    /// The answer text.
    public var output: String
    /// Indices (into the candidates given to ``Merger/merge(_:_:scores:)``) of the candidates
    /// the answer comes from, ascending. For `vote`, every member of the winning group.
    public var used: [Int]
    /// Why this answer, in words. Candidates are named by 1-based position: `candidate 3` is
    /// index 2.
    public var explanation: String

    /// A merged answer.
    public init(output: String, used: [Int], explanation: String) {
        self.output = output
        self.used = used
        self.explanation = explanation
    }
}

/// Pure merging of candidates into one answer.
public enum Merger {
    /// The indices of the candidates that may be part of an answer: not shadows (they only
    /// evaluate the route not taken), not failed, and not blank (a successful call that said
    /// nothing is no answer, and blank answers must not win a vote).
    public static func qualifying(_ candidates: [Candidate]) -> [Int] {
        candidates.indices.filter { i in
            let c = candidates[i]
            return !c.shadow && c.succeeded && !CodeFence.trim(c.output).isEmpty
        }
    }

    /// Merges `candidates` by `strategy`. `scores[i]` is candidate i's quality (nil: unscored;
    /// missing entries and NaN count as nil). Returns nil when no candidate qualifies (see
    /// ``qualifying(_:)``), and always for ``MergeStrategy/synthesize``, which needs a model.
    public static func merge(_ strategy: MergeStrategy, _ candidates: [Candidate], scores: [Double?]) -> MergeResult? {
        let pool = qualifying(candidates)
        guard !pool.isEmpty else { return nil }
        let score: (Int) -> Double? = { i in
            guard scores.indices.contains(i), let s = scores[i], !s.isNaN else { return nil }
            return s
        }
        switch strategy {
        case .best: return best(pool, candidates, score)
        case .vote: return vote(pool, candidates, score)
        case .firstSuccess:
            let i = pool[0]
            return MergeResult(output: candidates[i].output, used: [i],
                               explanation: "first successful answer: \(label(i, candidates[i]))")
        case .concat: return concat(pool, candidates)
        case .synthesize: return nil
        }
    }

    /// `candidate 3 (external, openai/gpt-4o-mini)`.
    static func label(_ index: Int, _ candidate: Candidate) -> String {
        "candidate \(index + 1) (\(candidate.arm.description), \(candidate.target))"
    }

    /// Whether score `a` ranks above score `b`: higher first, nil last.
    static func ranksAbove(_ a: Double?, _ b: Double?) -> Bool {
        switch (a, b) {
        case (let x?, let y?): return x > y
        case (.some, nil): return true
        default: return false
        }
    }

    /// The index in `indices` (ascending) with the best score; the earliest among equals.
    static func top(_ indices: [Int], _ score: (Int) -> Double?) -> Int {
        var winner = indices[0]
        for i in indices.dropFirst() where ranksAbove(score(i), score(winner)) { winner = i }
        return winner
    }

    static func best(_ pool: [Int], _ candidates: [Candidate], _ score: (Int) -> Double?) -> MergeResult {
        let winner = top(pool, score)
        let why: String
        if let s = score(winner) {
            let tied = pool.filter { $0 != winner && score($0) == s }.count
            why = "best score \(ScoreText.fixed(s)): \(label(winner, candidates[winner]))"
                + (tied > 0 ? " (tied with \(tied) later \(tied == 1 ? "candidate" : "candidates"); the earliest wins)" : "")
        } else {
            why = "no candidate is scored; took the first: \(label(winner, candidates[winner]))"
        }
        return MergeResult(output: candidates[winner].output, used: [winner], explanation: why)
    }

    static func vote(_ pool: [Int], _ candidates: [Candidate], _ score: (Int) -> Double?) -> MergeResult {
        // Groups of equivalent answers, in order of first appearance.
        var groups: [[Int]] = []
        var groupOf: [String: Int] = [:]
        for i in pool {
            let key = TextSimilarity.normalizedAnswer(candidates[i].output)
            if let g = groupOf[key] {
                groups[g].append(i)
            } else {
                groupOf[key] = groups.count
                groups.append([i])
            }
        }
        let size = groups.map(\.count).max() ?? 0
        let largest = groups.filter { $0.count == size }
        // Among equally large groups, the one whose best member scores highest; then the earliest.
        var winner = largest[0]
        for group in largest.dropFirst() where ranksAbove(score(top(group, score)), score(top(winner, score))) {
            winner = group
        }
        let representative = top(winner, score)

        var why: String
        if pool.count == 1 {
            why = "only 1 answer"
        } else if size == 1 {
            why = "no two of \(pool.count) answers agree"
        } else {
            why = "\(size) of \(pool.count) answers agree"
        }
        if largest.count > 1 {
            let best = score(representative)
            let separated = largest.allSatisfy { $0 == winner || ranksAbove(best, score(top($0, score))) }
            let between = size == 1 ? "" : " between \(largest.count) groups of \(size)"
            why += separated ? "; tie\(between) broken by score" : "; tie\(between) broken by order (the earliest wins)"
        }
        why += "; answer of \(label(representative, candidates[representative]))"
        if let s = score(representative) { why += ", score \(ScoreText.fixed(s))" }
        return MergeResult(output: candidates[representative].output, used: winner, explanation: why)
    }

    static func concat(_ pool: [Int], _ candidates: [Candidate]) -> MergeResult {
        let sections = pool.map { i in
            let c = candidates[i]
            return "### Candidate \(i + 1) (\(c.arm.description), \(c.target))\n\n\(CodeFence.trim(c.output))"
        }
        return MergeResult(output: sections.joined(separator: "\n\n"), used: pool,
                           explanation: "\(ScoreText.count(pool.count, "answer")) concatenated")
    }
}

/// The prompt for ``MergeStrategy/synthesize``: an aggregator model reads every answer and
/// writes one better answer (the aggregate-and-synthesize step of Mixture-of-Agents, Wang et
/// al., 2024).
public enum SynthesisPrompt {
    /// A prompt that gives `task` and the qualifying candidates' answers (see
    /// ``Merger/qualifying(_:)``), numbered from 1 in order, and asks for one synthesized answer
    /// that does not mention the candidates. The answers are wrapped in `<response>` tags so
    /// their own Markdown cannot be mistaken for the prompt's structure.
    public static func build(task: String, candidates: [Candidate]) -> String {
        let answers = Merger.qualifying(candidates).map { CodeFence.trim(candidates[$0].output) }
        var prompt = """
        You are given a task and \(ScoreText.count(answers.count, "candidate response")) to it, written independently by different models. \
        Synthesize them into a single, high-quality response to the task.

        Evaluate the responses critically: some of their content may be wrong, biased or incomplete, and the responses may disagree. \
        Keep what is correct and well supported, resolve disagreements on the merits, fix errors, and fill gaps. \
        Do not simply copy one response or list them side by side; write one refined, accurate, complete and well-structured answer, \
        in the form the task asks for.

        Answer the task directly, as if you were the only author: do not mention the candidate responses, their number, or this synthesis.

        <task>
        \(CodeFence.trim(task))
        </task>
        """
        for (n, answer) in answers.enumerated() {
            prompt += "\n\n<response id=\"\(n + 1)\">\n\(answer)\n</response>"
        }
        if answers.isEmpty {
            prompt += "\n\n(No candidate response is available; answer the task yourself.)"
        }
        prompt += "\n\nNow write the synthesized response to the task."
        return prompt
    }
}
