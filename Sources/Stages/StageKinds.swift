import Foundation
import PipelineCore
import Distributed
import Kernels

/// The product's stage kinds, one file each (LoadCheckpointStage.swift, ...). The CLI runs pipelines
/// with `StageKinds.registry()`; test-only kinds live in the test targets.
public enum StageKinds {
    /// The one list of product stage kinds, in pipeline order: the registry, usage text and errors
    /// derive from it, and a test keeps it equal to the schema's kinds.
    static let all: [(name: String, runner: any StageRunner)] = [
        ("load_checkpoint", LoadCheckpointStage()), ("quantize", QuantizeStage()), ("attach_adapters", AttachAdaptersStage()),
        ("train", TrainStage()), ("save_adapter", SaveAdapterStage()), ("evaluate", EvaluateStage()),
        ("merge", MergeStage()), ("export", ExportStage()),
    ]
    public static var names: [String] { all.map(\.name) }

    /// `collective`: the ranks `train` runs data-parallel over (one process unless under MPI).
    public static func registry(collective: any Collective = SingleProcess()) -> StageRegistry {
        var registry = StageRegistry()
        for kind in all {
            let runner = kind.name == "train" ? TrainStage(collective: collective) : kind.runner
            registry.register(kind: kind.name, runner: ReleasingScratch(runner))
        }
        return registry
    }
}

/// Runs a stage, then frees the kernels' kept scratch (Kernels/ScratchPool.swift) and hands the
/// memory the stage freed back to the system: a stage's 4-bit weight tiles, attention buffers and
/// activation plans would otherwise stay resident through every later stage of the same run (the
/// SmolLM2 pipeline's evaluate started from 322 MB after train, 38 MB with both).
struct ReleasingScratch: StageRunner {
    let inner: any StageRunner
    init(_ inner: any StageRunner) { self.inner = inner }
    func run(_ context: StageContext) throws -> StageResult {
        defer {
            ScratchPool.release()
            PeakMemory.returnFreedMemory()
        }
        return try inner.run(context)
    }
}

/// File helpers shared by the stage kinds.
enum ArtifactFiles {
    /// Files of a checkpoint directory that travel with the model (not the weights).
    static let companions = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
                             "special_tokens_map.json", sourceFile]

    /// `{"name_or_path": ...}`: where the base model came from, for the adapter's base_model_name_or_path.
    static let sourceFile = "qlora_source.json"
    /// Its key for the `tokenizer.ggml.pre` of a GGUF the model was loaded from (export writes it back).
    static let ggufTokenizerPre = "gguf_tokenizer_pre"

    /// A string member of the source file, or nil.
    static func sourceValue(_ directory: URL, _ key: String) -> String? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(sourceFile).path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object[key] as? String
    }

    /// The base model's name or path recorded by load_checkpoint, or "" for an `init:` model.
    static func baseModelName(_ directory: URL) -> String { sourceValue(directory, "name_or_path") ?? "" }

    /// Hard-links `from/name` to `to/name` (cache objects are read-only and immutable), copying when
    /// linking fails (another filesystem).
    static func linkOrCopy(_ name: String, from: URL, to: URL) throws {
        let source = from.appendingPathComponent(name), destination = to.appendingPathComponent(name)
        let fm = FileManager.default
        try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        do { try fm.linkItem(at: source, to: destination) } catch { try fm.copyItem(at: source, to: destination) }
    }

    static func writeJSON(_ value: JSONValue, to url: URL) throws {
        var data = CanonicalJSON.data(value)
        data.append(0x0A)
        try Data(data).write(to: url, options: .atomic)
    }
}
