import ChimeraCore
import ChimeraRuntime
import Foundation

/// `acme.wordfreq`: the most frequent words of a text or a file — an async handler.
///
/// Input: a string, or `{"text": "..."}` or `{"path": "notes.txt"}` (relative to the worker's
/// working directory, the config file's folder), with `top` (1–100, default 10) and
/// `delay_ms` (0–600000, default 0: wait first, standing in for a slow source such as a
/// download; the wait is cancelled with the task).
/// Output: `{"output": "the: 3\ncat: 2", "words": [{"word": "the", "count": 3}, ...], "total": 9}`.
///
/// What it shows: awaiting without blocking the worker (heartbeats are answered meanwhile),
/// cancellation (`Task.sleep` throws when the coordinator cancels; long loops check), and
/// errors — bad options throw `TaskFailure(.invalidInput, …)`, while a file that cannot be read
/// throws Foundation's own error, which the caller sees as `handler_error`.
struct WordFrequency: ChimeraHandler {
    let name = "acme.wordfreq"
    let kinds = ["wordfreq"]
    let capability = 0.8
    let docs = "Most frequent words. Input: a string or {text | path, top?, delay_ms?}. Output: {output, words, total}."

    func handle(_ request: HandlerRequest) async throws -> JSONValue {
        let input = try request.inputValue()
        let top = try Self.option(input, "top", 1...100) ?? 10
        let delayMs = try Self.option(input, "delay_ms", 0...600_000) ?? 0
        if delayMs > 0 {
            do {
                try await Task.sleep(for: .milliseconds(delayMs))
            } catch {
                // stderr is the worker's log: the coordinator shows it tagged with the worker's name.
                FileHandle.standardError.write(Data("acme.wordfreq: task \(request.taskID) cancelled while waiting\n".utf8))
                throw error
            }
        }
        let text: String
        if case .string(let path)? = input["path"] {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } else {
            text = try request.inputText()
        }
        var counts: [String: Int] = [:]
        var total = 0
        for word in text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "'") }) {
            counts[String(word), default: 0] += 1
            total += 1
            // Long texts: give the thread back now and then, and stop when cancelled.
            if total % 10_000 == 0 {
                try Task.checkCancellation()
                await Task.yield()
            }
        }
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(top)
        return .object([
            JSONMember("output", .string(ranked.map { "\($0.key): \($0.value)" }.joined(separator: "\n"))),
            JSONMember("words", .array(ranked.map {
                .object([JSONMember("word", .string($0.key)), JSONMember("count", .number(Double($0.value)))])
            })),
            JSONMember("total", .number(Double(total))),
        ])
    }

    /// The optional whole-number option `key` in `range`.
    static func option(_ input: JSONValue, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value = input[key], value != .null else { return nil }
        guard let n = value.numberValue, n == n.rounded(), range.contains(Int(exactly: n) ?? -1) else {
            throw TaskFailure(.invalidInput, "\"\(key)\": expected a whole number from \(range.lowerBound) to \(range.upperBound), found \(value.serialized)")
        }
        return Int(n)
    }
}
