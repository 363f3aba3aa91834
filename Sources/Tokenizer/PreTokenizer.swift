import Foundation

/// How a Split pre-tokenizer treats its matches (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

enum MetaspacePrepend: String { case always, first, never }

/// `pre_tokenizer` of tokenizer.json: splits a normalized segment into words for the model.
/// The ByteLevel byte -> symbol mapping itself is done by the BPE model on raw bytes (see BPEModel.byteLevel).
indirect enum PreTokenizer {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// `gpt2` selects the hand scanner (pattern identical to GPT-2's); otherwise `regex` is used.
    case split(regex: NSRegularExpression?, gpt2: Bool, behavior: SplitBehavior, invert: Bool)
    case metaspace(replacement: String, prepend: MetaspacePrepend, split: Bool)
    case whitespace
    case whitespaceSplit
    case sequence([PreTokenizer])

    static let whitespaceRegex = try? NSRegularExpression(pattern: "\\w+|[^\\w\\s]+")

    init(_ json: JSONFields) throws {
        let type = try json.type()
        switch type {
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: try json.bool("add_prefix_space", default: true),
                              useRegex: try json.bool("use_regex", default: true))
        case "Split":
            let pattern = try json.pattern("pattern")
            let behaviorName = try json.string("behavior")
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw json.unsupported("behavior \"\(behaviorName)\"")
            }
            let gpt2 = pattern.isRegex && pattern.source == GPT2Splitter.pattern
            self = .split(regex: pattern.regex, gpt2: gpt2, behavior: behavior, invert: try json.bool("invert", default: false))
        case "Metaspace":
            let replacement = try json.string("replacement")
            var prepend = MetaspacePrepend.always
            if let scheme = try json.optionalString("prepend_scheme") {
                guard let p = MetaspacePrepend(rawValue: scheme) else { throw json.unsupported("prepend_scheme \"\(scheme)\"") }
                prepend = p
            } else if !(try json.bool("add_prefix_space", default: true)) {
                prepend = .never
            }
            self = .metaspace(replacement: replacement, prepend: prepend, split: try json.bool("split", default: true))
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Sequence":
            self = .sequence(try json.objects("pretokenizers").map(PreTokenizer.init))
        default:
            throw json.unsupported("type \"\(type)\"")
        }
    }

    /// Whether the model must spell words with GPT-2 byte symbols.
    var isByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let items): return items.contains { $0.isByteLevel }
        default: return false
        }
    }

    /// Splits the pieces of one segment; `isFirstSegment` is true for text at the very start of the input.
    func apply(_ pieces: [String], isFirstSegment: Bool) -> [String] {
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            var out = [String]()
            for var piece in pieces {
                if addPrefixSpace && !piece.hasPrefix(" ") { piece = " " + piece }
                if useRegex { out += Self.gpt2Pieces(piece) } else { out.append(piece) }
            }
            return out
        case let .split(regex, gpt2, behavior, invert):
            return pieces.flatMap { piece -> [String] in
                let parts = gpt2 ? Self.gpt2Pieces(piece).map { ($0, true) } : Self.matches(of: regex, in: piece)
                return Self.combine(parts.map { ($0.0, $0.1 != invert) }, behavior)
            }
        case let .metaspace(replacement, prepend, split):
            var out = [String]()
            for (index, piece) in pieces.enumerated() {
                var s = piece.replacingOccurrences(of: " ", with: replacement)
                let wantsPrefix = prepend == .always || (prepend == .first && isFirstSegment && index == 0)
                if wantsPrefix && !s.hasPrefix(replacement) { s = replacement + s }
                if split, let regex = try? NSRegularExpression(pattern: NSRegularExpression.escapedPattern(for: replacement)) {
                    out += Self.combine(Self.matches(of: regex, in: s), .mergedWithNext)
                } else { out.append(s) }
            }
            return out
        case .whitespace:
            return pieces.flatMap { Self.combine(Self.matches(of: Self.whitespaceRegex, in: $0).map { ($0.0, !$0.1) }, .removed) }
        case .whitespaceSplit:
            return pieces.flatMap { $0.split(whereSeparator: { $0.isWhitespace }).map(String.init) }
        case let .sequence(items):
            var current = pieces
            for item in items { current = item.apply(current, isFirstSegment: isFirstSegment) }
            return current
        }
    }

    static func gpt2Pieces(_ piece: String) -> [String] {
        var piece = piece
        return piece.withUTF8 { buffer in
            var out = [String]()
            GPT2Splitter.split(buffer) { start, end in
                out.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
            }
            return out
        }
    }

    /// The piece cut into (text, isMatch) parts covering all of it; empty matches are skipped.
    static func matches(of regex: NSRegularExpression?, in piece: String) -> [(String, Bool)] {
        guard let regex = regex else { return [(piece, false)] }
        let ns = piece as NSString
        var parts = [(String, Bool)]()
        var previous = 0
        for match in regex.matches(in: piece, options: [], range: NSRange(location: 0, length: ns.length)) {
            let r = match.range
            if r.length == 0 { continue }
            if r.location > previous { parts.append((ns.substring(with: NSRange(location: previous, length: r.location - previous)), false)) }
            parts.append((ns.substring(with: r), true))
            previous = r.location + r.length
        }
        if previous < ns.length { parts.append((ns.substring(from: previous), false)) }
        return parts
    }

    /// HF `NormalizedString::split` behaviours (tokenizers/src/tokenizer/normalizer.rs).
    static func combine(_ parts: [(String, Bool)], _ behavior: SplitBehavior) -> [String] {
        var out = [(String, Bool)]()
        switch behavior {
        case .isolated: out = parts
        case .removed: out = parts.filter { !$0.1 }
        case .contiguous:
            for part in parts {
                if part.1, let last = out.last, last.1 { out[out.count - 1].0 += part.0 } else { out.append(part) }
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for part in parts {
                if part.1 && !previousMatch, !out.isEmpty { out[out.count - 1].0 += part.0 }
                else { out.append((part.0, part.1 && !previousMatch)) }
                previousMatch = part.1
            }
        case .mergedWithNext:
            var previousMatch = false
            for part in parts.reversed() {
                if part.1 && !previousMatch, !out.isEmpty { out[out.count - 1].0 = part.0 + out[out.count - 1].0 }
                else { out.append((part.0, part.1 && !previousMatch)) }
                previousMatch = part.1
            }
            out.reverse()
        }
        return out.map { $0.0 }.filter { !$0.isEmpty }
    }
}
