import ChimeraCore
import ChimeraRuntime
import Foundation

/// `acme.slugify`: text to a URL slug — `"Crème Brûlée: 10 Tips!"` → `"creme-brulee-10-tips"`.
///
/// Input: a string, or `{"text": "...", "separator": "-", "max_length": 80}`.
/// Output: the slug (a JSON string).
/// Errors: no letters or digits → `invalid_input`; text over 10,000 characters → `too_long`,
/// a failure kind of this handler's own (any `TaskFailureKind` reaches the caller as is).
struct Slugify: ChimeraHandler {
    let name = "acme.slugify"
    let kinds = ["slugify"]
    let capability = 0.9
    let docs = "Text to a URL slug. Input: a string or {text, separator?, max_length?}. Output: the slug."

    static let tooLong = TaskFailureKind(rawValue: "too_long")
    static let maxInput = 10_000

    func handle(_ request: HandlerRequest) async throws -> JSONValue {
        let text = try request.inputText()  // A string or {"text": ...}; else invalid_input.
        let input = try request.inputValue()
        let separator = input["separator"]?.stringValue ?? "-"
        let maxLength = input["max_length"]?.numberValue.map { Int($0) } ?? 80
        guard text.count <= Self.maxInput else {
            throw TaskFailure(Self.tooLong, "\"text\" has \(text.count) characters; acme.slugify takes at most \(Self.maxInput)")
        }
        let slug = Self.slug(text, separator: separator, maxLength: max(1, maxLength))
        guard !slug.isEmpty else {
            throw TaskFailure(.invalidInput, "\"text\": nothing to slugify (no letters or digits)")
        }
        return .string(slug)
    }

    /// Lowercased ASCII letters and digits; accents dropped (é → e); every other run of
    /// characters becomes one `separator`; cut at a separator to at most `maxLength` characters.
    static func slug(_ text: String, separator: String, maxLength: Int) -> String {
        var words: [String] = []
        var word = ""
        // Canonical decomposition splits "é" into "e" and a combining accent, which is dropped.
        for scalar in text.decomposedStringWithCanonicalMapping.unicodeScalars {
            if scalar.properties.generalCategory == .nonspacingMark { continue }
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                word.unicodeScalars.append(contentsOf: String(scalar).lowercased().unicodeScalars)
            } else if !word.isEmpty {
                words.append(word)
                word = ""
            }
        }
        if !word.isEmpty { words.append(word) }
        var slug = ""
        for w in words {
            let next = slug.isEmpty ? w : slug + separator + w
            if next.count > maxLength { return slug.isEmpty ? String(w.prefix(maxLength)) : slug }
            slug = next
        }
        return slug
    }
}
