import Foundation

/// Scalar resolution by the YAML 1.2 CORE schema (YAML 1.2.2 spec, section 10.3.2), plus the
/// explicit `!!tag`s. libyaml itself is a YAML 1.1 *parser* but leaves resolution to us, so
/// `yes`/`on`/`1_000`/`0777` stay strings here, as YAML 1.2 says.
enum YAMLScalar {
    static let tagPrefix = "tag:yaml.org,2002:"

    enum Failure: Error {
        case badTag(String, text: String)
        case unsupportedTag(String)
    }

    /// Resolves one scalar. `tag` is libyaml's expanded tag (nil when none was written);
    /// quoted and block scalars without a tag are strings.
    static func resolve(_ text: String, tag: String?, isQuoted: Bool) throws(Failure) -> JSONValue {
        guard let tag, tag != "!" else {
            return isQuoted || tag == "!" ? .string(text) : resolvePlain(text)
        }
        guard tag.hasPrefix(tagPrefix) else { throw .unsupportedTag(tag) }
        let name = String(tag.dropFirst(tagPrefix.count))
        switch name {
        case "str":
            return .string(text)
        case "null":
            guard let v = null(text) else { throw .badTag("!!null", text: text) }
            return v
        case "bool":
            guard let v = bool(text) else { throw .badTag("!!bool", text: text) }
            return v
        case "int":
            guard let v = int(text) else { throw .badTag("!!int", text: text) }
            return v
        case "float":
            if let v = float(text) { return v }
            if let v = int(text) { return .number(v.doubleValue ?? 0) }
            throw .badTag("!!float", text: text)
        default:
            throw .unsupportedTag("!!" + name)
        }
    }

    /// Plain-scalar resolution: null, bool, int, float, else string.
    static func resolvePlain(_ text: String) -> JSONValue {
        if let v = null(text) { return v }
        if let v = bool(text) { return v }
        if let v = int(text) { return v }
        if let v = float(text) { return v }
        return .string(text)
    }

    static func null(_ text: String) -> JSONValue? {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        default: return nil
        }
    }

    static func bool(_ text: String) -> JSONValue? {
        switch text {
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: return nil
        }
    }

    /// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`. A decimal integer beyond Int64 becomes a float.
    static func int(_ text: String) -> JSONValue? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        if bytes.count > 2, bytes[0] == UInt8(ascii: "0"), bytes[1] == UInt8(ascii: "o") || bytes[1] == UInt8(ascii: "x") {
            let radix = bytes[1] == UInt8(ascii: "o") ? 8 : 16
            guard let v = Int64(String(text.dropFirst(2)), radix: radix), !text.dropFirst(2).hasPrefix("-"),
                  !text.dropFirst(2).hasPrefix("+") else { return nil }
            return .integer(v)
        }
        var digits = bytes[...]
        if digits.first == UInt8(ascii: "-") || digits.first == UInt8(ascii: "+") { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        if let v = Int64(text) { return .integer(v) }
        return Double(text).map { .number($0) }
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?\.(inf|Inf|INF)`, `\.(nan|NaN|NAN)`.
    static func float(_ text: String) -> JSONValue? {
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .number(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .number(-.infinity)
        case ".nan", ".NaN", ".NAN": return .number(.nan)
        default: break
        }
        let b = Array(text.utf8)
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        var mantissaDigits = 0
        while i < b.count, isDigit(b[i]) { i += 1; mantissaDigits += 1 }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var fraction = 0
            while i < b.count, isDigit(b[i]) { i += 1; fraction += 1 }
            // `.5` needs fraction digits; `1.` is allowed.
            if mantissaDigits == 0 && fraction == 0 { return nil }
            mantissaDigits += fraction
        }
        guard mantissaDigits > 0 else { return nil }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
            var exponent = 0
            while i < b.count, isDigit(b[i]) { i += 1; exponent += 1 }
            guard exponent > 0 else { return nil }
        }
        guard i == b.count else { return nil }
        // Swift's Double(String) wants a digit before '.', so normalise "1." / ".5" / "-.5".
        var normalised = text
        if normalised.hasSuffix(".") { normalised += "0" }
        normalised = normalised.replacingOccurrences(of: "-.", with: "-0.").replacingOccurrences(of: "+.", with: "+0.")
        if normalised.hasPrefix(".") { normalised = "0" + normalised }
        normalised = normalised.replacingOccurrences(of: ".e", with: ".0e").replacingOccurrences(of: ".E", with: ".0E")
        return Double(normalised).map { .number($0) }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}

extension JSONValue {
    /// The value written as a YAML/JSON scalar (`.nan`, `.inf`, `1.5`, `3`, `true`, `null`);
    /// collections as compact JSON-like flow text.
    public var yamlText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return String(i)
        case .number(let d):
            if d.isNaN { return ".nan" }
            if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }
            return String(d)
        case .string(let s): return JSONValue.quoted(s)
        case .array(let items): return "[" + items.map(\.yamlText).joined(separator: ", ") + "]"
        case .object(let o):
            return "{" + o.keys.sorted().map { JSONValue.quoted($0) + ": " + (o[$0]?.yamlText ?? "null") }
                .joined(separator: ", ") + "}"
        }
    }

    /// A double-quoted string with JSON escapes (the canonical JSON writer's).
    static func quoted(_ s: String) -> String {
        var out = ""
        CanonicalJSON.writeString(s, into: &out)
        return out
    }
}
