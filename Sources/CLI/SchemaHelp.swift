import Foundation
import Stages

/// Describes stage kinds from the schema itself (`qlora-run help KIND`, and README's stage-kind
/// reference, which a test keeps equal to `SchemaHelp.markdown()`): the schema is the only source.
public struct SchemaHelp {
    public struct Field: Equatable {
        public var name: String          // "init.arch" for nested object fields
        public var type: String          // "nf4 | fp4", "integer", "stage (checkpoint, quantized)"
        public var defaultValue: String  // "64", "required", "—"
        public var description: String
    }
    public struct Kind: Equatable {
        public var name: String
        public var output: String
        public var description: String
        public var fields: [Field]
    }

    public let kinds: [Kind]

    public init(schemaText: String = EmbeddedSchema.text) throws {
        guard let root = try JSONSerialization.jsonObject(with: Data(schemaText.utf8)) as? [String: Any],
              let defs = root["$defs"] as? [String: Any] else { throw StageError.invalidSchema("no $defs") }
        // Kinds and fields keep the schema's own order (JSONSerialization forgets it): order by text position.
        func position(of key: String, after start: String.Index) -> String.Index {
            schemaText.range(of: "\"\(key)\": {", range: start..<schemaText.endIndex)?.lowerBound ?? schemaText.endIndex
        }
        let defsStart = schemaText.range(of: "\"$defs\"")?.lowerBound ?? schemaText.startIndex
        let kindNames = defs.keys.filter { $0 != "stage" }.sorted { position(of: $0, after: defsStart) < position(of: $1, after: defsStart) }
        var kinds: [Kind] = []
        for name in kindNames {
            guard let def = defs[name] as? [String: Any] else { continue }
            let start = position(of: name, after: defsStart)
            kinds.append(Kind(name: name, output: def["x-output"] as? String ?? "?",
                              description: def["description"] as? String ?? "",
                              fields: Self.fields(of: def, prefix: "", start: start, position: position)))
        }
        self.kinds = kinds
    }

    static func fields(of def: [String: Any], prefix: String, start: String.Index,
                       position: (String, String.Index) -> String.Index) -> [Field] {
        let properties = def["properties"] as? [String: Any] ?? [:]
        let required = Set(def["required"] as? [String] ?? [])
        var result: [Field] = []
        for name in properties.keys.sorted(by: { position($0, start) < position($1, start) }) {
            guard let p = properties[name] as? [String: Any] else { continue }
            let defaultText: String
            if required.contains(name) { defaultText = "required" }
            else if let d = p["default"] { defaultText = render(d) }
            else if let d = (p["description"] as? String)?.components(separatedBy: "Default: ").dropFirst().first {
                defaultText = String(d.prefix { $0.isLetter || $0.isNumber || $0 == "_" })   // computed defaults ("rank")
            } else { defaultText = "—" }
            result.append(Field(name: prefix + name, type: typeText(p), defaultValue: defaultText,
                                description: p["description"] as? String ?? ""))
            if p["type"] as? String == "object", p["properties"] != nil {
                result += fields(of: p, prefix: prefix + name + ".", start: position(name, start), position: position)
            }
            // A list of objects, on the field or as one of its alternatives (`data: [{path, weight}]`): `data[].path`.
            let lists = [p] + (p["oneOf"] as? [[String: Any]] ?? [])
            for list in lists where list["type"] as? String == "array" {
                if let items = list["items"] as? [String: Any], items["properties"] != nil {
                    result += fields(of: items, prefix: prefix + name + "[].", start: position(name, start), position: position)
                }
            }
        }
        return result
    }

    static func typeText(_ p: [String: Any]) -> String {
        if let refs = p["x-stage-ref"] as? [String] { return "stage (\(refs.joined(separator: ", ")))" }
        if let kind = p["x-input-path"] as? String { return "path (\(kind))" }
        if p["x-output-path"] != nil { return "output path" }
        if let c = p["const"] { return render(c) }
        if let e = p["enum"] as? [Any] { return e.map(render).joined(separator: " | ") }
        if let alternatives = p["oneOf"] as? [[String: Any]] { return alternatives.map(typeText).joined(separator: " | ") }
        let type = p["type"] as? String ?? "any"
        if type == "array", let items = p["items"] as? [String: Any] { return "[\(typeText(items))]" }
        if type == "object", let props = p["properties"] as? [String: Any], props.count == 1, let key = props.keys.first {
            return "{\(key): \(typeText(props[key] as? [String: Any] ?? [:]))}"
        }
        return type
    }

    static func render(_ value: Any) -> String {
        if let n = value as? NSNumber {
            if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }  // JSONSerialization booleans
            return "\(n)"
        }
        if let s = value as? String { return s }
        if let a = value as? [Any] { return "[" + a.map(render).joined(separator: ", ") + "]" }
        if let o = value as? [String: Any] { return "{" + o.keys.sorted().map { "\($0): \(render(o[$0]!))" }.joined(separator: ", ") + "}" }
        return "null"
    }

    public func kind(_ name: String) -> Kind? { kinds.first { $0.name == name } }

    /// `qlora-run help KIND`: aligned plain text.
    public func text(for kind: Kind) -> String {
        var out = "\(kind.name) (outputs: \(kind.output))\n  \(kind.description)\n\nfields:\n"
        for f in kind.fields {
            out += "  \(f.name)  \(f.type)  [default: \(f.defaultValue)]\n      \(f.description)\n"
        }
        return out
    }

    /// README's stage-kind reference (kept equal to the README block by a test).
    public func markdown() -> String {
        var out = ""
        for kind in kinds {
            out += "### `\(kind.name)` → \(kind.output)\n\n\(kind.description)\n\n"
            out += "| field | type | default | description |\n|---|---|---|---|\n"
            for f in kind.fields {
                let cell = { (s: String) in s.replacingOccurrences(of: "|", with: "\\|") }
                out += "| `\(f.name)` | \(cell(f.type)) | \(cell(f.defaultValue)) | \(cell(f.description)) |\n"
            }
            out += "\n"
        }
        return out
    }
}
