/// JSON in and out, the way the Python side sees it: `JSON.dumps` is `json.dumps` (key order
/// kept, `", "`/`": "` separators, `indent`, ensure_ascii off by default as transformers'
/// `tojson` sets it); `JSON.parse` keeps key order and tells integers (`1`) from floats (`1.0`).
public enum JSON {
    public static func dumps(_ value: Value, ensureASCII: Bool = false, indent: Value? = nil, separators: Value? = nil, sortKeys: Bool = false) throws -> String {
        var indentUnit: String? = nil
        switch indent {
        case nil, .none?: indentUnit = nil
        case .string(let s)?: indentUnit = s
        case let v?:
            guard let n = v.integer else { throw TemplateError.type("indent must be an integer or a string") }
            indentUnit = String(repeating: " ", count: max(0, n))
        }
        var itemSeparator = indentUnit == nil ? ", " : ","
        var keySeparator = ": "
        if let separators, !separators.isNone {
            let parts = try Builtins.iterate(separators)
            guard parts.count == 2 else { throw TemplateError.type("separators must be an (item_separator, key_separator) pair") }
            itemSeparator = parts[0].text; keySeparator = parts[1].text
        }
        var out = ""
        try write(value, into: &out, level: 0, indent: indentUnit, item: itemSeparator, key: keySeparator, sortKeys: sortKeys, ascii: ensureASCII)
        return out
    }

    private static func write(_ value: Value, into out: inout String, level: Int, indent: String?, item: String, key: String, sortKeys: Bool, ascii: Bool) throws {
        func newline(_ depth: Int) { if let indent { out += "\n" + String(repeating: indent, count: depth) } }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else { out += PythonFloat.repr(d) }
        case .string(let s): quote(s, into: &out, ascii: ascii)
        case .array(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, element) in items.enumerated() {
                if i > 0 { out += item }
                newline(level + 1)
                try write(element, into: &out, level: level + 1, indent: indent, item: item, key: key, sortKeys: sortKeys, ascii: ascii)
            }
            newline(level)
            out += "]"
        case .dict(let d):
            if d.count == 0 { out += "{}"; return }
            out += "{"
            let pairs = sortKeys ? d.pairs.sorted { Builtins.lexicographic($0.0, $1.0) < 0 } : d.pairs
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += item }
                newline(level + 1)
                quote(k, into: &out, ascii: ascii)
                out += key
                try write(v, into: &out, level: level + 1, indent: indent, item: item, key: key, sortKeys: sortKeys, ascii: ascii)
            }
            newline(level)
            out += "}"
        case .undefined(let message):
            _ = message
            throw TemplateError.type("Object of type Undefined is not JSON serializable")
        case .namespace: throw TemplateError.type("Object of type Namespace is not JSON serializable")
        case .function: throw TemplateError.type("Object of type function is not JSON serializable")
        }
    }

    static func quote(_ s: String, into out: inout String, ascii: Bool) {
        out += "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || ascii && c.value >= 0x7f {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += "\\u" + PythonString.hex(0xD800 + (v >> 10), 4) + "\\u" + PythonString.hex(0xDC00 + (v & 0x3FF), 4)
                    } else {
                        out += "\\u" + PythonString.hex(c.value, 4)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }

    public struct ParseError: Error, Equatable {
        public let offset: Int
        public let message: String
    }

    /// Parses JSON text into template values (objects keep their key order).
    public static func parse(_ text: String) throws -> Value {
        var p = JSONParser(Array(text.utf8))
        p.skipSpace()
        let value = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw ParseError(offset: p.i, message: "extra data after the JSON value") }
        return value
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var i = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() { while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 } }
    func fail(_ m: String) -> JSON.ParseError { JSON.ParseError(offset: i, message: m) }

    mutating func value() throws -> Value {
        guard i < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1; var d = Dict(); skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1; skipSpace()
                d[k] = try value()
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of JSON") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1; var items: [Value] = []; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of JSON") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try word("true"); return .bool(true)
        case UInt8(ascii: "f"): try word("false"); return .bool(false)
        case UInt8(ascii: "n"): try word("null"); return .none
        default: return try number()
        }
    }

    mutating func word(_ w: String) throws {
        let u = Array(w.utf8)
        guard i + u.count <= bytes.count, Array(bytes[i..<i + u.count]) == u else { throw fail("invalid literal") }
        i += u.count
    }

    mutating func number() throws -> Value {
        let start = i
        var isFloat = false
        while i < bytes.count, let c = Optional(bytes[i]), (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { isFloat = true }
            i += 1
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if !isFloat, let n = Int(text) { return .int(n) }
        if let d = Double(text), !text.isEmpty { return .double(d) }
        i = start
        throw fail("invalid value")
    }

    mutating func string() throws -> String {
        i += 1
        var out: [UInt8] = []
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { break }
                let e = bytes[i]
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"), bytes[i + 2] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out += Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                default: throw fail("invalid escape")
                }
                i += 1
            } else {
                out.append(c); i += 1
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 < bytes.count, let v = UInt32(String(decoding: bytes[(i + 1)...(i + 4)], as: UTF8.self), radix: 16) else { throw fail("invalid \\u escape") }
        i += 4
        return v
    }
}
