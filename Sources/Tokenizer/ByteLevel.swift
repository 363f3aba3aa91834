import Foundation

/// GPT-2's reversible byte <-> printable-character map (openai/gpt-2 encoder.py `bytes_to_unicode`):
/// printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100... in byte order.
enum ByteLevel {
    /// byte -> scalar value of its printable stand-in.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable { table[b] = UInt32(b) } else { table[b] = next; next += 1 }
        }
        return table
    }()

    /// scalar value (< 324) -> byte, or -1 when the scalar is not a byte-level symbol.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in byteToScalar.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The byte-level spelling of raw bytes (what the vocabulary's keys look like).
    static func symbols(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }

    static func symbol(_ byte: UInt8) -> String { String(Unicode.Scalar(byteToScalar[Int(byte)])!) }

    /// Raw bytes of a byte-level token; nil if some character is not a byte-level symbol.
    static func bytes(of token: String) -> [UInt8]? {
        var out = [UInt8](); out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard s.value < 324 else { return nil }
            let b = scalarToByte[Int(s.value)]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }
}

/// Character classes of the GPT-2 pre-tokenization regex (`\p{L}`, `\p{N}`, `\s`, everything else).
enum ScalarClass {
    static let letter: UInt8 = 0, number: UInt8 = 1, space: UInt8 = 2, other: UInt8 = 3

    static let ascii: [UInt8] = (0..<128).map { v -> UInt8 in
        switch v {
        case 0x41...0x5A, 0x61...0x7A: return letter
        case 0x30...0x39: return number
        case 0x09...0x0D, 0x20: return space
        default: return other
        }
    }

    /// `\s` is Unicode White_Space (Oniguruma, used by HF tokenizers); `\p{L}`/`\p{N}` are general categories.
    @inline(__always) static func of(_ v: UInt32) -> UInt8 {
        if v < 0x10000 { return basicPlane[Int(v)] }
        return compute(v)
    }

    /// Classes of the whole Basic Multilingual Plane, computed once (~65k property lookups, a few ms):
    /// stdlib Unicode property queries were ~20% of encode time.
    static let basicPlane: [UInt8] = (0..<0x10000).map { compute(UInt32($0)) }

    static func compute(_ v: UInt32) -> UInt8 {
        if v < 128 { return ascii[Int(v)] }
        guard let scalar = Unicode.Scalar(v) else { return other }
        let p = scalar.properties
        if p.isWhitespace { return space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }
}

/// Hand-written scanner equivalent to GPT-2's split regex
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// (leftmost-first alternation, greedy runs). Works on UTF-8 bytes; reports byte ranges of the pieces.
/// It is the pre-tokenizer hot path, ~10x faster than NSRegularExpression.
enum GPT2Splitter {
    static let pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

    /// Calls `emit(start, end)` (byte offsets into `bytes`) for every piece, in order, covering all bytes.
    static func split(_ bytes: UnsafeBufferPointer<UInt8>, _ emit: (Int, Int) -> Void) {
        let count = bytes.count
        if count == 0 { return }
        // Decode once: per scalar its class and starting byte offset (offsets has n+1 entries).
        var classes = [UInt8](); classes.reserveCapacity(count)
        var offsets = [Int](); offsets.reserveCapacity(count + 1)
        let plane = ScalarClass.basicPlane   // hoisted: avoids a swift_once check per scalar
        var i = 0
        while i < count {
            let b0 = bytes[i]
            var v: UInt32, len: Int
            if b0 < 0x80 { v = UInt32(b0); len = 1 }
            else if b0 < 0xE0 { v = UInt32(b0 & 0x1F); len = 2 }
            else if b0 < 0xF0 { v = UInt32(b0 & 0x0F); len = 3 }
            else { v = UInt32(b0 & 0x07); len = 4 }
            if len > 1 {
                if i + len > count { len = count - i }   // Swift Strings are valid UTF-8; defensive only
                for k in 1..<max(len, 1) { v = (v << 6) | UInt32(bytes[i + k] & 0x3F) }
            }
            offsets.append(i)
            classes.append(v < 0x10000 ? plane[Int(v)] : ScalarClass.compute(v))
            i += len
        }
        offsets.append(count)
        let n = classes.count
        @inline(__always) func byte(_ scalarIndex: Int) -> UInt8 { bytes[offsets[scalarIndex]] }

        var s = 0
        while s < n {
            let c = classes[s]
            var e = s + 1
            let b = byte(s)
            if b == 0x27, s + 1 < n, let contraction = contractionLength(s, n, byte) {
                e = s + contraction
            } else if b == 0x20, s + 1 < n, classes[s + 1] != ScalarClass.space {
                let k = classes[s + 1]
                e = s + 2
                while e < n && classes[e] == k { e += 1 }
            } else if c != ScalarClass.space {
                while e < n && classes[e] == c { e += 1 }
            } else {
                while e < n && classes[e] == ScalarClass.space { e += 1 }
                // `\s+(?!\S)` backs off one scalar so the last space can prefix the next word;
                // a single space before a non-space falls through to `\s+`.
                if e < n && e - s > 1 { e -= 1 }
            }
            emit(offsets[s], offsets[e])
            s = e
        }
    }

    /// Length in scalars of `'s|'t|'re|'ve|'m|'ll|'d` at scalar index `s` (an apostrophe), or nil.
    @inline(__always) private static func contractionLength(_ s: Int, _ n: Int, _ byte: (Int) -> UInt8) -> Int? {
        let b1 = byte(s + 1)
        switch b1 {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"): return 2
        case UInt8(ascii: "r"), UInt8(ascii: "v"):
            return s + 2 < n && byte(s + 2) == UInt8(ascii: "e") ? 3 : nil
        case UInt8(ascii: "l"):
            return s + 2 < n && byte(s + 2) == UInt8(ascii: "l") ? 3 : nil
        default: return nil
        }
    }
}

/// The byte-level alphabet for code outside this target (GGUF vocabularies store some tokens in
/// plain UTF-8; transformers re-spells those before building a byte-level BPE).
public enum ByteLevelAlphabet {
    /// Every character of `token` is one of the 256 byte stand-ins.
    public static func isSpelled(_ token: String) -> Bool {
        token.unicodeScalars.allSatisfy { $0.value < 324 && ByteLevel.scalarToByte[Int($0.value)] >= 0 }
    }
    /// The byte-level spelling of `text`'s UTF-8 bytes.
    public static func spell(_ text: String) -> String {
        Array(text.utf8).withUnsafeBufferPointer { ByteLevel.symbols($0) }
    }
}
