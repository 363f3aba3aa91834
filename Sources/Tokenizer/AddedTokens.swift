import Foundation

/// One entry of tokenizer.json `added_tokens` (HF `AddedToken`).
struct AddedToken {
    let id: Int32
    let content: String
    let bytes: [UInt8]
    let singleWord: Bool, lstrip: Bool, rstrip: Bool, normalized: Bool, special: Bool

    init(_ json: JSONFields) throws {
        let id = try json.int("id")
        guard let id32 = Int32(exactly: id), id32 >= 0 else {
            throw TokenizerError.invalidField(file: json.file, field: json.field("id"), expected: "a non-negative 32-bit id")
        }
        self.id = id32
        content = try json.string("content")
        guard !content.isEmpty else { throw TokenizerError.invalidField(file: json.file, field: json.field("content"), expected: "a non-empty string") }
        bytes = Array(content.utf8)
        special = try json.bool("special", default: false)
        singleWord = try json.bool("single_word", default: false)
        lstrip = try json.bool("lstrip", default: false)
        rstrip = try json.bool("rstrip", default: false)
        normalized = try json.bool("normalized", default: !special)
    }
}

/// Finds added tokens in text before pre-tokenization, leftmost then longest (HF uses Aho-Corasick
/// with LeftmostLongest), so `<|im_start|>` becomes one id and `<|im_start` stays ordinary text.
struct AddedTokenMatcher {
    private let tokens: [AddedToken]
    /// first byte -> indices into `tokens`, longest content first.
    private let byFirstByte: [[Int]]
    var isEmpty: Bool { tokens.isEmpty }

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        var table = [[Int]](repeating: [], count: 256)
        for (index, token) in tokens.enumerated() { table[Int(token.bytes[0])].append(index) }
        for b in 0..<256 { table[b].sort { tokens[$0].bytes.count > tokens[$1].bytes.count } }
        byFirstByte = table
    }

    /// A segment of the input: plain text (`id == nil`) or one added token.
    struct Segment { var start: Int; var end: Int; var id: Int32? }

    func split(_ text: UnsafeBufferPointer<UInt8>) -> [Segment] {
        var segments = [Segment]()
        var textStart = 0, i = 0
        let n = text.count
        while i < n {
            let candidates = byFirstByte[Int(text[i])]
            var matched: (token: AddedToken, end: Int)? = nil
            for index in candidates {
                let token = tokens[index]
                let len = token.bytes.count
                guard i + len <= n else { continue }
                var equal = true
                for k in 1..<len where text[i + k] != token.bytes[k] { equal = false; break }
                if !equal { continue }
                if token.singleWord && (isWordByte(text, i - 1) || isWordByte(text, i + len)) { continue }
                matched = (token, i + len); break
            }
            guard let (token, matchEnd) = matched else { i += 1; continue }
            var start = i, end = matchEnd
            if token.lstrip { while start > textStart && isSpaceByte(text[start - 1]) { start -= 1 } }
            if token.rstrip { while end < n && isSpaceByte(text[end]) { end += 1 } }
            if start > textStart { segments.append(Segment(start: textStart, end: start, id: nil)) }
            segments.append(Segment(start: start, end: end, id: token.id))
            textStart = end; i = end
        }
        if textStart < n { segments.append(Segment(start: textStart, end: n, id: nil)) }
        return segments
    }

    /// ASCII word characters only; a multi-byte neighbour counts as a word character (letters mostly).
    private func isWordByte(_ text: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        guard index >= 0 && index < text.count else { return false }
        let b = text[index]
        if b >= 0x80 { return true }
        return ScalarClass.ascii[Int(b)] == ScalarClass.letter || ScalarClass.ascii[Int(b)] == ScalarClass.number || b == UInt8(ascii: "_")
    }

    private func isSpaceByte(_ b: UInt8) -> Bool { b < 0x80 && ScalarClass.ascii[Int(b)] == ScalarClass.space }
}
