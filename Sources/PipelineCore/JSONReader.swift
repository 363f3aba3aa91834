import Foundation

/// A strict JSON (RFC 8259) reader producing the same `Node` tree as the YAML reader, with a
/// location on every value and key, so `qlora-run validate doc.json --schema s.json` points at
/// lines and columns too. Numbers keep the integer/float distinction: `3` is an integer,
/// `3.0` and `3e0` are floats (as JSON Schema's "integer" type still accepts 3.0).
///
/// Duplicate keys are reported like YAML's. Nesting deeper than `maxDepth` is an error, not a
/// stack overflow.
public enum JSONReader {
    public static let maxDepth = 512

    /// Reads a JSON file into a JSONValue (e.g. a schema).
    public static func read(contentsOf url: URL, displayName: String) throws(DiagnosticList) -> JSONValue {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: url))
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path) ? "it cannot be read" : "no such file"
            throw DiagnosticList([Diagnostic(location: nil, message: "cannot read '\(displayName)': \(reason)")])
        }
        return try document(bytes: bytes, displayName: displayName).value
    }

    public static func read(text: String, displayName: String) throws(DiagnosticList) -> JSONValue {
        try document(bytes: Array(text.utf8), displayName: displayName).value
    }

    /// Parses JSON into a located node tree.
    public static func document(bytes: [UInt8], displayName: String) throws(DiagnosticList) -> Document {
        var parser = JSONParser(bytes: bytes, file: displayName)
        let root: Node
        do throws(Diagnostic) {
            parser.skipWhitespace()
            root = try parser.parseValue(path: .root, depth: 0)
            parser.skipWhitespace()
            if parser.index < bytes.count { throw parser.error("unexpected text after the JSON value") }
        } catch {
            throw DiagnosticList(parser.diagnostics + [error])
        }
        if !parser.diagnostics.isEmpty { throw DiagnosticList(parser.diagnostics) }
        return Document(file: displayName, root: root)
    }
}

struct JSONParser {
    let bytes: [UInt8]
    let file: String
    var index = 0
    var line = 1
    var column = 1
    var diagnostics: [Diagnostic] = []

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
        // A UTF-8 byte order mark is not part of the text.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    var location: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    func error(_ message: String) -> Diagnostic { Diagnostic(location: location, message: "syntax error: " + message) }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Moves one byte; columns count characters, so UTF-8 continuation bytes do not advance them.
    mutating func advance() {
        let b = bytes[index]
        index += 1
        if b == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if b & 0xC0 != 0x80 {
            column += 1
        }
    }

    mutating func skipWhitespace() {
        while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { advance() }
    }

    mutating func expect(_ c: Character) throws(Diagnostic) {
        guard let b = current, b == c.asciiValue else { throw error("expected '\(c)', found \(describeCurrent)") }
        advance()
    }

    var describeCurrent: String {
        guard let b = current else { return "the end of the file" }
        if b < 0x80, b >= 0x20 { return "'\(Character(Unicode.Scalar(b)))'" }
        return String(format: "byte 0x%02X", b)
    }

    mutating func parseValue(path: DocumentPath, depth: Int) throws(Diagnostic) -> Node {
        guard depth < JSONReader.maxDepth else { throw error("nesting deeper than \(JSONReader.maxDepth) levels") }
        let start = location
        guard let b = current else { throw error("expected a value, found the end of the file") }
        switch b {
        case UInt8(ascii: "{"):
            advance()
            skipWhitespace()
            var entries: [Node.Entry] = []
            var seen: [String: SourceLocation] = [:]
            if current == UInt8(ascii: "}") { advance(); return Node(.mapping([]), location: start) }
            while true {
                skipWhitespace()
                let keyLocation = location
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key, found \(describeCurrent)") }
                let key = try parseString()
                if let first = seen[key] {
                    diagnostics.append(Diagnostic(location: keyLocation, path: path.display,
                                                  message: "duplicate key '\(key)' (first defined at \(first.lineColumn))"))
                } else {
                    seen[key] = keyLocation
                }
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                let value = try parseValue(path: path.appending(key), depth: depth + 1)
                entries.append(Node.Entry(key: key, keyLocation: keyLocation, value: value))
                skipWhitespace()
                if current == UInt8(ascii: ",") { advance(); continue }
                try expect("}")
                return Node(.mapping(entries), location: start)
            }
        case UInt8(ascii: "["):
            advance()
            skipWhitespace()
            var items: [Node] = []
            if current == UInt8(ascii: "]") { advance(); return Node(.sequence([]), location: start) }
            while true {
                skipWhitespace()
                items.append(try parseValue(path: path.appending(index: items.count), depth: depth + 1))
                skipWhitespace()
                if current == UInt8(ascii: ",") { advance(); continue }
                try expect("]")
                return Node(.sequence(items), location: start)
            }
        case UInt8(ascii: "\""):
            let text = try parseString()
            return Node(.scalar(Node.Scalar(text: text, isQuoted: true, value: .string(text))), location: start)
        case UInt8(ascii: "t"): return try literal("true", .bool(true), start)
        case UInt8(ascii: "f"): return try literal("false", .bool(false), start)
        case UInt8(ascii: "n"): return try literal("null", .null, start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber(start)
        default:
            throw error("expected a value, found \(describeCurrent)")
        }
    }

    mutating func literal(_ word: String, _ value: JSONValue, _ start: SourceLocation) throws(Diagnostic) -> Node {
        for c in word.utf8 {
            guard current == c else { throw error("expected '\(word)'") }
            advance()
        }
        return Node(.scalar(Node.Scalar(text: word, isQuoted: false, value: value)), location: start)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`; integers that overflow Int64 become floats.
    mutating func parseNumber(_ start: SourceLocation) throws(Diagnostic) -> Node {
        let begin = index
        var isFloat = false
        if current == UInt8(ascii: "-") { advance() }
        func digits(_ p: inout JSONParser) -> Int {
            var n = 0
            while let b = p.current, b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") { p.advance(); n += 1 }
            return n
        }
        let intStart = index
        let intDigits = digits(&self)
        guard intDigits > 0 else { throw error("expected digits in a number") }
        if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") { throw Diagnostic(location: start, message: "syntax error: a JSON number cannot have a leading zero") }
        if current == UInt8(ascii: ".") {
            advance()
            isFloat = true
            guard digits(&self) > 0 else { throw error("expected digits after the decimal point") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            advance()
            isFloat = true
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { advance() }
            guard digits(&self) > 0 else { throw error("expected digits in the exponent") }
        }
        let text = String(decoding: bytes[begin..<index], as: UTF8.self)
        let value: JSONValue
        if !isFloat, let i = Int64(text) {
            value = .integer(i)
        } else {
            value = .number(Double(text) ?? .nan)
        }
        return Node(.scalar(Node.Scalar(text: text, isQuoted: false, value: value)), location: start)
    }

    mutating func parseString() throws(Diagnostic) -> String {
        advance()  // opening quote
        var out: [UInt8] = []
        while true {
            guard let b = current else { throw error("unterminated string") }
            if b == UInt8(ascii: "\"") { advance(); break }
            if b < 0x20 { throw error("control character in a string (escape it, e.g. \\n)") }
            if b != UInt8(ascii: "\\") { out.append(b); advance(); continue }
            advance()
            guard let e = current else { throw error("unterminated string") }
            advance()
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
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), current == UInt8(ascii: "\\") {
                    advance()
                    try expect("u")
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("invalid UTF-16 surrogate pair") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape (lone surrogate)") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func hex4() throws(Diagnostic) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let b = current, let digit = Character(Unicode.Scalar(b)).hexDigitValue else { throw error("expected 4 hex digits after \\u") }
            value = value * 16 + UInt32(digit)
            advance()
        }
        return value
    }
}
