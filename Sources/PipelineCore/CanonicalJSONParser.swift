import Foundation

/// A small strict JSON (RFC 8259) parser used to read back the cache's own records
/// (action records, stage records, run records), which are written as canonical JSON.
/// Integers without fraction/exponent that fit Int64 become `.integer`, other numbers `.number`.
enum CanonicalJSONParser {
    struct Failure: Error, LocalizedError {
        let offset: Int
        let reason: String
        var errorDescription: String? { "invalid JSON at byte \(offset): \(reason)" }
    }

    static func parse(_ data: Data) throws -> JSONValue {
        let bytes = [UInt8](data)
        var i = 0
        let value = try parseValue(bytes, &i)
        skipSpace(bytes, &i)
        guard i == bytes.count else { throw Failure(offset: i, reason: "trailing characters") }
        return value
    }

    private static func skipSpace(_ b: [UInt8], _ i: inout Int) {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private static func expect(_ literal: String, _ b: [UInt8], _ i: inout Int) throws {
        let l = Array(literal.utf8)
        guard i + l.count <= b.count, Array(b[i..<(i + l.count)]) == l else { throw Failure(offset: i, reason: "expected \(literal)") }
        i += l.count
    }

    private static func parseValue(_ b: [UInt8], _ i: inout Int) throws -> JSONValue {
        skipSpace(b, &i)
        guard i < b.count else { throw Failure(offset: i, reason: "unexpected end") }
        switch b[i] {
        case UInt8(ascii: "n"): try expect("null", b, &i); return .null
        case UInt8(ascii: "t"): try expect("true", b, &i); return .bool(true)
        case UInt8(ascii: "f"): try expect("false", b, &i); return .bool(false)
        case UInt8(ascii: "\""): return .string(try parseString(b, &i))
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try parseValue(b, &i))
                skipSpace(b, &i)
                guard i < b.count else { throw Failure(offset: i, reason: "unterminated array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw Failure(offset: i, reason: "expected , or ]")
            }
        case UInt8(ascii: "{"):
            i += 1
            var members: [String: JSONValue] = [:]
            skipSpace(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace(b, &i)
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Failure(offset: i, reason: "expected a key") }
                let key = try parseString(b, &i)
                skipSpace(b, &i)
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw Failure(offset: i, reason: "expected :") }
                i += 1
                members[key] = try parseValue(b, &i)
                skipSpace(b, &i)
                guard i < b.count else { throw Failure(offset: i, reason: "unterminated object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw Failure(offset: i, reason: "expected , or }")
            }
        default:
            return try parseNumber(b, &i)
        }
    }

    private static func parseNumber(_ b: [UInt8], _ i: inout Int) throws -> JSONValue {
        let start = i
        var isFloat = false
        while i < b.count {
            let c = b[i]
            if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") { i += 1; continue }
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { isFloat = true; i += 1; continue }
            break
        }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        if !isFloat, let v = Int64(text) { return .integer(v) }
        guard !text.isEmpty, let d = Double(text), d.isFinite else { throw Failure(offset: start, reason: "invalid number") }
        return .number(d)
    }

    private static func parseString(_ b: [UInt8], _ i: inout Int) throws -> String {
        i += 1  // opening quote
        var out = [UInt8]()
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            guard i + 1 < b.count else { break }
            let e = b[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(b, &i)
                if (0xD800..<0xDC00).contains(scalar), i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let low = try hex4(b, &i)
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw Failure(offset: i, reason: "invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw Failure(offset: i, reason: "invalid escape")
            }
        }
        throw Failure(offset: i, reason: "unterminated string")
    }

    private static func hex4(_ b: [UInt8], _ i: inout Int) throws -> UInt32 {
        guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16) else {
            throw Failure(offset: i, reason: "invalid \\u escape")
        }
        i += 4
        return v
    }
}
