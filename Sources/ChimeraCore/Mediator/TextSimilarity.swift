/// Cheap, deterministic text similarity for scoring candidates against a reference or against
/// each other, and answer normalisation for voting. No models, no I/O.
public enum TextSimilarity {
    /// ROUGE-L compares at most this many tokens of each text. The LCS table costs
    /// O(n × m) time, so the cap bounds one comparison to 16 million cells (tens of
    /// milliseconds) whatever the inputs; the tokens past the cap are ignored.
    public static let maxRougeTokens = 4_000

    /// The words of `text`, lowercased: maximal runs of letters and digits (Unicode aware, so
    /// `Café` and `naïve` are one word each; apostrophes and hyphens split words). Han ideographs,
    /// kana and Thai are written without spaces, so each of their characters is its own token;
    /// otherwise a whole Chinese sentence would be one token.
    public static func tokens(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in text.lowercased() {
            if isUnspacedScript(ch) {
                if !current.isEmpty { out.append(current); current = "" }
                out.append(String(ch))
            } else if ch.isLetter || ch.isNumber {
                current.append(ch)
            } else if !current.isEmpty {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// ROUGE-L: the F-measure (β = 1) of the longest common subsequence of the two texts'
    /// ``tokens(_:)``: with LCS length L, precision L / |candidate| and recall L / |reference|,
    /// F = 2PR / (P + R). 1.0 when neither text has a token, 0.0 when exactly one has none.
    /// Each side is capped at ``maxRougeTokens`` tokens.
    public static func rougeL(candidate: String, reference: String) -> Double {
        rougeL(tokens(candidate), tokens(reference))
    }

    /// SQuAD-style token F1: the two texts as bags of ``tokens(_:)`` (a token shared k times
    /// counts k times); with C shared tokens, precision C / |candidate| and recall
    /// C / |reference|, F1 = 2PR / (P + R). 1.0 when neither text has a token, 0.0 when exactly
    /// one has none.
    public static func tokenF1(candidate: String, reference: String) -> Double {
        tokenF1(tokens(candidate), tokens(reference))
    }

    /// A key under which answers that say the same thing are equal, for majority voting.
    ///
    /// If the text (once a single surrounding Markdown code fence is removed) is a JSON object,
    /// array, number, boolean or null, the key is its canonical JSON: object members sorted by
    /// key at every level, compact. A JSON string is unwrapped and normalised as text, so
    /// `"Paris"` and `Paris.` agree. Any other text is lowercased, trimmed, its runs of
    /// whitespace collapsed to one space, trailing `.` and `!` removed and one pair of
    /// surrounding quotes (`"…"`, `'…'`, `“…”`, `‘…’`, `` `…` ``) removed, repeatedly.
    public static func normalizedAnswer(_ text: String) -> String {
        let body = CodeFence.strip(text)
        if let value = try? JSONParser.parse(body) {
            if case .string(let s) = value { return normalizedText(s) }
            return value.canonicalForm.serialized
        }
        return normalizedText(text)
    }

    // MARK: Internals on tokens

    static func rougeL(_ candidate: [String], _ reference: [String]) -> Double {
        let c = candidate.prefix(maxRougeTokens)
        let r = reference.prefix(maxRougeTokens)
        if c.isEmpty || r.isEmpty { return c.isEmpty && r.isEmpty ? 1 : 0 }
        let lcs = lcsLength(Array(c), Array(r))
        return fMeasure(common: lcs, candidateCount: c.count, referenceCount: r.count)
    }

    static func tokenF1(_ candidate: [String], _ reference: [String]) -> Double {
        if candidate.isEmpty || reference.isEmpty { return candidate.isEmpty && reference.isEmpty ? 1 : 0 }
        var counts: [String: Int] = [:]
        for t in reference { counts[t, default: 0] += 1 }
        var common = 0
        for t in candidate {
            if let n = counts[t], n > 0 {
                common += 1
                counts[t] = n - 1
            }
        }
        return fMeasure(common: common, candidateCount: candidate.count, referenceCount: reference.count)
    }

    /// 2PR / (P + R) with P = common / candidateCount and R = common / referenceCount, which
    /// simplifies to 2·common / (candidateCount + referenceCount).
    static func fMeasure(common: Int, candidateCount: Int, referenceCount: Int) -> Double {
        guard common > 0 else { return 0 }
        return 2 * Double(common) / Double(candidateCount + referenceCount)
    }

    /// Length of the longest common subsequence, by dynamic programming over two rows of the
    /// shorter sequence (tokens mapped to integers first so the inner loop compares integers).
    static func lcsLength(_ a: [String], _ b: [String]) -> Int {
        var ids: [String: Int] = [:]
        func id(_ s: String) -> Int {
            if let known = ids[s] { return known }
            let new = ids.count
            ids[s] = new
            return new
        }
        let x = a.map(id)
        let y = b.map(id)
        let (outer, inner) = x.count >= y.count ? (x, y) : (y, x)
        guard !inner.isEmpty else { return 0 }
        var previous = [Int](repeating: 0, count: inner.count + 1)
        var row = previous
        for token in outer {
            for j in 1...inner.count {
                row[j] = token == inner[j - 1] ? previous[j - 1] + 1 : max(previous[j], row[j - 1])
            }
            swap(&previous, &row)
        }
        return previous[inner.count]
    }

    // MARK: Internals on text

    /// Characters of scripts written without spaces between words.
    static func isUnspacedScript(_ ch: Character) -> Bool {
        guard let v = ch.unicodeScalars.first?.value else { return false }
        switch v {
        case 0x3040...0x30FF,    // Hiragana, Katakana
             0x3400...0x4DBF,    // CJK Extension A
             0x4E00...0x9FFF,    // CJK Unified Ideographs
             0xF900...0xFAFF,    // CJK Compatibility Ideographs
             0x0E00...0x0E7F,    // Thai
             0x20000...0x2FA1F:  // CJK Extensions B–F, Compatibility Supplement
            return true
        default:
            return false
        }
    }

    static func normalizedText(_ text: String) -> String {
        var words: [Substring] = []
        let lowered = text.lowercased()
        var start: String.Index?
        for i in lowered.indices {
            if lowered[i].isWhitespace {
                if let s = start { words.append(lowered[s..<i]); start = nil }
            } else if start == nil {
                start = i
            }
        }
        if let s = start { words.append(lowered[s...]) }
        var result = Substring(words.joined(separator: " "))
        // Each pass removes something or stops, so this ends; the bound is only a backstop.
        for _ in 0..<result.count + 1 {
            let before = result
            while let last = result.last, last == "." || last == "!" || last.isWhitespace { result = result.dropLast() }
            while let first = result.first, first.isWhitespace { result = result.dropFirst() }
            if let first = result.first, let last = result.last, result.count >= 2, closingQuote(for: first) == last {
                result = result.dropFirst().dropLast()
            }
            if result == before { break }
        }
        return String(result)
    }

    static func closingQuote(for opening: Character) -> Character? {
        switch opening {
        case "\"": return "\""
        case "'": return "'"
        case "`": return "`"
        case "“": return "”"
        case "‘": return "’"
        case "«": return "»"
        default: return nil
        }
    }
}

/// Markdown code fences around model output.
enum CodeFence {
    /// `text` without one fence around all of it (```` ``` ```` or ```` ```json ````, any info
    /// string), trimmed; `text` trimmed when it is not entirely one fenced block.
    static func strip(_ text: String) -> String {
        let trimmed = trim(text)
        guard trimmed.count >= 6, trimmed.hasPrefix("```"), trimmed.hasSuffix("```") else { return String(trimmed) }
        let inner = trimmed.dropFirst(3).dropLast(3)
        // The first line is the info string (`json`), unless the block is on a single line.
        guard let newline = inner.firstIndex(where: { $0.isNewline }) else { return String(trim(inner)) }
        return String(trim(inner[inner.index(after: newline)...]))
    }

    static func trim<S: StringProtocol>(_ text: S) -> S.SubSequence {
        let start = text.firstIndex(where: { !$0.isWhitespace }) ?? text.endIndex
        let end = text.lastIndex(where: { !$0.isWhitespace }).map { text.index(after: $0) } ?? text.endIndex
        return text[start..<max(start, end)]
    }
}
