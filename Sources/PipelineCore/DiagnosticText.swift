import Foundation

/// How diagnostics describe values and types, in one place so every message reads the same:
/// `expected a number, found the string "fast"`.
extension JSONValue {
    /// "the string \"fast\"", "the integer 3", "the number 1.5", "the boolean true", "null",
    /// ".nan"/".inf" for non-finite numbers, "a mapping", "a list".
    public var foundDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "the boolean \(b)"
        case .integer(let i): return "the integer \(i)"
        case .number(let d): return d.isFinite ? "the number \(yamlText)" : yamlText
        case .string: return "the string \(yamlText)"
        case .array: return "a list"
        case .object: return "a mapping"
        }
    }

    /// A value as listed in `must be one of: nf4, fp4`: strings bare, everything else as written.
    var listedText: String {
        if case .string(let s) = self { return s }
        return yamlText
    }

    /// Numeric text for bounds messages (`must be >= 0 (found -1)`).
    var numberText: String { yamlText }
}

enum DiagnosticText {
    /// "a number", "an integer", ... for a JSON Schema `type` name.
    static func expected(type: String) -> String {
        switch type {
        case "null": return "null"
        case "boolean": return "a boolean"
        case "integer": return "an integer"
        case "number": return "a number"
        case "string": return "a string"
        case "array": return "a list"
        case "object": return "a mapping"
        default: return type
        }
    }

    /// "a string", "a string or a list", "a number, a string or null".
    static func expected(types: [String]) -> String {
        let names = types.map { expected(type: $0) }
        guard names.count > 1 else { return names.first ?? "nothing" }
        return names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
    }

    /// "1 item", "2 items".
    static func count(_ n: Int, _ noun: String) -> String {
        n == 1 ? "1 \(noun)" : "\(n) \(noun)s"
    }
}
