/// What a scorer sees: every candidate of the step (so it can compare them) and, when the task
/// has one, a reference answer.
public struct ScoringContext: Sendable {
    /// All candidates of the step, shadows and failures included, in the order they were made.
    public var candidates: [Candidate]
    /// An expected answer to compare with, if the task gives one.
    public var reference: String?

    /// A context for scoring `candidates`, against `reference` if there is one.
    public init(candidates: [Candidate], reference: String? = nil) {
        self.candidates = candidates
        self.reference = reference
    }

    /// The candidate at `index`, or nil when `index` is out of range.
    public func candidate(_ index: Int) -> Candidate? {
        candidates.indices.contains(index) ? candidates[index] : nil
    }
}

/// Judges the quality of one candidate, in [0, 1], with an explanation.
///
/// Scorers are pure and synchronous; scorers that need a model (`judge`) or a process
/// (`custom`) live outside ChimeraCore and hand their result in as a ``QualityScore``.
public protocol QualityScorer: Sendable {
    /// The name used in configuration and in explanations: `format`, `reference`.
    var name: String { get }
    /// The quality of `context.candidates[index]`. Never traps: an index out of range scores 0.
    func score(_ index: Int, in context: ScoringContext) -> QualityScore
    /// Whether this scorer has anything to say in `context`; ``ScorerSet`` leaves it out of the
    /// weighted mean (and renormalises the other weights) when it does not.
    func applies(to context: ScoringContext) -> Bool
}

extension QualityScorer {
    /// Most scorers apply everywhere.
    public func applies(to context: ScoringContext) -> Bool { true }
}

/// The score of a candidate that cannot be scored: out of range or failed.
enum Unscorable {
    static func check(_ index: Int, _ context: ScoringContext) -> (candidate: Candidate?, early: QualityScore?) {
        guard let candidate = context.candidate(index) else {
            return (nil, QualityScore(0, "no candidate at index \(index) (there are \(context.candidates.count))"))
        }
        if let kind = candidate.errorKind { return (candidate, QualityScore(0, "the call failed: \(kind)")) }
        return (candidate, nil)
    }
}

// MARK: - Format

/// Scores how well an output follows the requested form: JSON, a JSON schema, required
/// sections, a length range.
///
/// Every configured check counts equally; the score is the passed checks over the configured
/// checks. The checks are: valid JSON (when `requireJSON` or a `schema` is set), schema
/// conformance (when `schema` is set; pass or fail), required sections (partial credit: the
/// fraction found), and length (when either bound is set). With nothing configured, a
/// non-blank output scores 1 and a blank one 0. A failed call scores 0.
public struct FormatScorer: QualityScorer {
    /// `format`.
    public var name: String { "format" }
    /// The output, once one surrounding Markdown code fence is removed, must be JSON.
    public var requireJSON: Bool
    /// The JSON must satisfy this schema (implies ``requireJSON``).
    public var schema: JSONSchema?
    /// Section titles that must appear, case-insensitively, as a Markdown heading (`## Risks`,
    /// also `## 2. Risks` or `## Risks:`) or as a line starting `Risks:` (also `**Risks:**`).
    public var requiredSections: [String]
    /// The output must have at least this many `Character`s.
    public var minLength: Int?
    /// The output must have at most this many `Character`s.
    public var maxLength: Int?

    /// A format scorer with the given checks; with none, it checks the output is not blank.
    public init(requireJSON: Bool = false, schema: JSONSchema? = nil, requiredSections: [String] = [],
                minLength: Int? = nil, maxLength: Int? = nil) {
        self.requireJSON = requireJSON
        self.schema = schema
        self.requiredSections = requiredSections
        self.minLength = minLength
        self.maxLength = maxLength
    }

    /// The format score of a candidate (0 for a failed call; see ``evaluate(_:)``).
    public func score(_ index: Int, in context: ScoringContext) -> QualityScore {
        let (candidate, early) = Unscorable.check(index, context)
        if let early { return early }
        return evaluate(candidate?.output ?? "")
    }

    /// The format score of one output text, as ``score(_:in:)`` gives it for a successful call.
    public func evaluate(_ output: String) -> QualityScore {
        var checks = 0
        var passed = 0.0
        var notes: [String] = []

        if requireJSON || schema != nil {
            checks += 1
            var parsed: JSONValue?
            do {
                parsed = try JSONParser.parse(CodeFence.strip(output))
                passed += 1
                notes.append("valid JSON")
            } catch {
                notes.append("not valid JSON (\(error))")
            }
            if let schema {
                checks += 1
                if let parsed {
                    let violations = schema.validate(parsed)
                    if violations.isEmpty {
                        passed += 1
                        notes.append("schema: valid")
                    } else {
                        let shown = violations.prefix(3).map(\.description).joined(separator: "; ")
                        let more = violations.count > 3 ? "; …" : ""
                        notes.append("schema: \(ScoreText.count(violations.count, "violation")) (\(shown)\(more))")
                    }
                } else {
                    notes.append("schema: not checked")
                }
            }
        }

        let sections = requiredSections.map { String(CodeFence.trim($0)) }.filter { !$0.isEmpty }
        if !sections.isEmpty {
            checks += 1
            let outline = SectionOutline(output)
            let missing = sections.filter { !outline.contains($0) }
            let found = sections.count - missing.count
            passed += Double(found) / Double(sections.count)
            var note = "sections \(found)/\(sections.count)"
            if !missing.isEmpty { note += " (missing \(missing.map { "\"\($0)\"" }.joined(separator: ", ")))" }
            notes.append(note)
        }

        if minLength != nil || maxLength != nil {
            checks += 1
            let length = output.count
            let ok = (minLength.map { length >= $0 } ?? true) && (maxLength.map { length <= $0 } ?? true)
            if ok { passed += 1 }
            let range = "\(minLength ?? 0)…\(maxLength.map(String.init) ?? "")"
            notes.append("length \(length) \(ok ? "within" : "outside") \(range)")
        }

        if checks == 0 {
            let blank = CodeFence.trim(output).isEmpty
            return QualityScore(blank ? 0 : 1, blank ? "empty output" : "non-empty output")
        }
        return QualityScore(passed / Double(checks), notes.joined(separator: "; "))
    }
}

/// The section titles an output has: its Markdown headings and its `Title:` lines.
struct SectionOutline {
    /// Heading texts, lowercased, without `#`s, numbering and a trailing colon.
    var headings: Set<String> = []
    /// Every line, lowercased and trimmed, with leading emphasis (`**`, `__`) removed.
    var lines: [Substring] = []

    init(_ text: String) {
        let lowered = text.lowercased()
        for raw in lowered.split(whereSeparator: \.isNewline) {
            let line = CodeFence.trim(raw)
            if line.first == "#" {
                headings.insert(SectionOutline.headingTitle(line))
            }
            var plain = line
            while plain.hasPrefix("**") || plain.hasPrefix("__") { plain = plain.dropFirst(2) }
            lines.append(plain)
        }
    }

    /// `## 2. Risks: ##` → `risks`.
    static func headingTitle(_ line: Substring) -> String {
        var title = line.drop(while: { $0 == "#" })
        title = CodeFence.trim(title)
        while title.last == "#" { title = CodeFence.trim(title.dropLast()) }
        while title.last == ":" { title = CodeFence.trim(title.dropLast()) }
        // Numbered headings: `2. Risks`, `2) Risks`.
        let digits = title.prefix(while: { $0.isNumber })
        if !digits.isEmpty {
            let rest = title.dropFirst(digits.count)
            if rest.first == "." || rest.first == ")" { title = CodeFence.trim(rest.dropFirst()) }
        }
        // Emphasised headings: `## **Risks**`.
        while title.hasPrefix("**") && title.hasSuffix("**") && title.count >= 4 { title = CodeFence.trim(title.dropFirst(2).dropLast(2)) }
        return String(title)
    }

    func contains(_ section: String) -> Bool {
        let wanted = section.lowercased()
        if headings.contains(wanted) { return true }
        let prefix = wanted + ":"
        return lines.contains { $0.hasPrefix(prefix) || $0.hasPrefix(wanted + "**:") || $0.hasPrefix(wanted + "__:") }
    }
}

// MARK: - Similarity

/// How two texts are compared (see ``TextSimilarity``).
public enum SimilarityMetric: String, Sendable, CaseIterable {
    /// LCS-based ROUGE-L F-measure: rewards the same words in the same order.
    case rougeL = "rouge_l"
    /// Bag-of-tokens F1: rewards the same words in any order.
    case tokenF1 = "token_f1"
    /// The mean of the two.
    case mean

    /// The similarity of `candidate` to `reference`, in [0, 1].
    public func similarity(_ candidate: String, _ reference: String) -> Double {
        measure(TextSimilarity.tokens(candidate), TextSimilarity.tokens(reference)).value
    }

    /// The similarity of two token lists and how to say it: `ROUGE-L 0.64`.
    func measure(_ candidate: [String], _ reference: [String]) -> (value: Double, text: String) {
        switch self {
        case .rougeL:
            let r = TextSimilarity.rougeL(candidate, reference)
            return (r, "ROUGE-L \(ScoreText.fixed(r))")
        case .tokenF1:
            let f = TextSimilarity.tokenF1(candidate, reference)
            return (f, "token F1 \(ScoreText.fixed(f))")
        case .mean:
            let r = TextSimilarity.rougeL(candidate, reference)
            let f = TextSimilarity.tokenF1(candidate, reference)
            return ((r + f) / 2, "mean of ROUGE-L \(ScoreText.fixed(r)) and token F1 \(ScoreText.fixed(f))")
        }
    }
}

/// Scores an output by its similarity to the context's reference answer.
///
/// Applies only when the context has a reference; asked anyway without one, it answers a
/// neutral 0.5.
public struct ReferenceScorer: QualityScorer {
    /// `reference`.
    public var name: String { "reference" }
    /// How the output is compared with the reference (default: the mean of ROUGE-L and token F1).
    public var metric: SimilarityMetric

    /// A reference scorer comparing by `metric`.
    public init(metric: SimilarityMetric = .mean) { self.metric = metric }

    /// Only when the context has a reference.
    public func applies(to context: ScoringContext) -> Bool { context.reference != nil }

    /// The candidate's similarity to the reference; 0 for a failed call, 0.5 without a reference.
    public func score(_ index: Int, in context: ScoringContext) -> QualityScore {
        let (candidate, early) = Unscorable.check(index, context)
        if let early { return early }
        guard let reference = context.reference else { return QualityScore(0.5, "no reference given") }
        let measured = metric.measure(TextSimilarity.tokens(candidate?.output ?? ""), TextSimilarity.tokens(reference))
        return QualityScore(measured.value, "\(measured.text) against the reference")
    }
}

/// Scores an output by how much the other successful candidates agree with it: the mean
/// similarity to each of them (self-consistency: independent answers that converge are more
/// likely right).
///
/// The metric defaults to ROUGE-L, which unlike token F1 rewards the same words in the same
/// order, so two answers that reuse a vocabulary but reach opposite conclusions agree less.
/// Its cost is bounded by ``TextSimilarity/maxRougeTokens``; use `.tokenF1` (linear time) for
/// many long candidates. Shadow candidates count as peers: they are real, independent answers,
/// even though they are never the step's answer. Applies only when at least two candidates
/// succeeded.
public struct AgreementScorer: QualityScorer {
    /// `agreement`.
    public var name: String { "agreement" }
    /// How two answers are compared (default: ROUGE-L).
    public var metric: SimilarityMetric

    /// An agreement scorer comparing by `metric`.
    public init(metric: SimilarityMetric = .rougeL) { self.metric = metric }

    /// Only when at least two candidates succeeded.
    public func applies(to context: ScoringContext) -> Bool {
        context.candidates.lazy.filter(\.succeeded).count >= 2
    }

    /// The candidate's mean similarity to the other successful candidates; 0 for a failed call,
    /// 0.5 when there is no other.
    public func score(_ index: Int, in context: ScoringContext) -> QualityScore {
        let (candidate, early) = Unscorable.check(index, context)
        if let early { return early }
        let peers = context.candidates.indices.filter { $0 != index && context.candidates[$0].succeeded }
        guard !peers.isEmpty else { return QualityScore(0.5, "no other successful candidate to compare with") }
        let mine = TextSimilarity.tokens(candidate?.output ?? "")
        let total = peers.reduce(0.0) { sum, peer in
            sum + metric.measure(mine, TextSimilarity.tokens(context.candidates[peer].output)).value
        }
        let mean = total / Double(peers.count)
        let label: String
        switch metric {
        case .rougeL: label = "ROUGE-L"
        case .tokenF1: label = "token F1"
        case .mean: label = "ROUGE-L/token-F1"
        }
        return QualityScore(mean, "mean \(label) \(ScoreText.fixed(mean)) against \(ScoreText.count(peers.count, "other answer"))")
    }
}

// MARK: - Combining

/// One scorer's contribution to a ``CombinedScore``.
public struct ScorePart: Sendable, Equatable {
    /// The scorer's name.
    public var scorer: String
    /// Its weight after renormalisation over the scorers that applied (the parts' weights sum to 1).
    public var weight: Double
    /// What the scorer said.
    public var score: QualityScore

    /// One scorer's part.
    public init(scorer: String, weight: Double, score: QualityScore) {
        self.scorer = scorer
        self.weight = weight
        self.score = score
    }
}

/// A weighted mean of several scorers' scores, with its parts.
public struct CombinedScore: Sendable, Equatable {
    /// In [0, 1].
    public var score: Double
    /// Each applying scorer's contribution, in the order of the ``ScorerSet``'s entries.
    public var parts: [ScorePart]

    /// A combined score.
    public init(score: Double, parts: [ScorePart]) {
        self.score = score
        self.parts = parts
    }

    /// `0.82 = format 1.00×0.5 + reference 0.64×0.5`.
    public var explanation: String {
        let terms = parts.map { "\($0.scorer) \(ScoreText.fixed($0.score.score))×\(ScoreText.compact($0.weight))" }
        return "\(ScoreText.fixed(score)) = \(terms.joined(separator: " + "))"
    }
}

/// Weighted scorers whose scores are combined into one.
public struct ScorerSet: Sendable {
    /// The scorers and their (relative) weights. Entries with a weight that is not a positive
    /// finite number are ignored.
    public var entries: [(scorer: any QualityScorer, weight: Double)]

    /// A set of weighted scorers.
    public init(_ entries: [(scorer: any QualityScorer, weight: Double)] = []) {
        self.entries = entries
    }

    /// The weighted mean of the scores of the scorers that apply to `context`, their weights
    /// renormalised to sum to 1. When none applies, the score of a default ``FormatScorer``
    /// (is the output non-blank?), listed as the only part.
    public func score(_ index: Int, in context: ScoringContext) -> CombinedScore {
        let active = entries.filter { $0.weight.isFinite && $0.weight > 0 && $0.scorer.applies(to: context) }
        guard !active.isEmpty else {
            let fallback = FormatScorer()
            let s = fallback.score(index, in: context)
            return CombinedScore(score: s.score, parts: [ScorePart(scorer: fallback.name, weight: 1, score: s)])
        }
        let total = active.reduce(0) { $0 + $1.weight }
        var parts: [ScorePart] = []
        var sum = 0.0
        for entry in active {
            let weight = entry.weight / total
            let s = entry.scorer.score(index, in: context)
            parts.append(ScorePart(scorer: entry.scorer.name, weight: weight, score: s))
            sum += weight * s.score
        }
        return CombinedScore(score: min(1, max(0, sum.isNaN ? 0 : sum)), parts: parts)
    }
}

// MARK: - Configuration

/// A `NAME[:WEIGHT]` scorer spec that cannot be used.
public struct ScorerSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The spec as given.
    public var spec: String
    /// What is wrong with it.
    public var message: String

    /// An error about `spec`.
    public init(spec: String, message: String) {
        self.spec = spec
        self.message = message
    }

    /// `invalid scorer "x": unknown scorer "x"; known scorers: format, …`.
    public var description: String { "invalid scorer \"\(spec)\": \(message)" }
}

/// Scorer specs as configuration and the command line write them: `format`, `reference:0.5`,
/// `agreement:2`.
public enum ScorerSpec {
    /// Every scorer name a spec may use. `judge` (a model grades the output) and `custom` (a
    /// command does) are implemented outside ChimeraCore.
    public static let knownNames = ["format", "reference", "agreement", "judge", "custom"]

    /// Parses `NAME` or `NAME:WEIGHT`. The name is case-insensitive and returned lowercased; the
    /// weight defaults to 1 and must be a finite number greater than 0.
    public static func parse(_ text: String) throws(ScorerSpecError) -> (name: String, weight: Double) {
        func fail(_ message: String) -> ScorerSpecError { ScorerSpecError(spec: text, message: message) }
        let spec = CodeFence.trim(text)
        guard !spec.isEmpty else { throw fail("empty scorer spec; expected NAME or NAME:WEIGHT") }
        let colon = spec.firstIndex(of: ":")
        let name = String(CodeFence.trim(spec[..<(colon ?? spec.endIndex)])).lowercased()
        guard !name.isEmpty else { throw fail("missing scorer name before ':'") }
        guard knownNames.contains(name) else {
            throw fail("unknown scorer \"\(name)\"; known scorers: \(knownNames.joined(separator: ", "))")
        }
        guard let colon else { return (name, 1) }
        let weightText = String(CodeFence.trim(spec[spec.index(after: colon)...]))
        guard !weightText.isEmpty else { throw fail("missing weight after ':'") }
        guard let weight = Double(weightText) else { throw fail("weight \"\(weightText)\" is not a number") }
        guard weight.isFinite, weight > 0 else { throw fail("weight must be a finite number greater than 0, found \(weightText)") }
        return (name, weight)
    }
}

// MARK: - Number text

/// Numbers as explanations show them (ChimeraCore has no Foundation formatters).
enum ScoreText {
    /// `x` with exactly `digits` decimals: `0.82`, `1.00`. Non-finite values print as Swift does.
    static func fixed(_ x: Double, digits: Int = 2) -> String {
        let digits = min(max(digits, 0), 9)
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        guard x.isFinite, abs(x) * Double(scale) < 9.0e15 else { return "\(x)" }
        let units = Int64((abs(x) * Double(scale)).rounded())
        let whole = String(units / scale)
        var text = (x < 0 && units != 0 ? "-" : "") + whole
        if digits > 0 {
            let fraction = String(units % scale)
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    /// `x` with at most two decimals and no trailing zeros: `0.5`, `1`, `0.33`.
    static func compact(_ x: Double) -> String {
        var text = fixed(x)
        guard text.contains(".") else { return text }
        while text.last == "0" { text.removeLast() }
        if text.last == "." { text.removeLast() }
        return text
    }

    /// `1 violation`, `3 violations`.
    static func count(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }
}
