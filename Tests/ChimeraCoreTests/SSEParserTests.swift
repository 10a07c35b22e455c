import Testing
@testable import ChimeraCore

/// Parses a whole stream (bytes) in one feed, then finishes it.
private func parseSSE(_ bytes: [UInt8]) -> [SSEItem] {
    var parser = SSEParser()
    return parser.feed(bytes) + parser.finish()
}

private func parseSSE(_ text: String) -> [SSEItem] { parseSSE(Array(text.utf8)) }

/// Feeds the stream in the given chunks, then finishes it.
private func parseSSE(chunks: [[UInt8]]) -> [SSEItem] {
    var parser = SSEParser()
    var items: [SSEItem] = []
    for chunk in chunks { items += parser.feed(chunk) }
    return items + parser.finish()
}

private func event(_ data: String, type: String? = nil, id: String? = nil, retry: Int? = nil) -> SSEItem {
    .event(SSEEvent(event: type, data: data, id: id, retry: retry))
}

private let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

// MARK: - The reference implementation

/// An obviously-correct reading of the WHATWG algorithm, for the differential test: split the
/// whole stream into lines first (after dropping a leading BOM), discard the unterminated tail,
/// then interpret the lines as strings, one rule per spec step.
private func referenceSSE(_ stream: [UInt8]) -> [SSEItem] {
    var bytes = stream[...]
    if bytes.starts(with: bom) { bytes = bytes.dropFirst(3) }
    var lines: [[UInt8]] = []
    var current: [UInt8] = []
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let byte = bytes[i]
        if byte == 0x0D || byte == 0x0A {
            lines.append(current)
            current = []
            if byte == 0x0D, i + 1 < bytes.endIndex, bytes[i + 1] == 0x0A { i += 1 }
        } else {
            current.append(byte)
        }
        i += 1
    }
    // `current` is an unterminated last line: pending data, discarded at the end of the stream.

    var items: [SSEItem] = []
    var data = String.UnicodeScalarView()
    var eventType = ""
    var lastEventID = ""
    var retry: Int?
    for raw in lines {
        // Unicode scalars, not Characters: a colon followed by a combining mark must still split.
        let line = String(decoding: raw, as: UTF8.self).unicodeScalars
        if line.isEmpty {
            if data.isEmpty {
                eventType = ""
                continue
            }
            data.removeLast()
            items.append(event(String(data), type: eventType.isEmpty ? nil : eventType, id: lastEventID.isEmpty ? nil : lastEventID, retry: retry))
            data = String.UnicodeScalarView()
            eventType = ""
            continue
        }
        let name: String
        var value: Substring.UnicodeScalarView
        if let colon = line.firstIndex(of: ":") {
            name = String(line[..<colon])
            value = line[line.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            name = String(line)
            value = Substring.UnicodeScalarView()
        }
        if name.isEmpty {
            items.append(.comment(String(value)))
            continue
        }
        switch name {
        case "data":
            data.append(contentsOf: value)
            data.append("\n")
        case "event":
            eventType = String(value)
        case "id":
            if !value.contains("\0") { lastEventID = String(value) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ ("0"..."9").contains($0) }), let n = Int(String(value)) { retry = n }
        default:
            break
        }
    }
    return items
}

// MARK: - Random streams

private let valuePieces: [String] = [
    "YHOO", "+2", "10", "é", "日本語", "😀", "e\u{301}", ":", " ", "  ", "a:b", "[DONE]", "{\"x\":1}",
    "\0", "123", "-5", "12a", "\u{FEFF}", "OPENROUTER PROCESSING", "data", "\t",
]
private let fieldNames = ["data", "data", "data", "event", "id", "retry", "dat", "Data", "datax", "foo"]

private func randomValue(_ rng: inout SplitMix64) -> [UInt8] {
    var value: [UInt8] = []
    for _ in 0..<rng.int(in: 0...3) {
        if rng.chance(1, in: 25) {
            value.append(rng.pick([0xFF, 0xC3, 0xE6, 0x80]))  // invalid or truncated UTF-8
        } else {
            value += Array(rng.pick(valuePieces).utf8)
        }
    }
    if rng.chance(1, in: 10) { value = Array(String(rng.int(in: 0...99_999)).utf8) }
    return value
}

/// Random mixes of fields, comments, blank lines and line endings, sometimes with a BOM (or two),
/// sometimes ending in the middle of a line or an event.
private func randomSSEStream(_ rng: inout SplitMix64) -> [UInt8] {
    var out: [UInt8] = []
    if rng.chance(1, in: 3) { out += bom }
    if rng.chance(1, in: 20) { out += bom }
    let endings: [[UInt8]] = [[0x0A], [0x0D], [0x0D, 0x0A]]
    for _ in 0..<rng.int(in: 0...30) {
        switch rng.int(in: 0...9) {
        case 0, 1, 2:
            break  // a blank line
        case 3:
            out += Array(":".utf8) + randomValue(&rng)
        default:
            out += Array(rng.pick(fieldNames).utf8)
            if rng.chance(5, in: 6) {
                out += Array(rng.pick([":", ": ", ":  "]).utf8)
                out += randomValue(&rng)
            }
        }
        out += rng.pick(endings)
    }
    if rng.chance(1, in: 4) { out += Array("data: tail".utf8) }
    return out
}

/// Random cut points, including empty chunks; some cuts fall inside CRLF and multi-byte UTF-8.
private func randomChunks(_ rng: inout SplitMix64, _ bytes: [UInt8]) -> [[UInt8]] {
    var chunks: [[UInt8]] = []
    var start = 0
    let maxChunk = rng.pick([1, 2, 3, 7, 16, 64])
    while start < bytes.count {
        let size = rng.chance(1, in: 12) ? 0 : rng.int(in: 1...maxChunk)
        let end = min(bytes.count, start + size)
        chunks.append(Array(bytes[start..<end]))
        start = end
    }
    return chunks
}

@Suite struct SSEParserTests {
    // MARK: The specification's own examples

    @Test func sse_specStockTickerExample_joinsDataLinesWithNewlines() {
        #expect(parseSSE("data: YHOO\ndata: +2\ndata: 10\n\n") == [event("YHOO\n+2\n10")])
    }

    @Test func sse_specCommentAndIDExample_tracksLastEventIDAndDropsUnfinishedEvent() {
        let stream = ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n"
        #expect(parseSSE(stream) == [
            .comment("test stream"),
            event("first event", id: "1"),
            event("second event"),  // `id` alone resets the last event ID to empty
        ])
    }

    @Test func sse_specEmptyDataExample_dispatchesEmptyAndNewlineData() {
        #expect(parseSSE("data\n\ndata\ndata\n\ndata:") == [event(""), event("\n")])
    }

    @Test func sse_specSpaceExample_removesOnlyOneSpaceAfterColon() {
        #expect(parseSSE("data:test\n\ndata: test\n\n") == [event("test"), event("test")])
        #expect(parseSSE("data:  two\n\n") == [event(" two")])
    }

    @Test func sse_specEventTypeExample_setsTypePerEvent() {
        let stream = "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"
        #expect(parseSSE(stream) == [
            event("73857293", type: "add"), event("2153", type: "remove"), event("113411", type: "add"),
        ])
    }

    // MARK: Line endings

    @Test func sse_lineEndings_crLfAndCrlfAllEndLines() {
        #expect(parseSSE("data: a\r\rdata: b\r\n\r\ndata: c\n\ndata: d\r\n\n") == [event("a"), event("b"), event("c"), event("d")])
        #expect(parseSSE("data: a\rdata: b\ndata: c\r\n\r") == [event("a\nb\nc")])
    }

    @Test func sse_crAtChunkEndThenLfAtNextStart_isOneLineEnd() {
        // Were the LF a second line end, "a" would be dispatched alone by a blank line.
        let chunks = ["data: a\r", "\ndata: b\r", "\n\r", "\n"].map { Array($0.utf8) }
        #expect(parseSSE(chunks: chunks) == [event("a\nb")])
        // An empty chunk between CR and LF changes nothing.
        let withEmpty = ["data: a\r", "", "\n\r", "", "\n"].map { Array($0.utf8) }
        #expect(parseSSE(chunks: withEmpty) == [event("a")])
    }

    @Test func sse_twoCRs_areALineEndAndABlankLine() {
        #expect(parseSSE("data: x\r\r") == [event("x")])
        #expect(parseSSE(chunks: [Array("data: x\r".utf8), Array("\r".utf8)]) == [event("x")])
    }

    // MARK: Byte order mark

    @Test func sse_bomAtStreamStart_isSkipped() {
        #expect(parseSSE(bom + Array("data: a\n\n".utf8)) == [event("a")])
        #expect(parseSSE(bom + Array(": c\n".utf8)) == [.comment("c")])
    }

    @Test func sse_bomSplitAcrossChunks_isSkipped() {
        let chunks: [[UInt8]] = [[0xEF], [], [0xBB], [0xBF, UInt8(ascii: "d")], Array("ata: a\n\n".utf8)]
        #expect(parseSSE(chunks: chunks) == [event("a")])
    }

    @Test func sse_bomElsewhere_isPartOfTheFieldName() {
        // Only the first BOM is skipped: a second one makes the field name unknown.
        #expect(parseSSE(bom + bom + Array("data: x\n\n".utf8)) == [])
        #expect(parseSSE(Array("data: a\n\n".utf8) + bom + Array("data: b\n\n".utf8)) == [event("a")])
    }

    @Test func sse_partialBOM_isKeptAsText() {
        // 0xEF alone is not a BOM; were it dropped, the line would be a comment.
        #expect(parseSSE([0xEF] + Array(": c\n\ndata: z\n\n".utf8)) == [event("z")])
        #expect(parseSSE(chunks: [[0xEF, 0xBB], Array(": c\n".utf8)]) == [])
        #expect(parseSSE([0xEF, 0xBB, 0x0A] + Array("data: z\n\n".utf8)) == [event("z")])
    }

    // MARK: Comments and fields

    @Test func sse_comments_areReportedInOrderAndDoNotDispatch() {
        #expect(parseSSE(":\n") == [.comment("")])
        #expect(parseSSE(":  two\n") == [.comment(" two")])
        #expect(parseSSE(": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n") == [
            .comment("OPENROUTER PROCESSING"), .comment("OPENROUTER PROCESSING"), event("x"),
        ])
        #expect(parseSSE("data: a\n: in between\ndata: b\n\n") == [.comment("in between"), event("a\nb")])
    }

    @Test func sse_lineWithoutColon_isFieldWithEmptyValue() {
        #expect(parseSSE("data\n\n") == [event("")])
        #expect(parseSSE("event\ndata: x\n\n") == [event("x")])
    }

    @Test func sse_unknownAndMiscasedFields_areIgnored() {
        #expect(parseSSE("foo: bar\nData: y\ndata: x\nDATA\n\n") == [event("x")])
    }

    @Test func sse_multiLineData_keepsEmptyLinesAndColons() {
        #expect(parseSSE("data: {\"a\":\ndata:\ndata: 1}\n\n") == [event("{\"a\":\n\n1}")])
    }

    @Test func sse_eventType_resetsAfterBlankLineEvenWithoutDispatch() {
        #expect(parseSSE("event: foo\n\ndata: x\n\n") == [event("x")])
        #expect(parseSSE("event: foo\ndata: x\n\ndata: y\n\n") == [event("x", type: "foo"), event("y")])
    }

    @Test func sse_retry_acceptsOnlyASCIIDigitsAndPersists() {
        #expect(parseSSE("retry: 1000\ndata: a\n\ndata: b\n\n") == [event("a", retry: 1000), event("b", retry: 1000)])
        for bad in ["retry: 10a", "retry:", "retry", "retry: -5", "retry: 1 0", "retry:  5", "retry: ５", "retry: 99999999999999999999999"] {
            #expect(parseSSE("retry: 7\n\(bad)\ndata: a\n\n") == [event("a", retry: 7)], "\(bad)")
        }
        var parser = SSEParser()
        _ = parser.feed(Array("retry: 3000\n\n".utf8))
        #expect(parser.reconnectionTime == 3000)
    }

    @Test func sse_id_withNULIsIgnoredEmptyResetsAndValuePersists() {
        #expect(parseSSE("id: 1\ndata: a\n\nid: 2\u{0}x\ndata: b\n\ndata: c\n\nid:\ndata: d\n\n") == [
            event("a", id: "1"), event("b", id: "1"), event("c", id: "1"), event("d"),
        ])
        var parser = SSEParser()
        _ = parser.feed(Array("id: 42\n\n".utf8))
        #expect(parser.lastEventID == "42")
    }

    @Test func sse_endOfStream_discardsIncompleteEventButKeepsLastEventID() {
        var parser = SSEParser()
        #expect(parser.feed(Array("id: 9\ndata: x\n".utf8)) == [])
        #expect(parser.finish() == [])
        #expect(parser.lastEventID == "9")
        // Ready for a new stream: no leftover data, a BOM allowed again.
        #expect(parser.feed(bom + Array("data: y\n\n".utf8)) == [event("y", id: "9")])
        #expect(parseSSE("data: x") == [])
        #expect(parseSSE(": no newline") == [])
    }

    @Test func sse_unicodeAndInvalidUTF8_decodeWithReplacement() {
        #expect(parseSSE("data: 日本語😀e\u{301}\n\n") == [event("日本語😀e\u{301}")])
        #expect(parseSSE(Array("data: a".utf8) + [0xFF, 0xC3] + Array("b\n\n".utf8)) == [event("a\u{FFFD}\u{FFFD}b")])
    }

    @Test func sse_nonContiguousCollection_parsesLikeArray() {
        let bytes = Array("data: x\r\n\r\n".utf8)
        var parser = SSEParser()
        #expect(parser.feed(bytes.lazy.map { $0 }) == [event("x")])
    }

    @Test func sse_openRouterTranscript_givesKeepAliveCommentAndChunks() {
        let stream = ": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
        #expect(parseSSE(stream) == [.comment("OPENROUTER PROCESSING"), event("{\"a\":1}"), event("{\"b\":2}"), event("[DONE]")])
    }

    // MARK: Differential test

    @Test func sse_randomChunkBoundaries_matchWholeFeedAndReference() {
        var sawEvents = 0
        var sawSplitCRLF = 0
        for seed in UInt64(1)...300 {
            var rng = SplitMix64(seed: seed)
            let stream = randomSSEStream(&rng)
            let chunks = randomChunks(&rng, stream)
            let whole = parseSSE(stream)
            let chunked = parseSSE(chunks: chunks)
            let reference = referenceSSE(stream)
            #expect(chunked == whole, "seed \(seed): chunks \(chunks.map(\.count))")
            #expect(whole == reference, "seed \(seed)")
            sawEvents += whole.count
            for (a, b) in zip(chunks, chunks.dropFirst()) where a.last == 0x0D && b.first == 0x0A { sawSplitCRLF += 1 }
        }
        // The generator must actually exercise what the test claims.
        #expect(sawEvents > 300)
        #expect(sawSplitCRLF > 10)
    }
}
