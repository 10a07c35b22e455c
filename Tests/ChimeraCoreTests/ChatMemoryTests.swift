import ChimeraCore
import Testing

/// Which turns a chat message is sent with, when older ones are folded, and how chat lines parse.
@Suite struct ChatMemoryTests {
    /// `n` exchanges of about `bytes` bytes per turn.
    func turns(_ n: Int, bytes: Int = 40) -> [ChatMemoryTurn] {
        (0..<(2 * n)).map { i in
            ChatMemoryTurn(seq: i + 1, role: i.isMultiple(of: 2) ? "user" : "assistant",
                           text: "turn \(i + 1) " + String(repeating: "x", count: max(0, bytes - 8)))
        }
    }

    @Test func everythingFits_nothingIsFolded() {
        let history = turns(3)
        let plan = ChatMemory.plan(system: "Be brief.", summary: "", turns: history, message: "Next?", budget: 4096)
        #expect(plan.included == history)
        #expect(plan.fold.isEmpty)
        let expected = ChatMemory.estimateTokens("Be brief.") + ChatMemory.estimateTokens("Next?")
            + history.reduce(0) { $0 + ChatMemory.estimateTokens($1.text) }
        #expect(plan.promptTokens == expected)
    }

    @Test func overflow_foldsTheOldest_andKeepsAtMostHalfTheRoom_startingWithAQuestion() {
        let history = turns(10, bytes: 80)  // 20 turns of 24 tokens each
        let budget = 300
        let plan = ChatMemory.plan(system: nil, summary: "", turns: history, message: "Now?", budget: budget)
        #expect(!plan.fold.isEmpty)
        #expect(plan.fold + plan.included == history, "the fold is the oldest part, the kept turns the newest, nothing lost between")
        let room = budget - ChatMemory.estimateTokens("Now?")
        let kept = plan.included.reduce(0) { $0 + ChatMemory.estimateTokens($1.text) }
        #expect(kept <= room / 2)
        #expect(plan.included.first?.role == "user")
        #expect(plan.promptTokens <= budget)
    }

    @Test func aMessageBiggerThanTheBudget_isSentWithoutHistory() {
        let plan = ChatMemory.plan(system: "s", summary: "", turns: turns(2), message: String(repeating: "y", count: 4000), budget: 100)
        #expect(plan.included.isEmpty)
        #expect(plan.fold.count == 4)
    }

    @Test func theSystemMessage_carriesTheSummary() {
        #expect(ChatMemory.systemMessage(system: nil, summary: "") == nil)
        #expect(ChatMemory.systemMessage(system: "Be brief.", summary: "") == "Be brief.")
        #expect(ChatMemory.systemMessage(system: "Be brief.", summary: "They met.") == "Be brief.\n\nSummary of the earlier conversation: They met.")
    }

    @Test func foldText_namesSpeakers_andEndsEverySentence() {
        let text = ChatMemory.foldText(summary: "Earlier they said hello", turns: [
            ChatMemoryTurn(seq: 1, role: "user", text: "What is tea\nmade of"),
            ChatMemoryTurn(seq: 2, role: "assistant", text: "Leaves."),
            ChatMemoryTurn(seq: 3, role: "user", text: "  ...  "),
        ])
        #expect(text == "Earlier they said hello.\nUser: What is tea made of.\nAssistant: Leaves.")
    }

    @Test func clip_cutsAtAWord_withAnEllipsis() {
        #expect(ChatMemory.clip("short", tokens: 10) == "short")
        let clipped = ChatMemory.clip("alpha beta gamma delta epsilon zeta eta theta", tokens: 5)
        #expect(clipped == "alpha beta gamma…")
        #expect(clipped.utf8.count <= 5 * 4 + 3)
    }

    @Test func chatLines_parseAsMessagesCommandsOrClearErrors() {
        #expect(ChatLine.parse("  hello  ") == .message("hello"))
        #expect(ChatLine.parse("//etc/hosts is a file") == .message("/etc/hosts is a file"))
        #expect(ChatLine.parse("/route internal") == .command(.route(.internal)))
        #expect(ChatLine.parse("/route") == .command(.route(nil)))
        #expect(ChatLine.parse("/model a/b:free, c/d") == .command(.model(["a/b:free", "c/d"])))
        #expect(ChatLine.parse("/model auto") == .command(.model([])))
        #expect(ChatLine.parse("/agent reasoning") == .command(.agent("reasoning")))
        #expect(ChatLine.parse("/history") == .command(.history(ChatSlashCommand.defaultHistory)))
        #expect(ChatLine.parse("/history 3") == .command(.history(3)))
        #expect(ChatLine.parse("/EXIT") == .command(.exit))
        #expect(ChatLine.parse("/route sideways") == .invalid("/route takes auto, internal or external, found \"sideways\""))
        #expect(ChatLine.parse("/history -2") == .invalid("/history takes a positive number of exchanges, found \"-2\""))
        #expect(ChatLine.parse("/stats now") == .invalid("/stats takes no argument"))
        #expect(ChatLine.parse("/stast") == .invalid(
            "unknown command /stast (did you mean /stats?); commands: /agent NAME, /route auto|internal|external, /model ID[,ID…]|auto, /stats, /history [N], /new, /help, /exit"))
    }
}
