/// Splits a template into text and tag tokens with Jinja2's whitespace rules as transformers
/// configures them (jinja2 `Lexer`, environment `trim_blocks=True, lstrip_blocks=True`):
/// - `{%- ... -%}`, `{{- -}}`, `{#- -#}` strip all whitespace on that side;
/// - trim_blocks: the first newline after a block or comment tag is dropped;
/// - lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag are
///   dropped (not before `{{`, and not when the tag opens with `{%+`).
struct Token {
    enum Kind: Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case end
    }
    var kind: Kind
    var location: SourceLocation
}

struct Lexer {
    let name: String
    let source: [Unicode.Scalar]
    var trimBlocks = true
    var lstripBlocks = true

    init(_ text: String, name: String) {
        self.name = name
        // Jinja2 normalises newlines to "\n" (keep_trailing_newline=False drops one final newline).
        var scalars = Array(text.replacingCRLF().unicodeScalars)
        if scalars.last == "\n" { scalars.removeLast() }
        self.source = scalars
    }

    private var lineStarts: [Int] {
        var starts = [0]
        for (i, c) in source.enumerated() where c == "\n" { starts.append(i + 1) }
        return starts
    }

    func location(_ position: Int, _ lineStarts: [Int]) -> SourceLocation {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= position { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(line: lo + 1, column: position - lineStarts[lo] + 1)
    }

    func syntaxError(_ message: String, at position: Int) -> TemplateError {
        .syntax(template: name, location: location(position, lineStarts), message: message)
    }

    func tokenize() throws -> [Token] {
        let starts = lineStarts
        var tokens: [Token] = []
        var pos = 0
        let n = source.count
        func at(_ i: Int) -> Unicode.Scalar? { i < n ? source[i] : nil }
        func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" }

        while pos < n {
            // Next tag opening.
            var start = pos
            var opener: Unicode.Scalar? = nil
            while start + 1 < n {
                if source[start] == "{", let c = at(start + 1), c == "{" || c == "%" || c == "#" { opener = c; break }
                start += 1
            }
            guard let kind = opener else {
                tokens.append(Token(kind: .text(String(String.UnicodeScalarView(source[pos..<n]))), location: location(pos, starts)))
                break
            }
            var text = Array(source[pos..<start])
            let modifier = at(start + 2)
            if modifier == "-" {
                while let last = text.last, isSpace(last) { text.removeLast() }
            } else if lstripBlocks, kind != "{", modifier != "+" {
                // Only whitespace between the line start and the tag: drop it.
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                let atLineStart = lineStart > 0 || pos == 0 || source[pos - 1] == "\n"
                if atLineStart, text[lineStart...].allSatisfy({ $0 == " " || $0 == "\t" }) {
                    text.removeSubrange(lineStart...)
                }
            }
            if !text.isEmpty {
                tokens.append(Token(kind: .text(String(String.UnicodeScalarView(text))), location: location(pos, starts)))
            }
            var p = start + 2 + (modifier == "-" || modifier == "+" ? 1 : 0)

            if kind == "#" {
                // Comment: skip to "#}".
                var close = p
                while close + 1 < n, !(source[close] == "#" && source[close + 1] == "}") { close += 1 }
                guard close + 1 < n else { throw syntaxError("missing end of comment tag", at: start) }
                let strip = close > p && source[close - 1] == "-"
                p = close + 2
                if strip { while let c = at(p), isSpace(c) { p += 1 } } else if trimBlocks, at(p) == "\n" { p += 1 }
                pos = p
                continue
            }

            let isBlock = kind == "%"
            tokens.append(Token(kind: isBlock ? .blockBegin : .variableBegin, location: location(start, starts)))
            var depth = 0
            var closed = false
            let tagTokenStart = tokens.count
            while p < n {
                let c = source[p]
                if isSpace(c) { p += 1; continue }
                // Tag end, only outside brackets (a dict literal's "}}" is not an end).
                let closer: Unicode.Scalar = isBlock ? "%" : "}"
                if depth == 0 {
                    if (c == "-" || c == "+"), at(p + 1) == closer, at(p + 2) == "}" {
                        tokens.append(Token(kind: isBlock ? .blockEnd : .variableEnd, location: location(p, starts)))
                        p += 3
                        if c == "-" { while let s = at(p), isSpace(s) { p += 1 } }
                        closed = true; break
                    }
                    if c == closer, at(p + 1) == "}" {
                        tokens.append(Token(kind: isBlock ? .blockEnd : .variableEnd, location: location(p, starts)))
                        p += 2
                        if isBlock, trimBlocks, at(p) == "\n" { p += 1 }
                        closed = true; break
                    }
                }
                let here = location(p, starts)
                if c == "_" || c.properties.isAlphabetic && c.isASCII {
                    var q = p
                    while q < n, source[q] == "_" || source[q].isASCII && (source[q].properties.isAlphabetic || ("0"..."9").contains(source[q])) { q += 1 }
                    tokens.append(Token(kind: .name(String(String.UnicodeScalarView(source[p..<q]))), location: here))
                    p = q
                } else if ("0"..."9").contains(c) {
                    let (kind, next) = try number(from: p)
                    tokens.append(Token(kind: kind, location: here)); p = next
                } else if c == "'" || c == "\"" {
                    let (value, next) = try string(from: p)
                    tokens.append(Token(kind: .string(value), location: here)); p = next
                } else {
                    let three = p + 1 < n ? String(String.UnicodeScalarView(source[p...p + 1])) : ""
                    let op: String
                    if ["//", "**", "==", "!=", ">=", "<="].contains(three) { op = three } else { op = String(Character(c)) }
                    guard "+-*/%~<>=.,:|()[]{}!".unicodeScalars.contains(c) else {
                        throw syntaxError("unexpected character '\(Character(c))'", at: p)
                    }
                    if op == "(" || op == "[" || op == "{" { depth += 1 }
                    if op == ")" || op == "]" || op == "}" {
                        if depth == 0 { throw syntaxError("unexpected '\(op)'", at: p) }
                        depth -= 1
                    }
                    tokens.append(Token(kind: .op(op), location: here))
                    p += op.unicodeScalars.count
                }
            }
            guard closed else {
                throw syntaxError(isBlock ? "unexpected end of template: missing '%}'" : "unexpected end of template: missing '}}'", at: start)
            }
            pos = p
            // {% raw %} ... {% endraw %}: the body is text, verbatim.
            if isBlock, tokens.count == tagTokenStart + 2, case .name("raw") = tokens[tagTokenStart].kind {
                tokens.removeLast(3)
                guard let (body, after) = rawBody(from: pos) else { throw syntaxError("missing endraw for raw block", at: start) }
                tokens.append(Token(kind: .text(body), location: location(pos, starts)))
                pos = after
            }
        }
        tokens.append(Token(kind: .end, location: location(n, starts)))
        return tokens
    }

    /// The text of a raw block starting at `position`, and the position after its `{% endraw %}`.
    private func rawBody(from position: Int) -> (String, Int)? {
        var i = position
        let n = source.count
        while i + 1 < n {
            if source[i] == "{", source[i + 1] == "%" {
                var j = i + 2
                let stripBefore = j < n && source[j] == "-"
                if j < n, source[j] == "-" || source[j] == "+" { j += 1 }
                while j < n, source[j] == " " || source[j] == "\t" || source[j] == "\n" { j += 1 }
                let word = Array("endraw".unicodeScalars)
                if j + word.count <= n, Array(source[j..<j + word.count]) == word {
                    j += word.count
                    while j < n, source[j] == " " || source[j] == "\t" || source[j] == "\n" { j += 1 }
                    var strip = false
                    if j < n, source[j] == "-" || source[j] == "+" { strip = source[j] == "-"; j += 1 }
                    if j + 1 < n, source[j] == "%", source[j + 1] == "}" {
                        var body = Array(source[position..<i])
                        if stripBefore { while let last = body.last, last == " " || last == "\t" || last == "\n" { body.removeLast() } }
                        var after = j + 2
                        if strip { while after < n, source[after] == " " || source[after] == "\t" || source[after] == "\n" { after += 1 } } else if trimBlocks, after < n, source[after] == "\n" { after += 1 }
                        return (String(String.UnicodeScalarView(body)), after)
                    }
                }
            }
            i += 1
        }
        return nil
    }

    private func number(from start: Int) throws -> (Token.Kind, Int) {
        var q = start
        let n = source.count
        func digits() { while q < n, ("0"..."9").contains(source[q]) || source[q] == "_" { q += 1 } }
        digits()
        var isFloat = false
        if q + 1 < n, source[q] == ".", ("0"..."9").contains(source[q + 1]) { isFloat = true; q += 1; digits() }
        if q < n, source[q] == "e" || source[q] == "E" {
            var r = q + 1
            if r < n, source[r] == "+" || source[r] == "-" { r += 1 }
            if r < n, ("0"..."9").contains(source[r]) { isFloat = true; q = r; digits() }
        }
        let text = String(String.UnicodeScalarView(source[start..<q])).replacingOccurrences(of: "_", with: "")
        if isFloat, let d = Double(text) { return (.float(d), q) }
        if let i = Int(text) { return (.integer(i), q) }
        throw syntaxError("integer literal \(text) is too large", at: start)
    }

    /// A quoted string with Python's escapes (Jinja2 decodes them with `unicode-escape`).
    private func string(from start: Int) throws -> (String, Int) {
        let quote = source[start]
        var q = start + 1
        var out = String.UnicodeScalarView()
        let n = source.count
        while q < n, source[q] != quote {
            var c = source[q]
            if c == "\\", q + 1 < n {
                q += 1
                c = source[q]
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "v": out.append("\u{0B}")
                case "\n": break
                case "x", "u", "U":
                    let width = c == "x" ? 2 : c == "u" ? 4 : 8
                    let hex = q + width < n ? String(String.UnicodeScalarView(source[(q + 1)...(q + width)])) : ""
                    guard let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                        throw syntaxError("invalid \\\(Character(c)) escape in string literal", at: q - 1)
                    }
                    out.append(scalar); q += width
                case "0"..."7":
                    var value: UInt32 = 0, k = 0
                    while k < 3, q < n, ("0"..."7").contains(source[q]) { value = value * 8 + (source[q].value - 48); q += 1; k += 1 }
                    q -= 1
                    out.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                default: out.append("\\"); out.append(c)   // Python keeps unknown escapes
                }
            } else {
                out.append(c)
            }
            q += 1
        }
        guard q < n else { throw syntaxError("unexpected end of string literal", at: start) }
        return (String(out), q + 1)
    }
}

extension String {
    func replacingCRLF() -> String {
        guard contains("\r") else { return self }
        var out = String.UnicodeScalarView()
        var previousCR = false
        for s in unicodeScalars {
            if s == "\r" { out.append("\n"); previousCR = true; continue }
            if s == "\n" && previousCR { previousCR = false; continue }
            previousCR = false
            out.append(s)
        }
        return String(out)
    }
}
