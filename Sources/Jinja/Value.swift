import Foundation

/// A template value, with Python's semantics as Jinja2 (and so transformers' chat templates) sees them.
///
/// Strings are compared, sliced and measured by Unicode scalars (Python code points), never by
/// Swift's grapheme clusters or canonical equivalence: `len("e\u{301}")` is 2 in a template.
public enum Value {
    /// A missing name, key or attribute. Rendering it gives ""; using it in arithmetic, as a
    /// sequence to index or an object to read raises `UndefinedError` with `message`.
    case undefined(message: String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// Python list (and tuple: templates cannot tell them apart except by `repr`).
    case array([Value])
    /// Python tuple: `(a, b)` and the bare `a, b` form. Acts as a list everywhere except `repr`
    /// (`('a', 1)`), `==` (a tuple never equals a list) and its type name.
    case tuple([Value])
    case dict(Dict)
    case namespace(Namespace)
    case function(Function)

    public static func undefinedName(_ name: String) -> Value { .undefined(message: "'\(name)' is undefined") }
}

/// An insertion-ordered dictionary with string keys (Python dicts keep insertion order, and
/// `tojson` writes keys in that order).
public struct Dict {
    public private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]
    public init() {}
    public init(_ pairs: [(String, Value)]) { for (k, v) in pairs { self[k] = v } }
    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
    public var count: Int { keys.count }
    public var pairs: [(String, Value)] { keys.map { ($0, storage[$0]!) } }
}

/// `namespace(...)`: the one mutable object a template can write to from inside a loop.
public final class Namespace {
    public var attributes: Dict
    init(_ attributes: Dict) { self.attributes = attributes }
}

/// A callable: a global (`range`, `raise_exception`), a bound method (`"a".split`) or a macro.
public final class Function {
    public let name: String
    let body: (_ positional: [Value], _ keywords: [(String, Value)]) throws -> Value
    public init(_ name: String, _ body: @escaping (_ positional: [Value], _ keywords: [(String, Value)]) throws -> Value) {
        self.name = name; self.body = body
    }
    func call(_ positional: [Value], _ keywords: [(String, Value)] = []) throws -> Value { try body(positional, keywords) }
}

extension Value {
    public init(_ string: String) { self = .string(string) }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }

    /// Python truthiness; an undefined value is false.
    public var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.unicodeScalars.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .function: return true
        }
    }

    /// Python's type name, as it appears in error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        }
    }

    /// Jinja's `object_type_repr`, used in "'dict object' has no attribute 'content'".
    var objectTypeDescription: String {
        if case .none = self { return "None" }
        return "\(typeName) object"
    }

    /// Throws the value's own error if it is undefined: what Jinja does when an undefined value
    /// is used as an operand, indexed, called or read from.
    func defined() throws -> Value {
        if case .undefined(let message) = self { throw TemplateError.undefined(message) }
        return self
    }

    /// `str(value)`: what `{{ value }}`, `~` and `|string` write.
    public var text: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python's `repr`, used inside containers: `['a', 1, None]`, `{'k': True}`.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return PythonFloat.repr(d)
        case .string(let s): return PythonString.repr(s)
        case .array(let a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .tuple(let a): return "(" + a.map(\.repr).joined(separator: ", ") + (a.count == 1 ? ",)" : ")")
        case .dict(let d): return "{" + d.pairs.map { PythonString.repr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace(let n): return "<Namespace " + Value.dict(n.attributes).repr + ">"
        case .function(let f): return "<function \(f.name)>"
        }
    }

    /// Python `==`: numbers compare by value across int/float/bool, containers element-wise,
    /// strings by code points. Two undefined values are equal (Jinja's `Undefined.__eq__`).
    func equals(_ other: Value) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.array(let a), .array(let b)), (.tuple(let a), .tuple(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.count == b.count && a.pairs.allSatisfy { key, value in b[key].map { value.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.function(let a), .function(let b)): return a === b
        default:
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }

    /// The value as a number, if it is one (bool counts, as in Python).
    var numeric: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var integer: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }
}

/// Python's `str.__repr__`: single quotes unless the text holds a single quote and no double quote.
enum PythonString {
    static func repr(_ s: String) -> String {
        let useDouble = s.contains("'") && !s.contains("\"")
        let quote: Character = useDouble ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "'" where !useDouble: out += "\\'"
            default:
                if !isPrintable(scalar) {
                    let v = scalar.value
                    out += v < 0x100 ? "\\x" + hex(v, 2) : v < 0x10000 ? "\\u" + hex(v, 4) : "\\U" + hex(v, 8)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append(quote)
        return out
    }

    /// Python `str.isprintable` for one code point: not a control, format, surrogate, private-use,
    /// unassigned or separator character (the ASCII space excepted).
    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator: return false
        default: return true
        }
    }

    static func hex(_ value: UInt32, _ width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// Python `str.isspace` for one code point: Unicode White_Space plus the information separators.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1c...0x1f).contains(scalar.value)
    }
}

/// Python's `float.__repr__`: the shortest round-tripping digits, exponent form outside [1e-4, 1e16).
enum PythonFloat {
    static func repr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == d.rounded(), abs(d) < 1e16 {
            // Swift writes 1e+15 as "1e+15"; Python writes "1000000000000000.0".
            return String(format: "%.1f", d)
        }
        let swift = "\(d)"   // shortest round-trip digits, like Python
        guard let e = swift.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return swift }
        let mantissa = swift[..<e]
        var exponent = String(swift[swift.index(after: e)...])
        var sign = "+"
        if exponent.hasPrefix("-") { sign = "-"; exponent.removeFirst() } else if exponent.hasPrefix("+") { exponent.removeFirst() }
        guard let power = Int(exponent) else { return swift }
        if sign == "-" && power <= 4 || sign == "+" && power < 16 {
            return String(format: "%.17g", d)   // rare: keep a plain form
        }
        return mantissa + "e" + sign + (power < 10 ? "0" : "") + String(power)
    }
}
