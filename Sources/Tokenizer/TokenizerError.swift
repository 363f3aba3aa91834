import Foundation

/// Everything that can go wrong while loading a tokenizer.json. Encoding and decoding never fail:
/// unknown characters follow the file's own rules (unk token, byte fallback, or dropped, like HF).
public enum TokenizerError: LocalizedError, Equatable {
    case unreadable(file: String, reason: String)
    case invalidJSON(file: String, reason: String)
    case missingField(file: String, field: String)
    case invalidField(file: String, field: String, expected: String)
    case unsupported(file: String, feature: String)
    case badMerge(file: String, index: Int, merge: String, reason: String)
    case invalidRegex(file: String, field: String, pattern: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read the tokenizer file: \(reason)"
        case let .invalidJSON(file, reason):
            return "\(file): invalid JSON (\(reason)); expected a tokenizer.json written by the Hugging Face tokenizers library"
        case let .missingField(file, field):
            return "\(file): missing required field `\(field)`; expected a tokenizer.json written by the Hugging Face tokenizers library"
        case let .invalidField(file, field, expected):
            return "\(file): field `\(field)` must be \(expected)"
        case let .unsupported(file, feature):
            return "\(file): unsupported tokenizer feature: \(feature); qlora-run supports BPE models with ByteLevel, Split, Metaspace and Whitespace pre-tokenizers"
        case let .badMerge(file, index, merge, reason):
            return "\(file): model.merges[\(index)] \(merge): \(reason)"
        case let .invalidRegex(file, field, pattern, reason):
            return "\(file): `\(field)` regex \(pattern) does not compile: \(reason)"
        }
    }
}

/// Typed access to the untyped JSONSerialization tree, producing `TokenizerError`s that name the field.
struct JSONFields {
    let file: String
    let object: [String: Any]
    let path: String

    init(file: String, object: [String: Any], path: String) {
        self.file = file; self.object = object; self.path = path
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func isNull(_ key: String) -> Bool { object[key] == nil || object[key] is NSNull }

    func string(_ key: String) throws -> String {
        guard let value = object[key], !(value is NSNull) else { throw TokenizerError.missingField(file: file, field: field(key)) }
        guard let s = value as? String else { throw TokenizerError.invalidField(file: file, field: field(key), expected: "a string") }
        return s
    }

    func optionalString(_ key: String) throws -> String? {
        isNull(key) ? nil : try string(key)
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard !isNull(key) else { return value }
        guard let n = object[key] as? NSNumber, n.doubleValue == 0 || n.doubleValue == 1
        else { throw TokenizerError.invalidField(file: file, field: field(key), expected: "true or false") }
        return n.boolValue
    }

    func int(_ key: String) throws -> Int {
        guard let value = object[key], !(value is NSNull) else { throw TokenizerError.missingField(file: file, field: field(key)) }
        guard let n = value as? NSNumber, let i = Int(exactly: n.doubleValue) else {
            throw TokenizerError.invalidField(file: file, field: field(key), expected: "an integer")
        }
        return i
    }

    func object(_ key: String) throws -> JSONFields {
        guard let value = object[key], !(value is NSNull) else { throw TokenizerError.missingField(file: file, field: field(key)) }
        guard let o = value as? [String: Any] else { throw TokenizerError.invalidField(file: file, field: field(key), expected: "an object") }
        return JSONFields(file: file, object: o, path: field(key))
    }

    func optionalObject(_ key: String) throws -> JSONFields? {
        isNull(key) ? nil : try object(key)
    }

    func array(_ key: String) throws -> [Any] {
        guard let value = object[key], !(value is NSNull) else { throw TokenizerError.missingField(file: file, field: field(key)) }
        guard let a = value as? [Any] else { throw TokenizerError.invalidField(file: file, field: field(key), expected: "an array") }
        return a
    }

    /// The elements of an array of objects, each with its indexed path (`pre_tokenizer.pretokenizers[1]`).
    func objects(_ key: String) throws -> [JSONFields] {
        try array(key).enumerated().map { index, element in
            guard let o = element as? [String: Any] else {
                throw TokenizerError.invalidField(file: file, field: "\(field(key))[\(index)]", expected: "an object")
            }
            return JSONFields(file: file, object: o, path: "\(field(key))[\(index)]")
        }
    }

    /// The `type` tag of a component (normalizer, pre_tokenizer, decoder, post_processor).
    func type() throws -> String { try string("type") }

    func unsupported(_ what: String) -> TokenizerError {
        TokenizerError.unsupported(file: file, feature: "\(path) \(what)")
    }

    /// `{"String": "x"}` or `{"Regex": "x"}` (HF's SplitPattern / ReplacePattern) as an NSRegularExpression.
    func pattern(_ key: String) throws -> (regex: NSRegularExpression, source: String, isRegex: Bool) {
        let p = try object(key)
        let source: String, isRegex: Bool
        if let s = p.object["String"] as? String { source = s; isRegex = false }
        else if let r = p.object["Regex"] as? String { source = r; isRegex = true }
        else { throw TokenizerError.invalidField(file: file, field: field(key), expected: "{\"String\": ...} or {\"Regex\": ...}") }
        let pattern = isRegex ? source : NSRegularExpression.escapedPattern(for: source)
        do {
            return (try NSRegularExpression(pattern: pattern, options: []), source, isRegex)
        } catch {
            throw TokenizerError.invalidRegex(file: file, field: field(key), pattern: source, reason: "not a valid ICU regular expression")
        }
    }
}
