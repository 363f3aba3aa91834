/// Python's operators and Jinja2's attribute/item lookup on template values.
enum Builtins {
    /// `for x in value`: lists, a dict's keys, a string's characters; undefined iterates as empty.
    static func iterate(_ value: Value) throws -> [Value] {
        switch value {
        case .undefined: return []
        case .array(let a), .tuple(let a): return a
        case .dict(let d): return d.keys.map(Value.string)
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: throw TemplateError.type("'\(value.typeName)' object is not iterable")
        }
    }

    /// `value.name`: Jinja2 tries the Python attribute first (a dict's `items`, a string's
    /// `strip`), then the item.
    static func attribute(_ value: Value, _ name: String) throws -> Value {
        switch try value.defined() {
        case .dict(let d):
            if let method = Methods.method(of: value, named: name) { return method }
            return d[name] ?? .undefined(message: "'dict object' has no attribute '\(name)'")
        case .namespace(let n):
            return n.attributes[name] ?? .undefined(message: "'Namespace object' has no attribute '\(name)'")
        default:
            if let method = Methods.method(of: value, named: name) { return method }
            return .undefined(message: "'\(value.objectTypeDescription)' has no attribute '\(name)'")
        }
    }

    /// `value[key]`: Jinja2 tries the item first, then (for a string key) the attribute.
    static func item(_ value: Value, _ key: Value) throws -> Value {
        let object = try value.defined()
        switch (object, key) {
        case (.dict(let d), .string(let k)):
            if let v = d[k] { return v }
            return try attribute(object, k)
        case (.array(let a), _), (.tuple(let a), _):
            guard let i = key.integer else {
                if case .string(let k) = key { return try attribute(object, k) }
                throw TemplateError.type("\(object.typeName) indices must be integers or slices, not \(key.typeName)")
            }
            let j = i < 0 ? a.count + i : i
            return a.indices.contains(j) ? a[j] : .undefined(message: "'\(object.typeName) object' has no element \(i)")
        case (.string(let s), _):
            guard let i = key.integer else {
                if case .string(let k) = key { return try attribute(object, k) }
                throw TemplateError.type("string indices must be integers, not '\(key.typeName)'")
            }
            let scalars = Array(s.unicodeScalars)
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined(message: "'str object' has no element \(i)")
        case (_, .string(let k)):
            return try attribute(object, k)
        default:
            return .undefined(message: "'\(object.objectTypeDescription)' has no element \(key.repr)")
        }
    }

    /// `value[start:stop:step]` with Python's clamping and negative indices.
    static func slice(_ value: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws -> Value {
        func bound(_ v: Value?) throws -> Int? {
            guard let v, !(v.isNone) else { return nil }
            guard let i = try v.defined().integer else { throw TemplateError.type("slice indices must be integers or None") }
            return i
        }
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw TemplateError.type("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            var lo = try bound(start), hi = try bound(stop)
            if stepValue > 0 {
                var a = lo ?? 0, b = hi ?? count
                if a < 0 { a = max(0, a + count) }; if b < 0 { b = max(0, b + count) }
                a = min(a, count); b = min(b, count)
                return a < b ? Array(stride(from: a, to: b, by: stepValue)) : []
            }
            if let l = lo, l < 0 { lo = l + count }
            if let h = hi, h < 0 { hi = h + count }
            let a = min(lo ?? count - 1, count - 1)
            let b = hi.map { max($0, -1) } ?? -1
            return a > b ? Array(stride(from: a, to: b, by: stepValue)) : []
        }
        switch try value.defined() {
        case .array(let items): return .array(try indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(try indices(items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        case let v: throw TemplateError.type("'\(v.typeName)' object is not subscriptable")
        }
    }

    static func binary(_ op: String, _ l: Value, _ r: Value) throws -> Value {
        if op == "~" { return .string(l.text + r.text) }
        let a = try l.defined(), b = try r.defined()
        func unsupported() -> TemplateError {
            if op == "+", case .string = a { return .type("can only concatenate str (not \"\(b.typeName)\") to str") }
            if op == "+", case .array = a { return .type("can only concatenate list (not \"\(b.typeName)\") to list") }
            return .type("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .array(let x), .array(let y)): return .array(x + y)
        case ("+", .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case ("*", .string(let s), _) where b.integer != nil, ("*", _, .string(let s)) where a.integer != nil:
            let n = (b.integer ?? a.integer) ?? 0
            return .string(n > 0 ? String(repeating: s, count: n) : "")
        case ("*", .array(let items), _) where b.integer != nil:
            let n = b.integer ?? 0
            return .array(n > 0 ? Array(repeating: items, count: n).flatMap { $0 } : [])
        case ("*", .tuple(let items), _) where b.integer != nil:
            let n = b.integer ?? 0
            return .tuple(n > 0 ? Array(repeating: items, count: n).flatMap { $0 } : [])
        default: break
        }
        if let x = a.integer, let y = b.integer {
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "/":
                guard y != 0 else { throw TemplateError.type("division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw TemplateError.type("integer division or modulo by zero") }
                let q = x / y
                return .int((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw TemplateError.type("integer division or modulo by zero") }
                let m = x % y
                return .int(m != 0 && (m < 0) != (y < 0) ? m + y : m)
            case "**":
                if y >= 0 { var p = 1; for _ in 0..<min(y, 64) { p = p &* x }; return .int(p) }
                return .double(pow(Double(x), Double(y)))
            default: break
            }
        }
        if let x = a.numeric, let y = b.numeric {
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                guard y != 0 else { throw TemplateError.type("float division by zero") }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw TemplateError.type("float floor division by zero") }
                return .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw TemplateError.type("float modulo") }
                let m = x.truncatingRemainder(dividingBy: y)
                return .double(m != 0 && (m < 0) != (y < 0) ? m + y : m)
            case "**": return .double(pow(x, y))
            default: break
            }
        }
        throw unsupported()
    }

    static func compare(_ op: String, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "in": return try contains(b, a)
        case "not in": return !(try contains(b, a))
        default: break
        }
        let x = try a.defined(), y = try b.defined()
        let order: Int
        if let p = x.numeric, let q = y.numeric {
            order = p < q ? -1 : p > q ? 1 : 0
        } else if case .string(let s) = x, case .string(let t) = y {
            order = lexicographic(s, t)
        } else {
            throw TemplateError.type("'\(op)' not supported between instances of '\(x.typeName)' and '\(y.typeName)'")
        }
        switch op {
        case "<": return order < 0
        case ">": return order > 0
        case "<=": return order <= 0
        default: return order >= 0
        }
    }

    /// Python string ordering: by code point.
    static func lexicographic(_ s: String, _ t: String) -> Int {
        var i = s.unicodeScalars.makeIterator(), j = t.unicodeScalars.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let a?, let b?): if a != b { return a.value < b.value ? -1 : 1 }
            }
        }
    }

    /// `needle in haystack`.
    static func contains(_ haystack: Value, _ needle: Value) throws -> Bool {
        switch haystack {
        case .string(let s):
            guard case .string(let t) = try needle.defined() else {
                throw TemplateError.type("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return Methods.find(Array(t.unicodeScalars), in: Array(s.unicodeScalars), from: 0) != nil
        case .array(let items), .tuple(let items): return items.contains { $0.equals(needle) }
        case .dict(let d):
            guard case .string(let k) = needle else { return false }
            return d[k] != nil
        case .undefined: return false
        case .namespace(let n):
            guard case .string(let k) = needle else { return false }
            return n.attributes[k] != nil
        default: throw TemplateError.type("argument of type '\(haystack.typeName)' is not iterable")
        }
    }
}

import Foundation

extension Value {
    public var isNone: Bool { if case .none = self { return true }; return false }
}
