/// Fault-injection directives, written in the last user message as `[[sim:NAME]]` or
/// `[[sim:NAME=VALUE]]` (several may be given, in separate brackets or comma-separated in one).
/// They are stripped from the text the simulator echoes and counts.
///
/// | directive | effect |
/// |---|---|
/// | `status=N` | every attempt fails with HTTP N (400…599) and OpenRouter's body for it; 429 is upstream-style, with `Retry-After` |
/// | `retry-after=S` | the `Retry-After` seconds of an injected 429/503 (default 1) |
/// | `midstream-error` | stream: 2 content chunks, then an error chunk (`error.code` 502, `finish_reason` "error"), no `[DONE]`; JSON: as `choice-error` |
/// | `error-first` | stream: a 200 whose only frame is an error chunk with empty `choices`; JSON: as `200-error` |
/// | `200-error` | a 200 JSON body that is only `{"error":…,"user_id":…}`; stream: as `error-first` |
/// | `choice-error` | 200 with a choice whose `finish_reason` is "error" and which carries `error` (partial content kept) |
/// | `empty-choices` | 200 with `choices: []` (stream: no content chunks, only the usage chunk and `[DONE]`) |
/// | `drop` | the connection closes mid-response: streams after 2 content chunks, JSON halfway through the body |
/// | `drop-before` | the connection closes before any response byte |
/// | `latency=MS` | this request's latency instead of the configured one |
/// | `hang` | headers (and keep-alive comments) are sent, then nothing until the client gives up |
/// | `reply=TEXT` | the reply is TEXT (no `,` or `]]` in it) instead of the echo |
/// | `replies=A\|B\|C` | successive requests with the same prompt are answered A, B, C, A… in turn (as sampling varies answers); the multiset of n answers is the same whatever order concurrent requests arrive in |
/// | `verdict=A` | the reply is a pairwise judge's verdict, `Verdict: [[A]]` (A, B or C) |
/// | `echo-messages` | the reply is every message of the request as `role: text`, joined by ` | ` (to check what a caller sent) |
/// | `no-cost` | usage without `cost` and `cost_details` (as from a server without usage accounting); the call is billed as usual |
struct Directives: Equatable {
    var status: Int?
    var retryAfter = 1
    var midstreamError = false
    var errorFirst = false
    var errorBody200 = false
    var choiceError = false
    var emptyChoices = false
    var drop = false
    var dropBefore = false
    var latencyMs: Int?
    var hang = false
    var noCost = false
    var echoMessages = false
    var reply: String?
    var replies: [String]?

    /// Any directive that injects a failure (as opposed to timing).
    var hasInBandFault: Bool { midstreamError || errorFirst || errorBody200 || choiceError || emptyChoices || drop || dropBefore || hang }

    struct Invalid: Error {
        var directive: String
        var reason: String
    }

    /// Parses and strips every `[[sim:…]]` in `text`.
    static func extract(from text: String) throws(Invalid) -> (directives: Directives, text: String) {
        var directives = Directives()
        var remaining = Substring(text)
        var output = ""
        while let open = remaining.firstRange(of: "[[sim:") {
            guard let close = remaining[open.upperBound...].firstRange(of: "]]") else { break }
            output += remaining[..<open.lowerBound]
            let body = remaining[open.upperBound..<close.lowerBound]
            for item in body.split(separator: ",") {
                try directives.apply(item.trimmingSpaces)
            }
            remaining = remaining[close.upperBound...]
        }
        output += remaining
        return (directives, output)
    }

    private mutating func apply(_ item: String) throws(Invalid) {
        let parts = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
        let name = parts.first ?? ""
        let value = parts.count == 2 ? parts[1] : nil
        func number(_ range: ClosedRange<Int>) throws(Invalid) -> Int {
            guard let value, let n = Int(value), range.contains(n) else {
                throw Invalid(directive: item, reason: "\(name) needs an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return n
        }
        func flag() throws(Invalid) {
            if value != nil { throw Invalid(directive: item, reason: "\(name) takes no value") }
        }
        switch name {
        case "status": status = try number(400...599)
        case "retry-after": retryAfter = try number(0...86_400)
        case "latency": latencyMs = try number(0...3_600_000)
        case "midstream-error": try flag(); midstreamError = true
        case "error-first": try flag(); errorFirst = true
        case "200-error": try flag(); errorBody200 = true
        case "choice-error": try flag(); choiceError = true
        case "empty-choices": try flag(); emptyChoices = true
        case "drop": try flag(); drop = true
        case "drop-before": try flag(); dropBefore = true
        case "hang": try flag(); hang = true
        case "no-cost": try flag(); noCost = true
        case "echo-messages": try flag(); echoMessages = true
        case "verdict":
            guard let value, ["A", "B", "C"].contains(value) else { throw Invalid(directive: item, reason: "verdict needs A, B or C") }
            reply = "Verdict: [[\(value)]]"
        case "replies":
            let texts = value?.split(separator: "|", omittingEmptySubsequences: false).map(String.init) ?? []
            guard !texts.isEmpty, !texts.contains(where: \.isEmpty) else { throw Invalid(directive: item, reason: "replies needs texts separated by |: replies=A|B|C") }
            replies = texts
        case "reply":
            guard let value, !value.isEmpty else { throw Invalid(directive: item, reason: "reply needs the text: reply=TEXT") }
            reply = value
        default:
            throw Invalid(directive: item, reason: "unknown directive; known: status=N, retry-after=S, midstream-error, error-first, 200-error, choice-error, empty-choices, drop, drop-before, latency=MS, hang, no-cost, echo-messages, reply=TEXT, replies=A|B|C, verdict=A|B|C")
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and newlines.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
