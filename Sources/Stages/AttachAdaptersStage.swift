import Foundation
import PipelineCore
import Model
import Training

/// `attach_adapters`: artifact = the base model files (linked) + the initial adapter in PEFT format
/// (adapter_config.json, adapter_model.safetensors) + lora.json (targets, rank, scale).
struct AttachAdaptersStage: StageRunner {
    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"] else { throw StageError.missingFile("model") }
        let f = context.fields
        var options = LoRAOptions()
        switch f["targets"] ?? .string("square") {
        case .string("all-linear"): options.targets = .allLinear
        case .array(let names): options.targets = .names(names.compactMap(\.stringValue))
        case .object(let o): options.targets = .regex(o["regex"]?.stringValue ?? "")
        default: options.targets = .square
        }
        options.rank = f["rank"]?.intValue ?? 16
        options.alpha = f["alpha"]?.doubleValue
        options.dropout = f["dropout"]?.doubleValue   // nil: 0, or the file's lora_dropout with init.from
        options.rslora = f["rslora"]?.boolValue ?? false
        switch f["init"] ?? .string("gaussian") {
        case .string("kaiming"): options.initialization = .kaiming
        case .object(let o):
            // `init.from` is an x-input-path: the executor resolved it and put its content in the key.
            let resolved = context.inputPaths["init.from"]
                ?? URL(fileURLWithPath: o["from"]?.stringValue ?? "", relativeTo: context.pipelineDirectory).standardizedFileURL
            options.initialization = .from(resolved)
        default: options.initialization = .gaussian(std: f["init_std"]?.doubleValue ?? 0.02)
        }
        let model = try LlamaModel.load(directory: source)
        let names = try LoRAAttacher.attach(to: model, options: options, seed: context.seed, log: context.log, detail: context.record)
        let out = context.outputDirectory
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path).sorted() {
            try ArtifactFiles.linkOrCopy(name, from: source, to: out)
        }
        try PEFTAdapter.save(model, to: out, baseModelNameOrPath: ArtifactFiles.baseModelName(source), options: options)
        try ArtifactFiles.writeJSON(.object([
            "targets": .array(names.map(JSONValue.string)), "rank": .integer(Int64(options.rank)), "scale": .number(options.scale),
        ]), to: out.appendingPathComponent("lora.json"))
        let summary = LoRAAttacher.summary(model)
        return StageResult(summary: ["adapted_modules": .integer(Int64(names.count)), "trainable": .integer(Int64(summary.trainable)),
                                     "total": .integer(Int64(summary.total))])
    }
}

/// A model directory from attach_adapters/train: base weights + PEFT adapter beside them (also
/// what `qlora-run generate` loads).
public enum AdaptedModel {
    public static func load(_ directory: URL, log: (String) -> Void = { _ in }) throws -> LlamaModel {
        let model = try LlamaModel.load(directory: directory)
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(PEFTAdapter.configFile).path) {
            _ = try PEFTAdapter.load(from: directory, into: model, log: { _ in })
        }
        return model
    }
}
