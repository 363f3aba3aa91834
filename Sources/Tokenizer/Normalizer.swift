import Foundation

/// `normalizer` of tokenizer.json, applied to text between added tokens before pre-tokenization.
indirect enum Normalizer {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(NSRegularExpression, template: String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    init(_ json: JSONFields) throws {
        let type = try json.type()
        switch type {
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Prepend": self = .prepend(try json.string("prepend"))
        case "Replace":
            self = .replace(try json.pattern("pattern").regex,
                            template: NSRegularExpression.escapedTemplate(for: try json.string("content")))
        case "Strip":
            self = .strip(left: try json.bool("strip_left", default: true), right: try json.bool("strip_right", default: true))
        case "Sequence": self = .sequence(try json.objects("normalizers").map(Normalizer.init))
        default: throw json.unsupported("type \"\(type)\"")
        }
    }

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .prepend(let p): return text.isEmpty ? text : p + text
        case let .replace(regex, template):
            return regex.stringByReplacingMatches(in: text, options: [], range: NSRange(location: 0, length: (text as NSString).length), withTemplate: template)
        case let .strip(left, right):
            var s = Substring(text)
            if left { s = s.drop(while: { $0.isWhitespace }) }
            if right { while let last = s.last, last.isWhitespace { s = s.dropLast() } }
            return String(s)
        case .sequence(let items): return items.reduce(text) { $1.apply($0) }
        }
    }
}

/// `decoder` of tokenizer.json: HF `decode_chain` semantics — each step maps the token list, then
/// the result is concatenated.
indirect enum TokenDecoder {
    case byteLevel, byteFallback, fuse
    case strip(content: String, start: Int, stop: Int)
    case replace(NSRegularExpression, template: String)
    case metaspace(replacement: String, stripFirstSpace: Bool)
    case sequence([TokenDecoder])

    init(_ json: JSONFields) throws {
        let type = try json.type()
        switch type {
        case "ByteLevel": self = .byteLevel
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            self = .strip(content: try json.string("content"), start: try json.int("start"), stop: try json.int("stop"))
        case "Replace":
            self = .replace(try json.pattern("pattern").regex,
                            template: NSRegularExpression.escapedTemplate(for: try json.string("content")))
        case "Metaspace":
            var strip = try json.bool("add_prefix_space", default: true)
            if let scheme = try json.optionalString("prepend_scheme") { strip = scheme != "never" }
            self = .metaspace(replacement: try json.string("replacement"), stripFirstSpace: strip)
        case "Sequence": self = .sequence(try json.objects("decoders").map(TokenDecoder.init))
        default: throw json.unsupported("type \"\(type)\"")
        }
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            // Tokens made only of byte symbols become their bytes; others keep their UTF-8 (HF ByteLevel decoder).
            var bytes = [UInt8]()
            for token in tokens {
                if let b = ByteLevel.bytes(of: token) { bytes += b } else { bytes += Array(token.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]   // invalid UTF-8 -> U+FFFD, like from_utf8_lossy
        case .byteFallback:
            var out = [String](), pending = [UInt8]()
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(bytes: pending, encoding: .utf8) { out.append(s) }
                else { out.append(String(repeating: "\u{FFFD}", count: pending.count)) }
                pending.removeAll()
            }
            for token in tokens {
                let u = Array(token.utf8)
                if u.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b); continue
                }
                flush(); out.append(token)
            }
            flush()
            return out
        case .fuse: return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { token in
                var s = Substring(token)
                var n = 0
                while n < start, s.hasPrefix(content) { s = s.dropFirst(content.count); n += 1 }
                n = 0
                while n < stop, s.hasSuffix(content) { s = s.dropLast(content.count); n += 1 }
                return String(s)
            }
        case let .replace(regex, template):
            return tokens.map { regex.stringByReplacingMatches(in: $0, options: [], range: NSRange(location: 0, length: ($0 as NSString).length), withTemplate: template) }
        case let .metaspace(replacement, stripFirstSpace):
            return tokens.enumerated().map { index, token in
                var s = token.replacingOccurrences(of: replacement, with: " ")
                if index == 0 && stripFirstSpace && s.hasPrefix(" ") { s.removeFirst() }
                return s
            }
        case .sequence(let items): return items.reduce(tokens) { $1.decodeChain($0) }
        }
    }
}

/// `post_processor` of tokenizer.json; only affects `encode(addSpecialTokens: true)`.
indirect enum PostProcessor {
    /// Items of TemplateProcessing's `single` template: literal special-token ids or the sequence.
    enum Item { case special([Int32]), sequence }
    case template([Item])
    case byteLevel
    case sequence([PostProcessor])

    init(_ json: JSONFields, idOf: (String) -> Int32?) throws {
        let type = try json.type()
        switch type {
        case "ByteLevel": self = .byteLevel
        case "Sequence": self = .sequence(try json.objects("processors").map { try PostProcessor($0, idOf: idOf) })
        case "TemplateProcessing":
            let specials = try json.optionalObject("special_tokens")
            func specialIds(_ name: String) throws -> [Int32] {
                if let entry = specials?.object[name] as? [String: Any], let ids = entry["ids"] as? [NSNumber] {
                    return ids.map { Int32(truncatingIfNeeded: $0.intValue) }
                }
                if let id = idOf(name) { return [id] }
                throw TokenizerError.invalidField(file: json.file, field: json.field("special_tokens"), expected: "an entry for \"\(name)\" used by the template")
            }
            var items = [Item]()
            for (index, element) in try json.array("single").enumerated() {
                guard let o = element as? [String: Any] else {
                    throw TokenizerError.invalidField(file: json.file, field: "\(json.field("single"))[\(index)]", expected: "an object")
                }
                if let s = o["SpecialToken"] as? [String: Any], let name = s["id"] as? String { items.append(.special(try specialIds(name))) }
                else if let s = o["Sequence"] as? [String: Any], (s["id"] as? String) == "A" { items.append(.sequence) }
                else { throw json.unsupported("single[\(index)] \(o.keys.sorted())") }
            }
            self = .template(items)
        case "BertProcessing", "RobertaProcessing":
            func pair(_ key: String) throws -> Int32 {
                guard let a = json.object[key] as? [Any], a.count == 2, let n = a[1] as? NSNumber else {
                    throw TokenizerError.invalidField(file: json.file, field: json.field(key), expected: "[token, id]")
                }
                return Int32(truncatingIfNeeded: n.intValue)
            }
            self = .template([.special([try pair("cls")]), .sequence, .special([try pair("sep")])])
        default: throw json.unsupported("type \"\(type)\"")
        }
    }

    func apply(_ ids: [Int32]) -> [Int32] {
        switch self {
        case .byteLevel: return ids
        case .sequence(let items): return items.reduce(ids) { $1.apply($0) }
        case .template(let items):
            var out = [Int32]()
            for item in items {
                switch item {
                case .special(let s): out += s
                case .sequence: out += ids
                }
            }
            return out
        }
    }
}
