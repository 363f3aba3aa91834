/// The Python methods templates call on strings and dicts (`content.split('</think>')`,
/// `tool.items()`), with Python's exact semantics on code points.
enum Methods {
    static func method(of value: Value, named name: String) -> Value? {
        switch value {
        case .string(let s): return stringMethod(s, name).map(Value.function)
        case .dict(let d): return dictMethod(d, name).map(Value.function)
        case .array(let a), .tuple(let a): return listMethod(a, name).map(Value.function)
        default: return nil
        }
    }

    static func find(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from start: Int) -> Int? {
        if needle.isEmpty { return start <= haystack.count ? start : nil }
        guard haystack.count >= needle.count else { return nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0], Array(haystack[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Python `str.isalnum` for one code point: a letter (L*) or a numeric character.
    static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return c.properties.numericType != nil
        }
    }

    static func str(_ scalars: some Sequence<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(scalars)) }

    static func stringArgument(_ args: [Value], _ i: Int, _ method: String) throws -> String? {
        guard i < args.count else { return nil }
        switch args[i] {
        case .none: return nil
        case .string(let s): return s
        case let v: throw TemplateError.type("\(method)() argument must be str or None, not \(v.typeName)")
        }
    }

    /// Python `str.strip([chars])` and its one-sided forms.
    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func stripped(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? PythonString.isSpace(c) }
        var scalars = Array(s.unicodeScalars)[...]
        if leading { while let f = scalars.first, stripped(f) { scalars.removeFirst() } }
        if trailing { while let l = scalars.last, stripped(l) { scalars.removeLast() } }
        return str(scalars)
    }

    /// Python `str.split(sep=None, maxsplit=-1)`.
    static func split(_ s: String, _ separator: String?, _ maxSplit: Int) throws -> [String] {
        let scalars = Array(s.unicodeScalars)
        guard let separator else {
            var parts: [String] = []
            var i = 0
            while i < scalars.count {
                while i < scalars.count, PythonString.isSpace(scalars[i]) { i += 1 }
                if i == scalars.count { break }
                if maxSplit >= 0, parts.count == maxSplit {
                    var rest = Array(scalars[i...])
                    while let l = rest.last, PythonString.isSpace(l) { rest.removeLast() }
                    parts.append(str(rest)); return parts
                }
                let start = i
                while i < scalars.count, !PythonString.isSpace(scalars[i]) { i += 1 }
                parts.append(str(scalars[start..<i]))
            }
            return parts
        }
        let sep = Array(separator.unicodeScalars)
        guard !sep.isEmpty else { throw TemplateError.type("empty separator") }
        var parts: [String] = []
        var start = 0
        while maxSplit < 0 || parts.count < maxSplit, let at = find(sep, in: scalars, from: start) {
            parts.append(str(scalars[start..<at]))
            start = at + sep.count
        }
        parts.append(str(scalars[start...]))
        return parts
    }

    static func replace(_ s: String, _ old: String, _ new: String, _ count: Int) -> String {
        let scalars = Array(s.unicodeScalars), o = Array(old.unicodeScalars), r = Array(new.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0, done = 0
        if o.isEmpty {
            for c in scalars {
                if count < 0 || done < count { out += r; done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out += r }
            return str(out)
        }
        while let at = find(o, in: scalars, from: i), count < 0 || done < count {
            out += scalars[i..<at]; out += r; i = at + o.count; done += 1
        }
        out += scalars[i...]
        return str(out)
    }

    static func title(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        var previousCased = false
        for c in s.unicodeScalars {
            let cased = c.properties.isCased
            if cased {
                out.append(contentsOf: previousCased ? c.properties.lowercaseMapping.unicodeScalars : c.properties.titlecaseMapping.unicodeScalars)
            } else { out.append(c) }
            previousCased = cased || c.properties.isCaseIgnorable && previousCased
        }
        return String(out)
    }

    static func capitalize(_ s: String) -> String {
        var scalars = Array(s.unicodeScalars)[...]
        guard let first = scalars.popFirst() else { return "" }
        return first.properties.titlecaseMapping + str(scalars).lowercased()
    }

    static func prefixTest(_ s: String, _ args: [Value], suffix: Bool) throws -> Bool {
        guard let first = args.first else { throw TemplateError.type("\(suffix ? "endswith" : "startswith")() takes at least 1 argument (0 given)") }
        let candidates: [Value]
        if case .tuple(let a) = first { candidates = a } else if case .array(let a) = first { candidates = a } else { candidates = [first] }
        let scalars = Array(s.unicodeScalars)
        for candidate in candidates {
            guard case .string(let p) = candidate else {
                throw TemplateError.type("\(suffix ? "endswith" : "startswith") first arg must be str or a tuple of str, not \(candidate.typeName)")
            }
            let ps = Array(p.unicodeScalars)
            if ps.count <= scalars.count, (suffix ? Array(scalars.suffix(ps.count)) : Array(scalars.prefix(ps.count))) == ps { return true }
        }
        return false
    }

    static func stringMethod(_ s: String, _ name: String) -> Function? {
        let f: (([Value], [(String, Value)]) throws -> Value)
        switch name {
        case "strip", "lstrip", "rstrip":
            f = { args, _ in .string(strip(s, try stringArgument(args, 0, name), leading: name != "rstrip", trailing: name != "lstrip")) }
        case "split", "rsplit":
            f = { args, kw in
                let sep = try stringArgument(args, 0, name) ?? kw.first { $0.0 == "sep" }.flatMap { if case .string(let t) = $0.1 { return t }; return nil }
                let maxSplit = (args.count > 1 ? args[1].integer : kw.first { $0.0 == "maxsplit" }?.1.integer) ?? -1
                if name == "rsplit", maxSplit >= 0 {
                    // rsplit with a limit: split the reversed string, then reverse back.
                    let reversedSep = sep.map { str($0.unicodeScalars.reversed()) }
                    let parts = try split(str(s.unicodeScalars.reversed()), reversedSep, maxSplit)
                    return .array(parts.reversed().map { .string(str($0.unicodeScalars.reversed())) })
                }
                return .array(try split(s, sep, maxSplit).map(Value.string))
            }
        case "startswith": f = { args, _ in .bool(try prefixTest(s, args, suffix: false)) }
        case "endswith": f = { args, _ in .bool(try prefixTest(s, args, suffix: true)) }
        case "replace":
            f = { args, _ in
                guard args.count >= 2, case .string(let old) = args[0], case .string(let new) = args[1] else {
                    throw TemplateError.type("replace() takes two string arguments")
                }
                return .string(replace(s, old, new, args.count > 2 ? args[2].integer ?? -1 : -1))
            }
        case "upper": f = { _, _ in .string(s.uppercased()) }
        case "lower": f = { _, _ in .string(s.lowercased()) }
        case "title": f = { _, _ in .string(title(s)) }
        case "capitalize": f = { _, _ in .string(capitalize(s)) }
        case "find", "rfind", "index", "count":
            f = { args, _ in
                guard case .string(let t)? = args.first else { throw TemplateError.type("\(name)() argument must be str") }
                let h = Array(s.unicodeScalars), n = Array(t.unicodeScalars)
                var hits: [Int] = []
                var i = 0
                while let at = find(n, in: h, from: i) { hits.append(at); i = at + max(n.count, 1); if i > h.count { break } }
                switch name {
                case "count": return .int(hits.count)
                case "find": return .int(hits.first ?? -1)
                case "rfind": return .int(hits.last ?? -1)
                default:
                    guard let first = hits.first else { throw TemplateError.type("substring not found") }
                    return .int(first)
                }
            }
        case "join":
            f = { args, _ in
                guard let items = args.first else { throw TemplateError.type("join() takes exactly one argument (0 given)") }
                return .string(try Builtins.iterate(items).map { item -> String in
                    guard case .string(let t) = item else { throw TemplateError.type("sequence item: expected str instance, \(item.typeName) found") }
                    return t
                }.joined(separator: s))
            }
        case "splitlines":
            f = { _, _ in .array(s.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" }).map { .string(String($0)) }.dropLastIfEmpty(s)) }
        case "removeprefix", "removesuffix":
            f = { args, _ in
                guard case .string(let t)? = args.first else { throw TemplateError.type("\(name)() argument must be str") }
                let h = Array(s.unicodeScalars), n = Array(t.unicodeScalars)
                if name == "removeprefix", h.starts(with: n) { return .string(str(h.dropFirst(n.count))) }
                if name == "removesuffix", !n.isEmpty, Array(h.suffix(n.count)) == n { return .string(str(h.dropLast(n.count))) }
                return .string(s)
            }
        case "isdigit", "isalpha", "isspace", "isalnum", "islower", "isupper":
            f = { _, _ in
                let scalars = Array(s.unicodeScalars)
                guard !scalars.isEmpty else { return .bool(false) }
                switch name {
                case "isdigit": return .bool(scalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
                case "isalpha": return .bool(scalars.allSatisfy { isAlphanumeric($0) && $0.properties.numericType == nil })
                case "isalnum": return .bool(scalars.allSatisfy(isAlphanumeric))
                case "isspace": return .bool(scalars.allSatisfy(PythonString.isSpace))
                case "islower": return .bool(scalars.contains { $0.properties.isCased } && !scalars.contains { $0.properties.isUppercase })
                default: return .bool(scalars.contains { $0.properties.isCased } && !scalars.contains { $0.properties.isLowercase })
                }
            }
        default: return nil
        }
        return Function("str.\(name)", f)
    }

    static func dictMethod(_ d: Dict, _ name: String) -> Function? {
        switch name {
        case "items": return Function("dict.items") { _, _ in .array(d.pairs.map { .tuple([.string($0.0), $0.1]) }) }
        case "keys": return Function("dict.keys") { _, _ in .array(d.keys.map(Value.string)) }
        case "values": return Function("dict.values") { _, _ in .array(d.pairs.map(\.1)) }
        case "get":
            return Function("dict.get") { args, _ in
                guard let key = args.first else { throw TemplateError.type("get expected at least 1 argument, got 0") }
                if case .string(let k) = key, let v = d[k] { return v }
                return args.count > 1 ? args[1] : .none
            }
        default: return nil
        }
    }

    static func listMethod(_ a: [Value], _ name: String) -> Function? {
        switch name {
        case "count": return Function("list.count") { args, _ in .int(a.filter { $0.equals(args.first ?? .none) }.count) }
        case "index":
            return Function("list.index") { args, _ in
                guard let i = a.firstIndex(where: { $0.equals(args.first ?? .none) }) else { throw TemplateError.type("\((args.first ?? .none).repr) is not in list") }
                return .int(i)
            }
        default: return nil
        }
    }
}

extension Array where Element == Value {
    /// `"a\n".splitlines()` is ['a'], not ['a', ''].
    func dropLastIfEmpty(_ s: String) -> [Value] {
        if s.hasSuffix("\n"), case .string("")? = last { return Array(dropLast()) }
        if s.isEmpty { return [] }
        return self
    }
}
