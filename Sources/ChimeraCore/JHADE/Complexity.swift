#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How hard a prompt looks, from deterministic features anyone can check by reading it: a
/// score in [0, 1] with what each feature contributed. No model is involved, so the same prompt
/// always gets the same estimate and `chimera explain` can show why.
public struct ComplexityEstimate: Sendable, Equatable {
    /// One feature: its value in [0, 1], its weight, and what was seen.
    public struct Feature: Sendable, Equatable {
        public var name: String
        public var value: Double
        public var weight: Double
        /// What was counted, e.g. "≈412 tokens" or "cues: why, compare".
        public var detail: String
        public var contribution: Double { value * weight }
    }

    public var score: Double
    public var features: [Feature]

    /// 0 (low), 1 (medium) or 2 (high): learned statistics are kept per bucket, so that an
    /// internal handler good at easy tasks is not judged by the hard ones.
    public var bucket: Int { score < ComplexityEstimator.mediumFrom ? 0 : score < ComplexityEstimator.highFrom ? 1 : 2 }

    public var bucketName: String { ["low", "medium", "high"][bucket] }

    /// "0.31 (medium): length 0.12 (≈412 tokens), reasoning 0.20 (cues: why)"; features that
    /// contributed nothing are left out.
    public var summary: String {
        let parts = features.filter { $0.contribution > 0 }.map { "\($0.name) \(Self.format($0.contribution)) (\($0.detail))" }
        return "\(Self.format(score)) (\(bucketName))" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    }

    /// Two decimals without Foundation: `0.31`, `1.00`.
    public static func format(_ d: Double) -> String {
        let hundredths = Int((d * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}

/// The complexity features and their weights (they sum to 1).
public enum ComplexityEstimator {
    /// Bucket boundaries on the score.
    public static let mediumFrom = 0.15
    public static let highFrom = 0.3

    static let weights: [(name: String, weight: Double)] = [
        ("length", 0.25), ("instructions", 0.15), ("code", 0.15), ("math", 0.15), ("reasoning", 0.2), ("structure", 0.1),
    ]

    static let reasoningCues = ["why", "explain", "step by step", "reason", "prove", "compare", "analyze", "analyse", "trade-off",
                                "tradeoff", "evaluate", "justify", "pros and cons", "implication", "what if", "plan", "critique", "derive"]
    static let mathCues = ["solve", "equation", "integral", "derivative", "probability", "theorem", "calculate", "compute",
                           "sum of", "percent", "\\frac", "√", "∑", "matrix", "modulo"]
    static let structureCues = ["json", "table", "schema", "bullet", "csv", "yaml", "markdown", "format", "sections", "numbered list"]
    static let imperativeVerbs = ["write", "list", "give", "summarize", "summarise", "describe", "explain", "translate", "extract",
                                  "classify", "generate", "create", "rewrite", "find", "identify", "compare", "draft", "include", "return"]
    static let codeMarkers = ["func ", "def ", "class ", "return ", "#include", "import ", "select ", "=>", "->", "};", "();", "let ", "var ", "const "]

    /// The estimate for `prompt`. Tokens are estimated at 4 UTF-8 bytes each, as for quotas.
    public static func estimate(_ prompt: String) -> ComplexityEstimate {
        let lower = prompt.lowercased()
        let tokens = prompt.utf8.count / 4
        let lines = lower.split(whereSeparator: \.isNewline).map { $0.drop(while: { $0 == " " || $0 == "\t" }) }

        // length: logarithmic, 64 tokens ≈ 0.14, 8,192 tokens and more = 1.
        let length = min(1, log2(1 + Double(tokens) / 64) / log2(1 + 8192.0 / 64))

        // instructions: list items, questions and sentences that start with an imperative verb;
        // one instruction is the baseline.
        var instructions = 0
        for line in lines {
            if line.hasPrefix("- ") || line.hasPrefix("* ") || Self.isNumberedItem(line) { instructions += 1 }
        }
        for sentence in lower.split(whereSeparator: { $0 == "." || $0 == "?" || $0 == "!" || $0 == "\n" || $0 == ";" }) {
            let words = sentence.split(separator: " ")
            if let first = words.first, imperativeVerbs.contains(String(first)) { instructions += 1 }
        }
        instructions += lower.filter { $0 == "?" }.count
        let instructionValue = min(1, Double(max(0, instructions - 1)) / 5)

        // code: a fenced block is decisive; otherwise lines that look like code.
        let fenced = prompt.contains("```")
        let codeLines = lines.filter { line in codeMarkers.contains { line.contains($0) } || line.hasSuffix(";") || line.hasSuffix("{") }.count
        let codeValue = fenced ? 1 : min(1, Double(codeLines) / 5)

        let mathHits = mathCues.filter { lower.contains($0) } + (Self.hasArithmetic(lower) ? ["arithmetic"] : [])
        let reasoningHits = reasoningCues.filter { Self.containsWord(lower, $0) }
        let structureHits = structureCues.filter { Self.containsWord(lower, $0) }

        let values: [String: (Double, String)] = [
            "length": (length, "≈\(tokens) tokens"),
            "instructions": (instructionValue, "\(instructions) instruction\(instructions == 1 ? "" : "s")"),
            "code": (codeValue, fenced ? "a code block" : "\(codeLines) code-like line\(codeLines == 1 ? "" : "s")"),
            "math": (min(1, Double(mathHits.count) / 3), mathHits.isEmpty ? "none" : "cues: " + mathHits.joined(separator: ", ")),
            "reasoning": (min(1, Double(reasoningHits.count) / 3), reasoningHits.isEmpty ? "none" : "cues: " + reasoningHits.joined(separator: ", ")),
            "structure": (min(1, Double(structureHits.count) / 2), structureHits.isEmpty ? "none" : "asks for: " + structureHits.joined(separator: ", ")),
        ]
        let features = weights.map { w in
            ComplexityEstimate.Feature(name: w.name, value: values[w.name]!.0, weight: w.weight, detail: values[w.name]!.1)
        }
        let score = min(1, max(0, features.reduce(0) { $0 + $1.contribution }))
        return ComplexityEstimate(score: score, features: features)
    }

    /// `1. `, `2) `, `10. `.
    static func isNumberedItem(_ line: Substring) -> Bool {
        let digits = line.prefix(while: \.isNumber)
        guard !digits.isEmpty, digits.count <= 3 else { return false }
        let rest = line.dropFirst(digits.count)
        return rest.hasPrefix(". ") || rest.hasPrefix(") ")
    }

    /// A digit, an operator, a digit: `3 + 4`, `2^10`, `x = 5`.
    static func hasArithmetic(_ text: String) -> Bool {
        let chars = Array(text.filter { $0 != " " })
        guard chars.count >= 3 else { return false }
        for i in 1..<(chars.count - 1) where "+-*/^=".contains(chars[i]) {
            if (chars[i - 1].isNumber || chars[i - 1].isLetter && chars[i - 1].isASCII) && chars[i + 1].isNumber { return true }
        }
        return false
    }

    /// `cue` as a whole word (or phrase): "plan" in "a plan" but not in "planet".
    static func containsWord(_ text: String, _ cue: String) -> Bool {
        var searchStart = text.startIndex
        while let range = text[searchStart...].firstRange(of: cue) {
            let before = range.lowerBound == text.startIndex ? nil : text[text.index(before: range.lowerBound)]
            let boundaryBefore = before.map { !$0.isLetter } ?? true
            // Simple inflections may follow ("plans", "planned", "explaining"), other letters not ("planet").
            let suffix = String(text[range.upperBound...].prefix(while: \.isLetter))
            let boundaryAfter = ["", "s", "es", "d", "ed", "ing", "ned", "ning", "ly"].contains(suffix)
            if boundaryBefore && boundaryAfter { return true }
            searchStart = range.upperBound
        }
        return false
    }
}
