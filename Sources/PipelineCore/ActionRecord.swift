import Foundation

/// The commit record of one stage key (`actions/<key>.json`). Stored as canonical JSON.
public struct ActionRecord: Sendable, Equatable {
    public static let format = "qlora-run/action/v1"
    public var stage: String
    public var kind: String
    public var key: String
    /// Digest of the output manifest (see ContentDigest); what downstream keys include.
    public var outputDigest: String
    public var files: [ContentDigest.Entry]
    /// The key material flattened to dotted paths (see `KeyMaterial.flattened`), for plan diffs.
    public var material: [String: String]
    public var summary: [String: JSONValue]
    public var seconds: Double
    /// StageResult.report: lines printed again when this record serves a cached re-run.
    public var report: [String]

    public init(stage: String, kind: String, key: String, outputDigest: String, files: [ContentDigest.Entry],
                material: [String: String], summary: [String: JSONValue], seconds: Double, report: [String] = []) {
        self.stage = stage; self.kind = kind; self.key = key; self.outputDigest = outputDigest
        self.files = files; self.material = material; self.summary = summary; self.seconds = seconds; self.report = report
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "format": .string(Self.format), "stage": .string(stage), "kind": .string(kind), "key": .string(key),
            "output_digest": .string(outputDigest),
            "files": .array(files.map { .object(["path": .string($0.path), "size": .integer($0.size), "digest": .string($0.digest)]) }),
            "material": .object(material.mapValues { .string($0) }),
            "summary": .object(summary), "seconds": .number(seconds),
        ]
        if !report.isEmpty { fields["report"] = .array(report.map { .string($0) }) }
        return .object(fields)
    }

    public init?(json: JSONValue) {
        guard json["format"]?.stringValue == Self.format,
              let stage = json["stage"]?.stringValue, let kind = json["kind"]?.stringValue,
              let key = json["key"]?.stringValue, let outputDigest = json["output_digest"]?.stringValue,
              let files = json["files"]?.arrayValue else { return nil }
        var entries: [ContentDigest.Entry] = []
        for file in files {
            guard let path = file["path"]?.stringValue, let size = file["size"]?.intValue, let digest = file["digest"]?.stringValue else { return nil }
            entries.append(ContentDigest.Entry(path: path, size: Int64(size), digest: digest))
        }
        self.init(stage: stage, kind: kind, key: key, outputDigest: outputDigest, files: entries,
                  material: (json["material"]?.objectValue ?? [:]).compactMapValues { $0.stringValue },
                  summary: json["summary"]?.objectValue ?? [:], seconds: json["seconds"]?.doubleValue ?? 0,
                  report: json["report"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}

/// What was last recorded for a stage of a pipeline (`stages/<pipeline>/<stage>.json`): the key and its flattened
/// material, so `plan` can explain why a stage's key changed.
public struct StageRecord: Sendable, Equatable {
    public var stage: String
    public var key: String
    public var material: [String: String]

    public init(stage: String, key: String, material: [String: String]) {
        self.stage = stage; self.key = key; self.material = material
    }

    public var json: JSONValue {
        .object(["stage": .string(stage), "key": .string(key), "material": .object(material.mapValues { .string($0) })])
    }

    public init?(json: JSONValue) {
        guard let stage = json["stage"]?.stringValue, let key = json["key"]?.stringValue else { return nil }
        self.init(stage: stage, key: key, material: (json["material"]?.objectValue ?? [:]).compactMapValues { $0.stringValue })
    }
}

/// One run (`runs/<NNNNNN>.json`): what gc keeps and what `cache ls` shows.
public struct RunRecord: Sendable, Equatable {
    public struct Stage: Sendable, Equatable {
        public var name: String
        public var key: String
        public var outputDigest: String
        public var cached: Bool
        public var seconds: Double
        public var kind: String
        /// The stage's headline metrics (its action record's summary).
        public var summary: [String: JSONValue]
        /// Where it published (absolute paths).
        public var published: [String]
        public init(name: String, key: String, outputDigest: String, cached: Bool, seconds: Double,
                    kind: String = "", summary: [String: JSONValue] = [:], published: [String] = []) {
            self.name = name; self.key = key; self.outputDigest = outputDigest; self.cached = cached; self.seconds = seconds
            self.kind = kind; self.summary = summary; self.published = published
        }
    }
    public var pipeline: String
    public var pipelineDigest: String
    public var toolVersion: String
    public var startedAt: String
    public var stages: [Stage]
    /// The stage that failed or was interrupted, with its key: its `work/<key>` checkpoints are
    /// what the next run resumes from, so `cache gc` keeps them while this record is kept.
    public var incomplete: (stage: String, key: String)?
    /// What the run was, to list, compare and reproduce it (RunOptions.context): pipeline_file,
    /// overrides, point, sweep values, parameters, manifest.
    public var context: [String: JSONValue] = [:]

    public static func == (a: RunRecord, b: RunRecord) -> Bool {
        a.pipeline == b.pipeline && a.pipelineDigest == b.pipelineDigest && a.toolVersion == b.toolVersion
            && a.startedAt == b.startedAt && a.stages == b.stages && a.incomplete?.stage == b.incomplete?.stage && a.incomplete?.key == b.incomplete?.key
            && a.context == b.context
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "pipeline": .string(pipeline), "pipeline_digest": .string(pipelineDigest), "tool_version": .string(toolVersion),
            "started_at": .string(startedAt),
            "stages": .array(stages.map {
                .object(["name": .string($0.name), "key": .string($0.key), "output_digest": .string($0.outputDigest),
                         "cached": .bool($0.cached), "seconds": .number($0.seconds), "kind": .string($0.kind),
                         "summary": .object($0.summary), "published": .array($0.published.map { .string($0) })])
            }),
        ]
        if let incomplete { fields["incomplete"] = .object(["stage": .string(incomplete.stage), "key": .string(incomplete.key)]) }
        for (k, v) in context { fields[k] = v }
        return .object(fields)
    }

    public init(pipeline: String, pipelineDigest: String, toolVersion: String, startedAt: String, stages: [Stage],
                incomplete: (stage: String, key: String)? = nil) {
        self.pipeline = pipeline; self.pipelineDigest = pipelineDigest; self.toolVersion = toolVersion
        self.startedAt = startedAt; self.stages = stages; self.incomplete = incomplete
    }

    /// The context fields a run record may carry beside its stages.
    public static let contextKeys = ["pipeline_file", "overrides", "point", "sweep", "parameters", "manifest", "seconds", "status"]

    public init?(json: JSONValue) {
        guard let pipeline = json["pipeline"]?.stringValue, let stages = json["stages"]?.arrayValue else { return nil }
        self.init(pipeline: pipeline, pipelineDigest: json["pipeline_digest"]?.stringValue ?? "",
                  toolVersion: json["tool_version"]?.stringValue ?? "", startedAt: json["started_at"]?.stringValue ?? "",
                  stages: stages.compactMap { s in
                      guard let name = s["name"]?.stringValue, let key = s["key"]?.stringValue else { return nil }
                      return Stage(name: name, key: key, outputDigest: s["output_digest"]?.stringValue ?? "",
                                   cached: s["cached"]?.boolValue ?? false, seconds: s["seconds"]?.doubleValue ?? 0,
                                   kind: s["kind"]?.stringValue ?? "", summary: s["summary"]?.objectValue ?? [:],
                                   published: s["published"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                  })
        if let stage = json["incomplete"]?["stage"]?.stringValue, let key = json["incomplete"]?["key"]?.stringValue {
            incomplete = (stage, key)
        }
        for key in Self.contextKeys { if let value = json[key] { context[key] = value } }
    }
}
