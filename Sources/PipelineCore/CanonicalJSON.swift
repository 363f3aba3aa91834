import Foundation

/// Canonical JSON text of a `JSONValue`, the byte string hashed into stage keys.
///
/// Rules (in the spirit of RFC 8785, JSON Canonicalization Scheme):
/// - object keys sorted by Unicode code point (scalar values), no whitespace anywhere;
/// - integers written as integers (`3`);
/// - floats in the shortest text that round-trips (Swift's `Double.description` is shortest
///   round-trip), normalised: an integral float keeps a trailing `.0` so `3.0` and `3` stay
///   distinct (the schema keeps them distinct too); the exponent is lowercase with no `+`
///   and no leading zeros (`1e-05` -> `1e-5`, `1e+20` -> `1e20`); `-0.0` is written `0.0`;
/// - strings escape only `"`, `\`, and control characters below U+0020 (`\b \f \n \r \t`,
///   others as `\u00XX` lowercase hex); everything else is written as UTF-8.
/// Non-finite numbers cannot occur (the validator rejects them); they are written as `null`
/// so that this function never traps.
public enum CanonicalJSON {
    public static func string(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out)
        return out
    }

    public static func data(_ value: JSONValue) -> Data { Data(string(value).utf8) }

    static func write(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let i): out += String(i)
        case .number(let d): out += number(d)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            let keys = members.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out += "," }
                writeString(key, into: &out)
                out += ":"
                write(members[key]!, into: &out)
            }
            out += "}"
        }
    }

    /// Shortest round-trip text of a finite double, normalised as documented above.
    public static func number(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == 0 { return "0.0" }
        var text = d.description            // e.g. "0.0005", "1e-05", "1e+20", "12.5"
        guard let eIndex = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        let mantissa = String(text[..<eIndex])
        var exponent = String(text[text.index(after: eIndex)...])
        var negative = false
        if exponent.hasPrefix("+") { exponent.removeFirst() } else if exponent.hasPrefix("-") { negative = true; exponent.removeFirst() }
        while exponent.count > 1 && exponent.hasPrefix("0") { exponent.removeFirst() }
        text = mantissa + "e" + (negative ? "-" : "") + exponent
        return text
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Short human text of a value for plan reasons (`lr 0.0005 -> 0.0001`): canonical JSON,
    /// except that strings are shown bare when they are simple words.
    public static func displayText(_ value: JSONValue?) -> String {
        guard let value else { return "(unset)" }
        if case .string(let s) = value, !s.isEmpty,
           s.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "._-/".unicodeScalars.contains($0) }) {
            return s
        }
        return string(value)
    }
}
