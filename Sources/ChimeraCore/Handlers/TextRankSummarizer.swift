#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits prose into sentences.
///
/// A sentence ends at a run of `.`, `!` or `?` (with any closing quotes or brackets) followed by
/// whitespace or the end of the text, and at a blank line. A period does not end a sentence
/// inside a number (`3.14`), after a known abbreviation (`e.g.`, `Dr.`, `Inc.`), or after a
/// single letter (an initial, `J. Smith`). `etc.` ends one only before a capital letter, and a
/// terminator inside closing quotes does not end one before a lowercase word (`"Why?" she asked.`).
public enum SentenceSplitter {
    /// Abbreviations (lowercased, without their final period) after which a period never ends a sentence.
    static let abbreviations: Set<String> = [
        "e.g", "i.e", "cf", "vs", "viz", "al", "approx", "ca", "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st",
        "mt", "no", "nos", "fig", "figs", "vol", "pp", "p", "ed", "eds", "inc", "ltd", "co", "corp", "dept", "est",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
        "gen", "gov", "sen", "rep", "lt", "col", "capt", "sgt",
    ]

    /// The sentences of `text`, trimmed, in order; runs of whitespace inside are collapsed to one space.
    public static func split(_ text: String) -> [String] {
        let chars = Array(text)
        var sentences: [String] = []
        var current = ""
        func flush() {
            let words = current.split(whereSeparator: { $0.isWhitespace })
            if !words.isEmpty { sentences.append(words.joined(separator: " ")) }
            current = ""
        }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            // A blank line ends a sentence.
            if c.isNewline {
                var j = i + 1
                while j < chars.count, chars[j].isWhitespace, !chars[j].isNewline { j += 1 }
                if j < chars.count, chars[j].isNewline { flush(); i = j + 1; continue }
            }
            current.append(c)
            guard c == "." || c == "!" || c == "?" else { i += 1; continue }
            var j = i + 1
            while j < chars.count, chars[j] == "." || chars[j] == "!" || chars[j] == "?" { current.append(chars[j]); j += 1 }
            let lonePeriod = c == "." && j == i + 1
            let periodEnd = current.count
            let runEnd = j
            while j < chars.count, "\"')]”’»".contains(chars[j]) { current.append(chars[j]); j += 1 }
            i = j
            guard j == chars.count || chars[j].isWhitespace else { continue }
            // `"Why?" she asked.`: a quoted exclamation or question inside a sentence.
            if j > runEnd, nextVisible(chars, from: j)?.isLowercase == true { continue }
            if lonePeriod, !endsSentence(before: String(current.prefix(periodEnd)), next: nextVisible(chars, from: j)) { continue }
            flush()
        }
        flush()
        return sentences
    }

    /// Whether the period closing `sentence` ends it, given the next visible character.
    static func endsSentence(before sentence: String, next: Character?) -> Bool {
        var word = ""
        for ch in sentence.dropLast().reversed() {
            if ch.isLetter || ch == "." { word.insert(ch, at: word.startIndex) } else { break }
        }
        let lower = word.lowercased()
        if lower == "etc" { return next.map { $0.isUppercase } ?? true }
        if abbreviations.contains(lower) { return next == nil }
        if lower.count == 1, word.first?.isUppercase == true, next?.isUppercase == true { return false }
        return true
    }

    static func nextVisible(_ chars: [Character], from start: Int) -> Character? {
        var j = start
        while j < chars.count, chars[j].isWhitespace { j += 1 }
        return j < chars.count ? chars[j] : nil
    }
}

/// `text.summarize`: extractive summarization by TextRank (Mihalcea & Tarau 2004).
///
/// Method: the text (without a leading "Summarize…:" instruction) is split into sentences by
/// ``SentenceSplitter``. Two sentences are linked with weight
/// `|shared content words| / (log |S1| + log |S2|)` (lengths in words, at least 2 so the
/// logarithm is positive; stop words are not counted as shared). Weighted PageRank with damping
/// 0.85 runs until no score moves by more than 1e-6 (at most 100 iterations). The
/// best-scoring sentences (ties: the earlier) are output in their original order.
///
/// Limits: extractive only (no rewriting, no coreference), English-centric stop words; only the
/// first ``maxSentences`` sentences are ranked, so the graph costs at most 250,000 comparisons.
///
/// Input: text plus `style` (`paragraph`, default; `bullets`; `structured`: "Summary:" and
/// "Key points:"), `length` (`short` ≈ 2 sentences, `medium` ≈ 4, default; `long` ≈ 7) or
/// `sentences: N`; without them, the instruction's own words are followed when it has some
/// ("in 3 bullets", see ``instructionHints(_:)``).
public enum TextRankSummarizer {
    /// Sentences past this many are not ranked.
    public static let maxSentences = 500
    /// PageRank's damping factor.
    public static let damping = 0.85

    /// How the chosen sentences are laid out.
    public enum Style: String, Sendable, CaseIterable {
        /// The sentences as one paragraph.
        case paragraph
        /// One `- ` bullet per sentence.
        case bullets
        /// `Summary:` (the top sentence), then `Key points:` bullets.
        case structured
    }

    /// One chosen sentence: where it was, what it says, its TextRank score.
    public struct Pick: Sendable, Equatable {
        /// Its position among the text's sentences, from 0.
        public var index: Int
        /// The sentence as split.
        public var sentence: String
        /// Its TextRank score.
        public var score: Double
    }

    /// The handler: `{"output": summary, "sentences": [...], "method": "textrank"}`.
    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let text = try HandlerInput.text(input)
        let hints = instructionHints(text)
        var style = hints.style ?? .paragraph
        if let s = try HandlerInput.string(input, "style") {
            guard let parsed = Style(rawValue: s.lowercased()) else {
                throw TaskFailure(.invalidInput, "\"style\": expected \"bullets\", \"paragraph\" or \"structured\", found \"\(s)\"")
            }
            style = parsed
        }
        var count = hints.count ?? 4
        if let length = try HandlerInput.string(input, "length") {
            switch length.lowercased() {
            case "short": count = 2
            case "medium": count = 4
            case "long": count = 7
            default: throw TaskFailure(.invalidInput, "\"length\": expected \"short\", \"medium\" or \"long\", found \"\(length)\"")
            }
        }
        if let n = try HandlerInput.integer(input, "sentences", in: 1...100) { count = n }
        let body = stripInstruction(text)
        guard body.contains(where: { $0.isLetter || $0.isNumber }) else {
            throw TaskFailure(.invalidInput, "\"text\": expected text to summarize, found none")
        }
        let picks = summarize(body, sentences: count)
        return .object([
            JSONMember("output", .string(render(picks, style: style))),
            JSONMember("sentences", .array(picks.map {
                .object([JSONMember("index", .number(Double($0.index))), JSONMember("text", .string($0.sentence)),
                         JSONMember("score", .number(($0.score * 1e6).rounded() / 1e6))])
            })),
            JSONMember("method", .string("textrank")),
        ])
    }

    /// `text` without a leading instruction such as "Summarize:" or "Please summarize this
    /// report in 3 bullets:" (up to the first colon or line break, within 120 characters).
    public static func stripInstruction(_ text: String) -> String {
        let trimmed = HandlerInput.trimmed(text)
        guard let end = trimmed.prefix(120).firstIndex(where: { $0 == ":" || $0.isNewline }) else { return trimmed }
        let head = trimmed[..<end].lowercased()
        let cues = ["summar", "tl;dr", "tldr", "key points", "gist"]
        guard cues.contains(where: { head.contains($0) }), head.split(separator: " ").count <= 15 else { return trimmed }
        return HandlerInput.trimmed(trimmed[trimmed.index(after: end)...])
    }

    /// What a leading instruction asks for, when it says: "in 3 bullets" → bullets, 3;
    /// "in two sentences" → 2; "key points" → structured; "brief"/"short" → 2; "detailed" → 7.
    /// Explicit `style`, `length` and `sentences` options take precedence.
    public static func instructionHints(_ text: String) -> (style: Style?, count: Int?) {
        let trimmed = HandlerInput.trimmed(text)
        let stripped = stripInstruction(trimmed)
        guard stripped.count < trimmed.count else { return (nil, nil) }
        let head = TextSimilarity.tokens(String(trimmed.prefix(trimmed.count - stripped.count)))
        var style: Style?
        var count: Int?
        if head.contains(where: { $0.hasPrefix("bullet") }) { style = .bullets }
        if head.contains("paragraph") { style = .paragraph }
        if head.contains("key"), head.contains(where: { $0.hasPrefix("point") }) { style = .structured }
        if head.contains("brief") || head.contains("short") || head.contains("briefly") { count = 2 }
        if head.contains("detailed") || head.contains("long") { count = 7 }
        let numbers = ["one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10]
        for (i, word) in head.enumerated() where i + 1 < head.count {
            let next = head[i + 1]
            guard ["sentence", "sentences", "bullet", "bullets", "point", "points", "line", "lines"].contains(next),
                  let n = Int(word) ?? numbers[word], (1...100).contains(n) else { continue }
            count = n
        }
        return (style, count)
    }

    /// The `count` most central sentences of `text`, in their original order.
    public static func summarize(_ text: String, sentences count: Int) -> [Pick] {
        let all = SentenceSplitter.split(text)
        let sentences = Array(all.prefix(maxSentences))
        guard !sentences.isEmpty else { return [] }
        let scores = rank(sentences)
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        return order.prefix(max(1, count)).sorted().map { Pick(index: $0, sentence: sentences[$0], score: scores[$0]) }
    }

    /// TextRank scores of `sentences` (mean 1 when the graph has edges).
    public static func rank(_ sentences: [String]) -> [Double] {
        let n = sentences.count
        let tokenized = sentences.map { TextSimilarity.tokens($0) }
        let contentSets = tokenized.map { Set($0.filter { !StopWords.english.contains($0) }) }
        var weights = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                let shared = contentSets[i].intersection(contentSets[j]).count
                guard shared > 0 else { continue }
                let w = Double(shared) / (log(Double(max(2, tokenized[i].count))) + log(Double(max(2, tokenized[j].count))))
                weights[i][j] = w
                weights[j][i] = w
            }
        }
        let outSums = weights.map { $0.reduce(0, +) }
        var scores = [Double](repeating: 1, count: n)
        for _ in 0..<100 {
            var next = [Double](repeating: 1 - damping, count: n)
            for i in 0..<n {
                for j in 0..<n where weights[j][i] > 0 {
                    next[i] += damping * weights[j][i] / outSums[j] * scores[j]
                }
            }
            let delta = zip(next, scores).map { abs($0 - $1) }.max() ?? 0
            scores = next
            if delta < 1e-6 { break }
        }
        return scores
    }

    /// The picks laid out in `style`.
    public static func render(_ picks: [Pick], style: Style) -> String {
        switch style {
        case .paragraph:
            return picks.map(\.sentence).joined(separator: " ")
        case .bullets:
            return picks.map { "- " + $0.sentence }.joined(separator: "\n")
        case .structured:
            guard let top = picks.max(by: { $0.score != $1.score ? $0.score < $1.score : $0.index > $1.index }) else { return "Summary:\n\nKey points:" }
            let rest = picks.filter { $0.index != top.index }
            let points = (rest.isEmpty ? [top] : rest).map { "- " + $0.sentence }
            return "Summary: " + top.sentence + "\n\nKey points:\n" + points.joined(separator: "\n")
        }
    }
}
