/// Jinja2's built-in filters and tests that chat templates use (jinja2/filters.py, tests.py),
/// plus transformers' `tojson` (json.dumps with ensure_ascii=False, no HTML escaping).
extension Builtins {
    typealias Arguments = ([Value], [(String, Value)])

    static func argument(_ args: Arguments, _ index: Int, _ name: String) -> Value? {
        if index < args.0.count { return args.0[index] }
        return args.1.first { $0.0 == name }?.1
    }

    static func length(_ value: Value) throws -> Int {
        switch value {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .array(let a), .tuple(let a): return a.count
        case .dict(let d): return d.count
        case .namespace(let n): return n.attributes.count
        default: throw TemplateError.type("object of type '\(value.typeName)' has no len()")
        }
    }

    static func filter(_ name: String, _ value: Value, _ args: Arguments, renderer: Renderer) throws -> Value {
        switch name {
        case "trim":
            return .string(Methods.strip(value.text, argument(args, 0, "chars").flatMap { if case .string(let s) = $0 { return s }; return nil },
                                         leading: true, trailing: true))
        case "length", "count": return .int(try length(value))
        case "list":
            return .array(try iterate(value))
        case "string": return .string(value.text)
        case "join":
            let separator = argument(args, 0, "d")?.text ?? ""
            var items = try iterate(value)
            if let attribute = argument(args, 1, "attribute") { items = try items.map { try item($0, attribute) } }
            return .string(items.map(\.text).joined(separator: separator))
        case "items":
            switch value {
            case .undefined: return .array([])
            case .dict(let d): return .array(d.pairs.map { .tuple([.string($0.0), $0.1]) })
            default: throw TemplateError.type("Can only get item pairs from a mapping.")
            }
        case "tojson":
            // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
            return .string(try JSON.dumps(value, ensureASCII: argument(args, 0, "ensure_ascii")?.truthy ?? false,
                                          indent: argument(args, 1, "indent"), separators: argument(args, 2, "separators"),
                                          sortKeys: argument(args, 3, "sort_keys")?.truthy ?? false))
        case "selectattr", "rejectattr", "select", "reject":
            let byAttribute = name.hasSuffix("attr")
            let positional = args.0
            var rest = positional
            var attribute: Value? = nil
            if byAttribute {
                guard !rest.isEmpty else { throw TemplateError.type("Missing parameter for attribute name") }
                attribute = rest.removeFirst()
            }
            let testName = rest.isEmpty ? nil : rest.removeFirst().text
            let keep = name.hasPrefix("select")
            return .array(try iterate(value).filter { element in
                let subject = try attribute.map { try lookupPath(element, $0) } ?? element
                let passed = try testName.map { try test($0, subject, rest) } ?? subject.truthy
                return passed == keep
            })
        case "map":
            if let attribute = args.1.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = args.1.first { $0.0 == "default" }?.1
                return .array(try iterate(value).map { element in
                    let v = try lookupPath(element, attribute)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard let filterName = args.0.first?.text else { throw TemplateError.type("map requires a filter name or attribute=") }
            let rest = (Array(args.0.dropFirst()), args.1)
            return .array(try iterate(value).map { try filter(filterName, $0, rest, renderer: renderer) })
        case "first":
            let items = try iterate(value)
            return items.first ?? .undefined(message: "No first item, sequence was empty.")
        case "last":
            let items = try iterate(value)
            return items.last ?? .undefined(message: "No last item, sequence was empty.")
        case "default", "d":
            let fallback = argument(args, 0, "default_value") ?? .string("")
            let boolean = argument(args, 1, "boolean")?.truthy ?? false
            if value.isUndefined || (boolean && !value.truthy) { return fallback }
            return value
        case "upper": return .string(value.text.uppercased())
        case "lower": return .string(value.text.lowercased())
        case "capitalize": return .string(Methods.capitalize(value.text))
        case "title": return .string(Methods.title(value.text))
        case "replace":
            guard let old = argument(args, 0, "old"), let new = argument(args, 1, "new") else { throw TemplateError.type("replace needs old and new") }
            return .string(Methods.replace(value.text, old.text, new.text, argument(args, 2, "count")?.integer ?? -1))
        case "int":
            switch value {
            case .int, .bool: return .int(value.integer ?? 0)
            case .double(let d): return .int(Int(d))
            case .string(let s): return Int(Methods.strip(s, nil, leading: true, trailing: true)).map(Value.int) ?? argument(args, 0, "default") ?? .int(0)
            default: return argument(args, 0, "default") ?? .int(0)
            }
        case "float":
            if let d = value.numeric { return .double(d) }
            if case .string(let s) = value, let d = Double(Methods.strip(s, nil, leading: true, trailing: true)) { return .double(d) }
            return argument(args, 0, "default") ?? .double(0)
        case "abs":
            switch try value.defined() {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            case let v: throw TemplateError.type("bad operand type for abs(): '\(v.typeName)'")
            }
        case "round":
            guard let d = try value.defined().numeric else { throw TemplateError.type("round needs a number") }
            let precision = argument(args, 0, "precision")?.integer ?? 0
            let method = argument(args, 1, "method")?.text ?? "common"
            if method == "common" {
                // Python's round(): the exact binary value rounded half-to-even, as printf does it.
                return .double(Double(String(format: "%.\(max(0, precision))f", d)) ?? d)
            }
            let scale = pow(10.0, Double(precision))
            return .double((d * scale).rounded(method == "ceil" ? .up : .down) / scale)
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try iterate(value).reversed())
        case "sort":
            let reverse = argument(args, 0, "reverse")?.truthy ?? false
            let caseSensitive = argument(args, 1, "case_sensitive")?.truthy ?? false
            let attribute = argument(args, 2, "attribute")
            func key(_ v: Value) throws -> Value {
                let k = try attribute.map { try lookupPath(v, $0) } ?? v
                if !caseSensitive, case .string(let s) = k { return .string(s.lowercased()) }
                return k
            }
            let keyed = try iterate(value).map { (try key($0), $0) }
            var failure: Error? = nil
            let sorted = keyed.enumerated().sorted { l, r in
                do {
                    if try compare("<", l.element.0, r.element.0) { return !reverse }
                    if try compare("<", r.element.0, l.element.0) { return reverse }
                } catch { failure = error }
                return l.offset < r.offset   // stable, as Python's sort
            }
            if let failure { throw failure }
            return .array(sorted.map(\.element.1))
        case "unique":
            var seen: [Value] = []
            for v in try iterate(value) where !seen.contains(where: { $0.equals(v) }) { seen.append(v) }
            return .array(seen)
        case "min", "max":
            let items = try iterate(value)
            guard var best = items.first else { return .undefined(message: "No aggregated item, sequence was empty.") }
            for v in items.dropFirst() where try compare(name == "min" ? "<" : ">", v, best) { best = v }
            return best
        case "sum":
            var total: Value = argument(args, 1, "start") ?? .int(0)
            for v in try iterate(value) {
                total = try binary("+", total, try argument(args, 0, "attribute").map { try lookupPath(v, $0) } ?? v)
            }
            return total
        case "wordcount":
            // Jinja2 counts regex `\w+` runs: letters, digits (str.isalnum) and underscores.
            var words = 0, inWord = false
            for c in value.text.unicodeScalars {
                let w = c == "_" || Methods.isAlphanumeric(c)
                if w && !inWord { words += 1 }
                inWord = w
            }
            return .int(words)
        case "indent":
            let width = argument(args, 0, "width")
            let pad = width.flatMap { if case .string(let s) = $0 { return s }; return nil } ?? String(repeating: " ", count: width?.integer ?? 4)
            let first = argument(args, 1, "first")?.truthy ?? false
            let blank = argument(args, 2, "blank")?.truthy ?? false
            let lines = value.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let body = lines.enumerated().map { i, line -> String in
                if i == 0 { return first ? pad + line : line }
                return line.isEmpty && !blank ? line : pad + line
            }
            return .string(body.joined(separator: "\n"))
        case "safe": return value
        case "escape", "e", "forceescape":
            var out = ""
            for c in value.text {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.append(c)
                }
            }
            return .string(out)
        case "attr":
            guard let n = args.0.first?.text else { throw TemplateError.type("attr needs a name") }
            return try attribute(value, n)
        case "dictsort":
            guard case .dict(let d) = value else { throw TemplateError.type("You can only sort by either 'key' or 'value'") }
            let byValue = argument(args, 1, "by")?.text == "value"
            let sorted = try d.pairs.sorted { l, r in
                try compare("<", byValue ? l.1 : .string(l.0.lowercased()), byValue ? r.1 : .string(r.0.lowercased()))
            }
            return .array(sorted.map { .tuple([.string($0.0), $0.1]) })
        case "batch":
            guard let size = argument(args, 0, "linecount")?.integer, size > 0 else { throw TemplateError.type("batch needs a positive size") }
            let items = try iterate(value)
            return .array(stride(from: 0, to: items.count, by: size).map { .array(Array(items[$0..<min($0 + size, items.count)])) })
        case "center":
            let width = argument(args, 0, "width")?.integer ?? 80
            let s = value.text, n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            let left = (width - n) / 2 + ((width - n) % 2 & width % 2)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: width - n - left))
        default:
            throw TemplateError.type("No filter named '\(name)'.")
        }
    }

    /// An attribute name that may be dotted (`"function.name"`) or an integer index, as
    /// `selectattr`/`map(attribute=)`/`sort(attribute=)` accept.
    static func lookupPath(_ value: Value, _ path: Value) throws -> Value {
        if let i = path.integer { return try item(value, .int(i)) }
        var v = value
        for part in path.text.split(separator: ".") {
            v = try item(v, Int(part).map(Value.int) ?? .string(String(part)))
        }
        return v
    }

    static func test(_ name: String, _ value: Value, _ args: [Value]) throws -> Bool {
        func other() throws -> Value {
            guard let a = args.first else { throw TemplateError.type("test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean": if case .bool = value { return true }; return false
        case "true": if case .bool(true) = value { return true }; return false
        case "false": if case .bool(false) = value { return true }; return false
        case "integer": if case .int = value { return true }; return false
        case "float": if case .double = value { return true }; return false
        case "number": return value.numeric != nil
        case "string": if case .string = value { return true }; return false
        case "mapping": if case .dict = value { return true }; return false
        case "iterable":
            switch value { case .string, .array, .tuple, .dict, .undefined: return true; default: return false }
        case "sequence":
            switch value { case .string, .array, .tuple, .dict, .undefined: return true; default: return false }
        case "callable": if case .function = value { return true }; return false
        case "equalto", "eq", "==": return value.equals(try other())
        case "ne", "!=": return !value.equals(try other())
        case "lt", "lessthan", "<": return try compare("<", value, try other())
        case "le", "<=": return try compare("<=", value, try other())
        case "gt", "greaterthan", ">": return try compare(">", value, try other())
        case "ge", ">=": return try compare(">=", value, try other())
        case "in": return try contains(try other(), value)
        case "sameas":
            let o = try other()
            switch (value, o) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "odd", "even", "divisibleby":
            guard let i = try value.defined().integer else { throw TemplateError.type("test '\(name)' needs an integer") }
            if name == "odd" { return i % 2 != 0 }
            if name == "even" { return i % 2 == 0 }
            guard let d = try other().integer, d != 0 else { throw TemplateError.type("divisibleby needs a non-zero integer") }
            return i % d == 0
        case "lower", "upper": return try Methods.stringMethod(value.text, "is" + name)?.call([]).truthy ?? false
        case "escaped": return false
        default: throw TemplateError.type("No test named '\(name)'.")
        }
    }
}

import Foundation
