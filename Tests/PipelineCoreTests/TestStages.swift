import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import PipelineCore

/// Test-only stage kinds and schema (the product's kinds live in Sources/Stages).
///
/// - `source` (outputs checkpoint): writes `out.txt` = text repeated `repeat` times, plus the
///   bytes of the optional `data` input file; `comment` is ignored (same output for any comment).
/// - `concat` (outputs quantized): upstream `out.txt` + `suffix`.
/// - `adapt` (outputs adapted): upstream `out.txt` + "+lora".
/// - `save` (outputs adapter): copies upstream `out.txt`; publishes to `to` (x-output-path; a path
///   ending in `.bin` is a file destination).
/// - `hang`: like `concat`, but when QLORA_TEST_HANG names a directory it writes `started`
///   there and waits forever (until SIGKILL) — used by the subprocess tests.
enum TestStages {
    static let schemaText = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "type": "object",
      "properties": {"version": {"const": 1}, "name": {"type": "string"}, "seed": {"type": "integer", "default": 0},
                     "cache": {"type": "string", "default": ".qlora"}, "stages": {"type": "object"}},
      "$defs": {
        "source": {"type": "object", "x-output": "checkpoint", "x-implementation-version": 1,
          "properties": {"kind": {"const": "source"}, "text": {"type": "string", "default": "hello"},
                         "repeat": {"type": "integer", "default": 1}, "comment": {"type": "string", "default": ""},
                         "options": {"type": "object", "default": {"mode": "plain"}},
                         "data": {"type": "string", "x-input-path": "file"}}},
        "concat": {"type": "object", "x-output": "quantized", "x-implementation-version": 2,
          "properties": {"kind": {"const": "concat"}, "model": {"type": "string", "x-stage-ref": ["checkpoint", "quantized"]},
                         "suffix": {"type": "string", "default": "!"}, "lr": {"type": "number", "default": 0.0005}}},
        "adapt": {"type": "object", "x-output": "adapted", "x-implementation-version": 1,
          "properties": {"kind": {"const": "adapt"}, "model": {"type": "string", "x-stage-ref": ["checkpoint", "quantized"]}}},
        "train": {"type": "object", "x-output": "trained", "x-implementation-version": 1,
          "properties": {"kind": {"const": "train"}, "model": {"type": "string", "x-stage-ref": ["adapted", "trained"]},
                         "data": {"type": "string", "x-input-path": "file"}}},
        "save": {"type": "object", "x-output": "adapter", "x-implementation-version": 1,
          "properties": {"kind": {"const": "save"}, "model": {"type": "string", "x-stage-ref": ["adapted", "trained"]},
                         "to": {"type": "string", "x-output-path": true, "x-output-file-suffix": ".bin"}}},
        "hang": {"type": "object", "x-output": "quantized", "x-implementation-version": 1,
          "properties": {"kind": {"const": "hang"}, "model": {"type": "string", "x-stage-ref": ["checkpoint", "quantized"]}}}
      }
    }
    """#

    static var schema: JSONValue { try! CanonicalJSONParser.parse(Data(schemaText.utf8)) }
    /// Words for the artifact types the graph tests' messages name (the product's are in Stages).
    static let phrases = ArtifactPhrasing(single: ["checkpoint": "a checkpoint"], groups: ["adapted,trained": "a model with adapters"])

    /// Records which stages executed, and can make a stage throw.
    final class Recorder: @unchecked Sendable {  // all state under `lock`
        private let lock = NSLock()
        private var _executed: [String] = []
        private var _failing: Set<String> = []
        var executed: [String] { lock.lock(); defer { lock.unlock() }; return _executed }
        func record(_ name: String) { lock.lock(); _executed.append(name); lock.unlock() }
        func setFailing(_ names: Set<String>) { lock.lock(); _failing = names; lock.unlock() }
        func isFailing(_ name: String) -> Bool { lock.lock(); defer { lock.unlock() }; return _failing.contains(name) }
        func reset() { lock.lock(); _executed = []; lock.unlock() }
    }

    struct Failure: Error, LocalizedError { var errorDescription: String? { "boom" } }

    struct Runner: StageRunner {
        let recorder: Recorder
        /// When set, every execution also appends "<stage> <pid>\n" to this file (for subprocesses).
        var counterFile: URL?

        func run(_ context: StageContext) throws -> StageResult {
            recorder.record(context.stageName)
            if let counterFile {
                // O_APPEND: lines from concurrent processes never overwrite each other.
                let fd = open(counterFile.path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
                let line = Array("\(context.stageName) \(getpid())\n".utf8)
                _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
                Thread.sleep(forTimeInterval: 0.2)  // widen the window for the concurrency test
            }
            if recorder.isFailing(context.stageName) { throw Failure() }
            // A "training checkpoint" in the persistent work dir, then a safe point.
            try Data("step 1".utf8).write(to: context.workDirectory.appendingPathComponent("checkpoint"))
            if context.isInterrupted() { throw StageInterrupted() }
            let fields = context.fields
            var text: String
            switch context.kind {
            case "source":
                text = String(repeating: fields["text"]?.stringValue ?? "", count: fields["repeat"]?.intValue ?? 1)
                if let data = context.inputPaths["data"] { text += try String(contentsOf: data, encoding: .utf8) }
            default:
                guard let upstream = context.inputs["model"] else { throw Failure() }
                text = try String(contentsOf: upstream.appendingPathComponent("out.txt"), encoding: .utf8)
                if context.kind == "concat" { text += fields["suffix"]?.stringValue ?? "" }
                if context.kind == "adapt" { text += "+lora" }
                if context.kind == "train" { text += "+trained" }
                if context.kind == "hang", let dir = ProcessInfo.processInfo.environment["QLORA_TEST_HANG"] {
                    try Data(context.workDirectory.path.utf8).write(to: URL(fileURLWithPath: dir).appendingPathComponent("started"))
                    try Data("partial".utf8).write(to: context.outputDirectory.appendingPathComponent("out.txt"))
                    while true { Thread.sleep(forTimeInterval: 0.05) }
                }
            }
            context.log("writing \(text.count) characters")
            try Data(text.utf8).write(to: context.outputDirectory.appendingPathComponent("out.txt"))
            return StageResult(summary: ["length": .integer(Int64(text.count))])
        }
    }

    static func registry(_ recorder: Recorder, counterFile: URL? = nil) -> StageRegistry {
        var registry = StageRegistry()
        for kind in ["source", "concat", "adapt", "train", "save", "hang"] {
            registry.register(kind: kind, runner: Runner(recorder: recorder, counterFile: counterFile))
        }
        return registry
    }

    /// A fresh temporary directory holding `pipeline.json` (when given) and a data file.
    static func makeDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-cache-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("data-v1\n".utf8).write(to: dir.appendingPathComponent("data.txt"))
        return dir
    }

    /// Loads a pipeline given as JSON text (stage order = `order`).
    static func pipeline(_ json: String, in dir: URL, order: [String]) throws -> Pipeline {
        let value = try CanonicalJSONParser.parse(Data(json.utf8))
        let (pipeline, issues) = Pipeline.load(value: value, schema: schema, file: dir.appendingPathComponent("pipeline.yaml"),
                                               displayName: "pipelines/pipeline.yaml", stageOrder: order)
        guard let pipeline else { throw CacheError.io("invalid test pipeline: \(issues)") }
        return pipeline
    }

    /// source -> concat (quantize) -> adapt -> save
    static let chain = #"""
    {"version": 1, "name": "chain", "stages": {
      "base": {"kind": "source", "text": "hi", "data": "data.txt"},
      "quantize": {"kind": "concat", "model": "base"},
      "adapt": {"kind": "adapt", "model": "quantize"},
      "save": {"kind": "save", "model": "adapt", "to": "out/adapter"}}}
    """#
    static let chainOrder = ["base", "quantize", "adapt", "save"]
}
