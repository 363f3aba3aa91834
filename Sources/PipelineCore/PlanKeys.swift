import Foundation

/// Stage keys (the action-cache key, as in Bazel's action digest).
///
/// key = SHA-256 of the canonical JSON of
/// `{"format": "qlora-run/key/v1", "kind", "implementation_version", "seed", "fields"}` where
/// `fields` are the stage's fields with defaults filled, except: x-stage-ref fields hold the
/// upstream OUTPUT digest (so identical upstream bytes keep downstream cached), x-input-path
/// fields hold the content digest (not the path; also nested ones like `init.from`, in place),
/// x-output-path fields are removed; run facts the options name (`RunOptions.extraKeyFields`) are added.
/// No paths, host names, thread counts or timestamps.
public enum StageKey {
    public static let format = "qlora-run/key/v1"

    /// The key material; `upstreamDigests` / `inputDigests` map field -> digest.
    public static func material(for stage: PipelineStage, seed: UInt64, upstreamDigests: [String: String],
                                inputDigests: [String: String], extraFields: [String: JSONValue] = [:]) -> JSONValue {
        var fields = stage.fields
        for (field, value) in extraFields where fields[field] == nil { fields[field] = value }
        for field in stage.info.outputPaths { fields[field] = nil }
        for (field, digest) in upstreamDigests { fields[field] = .string(digest) }
        for (field, digest) in inputDigests {
            let components = field.split(separator: ".").map(String.init)
            if components.count == 1 { fields[field] = .string(digest) } else { replace(&fields, at: components[...], with: .string(digest)) }
        }
        return .object([
            "format": .string(format), "kind": .string(stage.kind),
            "implementation_version": .integer(Int64(stage.info.implementationVersion)),
            "seed": seed <= UInt64(Int64.max) ? .integer(Int64(seed)) : .string(String(seed)),
            "fields": .object(fields),
        ])
    }

    /// Sets the member at a nested path of object keys and list indices (the path exists: it came
    /// from these fields).
    package static func replace(_ members: inout [String: JSONValue], at path: ArraySlice<String>, with value: JSONValue) {
        guard let first = path.first, let inner = members[first] else { return }
        members[first] = replacing(inner, at: path.dropFirst(), with: value)
    }

    private static func replacing(_ node: JSONValue, at path: ArraySlice<String>, with value: JSONValue) -> JSONValue {
        guard let first = path.first else { return value }
        switch node {
        case .object(var members):
            guard let inner = members[first] else { return node }
            members[first] = replacing(inner, at: path.dropFirst(), with: value)
            return .object(members)
        case .array(var list):
            guard let index = Int(first), list.indices.contains(index) else { return node }
            list[index] = replacing(list[index], at: path.dropFirst(), with: value)
            return .array(list)
        default:
            return node
        }
    }

    /// A dotted field path with list indices as `[i]`: `data.1.path` -> `data[1].path`.
    static func shownPath(_ dotted: String) -> String {
        shownPath(dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
    }

    /// Path components joined with dots, all-digit components from `indicesFrom` on as `[i]`
    /// (PipelineIssue starts past `stages.NAME`: a stage may be named by digits).
    static func shownPath(_ components: [String], indicesFrom: Int = 0) -> String {
        var text = ""
        for (i, component) in components.enumerated() {
            if i >= indicesFrom, !component.isEmpty, component.allSatisfy({ $0.isASCII && $0.isNumber }) { text += "[\(component)]" }
            else { text += text.isEmpty ? component : "." + component }
        }
        return text
    }

    public static func key(_ material: JSONValue) -> String { SHA256.hex(CanonicalJSON.data(material)) }

    /// Material flattened for plan diffs: `implementation`, `seed`, `config.<dotted path>`,
    /// `input.<field>`, `upstream.<field>`, each mapped to canonical value text.
    public static func flatten(_ material: JSONValue, stage: PipelineStage) -> [String: String] {
        var flat: [String: String] = [
            "implementation": CanonicalJSON.string(material["implementation_version"] ?? .null),
            "seed": CanonicalJSON.string(material["seed"] ?? .null),
        ]
        func walk(_ value: JSONValue, _ path: String) {
            if stage.inputPaths[path] != nil {
                flat["input.\(path)"] = CanonicalJSON.string(value)  // a nested input, e.g. init.from
            } else if case .object(let members) = value, !members.isEmpty {
                for (k, v) in members { walk(v, path + "." + k) }
            } else if case .array(let list) = value, stage.inputPaths.keys.contains(where: { $0.hasPrefix(path + ".") }) {
                // A list holding inputs (`data: [{path, weight}]`): per element, so a diff names the file.
                for (i, v) in list.enumerated() { walk(v, path + ".\(i)") }
            } else {
                flat["config." + path] = CanonicalJSON.string(value)
            }
        }
        for (field, value) in material["fields"]?.objectValue ?? [:] where field != "kind" {
            if stage.references[field] != nil {
                flat["upstream.\(field)"] = CanonicalJSON.string(value)
            } else if stage.inputPaths[field] != nil {
                flat["input.\(field)"] = CanonicalJSON.string(value)
            } else {
                walk(value, field)
            }
        }
        return flat
    }

    /// Why the key differs from the last one recorded for this stage name.
    public static func reasons(current: [String: String], previous: [String: String], stage: PipelineStage) -> [String] {
        var reasons: [String] = []
        if current["implementation"] != previous["implementation"] { reasons.append("implementation changed") }
        var configChanges: [String] = []
        if current["seed"] != previous["seed"] {
            configChanges.append("seed \(previous["seed"] ?? "(unset)") -> \(current["seed"] ?? "(unset)")")
        }
        let keys = Set(current.keys).union(previous.keys).sorted()
        for key in keys where current[key] != previous[key] {
            if key.hasPrefix("config.") {
                let path = shownPath(String(key.dropFirst("config.".count)))
                configChanges.append("\(path) \(display(previous[key])) -> \(display(current[key]))")
            } else if key.hasPrefix("input.") {
                reasons.append("input: \(shownPath(String(key.dropFirst("input.".count)))) changed")
            } else if key.hasPrefix("upstream.") {
                let field = String(key.dropFirst("upstream.".count))
                reasons.append("upstream: \(stage.references[field] ?? field) changed")
            }
        }
        if !configChanges.isEmpty { reasons.append("config: " + configChanges.joined(separator: ", ")) }
        return reasons
    }

    /// Canonical text, with simple strings shown bare (`q8` not `"q8"`).
    static func display(_ canonical: String?) -> String {
        guard let canonical else { return "(unset)" }
        if canonical.hasPrefix("\""), let value = try? CanonicalJSONParser.parse(Data(canonical.utf8)) {
            return CanonicalJSON.displayText(value)
        }
        return canonical
    }
}
