#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A compact English stop-word list (function words and very common verbs), lowercased.
enum StopWords {
    static let english: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
        "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did",
        "do", "does", "doing", "down", "during", "each", "either", "else", "etc", "even", "ever", "every", "few", "for",
        "from", "further", "get", "gets", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
        "him", "himself", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "let",
        "like", "made", "make", "makes", "many", "may", "me", "might", "more", "most", "much", "must", "my", "myself",
        "neither", "no", "nor", "not", "now", "of", "off", "often", "on", "once", "one", "only", "or", "other", "our",
        "ours", "ourselves", "out", "over", "own", "per", "quite", "rather", "really", "said", "same", "say", "says",
        "see", "seen", "shall", "she", "should", "since", "so", "some", "still", "such", "than", "that", "the", "their",
        "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "though", "through", "thus",
        "to", "too", "two", "under", "until", "up", "upon", "us", "use", "used", "uses", "using", "very", "via", "was",
        "we", "well", "were", "what", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why",
        "will", "with", "within", "without", "would", "yet", "you", "your", "yours", "yourself", "yourselves",
        "s", "t", "d", "ll", "m", "re", "ve", "don", "doesn", "didn", "isn", "wasn", "aren", "weren", "won", "can't",
        "new", "way", "ways", "thing", "things", "lot", "lots",
    ]
}

/// `text.keywords`: keyword and key-phrase extraction by RAKE (Rose et al. 2010).
///
/// Method: the text is cut into candidate phrases at punctuation, stop words and bare numbers;
/// each word scores degree / frequency (degree counts co-occurrences within candidates, so
/// words in longer phrases score higher), and a phrase scores the sum of its words' scores,
/// once per distinct phrase, times `1 + ln(occurrences)` (plain RAKE ignores recurrence). A phrase longer than ``maxPhraseWords`` words competes as its single
/// words instead, which curbs RAKE's bias for long one-off phrases; ties break by frequency, then first occurrence.
///
/// Limits: English stop words only; no stemming (`model` and `models` are different words);
/// no notion of meaning, so a frequent but unimportant word can rank.
///
/// Input: text plus `count` (1–100, default 8). Output: `{"output": "a, b, c",
/// "keywords": [{"keyword", "score"}]}`.
public enum KeywordExtractor {
    /// Candidate phrases with more words than this are dropped.
    public static let maxPhraseWords = 3

    /// One extracted keyword or phrase and its RAKE score.
    public struct Keyword: Sendable, Equatable {
        /// The word or phrase, lowercased.
        public var keyword: String
        /// Its RAKE score, weighted by recurrence.
        public var score: Double
    }

    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        let text = try HandlerInput.text(input)
        let count = try HandlerInput.integer(input, "count", in: 1...100) ?? 8
        let keywords = extract(text, count: count)
        return .object([
            JSONMember("output", .string(keywords.map(\.keyword).joined(separator: ", "))),
            JSONMember("keywords", .array(keywords.map {
                .object([JSONMember("keyword", .string($0.keyword)), JSONMember("score", .number(($0.score * 1000).rounded() / 1000))])
            })),
            JSONMember("method", .string("rake")),
        ])
    }

    /// The candidate phrases of `text`, each as its lowercased words, in order of occurrence.
    static func candidates(_ text: String) -> [[String]] {
        var phrases: [[String]] = []
        var fragment = ""
        func cut() {
            var phrase: [String] = []
            for word in TextSimilarity.tokens(fragment) {
                if StopWords.english.contains(word) || word.allSatisfy(\.isNumber) || word.count < 2 {
                    if !phrase.isEmpty { phrases.append(phrase); phrase = [] }
                } else {
                    phrase.append(word)
                }
            }
            if !phrase.isEmpty { phrases.append(phrase) }
            fragment = ""
        }
        for ch in text {
            // Apostrophes and hyphens stay inside a fragment (`don't`, `state-of-the-art`).
            if ch.isLetter || ch.isNumber || ch == " " || ch == "'" || ch == "’" || ch == "-" {
                fragment.append(ch)
            } else {
                cut()
            }
        }
        cut()
        return phrases
    }

    /// The `count` best keywords of `text`, best first.
    public static func extract(_ text: String, count: Int) -> [Keyword] {
        let phrases = candidates(text)
        var frequency: [String: Double] = [:]
        var degree: [String: Double] = [:]
        for phrase in phrases {
            for word in phrase {
                frequency[word, default: 0] += 1
                degree[word, default: 0] += Double(phrase.count)
            }
        }
        // Long candidates still count for degree, but compete as their single words.
        let scored = phrases.flatMap { $0.count <= maxPhraseWords ? [$0] : $0.map { [$0] } }
        var seen: [String: (score: Double, count: Int, first: Int)] = [:]
        for (position, phrase) in scored.enumerated() {
            let key = phrase.joined(separator: " ")
            if let entry = seen[key] {
                seen[key] = (entry.score, entry.count + 1, entry.first)
            } else {
                let score = phrase.reduce(0) { $0 + degree[$1, default: 0] / frequency[$1, default: 1] }
                seen[key] = (score, 1, position)
            }
        }
        // RAKE ignores how often a phrase recurs; weigh that in, gently.
        for (key, entry) in seen { seen[key] = (entry.score * (1 + log(Double(entry.count))), entry.count, entry.first) }
        let ranked = seen.sorted { a, b in
            if a.value.score != b.value.score { return a.value.score > b.value.score }
            if a.value.count != b.value.count { return a.value.count > b.value.count }
            return a.value.first < b.value.first
        }
        return ranked.prefix(count).map { Keyword(keyword: $0.key, score: $0.value.score) }
    }
}
