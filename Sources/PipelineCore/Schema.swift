import Foundation

/// A JSON Schema (draft 2020-12 semantics) for the keyword subset qlora-run manifests use:
/// type, properties, patternProperties, additionalProperties, required, min/maxProperties,
/// dependentRequired, enum, const, minimum/maximum/exclusiveMinimum/exclusiveMaximum, multipleOf,
/// minLength/maxLength, pattern, prefixItems/items, minItems/maxItems, uniqueItems,
/// oneOf/anyOf/allOf/not, if/then/else, local `$ref` ("#/$defs/...", "#/definitions/...", any
/// local JSON pointer), and `default` (filled into the returned value).
/// Annotations (`description`, `title`, `examples`, `format`, `$comment`, `x-*`, ...) are ignored.
///
/// Keywords of 2020-12 that are NOT implemented (contains, unevaluated*, dependentSchemas,
/// propertyNames, $dynamicRef, ...) make `init` throw instead of being silently ignored.
public struct JSONSchema: Sendable {
    public let schema: JSONValue
    /// `$ref` string -> the schema it points at, resolved once.
    let references: [String: JSONValue]

    public enum SchemaError: Error, LocalizedError, Sendable, Equatable {
        case invalid(path: String, reason: String)

        public var errorDescription: String? {
            switch self {
            case .invalid(let path, let reason):
                return "invalid schema at '\(path.isEmpty ? "#" : path)': \(reason)"
            }
        }
    }

    /// Keywords whose value is one subschema / an object of subschemas / an array of subschemas.
    static let schemaKeywords: Set<String> = ["additionalProperties", "items", "not", "if", "then", "else"]
    static let schemaMapKeywords: Set<String> = ["properties", "patternProperties", "$defs", "definitions"]
    static let schemaArrayKeywords: Set<String> = ["prefixItems", "allOf", "anyOf", "oneOf"]
    static let unsupported: Set<String> = [
        "contains", "minContains", "maxContains", "dependentSchemas", "propertyNames", "unevaluatedProperties",
        "unevaluatedItems", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "dependencies",
    ]

    public init(_ schema: JSONValue) throws {
        self.schema = schema
        var references: [String: JSONValue] = [:]
        try JSONSchema.check(schema, pointer: "", root: schema, references: &references)
        self.references = references
    }

    /// Walks every subschema: rejects unsupported keywords, bad patterns and dangling `$ref`s.
    private static func check(_ schema: JSONValue, pointer: String, root: JSONValue,
                              references: inout [String: JSONValue]) throws(SchemaError) {
        if case .bool = schema { return }
        guard case .object(let object) = schema else {
            throw .invalid(path: pointer, reason: "a schema must be an object or a boolean, found \(schema.foundDescription)")
        }
        for key in object.keys.sorted() {
            guard let value = object[key] else { continue }
            let here = pointer + "/" + key
            if unsupported.contains(key) {
                throw .invalid(path: here, reason: "the keyword '\(key)' is not supported by this validator")
            }
            switch key {
            case "$ref":
                guard let ref = value.stringValue else { throw .invalid(path: here, reason: "$ref must be a string") }
                guard let target = resolve(pointer: ref, in: root) else {
                    throw .invalid(path: here, reason: ref.hasPrefix("#")
                        ? "'\(ref)' does not point at anything in this schema"
                        : "only local references ('#/$defs/...') are supported, not '\(ref)'")
                }
                references[ref] = target
            case "pattern":
                guard let pattern = value.stringValue else { throw .invalid(path: here, reason: "pattern must be a string") }
                do { _ = try NSRegularExpression(pattern: pattern) } catch {
                    throw .invalid(path: here, reason: "'\(pattern)' is not a valid regular expression")
                }
            case "type":
                let names = value.stringValue.map { [$0] } ?? value.arrayValue?.compactMap(\.stringValue) ?? []
                let known: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]
                if names.isEmpty || !names.allSatisfy(known.contains) {
                    throw .invalid(path: here, reason: "unknown type \(value.yamlText)")
                }
            case _ where schemaKeywords.contains(key):
                if key == "items", case .array(let list) = value {  // draft-07 tuple form
                    for (i, sub) in list.enumerated() { try check(sub, pointer: here + "/\(i)", root: root, references: &references) }
                } else {
                    try check(value, pointer: here, root: root, references: &references)
                }
            case _ where schemaMapKeywords.contains(key):
                guard case .object(let map) = value else { throw .invalid(path: here, reason: "\(key) must be an object") }
                for name in map.keys.sorted() {
                    if key == "patternProperties", (try? NSRegularExpression(pattern: name)) == nil {
                        throw .invalid(path: here, reason: "'\(name)' is not a valid regular expression")
                    }
                    try check(map[name] ?? .bool(true), pointer: here + "/" + name, root: root, references: &references)
                }
            case _ where schemaArrayKeywords.contains(key):
                guard case .array(let list) = value, !list.isEmpty else { throw .invalid(path: here, reason: "\(key) must be a non-empty array") }
                for (i, sub) in list.enumerated() { try check(sub, pointer: here + "/\(i)", root: root, references: &references) }
            case "required", "enum":
                guard value.arrayValue != nil else { throw .invalid(path: here, reason: "\(key) must be an array") }
            default:
                break  // annotations, x-* extensions, and numeric/length keywords
            }
        }
    }

    /// Resolves a local JSON pointer reference (RFC 6901, as a URI fragment): "#", "#/$defs/train".
    static func resolve(pointer ref: String, in root: JSONValue) -> JSONValue? {
        guard ref.hasPrefix("#") else { return nil }
        let fragment = String(ref.dropFirst()).removingPercentEncoding ?? String(ref.dropFirst())
        if fragment.isEmpty { return root }
        guard fragment.hasPrefix("/") else { return nil }
        var node = root
        for raw in fragment.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch node {
            case .object(let o):
                guard let next = o[token] else { return nil }
                node = next
            case .array(let a):
                guard let i = Int(token), a.indices.contains(i) else { return nil }
                node = a[i]
            default:
                return nil
            }
        }
        return node
    }

    /// Validates a parsed document; diagnostics carry the file, line and column of the best node:
    /// the offending value, the KEY of an unknown field, the parent mapping of a missing field.
    public func validate(_ document: Document) -> (value: JSONValue, diagnostics: [Diagnostic]) {
        let (value, failures) = run(document.value)
        let diagnostics = failures.map { failure -> Diagnostic in
            let components = failure.path.components
            var location: SourceLocation?
            if let key = failure.key {
                location = document.keyLocation(of: components + [key]) ?? document.location(of: components)
            } else {
                location = document.location(of: components)
            }
            return Diagnostic(location: location, path: failure.path.display, message: failure.message)
        }
        return (value, DiagnosticList.sorted(diagnostics))
    }

    /// Validates a bare value: diagnostics have paths but no locations.
    public func validate(_ value: JSONValue) -> (value: JSONValue, diagnostics: [Diagnostic]) {
        let (filled, failures) = run(value)
        return (filled, failures.map { Diagnostic(location: nil, path: $0.path.display, message: $0.message) })
    }

    private func run(_ value: JSONValue) -> (JSONValue, [SchemaFailure]) {
        let validator = SchemaValidator(root: schema, references: references)
        var failures: [SchemaFailure] = []
        let filled = validator.validate(value, against: schema, at: .root, into: &failures)
        return (filled, failures)
    }
}

/// One problem found by the validator, before it is given a source location.
struct SchemaFailure {
    var path: DocumentPath
    /// Set for an unknown field: the diagnostic points at this key under `path`.
    var key: String?
    var message: String
    /// Set for a type mismatch at `path`, so oneOf/anyOf can merge "expected a string or a list".
    var expectedTypes: [String]?

    init(_ path: DocumentPath, _ message: String, key: String? = nil, expectedTypes: [String]? = nil) {
        self.path = path
        self.message = message
        self.key = key
        self.expectedTypes = expectedTypes
    }
}
