/// One remembered message of a conversation: who said it and what, with its place in the session.
public struct ChatMemoryTurn: Sendable, Equatable {
    /// The turn's number in its session, from 1; increasing, never reused.
    public var seq: Int
    /// `user` or `assistant`.
    public var role: String
    /// What was said.
    public var text: String

    /// A turn as stored.
    public init(seq: Int, role: String, text: String) {
        self.seq = seq
        self.role = role
        self.text = text
    }
}

/// What a chat turn's prompt is made of, and when older turns are folded into the summary.
///
/// The prompt of a turn is the system prompt and the session's running summary (one system
/// message), then as many of the most recent unsummarized turns as fit the token budget, then
/// the new message. When the unsummarized turns do not all fit, the oldest ones are *folded*:
/// summarized together with the current summary into a new one, so that the turns kept fill at
/// most half of the room left for history. The half is hysteresis: folding again on every turn
/// once a conversation is long would cost a summarization per message.
///
/// Tokens are estimated as the rest of Chimera does (about 4 bytes of UTF-8 a token) plus a few
/// for each message's framing. Pure and deterministic.
///
/// ```swift
/// let plan = ChatMemory.plan(system: "Be brief.", summary: "", turns: turns, message: "And then?", budget: 4096)
/// if !plan.fold.isEmpty { /* summarize ChatMemory.foldText(summary:turns:) */ }
/// ```
public enum ChatMemory {
    /// Tokens counted for each message's role and framing.
    public static let messageOverhead = 4

    /// About how many tokens `text` takes as one message.
    public static func estimateTokens(_ text: String) -> Int { text.utf8.count / 4 + messageOverhead }

    /// Which turns go into the prompt and which are folded into the summary.
    public struct Plan: Sendable, Equatable {
        /// The turns sent with the message, oldest first.
        public var included: [ChatMemoryTurn]
        /// The oldest turns, to fold into the summary before answering (empty: nothing to fold).
        public var fold: [ChatMemoryTurn]
        /// The estimated tokens of the prompt as planned (with the current summary).
        public var promptTokens: Int
    }

    /// The system message of a turn: the system prompt, then the summary of earlier turns.
    public static func systemMessage(system: String?, summary: String) -> String? {
        let parts = [system ?? "", summary.isEmpty ? "" : "Summary of the earlier conversation: " + summary].filter { !$0.isEmpty }
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    /// Plans the prompt of the turn answering `message`.
    ///
    /// - Parameters:
    ///   - turns: the unsummarized turns, oldest first.
    ///   - budget: the tokens the whole prompt may take.
    /// - Complexity: O(n) in the number of turns.
    public static func plan(system: String?, summary: String, turns: [ChatMemoryTurn], message: String, budget: Int) -> Plan {
        let fixed = (systemMessage(system: system, summary: summary).map(estimateTokens) ?? 0) + estimateTokens(message)
        let room = max(0, budget - fixed)
        let all = newest(turns, within: room)
        if all.count == turns.count {
            return Plan(included: turns, fold: [], promptTokens: fixed + used(all))
        }
        var kept = newest(turns, within: room / 2)
        // A kept history starts with the user's message: an answer without its question misleads.
        while let first = kept.first, first.role != "user" { kept.removeFirst() }
        let fold = Array(turns.prefix(turns.count - kept.count))
        return Plan(included: kept, fold: fold, promptTokens: fixed + used(kept))
    }

    /// The newest turns whose tokens sum to at most `room`, oldest first.
    public static func newest(_ turns: [ChatMemoryTurn], within room: Int) -> [ChatMemoryTurn] {
        var total = 0
        var count = 0
        for turn in turns.reversed() {
            total += estimateTokens(turn.text)
            guard total <= room else { break }
            count += 1
        }
        return Array(turns.suffix(count))
    }

    private static func used(_ turns: [ChatMemoryTurn]) -> Int { turns.reduce(0) { $0 + estimateTokens($1.text) } }

    /// The text the summarizer reads: the current summary, then each folded turn as a sentence
    /// naming its speaker (`User: …`, `Assistant: …`), each ending in punctuation so that the
    /// extractive summarizer splits them apart.
    public static func foldText(summary: String, turns: [ChatMemoryTurn]) -> String {
        var lines: [String] = []
        if !summary.isEmpty { lines.append(terminated(summary)) }
        for turn in turns {
            let text = turn.text.split(whereSeparator: \.isNewline).joined(separator: " ")
            guard text.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            lines.append((turn.role == "user" ? "User: " : "Assistant: ") + terminated(text))
        }
        return lines.joined(separator: "\n")
    }

    /// `text` cut at a word boundary to about `tokens` tokens, with `…` when cut.
    public static func clip(_ text: String, tokens: Int) -> String {
        let limit = max(0, tokens) * 4
        guard text.utf8.count > limit else { return text }
        var result = ""
        var bytes = 0
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            let cost = word.utf8.count + (result.isEmpty ? 0 : 1)
            guard bytes + cost + 3 <= limit else { break }
            result += (result.isEmpty ? "" : " ") + word
            bytes += cost
        }
        return result + "…"
    }

    private static func terminated(_ text: String) -> String {
        var trimmed = Substring(text)
        while let last = trimmed.last, last.isWhitespace { trimmed.removeLast() }
        while let first = trimmed.first, first.isWhitespace { trimmed.removeFirst() }
        guard let last = trimmed.last else { return "" }
        return ".!?".contains(last) ? String(trimmed) : trimmed + "."
    }
}
