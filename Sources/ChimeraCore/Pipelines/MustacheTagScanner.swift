/// One tag of a Mustache template, as ``MustacheTagScanner`` finds it.
struct MustacheTag: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// `{{name}}`
        case variable
        /// `{{{name}}}` or `{{&name}}`
        case unescaped
        /// `{{#name}}`
        case section
        /// `{{^name}}`
        case invertedSection
    }

    var kind: Kind
    /// The name looked up: a dotted path (`steps.draft.output`), or `.` for the current item.
    /// Transforms (`{{uppercased(name)}}`) are stripped.
    var name: String
    /// UTF-8 offset of the name's first byte in the template.
    var offset: Int
    /// How many sections enclose the tag (a section's own name is looked up outside it).
    var depth: Int
}

/// A template that the renderer would refuse, or that cannot mean what it says.
struct TemplateProblem: Sendable, Equatable {
    /// UTF-8 offset in the template.
    var offset: Int
    var message: String
    var hint: String?
}

/// Finds the tags of a Mustache template without rendering it, for validation only (the executor
/// renders with swift-mustache).
///
/// Knows what swift-mustache's parser knows: variables, `{{{x}}}` and `{{&x}}`, sections
/// `{{#x}}…{{/x}}`, inverted sections `{{^x}}…{{/x}}`, comments `{{! … }}`, delimiter changes
/// `{{=<% %>=}}` and transforms `{{lowercased(x)}}`. Partials, blocks and parents (`>`, `<`,
/// `$`) and configuration tags (`%`) are problems: a pipeline template has no library to load
/// them from. Sections must balance and close in order.
enum MustacheTagScanner {
    static func scan(_ template: String) -> (tags: [MustacheTag], problems: [TemplateProblem]) {
        let bytes = Array(template.utf8)
        var open: [UInt8] = Array("{{".utf8)
        var close: [UInt8] = Array("}}".utf8)
        var tags: [MustacheTag] = []
        var problems: [TemplateProblem] = []
        /// Open sections: name and the offset of their opening tag.
        var stack: [(name: String, offset: Int, written: String)] = []
        var i = 0
        while let start = find(open, in: bytes, from: i) {
            var j = start + open.count
            let triple = open == Array("{{".utf8) && j < bytes.count && bytes[j] == UInt8(ascii: "{")
            let terminator = triple ? Array("}}}".utf8) : close
            if triple { j += 1 }
            guard let end = find(terminator, in: bytes, from: j) else {
                let shown = String(decoding: open, as: UTF8.self) + (triple ? "{" : "")
                problems.append(TemplateProblem(offset: start, message: "unclosed tag: \(shown) has no matching \(String(decoding: terminator, as: UTF8.self))"))
                break
            }
            i = end + terminator.count
            let tagText = String(decoding: bytes[start..<i], as: UTF8.self)
            if triple {
                if let name = readName(bytes, j, end, tagText: tagText, problems: &problems) {
                    tags.append(MustacheTag(kind: .unescaped, name: name.text, offset: name.offset, depth: stack.count))
                }
                continue
            }
            guard j < end else {
                problems.append(TemplateProblem(offset: start, message: "empty tag \(tagText)", hint: "write a name inside, e.g. {{inputs.topic}}"))
                continue
            }
            let sigil = bytes[j]
            switch sigil {
            case UInt8(ascii: "!"):
                continue
            case UInt8(ascii: "="):
                guard end - 1 > j, bytes[end - 1] == UInt8(ascii: "=") else {
                    problems.append(TemplateProblem(offset: start, message: "invalid delimiter change \(tagText)", hint: "write it as {{=<% %>=}}: two delimiters between '=' signs"))
                    continue
                }
                let parts = bytes[(j + 1)..<(end - 1)].split(whereSeparator: isSpace)
                guard parts.count == 2, !parts.contains(where: { $0.contains(UInt8(ascii: "=")) }) else {
                    problems.append(TemplateProblem(offset: start, message: "invalid delimiter change \(tagText)", hint: "write it as {{=<% %>=}}: two delimiters between '=' signs"))
                    continue
                }
                open = Array(parts[0])
                close = Array(parts[1])
            case UInt8(ascii: "#"), UInt8(ascii: "^"):
                guard let name = readName(bytes, j + 1, end, tagText: tagText, problems: &problems) else { continue }
                tags.append(MustacheTag(kind: sigil == UInt8(ascii: "#") ? .section : .invertedSection, name: name.text, offset: name.offset, depth: stack.count))
                stack.append((name.written, start, tagText))
            case UInt8(ascii: "/"):
                guard let name = readName(bytes, j + 1, end, tagText: tagText, problems: &problems) else { continue }
                guard let top = stack.last else {
                    problems.append(TemplateProblem(offset: start, message: "\(tagText) closes a section that was never opened",
                                                    hint: "open it first with {{#\(name.written)}}, or remove \(tagText)"))
                    continue
                }
                if top.name == name.written {
                    stack.removeLast()
                } else {
                    let outOfOrder = stack.contains { $0.name == name.written }
                    problems.append(TemplateProblem(offset: start, message: "\(tagText) does not match the open section \(top.written)",
                                                    hint: outOfOrder ? "close sections in reverse order: {{/\(top.name)}} comes first" : "did you mean {{/\(top.name)}}?"))
                    // Recover so one slip is reported once: a section closed out of order is closed
                    // (the top stays open for its own close tag); an unknown name is taken as a
                    // misspelt close of the top.
                    if let k = stack.lastIndex(where: { $0.name == name.written }) { stack.remove(at: k) } else { stack.removeLast() }
                }
            case UInt8(ascii: ">"), UInt8(ascii: "<"), UInt8(ascii: "$"):
                problems.append(TemplateProblem(offset: start, message: "\(tagText): partials, parents and blocks are not available in pipeline templates",
                                                hint: "write the text inline, or render it in an earlier step"))
            case UInt8(ascii: "%"):
                problems.append(TemplateProblem(offset: start, message: "\(tagText): configuration tags are not available in pipeline templates",
                                                hint: "templates render as plain text without HTML escaping; remove the tag"))
            case UInt8(ascii: "&"):
                if let name = readName(bytes, j + 1, end, tagText: tagText, problems: &problems) {
                    tags.append(MustacheTag(kind: .unescaped, name: name.text, offset: name.offset, depth: stack.count))
                }
            default:
                if let name = readName(bytes, j, end, tagText: tagText, problems: &problems) {
                    tags.append(MustacheTag(kind: .variable, name: name.text, offset: name.offset, depth: stack.count))
                }
            }
        }
        for section in stack.reversed() {
            problems.append(TemplateProblem(offset: section.offset, message: "section \(section.written) is never closed", hint: "add {{/\(section.name)}} where the section ends"))
        }
        problems.sort { $0.offset < $1.offset }
        return (tags, problems)
    }

    /// The name between `from` and `to` (spaces trimmed, transforms stripped), or nil after
    /// recording why there is none.
    private static func readName(_ bytes: [UInt8], _ from: Int, _ to: Int, tagText: String,
                                 problems: inout [TemplateProblem]) -> (text: String, written: String, offset: Int)? {
        var lo = from
        var hi = to
        while lo < hi, isSpace(bytes[lo]) { lo += 1 }
        while hi > lo, isSpace(bytes[hi - 1]) { hi -= 1 }
        guard lo < hi else {
            problems.append(TemplateProblem(offset: from, message: "missing name in \(tagText)", hint: "write a name inside, e.g. {{inputs.topic}}"))
            return nil
        }
        let written = String(decoding: bytes[lo..<hi], as: UTF8.self)
        // Transforms: `f(g(name))`; the name is the innermost.
        var nameStart = lo
        var nameEnd = hi
        while let paren = bytes[nameStart..<nameEnd].firstIndex(of: UInt8(ascii: "(")) {
            guard bytes[nameEnd - 1] == UInt8(ascii: ")") else { nameStart = -1; break }
            nameStart = paren + 1
            nameEnd -= 1
        }
        guard nameStart >= 0, nameStart < nameEnd, bytes[nameStart..<nameEnd].allSatisfy(isNameByte) else {
            problems.append(TemplateProblem(offset: lo, message: "invalid name \"\(written)\" in \(tagText)",
                                            hint: "a name is a dotted path such as inputs.topic or steps.draft.output"))
            return nil
        }
        let name = String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)
        if name != ".", name.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
            problems.append(TemplateProblem(offset: nameStart, message: "invalid name \"\(name)\" in \(tagText)",
                                            hint: "a name is a dotted path such as inputs.topic or steps.draft.output"))
            return nil
        }
        return (name, written, nameStart)
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// What swift-mustache accepts in a name (besides the transform parentheses).
    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: "?") || b == UInt8(ascii: "*")
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, bytes.count >= needle.count, from <= bytes.count - needle.count else { return nil }
        var i = from
        while i <= bytes.count - needle.count {
            if bytes[i] == needle[0], bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
