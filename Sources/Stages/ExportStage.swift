import Foundation
import PipelineCore
import Model
import TensorIO
import Training

/// `export`: a GGUF file for llama.cpp / Ollama. `what: model` writes a checkpoint stage's model
/// with its tokenizer and chat template (`model.gguf`); `what: adapter` writes the LoRA adapter of
/// an adapted or trained stage (`adapter.gguf`). The executor publishes the artifact to `to`.
struct ExportStage: StageRunner {
    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"] else { throw StageError.missingFile("model") }
        let f = context.fields
        let what = f["what"]?.stringValue ?? "model"
        let fm = FileManager.default
        let hasAdapter = fm.fileExists(atPath: source.appendingPathComponent(PEFTAdapter.configFile).path)
        let out = context.outputDirectory
        if what == "adapter" {
            guard hasAdapter else {
                throw StageError.invalidField(field: "stages.\(context.stageName).what",
                    reason: "'\(f["model"]?.stringValue ?? "")' has no LoRA adapter; `what: adapter` needs an attach_adapters or train stage")
            }
            let type = try Self.type(f["type"]?.stringValue ?? "f32")
            let model = try LlamaModel.load(directory: source, deferLinearWeights: true)
            let config = try PEFTAdapter.readConfig(source)
            _ = try PEFTAdapter.load(from: source, into: model, dropout: 0)
            let writer = try GGUFExport.adapter(model, alpha: config.rslora ? config.scale * Double(config.rank) : config.alpha, type: type)
            try writer.write(to: out.appendingPathComponent("adapter.gguf"))
            context.log("wrote adapter.gguf: \(writer.tensorNames.count / 2) LoRA pairs, rank \(config.rank), alpha \(config.alpha), \(type.name)")
            return StageResult(summary: ["tensors": .integer(Int64(writer.tensorNames.count)), "type": .string(type.name)])
        }
        if hasAdapter {
            throw StageError.invalidField(field: "stages.\(context.stageName).model",
                reason: "'\(f["model"]?.stringValue ?? "")' has LoRA adapters; add a merge stage and export it, or export `what: adapter`")
        }
        let type = try Self.type(f["type"]?.stringValue ?? MergeStage.sourceDType(source).replacingOccurrences(of: "fp32", with: "f32"))
        let model = try LlamaModel.load(directory: source, deferLinearWeights: true)
        if model.linearModules.contains(where: \.isQuantized) {
            context.log("note: the checkpoint holds 4-bit weights; they are dequantized before export")
        }
        let name = ArtifactFiles.baseModelName(source)
        let pre = ArtifactFiles.sourceValue(source, ArtifactFiles.ggufTokenizerPre)
        if let pre { context.log("tokenizer.ggml.pre '\(pre)' kept from the GGUF the model was loaded from") }
        let (writer, warnings) = try GGUFExport.model(model, tokenizerDirectory: source,
                                                     options: .init(type: type, name: name.isEmpty ? context.stageName : name, tokenizerPre: pre))
        for w in warnings { context.log("warning: " + w) }
        let file = out.appendingPathComponent("model.gguf")
        try writer.write(to: file)
        let size = (try? fm.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        context.log(String(format: "wrote model.gguf: %d tensors, %@, %.1f MB", writer.tensorNames.count, type.name, Double(size) / 1e6))
        return StageResult(summary: ["tensors": .integer(Int64(writer.tensorNames.count)), "type": .string(type.name)])
    }

    static func type(_ name: String) throws -> GGMLType {
        switch name {
        case "f32": return .f32
        case "f16": return .f16
        case "bf16": return .bf16
        case "q8_0": return .q8_0
        case "q4_0": return .q4_0
        default: throw StageError.unsupported(field: "type", value: name, hint: "use f32, f16, bf16, q8_0 or q4_0")
        }
    }
}
