/// `text.stats`: counts and readability of a text.
///
/// Definitions (each deterministic, so a user can check a number by hand):
/// - **characters**: extended grapheme clusters (what a reader sees as one character: `é`, `👍🏽`).
/// - **words**: runs of non-whitespace that contain at least one letter or digit (a lone `—` or
///   `&` is not a word).
/// - **sentences**: ``SentenceSplitter``'s sentences that hold a letter or digit (abbreviations,
///   decimals and initials do not end one; a blank line does).
/// - **paragraphs**: runs of non-blank lines; a blank line holds only whitespace.
/// - **average_sentence_words**: `words / sentences`, to two decimals.
/// - **reading_time_seconds**: `ceil(words / 238 × 60)` — 238 words a minute is the adult silent
///   reading speed for English non-fiction (Brysbaert 2019).
/// - **syllables**: per word, the groups of consecutive vowels (`a e i o u y`), less a silent
///   final `e` (`make`, but not `table` or `the`), a silent `-ed` (`jumped`, but not `wanted`)
///   and a silent `-es` (`makes`, but not `boxes`); at least 1 per word. A heuristic: exact for
///   most English words, off by one for some (`poem`, `create`).
/// - **flesch_reading_ease**: `206.835 − 1.015 × (words / sentences) − 84.6 × (syllables / words)`
///   (Flesch 1948), to one decimal; `null` for a text without words. 90–100 is very easy,
///   60–70 plain English, below 30 very hard to read.
public enum TextStatistics {
    /// Adult silent reading speed for English prose, in words per minute (Brysbaert 2019).
    public static let wordsPerMinute = 238.0

    /// The numbers `text.stats` reports.
    public struct Report: Sendable, Equatable {
        public var characters: Int
        public var words: Int
        public var sentences: Int
        public var paragraphs: Int
        public var syllables: Int
        /// `words / sentences`; 0 without sentences.
        public var averageSentenceWords: Double
        /// `ceil(words / wordsPerMinute × 60)`.
        public var readingTimeSeconds: Int
        /// Flesch reading ease; `nil` without words.
        public var fleschReadingEase: Double?

        /// The handler's output: every number, readability rounded to one decimal.
        public var json: JSONValue {
            .object([
                JSONMember("characters", .number(Double(characters))),
                JSONMember("words", .number(Double(words))),
                JSONMember("sentences", .number(Double(sentences))),
                JSONMember("paragraphs", .number(Double(paragraphs))),
                JSONMember("reading_time_seconds", .number(Double(readingTimeSeconds))),
                JSONMember("average_sentence_words", .number((averageSentenceWords * 100).rounded() / 100)),
                JSONMember("syllables", .number(Double(syllables))),
                JSONMember("flesch_reading_ease", fleschReadingEase.map { .number(($0 * 10).rounded() / 10) } ?? .null),
            ])
        }
    }

    /// The handler: input a string or `{"text": ...}`; output ``Report/json``.
    static func handle(_ input: JSONValue) throws(TaskFailure) -> JSONValue {
        analyze(try HandlerInput.text(input)).json
    }

    /// Every statistic of `text`.
    public static func analyze(_ text: String) -> Report {
        var words = 0
        var syllables = 0
        for token in text.split(whereSeparator: { $0.isWhitespace }) where token.contains(where: { $0.isLetter || $0.isNumber }) {
            words += 1
            syllables += syllableCount(token)
        }
        let sentences = SentenceSplitter.split(text).filter { $0.contains { $0.isLetter || $0.isNumber } }.count
        var paragraphs = 0
        var inParagraph = false
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            let blank = line.allSatisfy(\.isWhitespace)
            if !blank, !inParagraph { paragraphs += 1 }
            inParagraph = !blank
        }
        let average = sentences == 0 ? 0 : Double(words) / Double(sentences)
        let flesch: Double? = words == 0 ? nil
            : 206.835 - 1.015 * (Double(words) / Double(max(sentences, 1))) - 84.6 * (Double(syllables) / Double(words))
        return Report(characters: text.count, words: words, sentences: sentences, paragraphs: paragraphs, syllables: syllables,
                      averageSentenceWords: average, readingTimeSeconds: Int((Double(words) / wordsPerMinute * 60).rounded(.up)),
                      fleschReadingEase: flesch)
    }

    /// The estimated syllables of one word (see the type's documentation); at least 1.
    public static func syllableCount<S: StringProtocol>(_ word: S) -> Int {
        let letters = Array(word.lowercased().filter { $0.isLetter })
        guard !letters.isEmpty else { return 1 }
        let vowels: Set<Character> = ["a", "e", "i", "o", "u", "y"]
        var groups = 0
        var previousVowel = false
        for c in letters {
            let vowel = vowels.contains(c)
            if vowel, !previousVowel { groups += 1 }
            previousVowel = vowel
        }
        let n = letters.count
        func consonant(_ i: Int) -> Bool { i >= 0 && !vowels.contains(letters[i]) }
        if groups > 1, n >= 3 {
            let last = letters[n - 1]
            let beforeLast = letters[n - 2]
            if last == "e", consonant(n - 2), !(beforeLast == "l" && consonant(n - 3)) {
                groups -= 1  // make, time; but table, little
            } else if last == "d", beforeLast == "e", consonant(n - 3), !"td".contains(letters[n - 3]) {
                groups -= 1  // jumped; but wanted, added
            } else if last == "s", beforeLast == "e", consonant(n - 3), !"sxzcgh".contains(letters[n - 3]) {
                groups -= 1  // makes; but boxes, uses, pages, wishes
            }
        }
        return max(1, groups)
    }
}
