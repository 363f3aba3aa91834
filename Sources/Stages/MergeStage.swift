import Foundation
import PipelineCore
import Model
import TensorIO
import Training

/// `merge`: base weights + scale·B·A → a Hugging Face checkpoint directory without adapters.
/// `from: original` loads the full-precision base (`base:`, by default the upstream checkpoint) and
/// attaches the trained adapter to it; `from: dequantized` dequantizes the 4-bit weights the
/// adapter was trained against. Tokenizer files, chat template and generation config travel along.
struct MergeStage: StageRunner {
    func run(_ context: StageContext) throws -> StageResult {
        guard let adapted = context.inputs["model"] else { throw StageError.missingFile("model") }
        let f = context.fields
        let from = f["from"]?.stringValue ?? "original"
        let model: LlamaModel
        let weightsFrom: URL
        if from == "original" {
            guard let base = context.inputs["base"] else {
                throw StageError.invalidField(field: "stages.\(context.stageName).base",
                    reason: "no upstream stage outputs a full-precision checkpoint; name one with `base:` or merge `from: dequantized`")
            }
            model = try LlamaModel.load(directory: base, deferLinearWeights: true)
            if model.linearModules.contains(where: \.isQuantized) {
                context.log("note: '\(f["base"]?.stringValue ?? "base")' holds 4-bit weights; they are dequantized before merging")
            }
            weightsFrom = base
        } else {
            model = try LlamaModel.load(directory: adapted, deferLinearWeights: true)
            weightsFrom = adapted
        }
        let quantizedBefore = model.linearModules.filter(\.isQuantized).count
        model.dequantizeAll(deferred: true)
        let config = try PEFTAdapter.readConfig(adapted)
        _ = try PEFTAdapter.load(from: adapted, into: model, dropout: 0)
        let merged = try model.mergeAdapters(deferred: true)
        let dtype: DType
        switch f["dtype"]?.stringValue ?? Self.sourceDType(weightsFrom) {
        case "bf16": dtype = .bf16
        case "f16": dtype = .f16
        default: dtype = .f32
        }
        model.setStorageDType(dtype)
        let out = context.outputDirectory
        try model.save(to: out, dtype: dtype)
        let fm = FileManager.default
        for name in ArtifactFiles.companions where name != "config.json" && fm.fileExists(atPath: adapted.appendingPathComponent(name).path) {
            try ArtifactFiles.linkOrCopy(name, from: adapted, to: out)
        }
        if !fm.fileExists(atPath: out.appendingPathComponent("generation_config.json").path) {
            var generation: [String: JSONValue] = [:]
            if let b = model.config.bosTokenId { generation["bos_token_id"] = .integer(Int64(b)) }
            if let e = model.config.eosTokenId { generation["eos_token_id"] = .integer(Int64(e)) }
            if let p = model.config.padTokenId { generation["pad_token_id"] = .integer(Int64(p)) }
            try ArtifactFiles.writeJSON(.object(generation), to: out.appendingPathComponent("generation_config.json"))
        }
        let dtypeName = dtype == .bf16 ? "bf16" : dtype == .f16 ? "f16" : "fp32"
        context.log("merged \(merged.count) adapters (rank \(config.rank), scale \(String(format: "%.4g", config.scale))) into the "
                    + (from == "original" ? "original weights" : "dequantized 4-bit weights (\(quantizedBefore) layers)") + ", saved as \(dtypeName)")
        return StageResult(summary: ["merged_modules": .integer(Int64(merged.count)), "dtype": .string(dtypeName)])
    }

    /// The pipeline spelling of a checkpoint's storage dtype (config.json `dtype`/`torch_dtype`).
    static func sourceDType(_ directory: URL) -> String {
        let config = try? ModelConfig.load(from: directory.appendingPathComponent("config.json"))
        switch config?.dtype {
        case "bfloat16": return "bf16"
        case "float16": return "f16"
        default: return "fp32"
        }
    }
}
