/// A crude English suffix stripper, enough to match `refunds`, `refunded` and `refunding` to
/// `refund`: it removes a plural `-s`/`-es`/`-ies`, `-ing` and `-ed` (undoing a doubled final
/// consonant), then a final `-e`, so `charge`, `charges` and `charged` all become `charg`.
public enum SimpleStemmer {
    /// The stem of one lowercased word.
    public static func stem(_ word: String) -> String {
        var w = Array(word.lowercased())
        func ends(_ suffix: String) -> Bool { w.count > suffix.count && w.suffix(suffix.count) == Array(suffix)[...] }
        if w.count > 4, ends("ies") || ends("ied") {
            w.removeLast(3); w.append("y")
        } else if ends("sses") {
            w.removeLast(2)
        } else if w.count > 5, ends("ing") {
            w.removeLast(3); undouble(&w)
        } else if w.count > 4, ends("ed") {
            w.removeLast(2); undouble(&w)
        } else if w.count > 3, ends("s"), !ends("ss"), !ends("us"), !ends("is") {
            w.removeLast()
        }
        if w.count > 3, w.last == "e" { w.removeLast() }
        return String(w)
    }

    /// `stopp` → `stop`, but not `fall` → `fal` or `miss` → `mis`.
    private static func undouble(_ w: inout [Character]) {
        guard w.count > 2, let last = w.last, w[w.count - 2] == last, !"lsz".contains(last), !"aeiou".contains(last) else { return }
        w.removeLast()
    }

    /// The stems of the words of `text`.
    public static func stems(_ text: String) -> [String] { TextSimilarity.tokens(text).map(stem) }
}

/// `text.classify`: keyword-rule classification.
///
/// Method: each label has keywords (given as `{"label": ["kw", ...]}`, or, for a plain list of
/// labels, the words of the label name itself). Text and keywords are tokenized and stemmed
/// with ``SimpleStemmer``; a label scores one point per occurrence of each keyword in the text
/// (multi-word keywords match as consecutive words). The best label wins (ties: the earlier
/// label); `confidence` is its share of all points.
///
/// Limits: no semantics or synonyms: a text that never uses a label's words scores 0 for it,
/// and with no match at all the answer is `unclassified` (`label: null`). Negation is ignored.
///
/// Input: text plus `labels` (required). Output: `{"output": label, "label", "score",
/// "confidence", "scores": {label: points}}`.
public enum KeywordClassifier {
    /// One label and its keywords, stemmed.
    public struct Rule: Sendable, Equatable {
        /// The label name.
        public var label: String
        /// Its keywords, each as its stemmed words.
        public var keywords: [[String]]
    }

    /// The outcome: the best label (nil when nothing matched) and every label's points.
    public struct Result: Sendable, Equatable {
        /// The best label; nil when no label matched.
        public var label: String?
        /// Every label's points, in the order given.
        public var scores: [(label: String, score: Double)]
        /// The best label's share of all points, in [0, 1].
        public var confidence: Double

        /// Equal labels, scores and confidence.
        public static func == (a: Result, b: Result) -> Bool {
            a.label == b.label && a.confidence == b.confidence && a.scores.map(\.label) == b.scores.map(\.label) && a.scores.map(\.score) == b.scores.map(\.score)
        }
    }

    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let text = try HandlerInput.text(input)
        let rules = try parseRules(input["labels"])
        let result = classify(text, rules: rules)
        let best = result.scores.first { $0.label == result.label }?.score ?? 0
        return .object([
            JSONMember("output", .string(result.label ?? "unclassified")),
            JSONMember("label", result.label.map { .string($0) } ?? .null),
            JSONMember("score", .number(best)),
            JSONMember("confidence", .number((result.confidence * 1000).rounded() / 1000)),
            JSONMember("scores", .object(result.scores.map { JSONMember($0.label, .number($0.score)) })),
        ])
    }

    /// The rules of a `labels` value: a list of names, or an object of name → keyword or keywords.
    public static func parseRules(_ labels: JSONValue?) throws(TaskFailure) -> [Rule] {
        let expected = "a list of label names or an object {label: [keywords]}"
        guard let labels, labels != .null else {
            throw TaskFailure(.invalidInput, "missing \"labels\": expected \(expected)")
        }
        var rules: [Rule] = []
        switch labels {
        case .array(let items):
            for item in items {
                guard case .string(let name) = item, !SimpleStemmer.stems(name).isEmpty else {
                    throw TaskFailure(.invalidInput, "\"labels\": expected label names (non-empty strings), found \(item.serialized)")
                }
                rules.append(Rule(label: name, keywords: [SimpleStemmer.stems(name)]))
            }
        case .object(let members):
            for member in members {
                var keywords: [[String]] = []
                switch member.value {
                case .string(let s): keywords = [SimpleStemmer.stems(s)]
                case .array(let items):
                    for item in items {
                        guard case .string(let s) = item else {
                            throw TaskFailure(.invalidInput, "\"labels\".\"\(member.key)\": expected keyword strings, found \(item.typeName)")
                        }
                        keywords.append(SimpleStemmer.stems(s))
                    }
                default:
                    throw TaskFailure(.invalidInput, "\"labels\".\"\(member.key)\": expected a list of keywords, found \(member.value.typeName)")
                }
                keywords = keywords.filter { !$0.isEmpty }
                if keywords.isEmpty { keywords = [SimpleStemmer.stems(member.key)] }
                rules.append(Rule(label: member.key, keywords: keywords))
            }
        default:
            throw TaskFailure(.invalidInput, "\"labels\": expected \(expected), found \(labels.typeName)")
        }
        guard !rules.isEmpty else { throw TaskFailure(.invalidInput, "\"labels\": expected at least one label, found none") }
        return rules
    }

    /// Scores every rule on `text`.
    public static func classify(_ text: String, rules: [Rule]) -> Result {
        let words = SimpleStemmer.stems(text)
        var scores: [(label: String, score: Double)] = []
        for rule in rules {
            var points = 0
            for keyword in rule.keywords where !keyword.isEmpty && keyword.count <= words.count {
                for start in 0...(words.count - keyword.count) where words[start..<start + keyword.count].elementsEqual(keyword) {
                    points += 1
                }
            }
            scores.append((rule.label, Double(points)))
        }
        let total = scores.reduce(0) { $0 + $1.score }
        var best: (label: String, score: Double)?
        for entry in scores where entry.score > (best?.score ?? 0) { best = entry }
        return Result(label: best?.label, scores: scores, confidence: total > 0 ? (best?.score ?? 0) / total : 0)
    }
}
