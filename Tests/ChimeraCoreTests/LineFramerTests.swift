import Testing
@testable import ChimeraCore

/// A framing event copied out of the callback (the framer's buffers are only valid inside it).
enum Framed: Equatable, CustomStringConvertible {
    case line([UInt8])
    case tooLong(prefix: [UInt8], cap: Int)

    var isTooLong: Bool { if case .tooLong = self { return true } else { return false } }

    var description: String {
        switch self {
        case .line(let bytes): return "line(\(String(decoding: bytes, as: UTF8.self).debugDescription))"
        case .tooLong(let prefix, let cap): return "tooLong(prefix: \(String(decoding: prefix, as: UTF8.self).debugDescription), cap: \(cap))"
        }
    }
}

/// What the reference model predicts for one line: the bytes of an accepted line, or a refusal.
enum Expected: Equatable, CustomStringConvertible {
    case line([UInt8])
    case tooLong

    var description: String {
        switch self {
        case .line(let bytes): return "line(\(String(decoding: bytes, as: UTF8.self).debugDescription))"
        case .tooLong: return "tooLong"
        }
    }
}

/// Feeds `chunk` to `framer` and returns the events it produced, copied.
func feed(_ framer: inout LineFramer, _ chunk: [UInt8]) -> [Framed] {
    var events: [Framed] = []
    chunk.withUnsafeBytes { raw in
        framer.append(raw) { event in
            switch event {
            case .line(let line): events.append(.line(Array(line)))
            case .tooLong(let prefix, let cap): events.append(.tooLong(prefix: prefix, cap: cap))
            }
        }
    }
    return events
}

/// Feeds `input` in pieces of the given sizes (the last piece takes whatever is left).
func feed(_ framer: inout LineFramer, _ input: [UInt8], chunkSizes: [Int]) -> [Framed] {
    var events: [Framed] = []
    var start = 0
    var sizes = chunkSizes.makeIterator()
    while start < input.count {
        let size = sizes.next() ?? input.count
        let end = min(input.count, start + size)
        events += feed(&framer, Array(input[start..<end]))
        start = end
    }
    return events
}

/// The specification, computed on the whole input at once: split on `\n`, strip one trailing `\r`,
/// refuse lines longer than `cap`; the unterminated tail stays buffered unless it already exceeds
/// `cap + 1` bytes (one byte of room for a `\r`), in which case it is refused immediately.
func referenceFrame(_ input: [UInt8], cap: Int) -> (events: [Expected], tail: [UInt8]) {
    var pieces = input.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
    let tail = pieces.removeLast()
    var events: [Expected] = pieces.map { raw in
        let line = raw.last == 0x0D ? Array(raw.dropLast()) : raw
        return line.count > cap ? .tooLong : .line(line)
    }
    if tail.count > cap + 1 {
        events.append(.tooLong)
        return (events, [])
    }
    return (events, tail)
}

/// Random lines: varied lengths (some around `cap`), random bytes other than `\n` (with the odd
/// `\r` inside a line), LF or CRLF endings, and sometimes a last line with no terminator.
func randomFramerInput(_ rng: inout SplitMix64, maxLength: Int) -> [UInt8] {
    var input: [UInt8] = []
    let lineCount = rng.int(in: 0...24)
    for _ in 0..<lineCount {
        let length = rng.chance(1, in: 5) ? 0 : rng.int(in: 0...maxLength)
        for _ in 0..<length {
            if rng.chance(1, in: 30) {
                input.append(0x0D)
            } else {
                var byte = UInt8(truncatingIfNeeded: rng.next())
                if byte == 0x0A { byte = UInt8(ascii: "x") }
                input.append(byte)
            }
        }
        if rng.chance(1, in: 3) { input.append(0x0D) }
        input.append(0x0A)
    }
    if rng.chance(1, in: 2) {
        // An unterminated last line, possibly empty, possibly ending in a lone `\r`.
        let length = rng.int(in: 0...maxLength)
        for _ in 0..<length { input.append(UInt8(ascii: "a") + UInt8(rng.int(in: 0...25))) }
        if rng.chance(1, in: 4) { input.append(0x0D) }
    }
    return input
}

/// Chunk sizes from 1 up to a per-run maximum, sometimes all single bytes.
func randomChunkSizes(_ rng: inout SplitMix64, total: Int) -> [Int] {
    let maxChunk = rng.pick([1, 1, 2, 3, 5, 8, 17, 64, max(1, total)])
    var sizes: [Int] = []
    var covered = 0
    while covered < total {
        let size = rng.int(in: 1...maxChunk)
        sizes.append(size)
        covered += size
    }
    return sizes
}

/// Checks a `.tooLong` prefix: the first bytes of the refused line, at most 64 of them.
func prefixIsPlausible(_ prefix: [UInt8], of line: [UInt8]) -> Bool {
    !prefix.isEmpty && prefix.count <= 64 && line.starts(with: prefix)
}

@Suite struct LineFramerTests {
    // MARK: Differential tests against splitting the whole input

    @Test func framer_randomChunkBoundaries_matchSplittingWholeInput() {
        for seed in UInt64(1)...200 {
            var rng = SplitMix64(seed: seed)
            let input = randomFramerInput(&rng, maxLength: 40)
            let sizes = randomChunkSizes(&rng, total: input.count)
            var framer = LineFramer(maxLineBytes: 4_096)
            let events = feed(&framer, input, chunkSizes: sizes)
            let (expected, tail) = referenceFrame(input, cap: 4_096)

            let lines = events.map { event -> Expected in
                if case .line(let bytes) = event { return .line(bytes) } else { return .tooLong }
            }
            #expect(lines == expected, "seed \(seed), chunk sizes \(sizes)")
            #expect(framer.bufferedByteCount == tail.count, "seed \(seed)")
            #expect(framer.bufferedBytes == tail, "seed \(seed)")
        }
    }

    @Test func framer_randomChunkBoundariesWithSmallCap_matchReferenceIncludingTooLong() {
        for seed in UInt64(1_000)...1_199 {
            var rng = SplitMix64(seed: seed)
            let cap = rng.int(in: 1...12)
            let input = randomFramerInput(&rng, maxLength: 2 * cap + 3)
            let sizes = randomChunkSizes(&rng, total: input.count)
            var framer = LineFramer(maxLineBytes: cap)
            let events = feed(&framer, input, chunkSizes: sizes)
            let (expected, tail) = referenceFrame(input, cap: cap)

            let kinds = events.map { event -> Expected in
                if case .line(let bytes) = event { return .line(bytes) } else { return .tooLong }
            }
            #expect(kinds == expected, "seed \(seed), cap \(cap), chunk sizes \(sizes)")
            #expect(framer.bufferedBytes == tail, "seed \(seed), cap \(cap)")
            for event in events {
                if case .tooLong(let prefix, let reportedCap) = event {
                    #expect(reportedCap == cap, "seed \(seed)")
                    #expect(!prefix.isEmpty && prefix.count <= 64, "seed \(seed)")
                }
            }
        }
    }

    @Test func framer_unterminatedTail_isEmittedOnceItsNewlineArrives() {
        for seed in UInt64(5_000)...5_099 {
            var rng = SplitMix64(seed: seed)
            let input = randomFramerInput(&rng, maxLength: 30)
            var framer = LineFramer(maxLineBytes: 4_096)
            _ = feed(&framer, input, chunkSizes: randomChunkSizes(&rng, total: input.count))
            let tail = framer.bufferedBytes
            let completion = feed(&framer, [0x0A])
            let (expected, _) = referenceFrame(tail + [0x0A], cap: 4_096)
            #expect(completion.map { event -> Expected in
                if case .line(let bytes) = event { return .line(bytes) } else { return .tooLong }
            } == expected, "seed \(seed)")
            #expect(framer.bufferedByteCount == 0, "seed \(seed)")
        }
    }

    @Test func framer_sameInputEveryChunkSize_givesIdenticalEvents() {
        let input = Array("alpha\r\n\nbeta\ngamma-is-long\r\n\r\nx".utf8)
        var whole = LineFramer(maxLineBytes: 8)
        let reference = feed(&whole, input)
        #expect(reference.count == 5)
        for size in 1...input.count {
            var framer = LineFramer(maxLineBytes: 8)
            let events = feed(&framer, input, chunkSizes: Array(repeating: size, count: input.count))
            #expect(events.map { $0.isTooLong } == reference.map { $0.isTooLong }, "chunk size \(size)")
            #expect(events.filter { !$0.isTooLong } == reference.filter { !$0.isTooLong }, "chunk size \(size)")
            #expect(framer.bufferedBytes == Array("x".utf8), "chunk size \(size)")
        }
    }

    // MARK: Line endings and buffering

    @Test func framer_crlfAndLfLines_areStrippedOfTerminators() {
        var framer = LineFramer(maxLineBytes: 100)
        let events = feed(&framer, Array("a\r\nb\n\r\n\n c \r\n".utf8))
        #expect(events == [.line(Array("a".utf8)), .line(Array("b".utf8)), .line([]), .line([]), .line(Array(" c ".utf8))])
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func framer_onlyOneTrailingCarriageReturn_isStripped() {
        var framer = LineFramer(maxLineBytes: 100)
        let events = feed(&framer, Array("a\r\r\nb\rc\n".utf8))
        #expect(events == [.line(Array("a\r".utf8)), .line(Array("b\rc".utf8))])
    }

    @Test func framer_crlfSplitBetweenCarriageReturnAndNewline_isStillStripped() {
        var framer = LineFramer(maxLineBytes: 100)
        #expect(feed(&framer, Array("hello\r".utf8)).isEmpty)
        #expect(framer.bufferedBytes == Array("hello\r".utf8))
        #expect(feed(&framer, Array("\nnext".utf8)) == [.line(Array("hello".utf8))])
        #expect(framer.bufferedBytes == Array("next".utf8))
    }

    @Test func framer_emptyChunk_changesNothing() {
        var framer = LineFramer(maxLineBytes: 10)
        _ = feed(&framer, Array("abc".utf8))
        #expect(feed(&framer, []).isEmpty)
        #expect(framer.bufferedBytes == Array("abc".utf8))
        #expect(feed(&framer, Array("\n".utf8)) == [.line(Array("abc".utf8))])
    }

    @Test func framer_chunkWithoutNewline_isBufferedUntilTheNewline() {
        var framer = LineFramer(maxLineBytes: 100)
        #expect(feed(&framer, Array("{\"a\":".utf8)).isEmpty)
        #expect(feed(&framer, Array("1}".utf8)).isEmpty)
        #expect(framer.bufferedByteCount == 7)
        #expect(feed(&framer, Array("\n{}\n{".utf8)) == [.line(Array("{\"a\":1}".utf8)), .line(Array("{}".utf8))])
        #expect(framer.bufferedBytes == Array("{".utf8))
    }

    // MARK: The length cap

    @Test(arguments: [1, 5, 64])
    func framer_lineExactlyAtCap_isAccepted(cap: Int) {
        let line = Array(repeating: UInt8(ascii: "z"), count: cap)
        for ending in [[UInt8(0x0A)], [0x0D, 0x0A]] {
            var whole = LineFramer(maxLineBytes: cap)
            #expect(feed(&whole, line + ending) == [.line(line)])
            var bytewise = LineFramer(maxLineBytes: cap)
            #expect(feed(&bytewise, line + ending, chunkSizes: Array(repeating: 1, count: cap + 2)) == [.line(line)])
            #expect(bytewise.bufferedByteCount == 0)
        }
    }

    @Test(arguments: [1, 5, 64])
    func framer_lineOneByteOverCap_isRefused(cap: Int) {
        let line = Array(repeating: UInt8(ascii: "z"), count: cap + 1)
        for ending in [[UInt8(0x0A)], [0x0D, 0x0A]] {
            for chunk in [1, 2, cap + 3] {
                var framer = LineFramer(maxLineBytes: cap)
                let events = feed(&framer, line + ending + Array("k\n".utf8), chunkSizes: Array(repeating: chunk, count: cap + 6))
                #expect(events.count == 2, "chunk \(chunk), ending \(ending)")
                #expect(events.first?.isTooLong == true, "chunk \(chunk), ending \(ending)")
                #expect(events.last == .line(Array("k".utf8)), "chunk \(chunk), ending \(ending)")
            }
        }
    }

    @Test func framer_overLongLineInOneChunk_reportsOnceAndResumesAtNextLine() {
        var framer = LineFramer(maxLineBytes: 8)
        let long = Array(repeating: UInt8(ascii: "x"), count: 100)
        let events = feed(&framer, Array("short\n".utf8) + long + Array("\nnext\n".utf8))
        #expect(events == [
            .line(Array("short".utf8)),
            .tooLong(prefix: Array(long.prefix(64)), cap: 8),
            .line(Array("next".utf8)),
        ])
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func framer_overLongLineSplitAcrossChunks_reportsOnceDiscardsAndResumes() {
        var framer = LineFramer(maxLineBytes: 8)
        var events: [Framed] = []
        events += feed(&framer, Array("ok\nabc".utf8))
        #expect(framer.bufferedByteCount == 3)
        events += feed(&framer, Array("defghijklmnop".utf8))   // 16 bytes: over the cap, not buffered
        #expect(framer.bufferedByteCount == 0)
        events += feed(&framer, Array("qrstuvwxyz".utf8))      // still the same line: discarded silently
        #expect(framer.bufferedByteCount == 0)
        events += feed(&framer, Array("0123\nnext".utf8))
        #expect(framer.bufferedBytes == Array("next".utf8))
        events += feed(&framer, Array("\n".utf8))

        #expect(events.count == 3)
        #expect(events.first == .line(Array("ok".utf8)))
        #expect(events.last == .line(Array("next".utf8)))
        guard case .tooLong(let prefix, let cap) = events[1] else {
            Issue.record("expected .tooLong, got \(events[1])")
            return
        }
        #expect(cap == 8)
        #expect(prefix == Array("abcdefghijklmnop".utf8))
    }

    @Test func framer_overLongLineAsSingleBytes_reportsOnceAndResumes() {
        let long = Array(repeating: UInt8(ascii: "L"), count: 50)
        let input = Array("a\n".utf8) + long + Array("\r\nb\r\n".utf8)
        var framer = LineFramer(maxLineBytes: 10)
        let events = feed(&framer, input, chunkSizes: Array(repeating: 1, count: input.count))
        #expect(events.count == 3)
        #expect(events.first == .line(Array("a".utf8)))
        #expect(events.last == .line(Array("b".utf8)))
        if case .tooLong(let prefix, let cap) = events[1] {
            #expect(cap == 10)
            #expect(prefixIsPlausible(prefix, of: long))
        } else {
            Issue.record("expected .tooLong, got \(events[1])")
        }
    }

    @Test func framer_overLongLineCompletedByChunkWithNewline_reportsOnceAndKeepsFollowingLines() {
        // The long line starts buffered, then the rest and its newline arrive in one chunk along
        // with complete lines after it.
        var framer = LineFramer(maxLineBytes: 6)
        var events = feed(&framer, Array("abcd".utf8))
        events += feed(&framer, Array("efghij\nk\nl\n".utf8))
        #expect(events.count == 3)
        if case .tooLong(let prefix, let cap) = events.first {
            #expect(cap == 6)
            #expect(prefixIsPlausible(prefix, of: Array("abcdefghij".utf8)))
        } else {
            Issue.record("expected .tooLong first, got \(events)")
        }
        #expect(Array(events.dropFirst()) == [.line(Array("k".utf8)), .line(Array("l".utf8))])
    }

    @Test func framer_tailOfCapPlusOneBytes_staysBufferedForAPossibleCarriageReturn() {
        var framer = LineFramer(maxLineBytes: 4)
        #expect(feed(&framer, Array("abcd\r".utf8)).isEmpty)
        #expect(framer.bufferedByteCount == 5)
        #expect(feed(&framer, Array("\n".utf8)) == [.line(Array("abcd".utf8))])

        #expect(feed(&framer, Array("abcde".utf8)).isEmpty)
        let events = feed(&framer, Array("\n".utf8))
        #expect(events.count == 1 && events[0].isTooLong)
    }

    @Test func framer_tooLongPrefix_isCappedAt64Bytes() {
        var framer = LineFramer(maxLineBytes: 100)
        let long = (0..<500).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let events = feed(&framer, long + [0x0A])
        #expect(events == [.tooLong(prefix: Array(long.prefix(64)), cap: 100)])

        var split = LineFramer(maxLineBytes: 100)
        let splitEvents = feed(&split, long + [0x0A], chunkSizes: [70, 70, 1_000])
        #expect(splitEvents == [.tooLong(prefix: Array(long.prefix(64)), cap: 100)])
    }

    @Test func framer_tooLongPrefix_isFilledFromTheChunkThatCompletesTheLine() {
        // The tail path fills the prefix up to 64 bytes from the new chunk; the path where the
        // newline arrives in the same chunk keeps only what was buffered before.
        var framer = LineFramer(maxLineBytes: 100)
        let long = (0..<300).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let events = feed(&framer, long + [0x0A], chunkSizes: [2, 1_000])
        #expect(events.count == 1)
        #expect(events.first == .tooLong(prefix: Array(long.prefix(64)), cap: 100))
    }
}
