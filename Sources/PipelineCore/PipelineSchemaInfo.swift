import Foundation

/// What the executor needs from the schema about one stage kind, read from the `x-` annotations
/// of `$defs/<kind>` in schemas/pipeline.schema.json: output type, implementation version, which fields are
/// stage references, external inputs, or external outputs, and the fields' defaults.
public struct StageKindInfo: Sendable, Equatable {
    public var kind: String
    public var outputType: String?
    public var implementationVersion: Int
    public var properties: [String: JSONValue]
    public var stageRefs: [String: [String]]        // field -> accepted artifact types
    /// field -> "file" | "directory" | "any". A nested input (an object alternative of a field, like
    /// attach_adapters' `init: {from: DIR}`) is keyed by its dotted path: `init.from`.
    public var inputPaths: [String: String]
    public var outputPaths: Set<String>
    /// field -> suffix (`x-output-file-suffix`): a destination ending so is one file, the artifact's
    /// only file (export's `to: model.gguf`); any other value is a directory, as for every output.
    public var outputFileSuffixes: [String: String] = [:]

    /// Every `$defs` entry whose `properties.kind.const` is a string.
    public static func all(in schema: JSONValue) -> [String: StageKindInfo] {
        guard let defs = schema["$defs"]?.objectValue else { return [:] }
        var result: [String: StageKindInfo] = [:]
        for (_, def) in defs {
            guard let kind = def["properties"]?["kind"]?["const"]?.stringValue else { continue }
            var info = StageKindInfo(kind: kind, outputType: def["x-output"]?.stringValue,
                                     implementationVersion: def["x-implementation-version"]?.intValue ?? 1,
                                     properties: [:], stageRefs: [:], inputPaths: [:], outputPaths: [])
            for (field, rawProperty) in def["properties"]?.objectValue ?? [:] {
                var property = rawProperty
                if let ref = property["$ref"]?.stringValue, ref.hasPrefix("#/$defs/"),
                   let target = defs[String(ref.dropFirst("#/$defs/".count))] { property = target }
                info.properties[field] = property
                if let accepted = property["x-stage-ref"]?.arrayValue {
                    info.stageRefs[field] = accepted.compactMap(\.stringValue)
                }
                // On the field, or on its string alternative (`data`: a file, or a list of {path, weight}).
                let alternatives = ["oneOf", "anyOf"].flatMap { property[$0]?.arrayValue ?? [] }
                if let mode = property["x-input-path"]?.stringValue ?? alternatives.lazy.compactMap({ $0["x-input-path"]?.stringValue }).first {
                    info.inputPaths[field] = mode
                }
                for (path, mode) in nestedInputPaths(property, prefix: field) { info.inputPaths[path] = mode }
                if property["x-output-path"]?.boolValue == true { info.outputPaths.insert(field) }
                if let suffix = property["x-output-file-suffix"]?.stringValue { info.outputFileSuffixes[field] = suffix }
            }
            result[kind] = info
        }
        return result
    }

    /// x-input-path annotations below a field: in its `properties`, its list `items` (component `*`,
    /// one per element) or those of its `oneOf`/`anyOf`/`allOf` alternatives, keyed `field.sub[.sub…]`
    /// (`data.*.path` for `data: [{path: …}]`).
    static func nestedInputPaths(_ property: JSONValue, prefix: String) -> [String: String] {
        var found: [String: String] = [:]
        var schemas = [property]
        for combinator in ["oneOf", "anyOf", "allOf"] { schemas += property[combinator]?.arrayValue ?? [] }
        for schema in schemas {
            for (name, sub) in schema["properties"]?.objectValue ?? [:] {
                let path = prefix + "." + name
                if let mode = sub["x-input-path"]?.stringValue { found[path] = mode }
                found.merge(nestedInputPaths(sub, prefix: path)) { first, _ in first }
            }
            if let items = schema["items"], items.objectValue != nil {
                let path = prefix + ".*"
                if let mode = items["x-input-path"]?.stringValue { found[path] = mode }
                found.merge(nestedInputPaths(items, prefix: path)) { first, _ in first }
            }
        }
        return found
    }

    /// Fields with top-level schema defaults filled in (idempotent with the validator's filling),
    /// so an omitted default and the same value written out give the same key.
    public func fillingDefaults(_ fields: [String: JSONValue]) -> [String: JSONValue] {
        var filled = fields
        for (field, property) in properties {
            guard let value = filled[field] ?? property["default"] else { continue }
            filled[field] = Self.canonicalNumber(value, type: property["type"]?.stringValue)
        }
        return filled
    }

    /// A number spelled as the field's schema type (as SchemaValidator does for written values):
    /// `0` on a number field is 0.0 and `2.0` on an integer field is 2, so spellings share a key.
    static func canonicalNumber(_ value: JSONValue, type: String?) -> JSONValue {
        switch (value, type) {
        case (.integer(let i), "number"): return .number(Double(i))
        case (.number(let d), "integer"): return Int64(exactly: d).map { .integer($0) } ?? value
        default: return value
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
enum EditDistance {
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        var current = previous
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    /// The closest candidate within max(2, length/3) edits, ties broken by candidate order.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let limit = max(2, word.count / 3)
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(word, candidate)
            if d <= limit, d < (best?.1 ?? Int.max) { best = (candidate, d) }
        }
        return best?.0
    }
}
