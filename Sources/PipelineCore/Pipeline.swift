import Foundation

/// One stage of a validated pipeline.
public struct PipelineStage: Sendable, Equatable {
    public let name: String
    public let kind: String
    /// Fields with schema defaults filled (stage references are still stage names).
    public let fields: [String: JSONValue]
    public let info: StageKindInfo
    /// field -> referenced stage name (x-stage-ref fields).
    public let references: [String: String]
    /// field -> path as written, relative to the pipeline file (x-input-path fields; a nested one
    /// under its dotted path, e.g. `init.from`).
    public let inputPaths: [String: String]
    /// field -> destination as written (x-output-path fields).
    public let outputPaths: [String: String]
    /// Whether the destination of output field `field` is a single file (see StageKindInfo.outputFileSuffixes).
    public func publishesFile(_ field: String) -> Bool {
        guard let suffix = info.outputFileSuffixes[field], let text = outputPaths[field] else { return false }
        return text.hasSuffix(suffix) && text.count > suffix.count
    }
    /// Referenced stages, unique, in field-name order.
    public var upstream: [String] {
        var seen = Set<String>()
        return references.keys.sorted().compactMap { seen.insert(references[$0]!).inserted ? references[$0] : nil }
    }
}

/// A problem of the pipeline's graph, located by document path; `atKey` = report at the
/// mapping key of the last path component instead of its value.
public struct PipelineIssue: Sendable, Equatable, CustomStringConvertible {
    public var path: [String]
    public var message: String
    public var atKey: Bool
    public var description: String { "\(shownPath): \(message)" }
    /// The path as diagnostics spell it: list indices as `[i]` (`stages.train.data[1].path`).
    /// Only past `stages.NAME`, since a stage may be named by digits.
    public var shownPath: String { StageKey.shownPath(path, indicesFrom: 2) }
}

/// A validated pipeline: stages in execution order, ready for the executor.
public struct Pipeline: Sendable {
    public let name: String
    public let seed: UInt64
    public let file: URL
    public var directory: URL { file.deletingLastPathComponent() }
    public let cacheDirectory: URL
    /// Topological order (declaration order among ready stages).
    public let stages: [PipelineStage]
    /// SHA-256 of the canonical JSON of the validated document (for run records).
    public let digest: String

    public func stage(named name: String) -> PipelineStage? { stages.first { $0.name == name } }

    /// Builds the pipeline from a schema-validated document value (defaults filled or not),
    /// checking the graph: unknown references (with a suggestion), output types that do not fit
    /// a field, missing input files, cycles. `stageOrder` is the declaration order of the stage
    /// names (YAML mappings keep it, JSON objects do not); names not listed follow sorted.
    /// `displayName` is the pipeline path as the user wrote it (for messages); `phrases` names the
    /// artifact types in type-mismatch messages.
    public static func load(value: JSONValue, schema: JSONValue, file: URL, displayName: String? = nil,
                            stageOrder: [String] = [], cacheOverride: URL? = nil,
                            phrases: ArtifactPhrasing = ArtifactPhrasing()) -> (pipeline: Pipeline?, issues: [PipelineIssue]) {
        let kinds = StageKindInfo.all(in: schema)
        let stagesValue = value["stages"]?.objectValue ?? [:]
        let declared = stageOrder.filter { stagesValue[$0] != nil } + stagesValue.keys.sorted().filter { !stageOrder.contains($0) }
        let pipelineFile = file.standardizedFileURL
        let directory = pipelineFile.deletingLastPathComponent()
        let shownDirectory: String = {
            let d = ((displayName ?? file.path) as NSString).deletingLastPathComponent
            return d.isEmpty ? "./" : d + "/"
        }()
        var issues: [PipelineIssue] = []
        /// An x-input-path value must exist (relative to the pipeline file) and be of the declared kind.
        func checkInput(_ text: String, mode: String, path: [String]) {
            let url = URL(fileURLWithPath: text, relativeTo: directory).standardizedFileURL
            var isDirectory: ObjCBool = false
            let shown = "\(text) (relative to \(shownDirectory))"
            if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
                issues.append(PipelineIssue(path: path, message: "file not found: \(shown)", atKey: false))
            } else if mode == "file" && isDirectory.boolValue {
                issues.append(PipelineIssue(path: path, message: "expected a file, found a directory: \(shown)", atKey: false))
            } else if mode == "directory" && !isDirectory.boolValue {
                issues.append(PipelineIssue(path: path, message: "expected a directory, found a file: \(shown)", atKey: false))
            }
        }
        var stages: [String: PipelineStage] = [:]
        var dependencies: [String: [String]] = [:]

        for name in declared {
            guard let raw = stagesValue[name]?.objectValue, let kind = raw["kind"]?.stringValue, let info = kinds[kind] else {
                continue  // the schema validator reports unknown kinds and non-object stages
            }
            let fields = info.fillingDefaults(raw)
            var references: [String: String] = [:], inputPaths: [String: String] = [:], outputPaths: [String: String] = [:]
            for field in fields.keys.sorted() {
                guard let text = fields[field]?.stringValue else { continue }
                let path = ["stages", name, field]
                if let accepted = info.stageRefs[field] {
                    guard let target = stagesValue[text]?.objectValue else {
                        let hint = EditDistance.suggestion(for: text, among: declared.filter { $0 != name }).map { "; did you mean '\($0)'?" } ?? ""
                        issues.append(PipelineIssue(path: path, message: "unknown stage '\(text)'\(hint)", atKey: false))
                        continue
                    }
                    references[field] = text
                    if let targetKind = target["kind"]?.stringValue, let output = kinds[targetKind]?.outputType,
                       !accepted.contains(output) {
                        issues.append(PipelineIssue(path: path, message:
                            "stage '\(text)' outputs \(phrases.outputs(output)), but this field needs \(phrases.needs(accepted))",
                            atKey: false))
                    }
                } else if let mode = info.inputPaths[field] {
                    // x-path-keywords: words the field takes instead of a path (chat_template: model).
                    let keywords = info.properties[field]?["x-path-keywords"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    if keywords.contains(text) { continue }
                    inputPaths[field] = text
                    checkInput(text, mode: mode, path: path)
                } else if info.outputPaths.contains(field) {
                    outputPaths[field] = text
                }
            }
            // Inputs nested in a field's object or list form (`init: {from: DIR}`, `data: [{path: F}]`),
            // keyed by dotted path with list indices (`init.from`, `data.0.path`).
            for (pattern, mode) in info.inputPaths.sorted(by: { $0.key < $1.key }) where pattern.contains(".") {
                for (components, text) in Self.nestedStrings(.object(fields), pattern: pattern.split(separator: ".").map(String.init)) {
                    inputPaths[components.joined(separator: ".")] = text
                    checkInput(text, mode: mode, path: ["stages", name] + components)
                }
            }
            let stage = PipelineStage(name: name, kind: kind, fields: fields, info: info, references: references,
                                      inputPaths: inputPaths, outputPaths: outputPaths)
            stages[name] = stage
            dependencies[name] = stage.upstream
        }

        // x-default-ancestor: an omitted stage reference means the nearest upstream stage (breadth
        // first along the references) whose output the field accepts.
        for name in declared {
            guard let stage = stages[name] else { continue }
            var fields = stage.fields, references = stage.references
            for (field, accepted) in stage.info.stageRefs.sorted(by: { $0.key < $1.key })
                where fields[field] == nil && stage.info.properties[field]?["x-default-ancestor"]?.boolValue == true {
                if let found = Self.nearestAncestor(of: name, accepting: accepted, stages: stages, kinds: kinds) {
                    fields[field] = .string(found); references[field] = found
                }
            }
            guard references != stage.references else { continue }
            let filled = PipelineStage(name: name, kind: stage.kind, fields: fields, info: stage.info, references: references,
                                       inputPaths: stage.inputPaths, outputPaths: stage.outputPaths)
            stages[name] = filled
            dependencies[name] = filled.upstream
        }

        let known = declared.filter { stages[$0] != nil }
        let (order, cycle) = DAG.order(known, dependencies: dependencies)
        if let cycle {
            issues.append(PipelineIssue(path: ["stages"], message: "cycle: \(cycle.joined(separator: " -> "))", atKey: true))
        }
        guard issues.isEmpty, known.count == declared.count else { return (nil, issues) }

        let cacheText = value["cache"]?.stringValue ?? ".qlora"
        let seed: UInt64 = value["seed"]?.intValue.map { UInt64(truncatingIfNeeded: $0) } ?? 0
        let cacheDirectory = cacheOverride?.standardizedFileURL ?? URL(fileURLWithPath: cacheText, relativeTo: directory).standardizedFileURL
        let ordered = order.compactMap { stages[$0] }
        let name = value["name"]?.stringValue ?? pipelineFile.deletingPathExtension().lastPathComponent
        let unsafe = PublishSafety.issues(pipelineName: name, stages: ordered, pipelineDirectory: directory, cacheDirectory: cacheDirectory,
                                          shownDirectory: shownDirectory)
        guard unsafe.isEmpty else { return (nil, unsafe) }
        let pipeline = Pipeline(
            name: name,
            seed: seed, file: pipelineFile,
            cacheDirectory: cacheDirectory,
            stages: ordered,
            digest: SHA256.hex(CanonicalJSON.data(value)))
        return (pipeline, issues)
    }
}

extension Pipeline {
    /// Breadth-first over stage references from `name` (not itself): the first stage whose kind
    /// outputs one of `accepted`; ties at one depth go to the first field name.
    static func nearestAncestor(of name: String, accepting accepted: [String], stages: [String: PipelineStage],
                                kinds: [String: StageKindInfo]) -> String? {
        var frontier = stages[name]?.upstream ?? [], seen = Set([name])
        while !frontier.isEmpty {
            var next: [String] = []
            for candidate in frontier where seen.insert(candidate).inserted {
                guard let stage = stages[candidate] else { continue }
                if let output = kinds[stage.kind]?.outputType, accepted.contains(output) { return candidate }
                next += stage.upstream
            }
            frontier = next
        }
        return nil
    }

    /// The string values at a dotted pattern whose `*` components stand for every list index:
    /// (`["data", "1", "path"]`, "b.jsonl") for pattern `data.*.path`.
    static func nestedStrings(_ value: JSONValue, pattern: [String], prefix: [String] = []) -> [([String], String)] {
        guard let first = pattern.first else { return value.stringValue.map { [(prefix, $0)] } ?? [] }
        let rest = Array(pattern.dropFirst())
        if first == "*" {
            guard let list = value.arrayValue else { return [] }
            return list.enumerated().flatMap { nestedStrings($0.element, pattern: rest, prefix: prefix + [String($0.offset)]) }
        }
        guard let inner = value.objectValue?[first] else { return [] }
        return nestedStrings(inner, pattern: rest, prefix: prefix + [first])
    }
}

extension Pipeline {
    /// A validated manifest with every input and output path (top-level, nested, in lists) and the
    /// cache made absolute against `directory`, so it runs the same from anywhere; path keywords
    /// (`chat_template: model`) stay.
    public static func absolutizingPaths(_ manifest: JSONValue, schema: JSONValue, directory: URL) -> JSONValue {
        guard case .object(var root) = manifest else { return manifest }
        func absolute(_ text: String) -> String { URL(fileURLWithPath: text, relativeTo: directory).standardizedFileURL.path }
        if let cache = root["cache"]?.stringValue { root["cache"] = .string(absolute(cache)) }
        let kinds = StageKindInfo.all(in: schema)
        guard case .object(var stages)? = root["stages"] else { return .object(root) }
        for (name, stageValue) in stages {
            guard let kind = stageValue["kind"]?.stringValue, let info = kinds[kind], case .object(var fields) = stageValue else { continue }
            for (pattern, _) in info.inputPaths {
                let keywords = info.properties[pattern]?["x-path-keywords"]?.arrayValue?.compactMap(\.stringValue) ?? []
                for (components, text) in nestedStrings(.object(fields), pattern: pattern.split(separator: ".").map(String.init))
                    where !keywords.contains(text) {
                    var material = fields
                    StageKey.replace(&material, at: components[...], with: .string(absolute(text)))
                    fields = material
                }
            }
            for field in info.outputPaths { if let text = fields[field]?.stringValue { fields[field] = .string(absolute(text)) } }
            stages[name] = .object(fields)
        }
        root["stages"] = .object(stages)
        return .object(root)
    }
}
