import Foundation
import PipelineCore
import Model
import Quant

/// `quantize`: load -> replace linears by frozen 4-bit ones -> save (bitsandbytes serialization).
struct QuantizeStage: StageRunner {
    func run(_ context: StageContext) throws -> StageResult {
        guard let source = context.inputs["model"] else { throw StageError.missingFile("model") }
        let computeName = context.fields["compute_dtype"]?.stringValue ?? "fp32"
        guard let compute = ComputeDType(rawValue: computeName) else {
            throw StageError.unsupported(field: "compute_dtype", value: computeName, hint: "use fp32 or bf16")
        }
        let type = QuantType(rawValue: context.fields["type"]?.stringValue ?? "nf4") ?? .nf4
        let blockSize = context.fields["block_size"]?.intValue ?? 64
        let doubleQuant = context.fields["double_quant"]?.boolValue ?? true
        let skip = context.fields["skip"]?.arrayValue?.compactMap(\.stringValue) ?? []
        // Each linear is quantized as soon as it is read, so the fp32 weights of the whole model
        // are never in memory together (peak ≈ one fp32 module + the 4-bit model + embeddings).
        var streamed: [String] = []
        let model = try LlamaModel.load(directory: source) { m in
            if !LlamaModel.skips(m.name, skip), try LlamaModel.quantize(m, type: type, blockSize: blockSize, doubleQuant: doubleQuant, compute: compute) {
                streamed.append(m.name)
            }
        }
        // The rest (a head tied to the embedding) and the model's quantization config.
        let names = streamed + (try model.quantize(type: type, blockSize: blockSize, doubleQuant: doubleQuant, skip: skip, compute: compute))
        var quantizedParameters = 0, bits = 0.0
        var kept: [String] = []
        for m in model.linearModules {
            if case .quantized(let q) = m.weight {
                let n = m.inFeatures * m.outFeatures
                quantizedParameters += n; bits += q.weight.bitsPerParameter * Double(n)
            } else { kept.append(m.name) }
        }
        try model.save(to: context.outputDirectory)
        for name in ArtifactFiles.companions where name != "config.json"
            && FileManager.default.fileExists(atPath: source.appendingPathComponent(name).path) {
            try ArtifactFiles.linkOrCopy(name, from: source, to: context.outputDirectory)
        }
        let mbBefore = Double(quantizedParameters) * 4 / 1e6, mbAfter = bits / 8 / 1e6
        let bitsPerParam = quantizedParameters > 0 ? bits / Double(quantizedParameters) : 0
        context.log(String(format: "quantized %d linear layers: %.1f MB -> %.1f MB (%.2f bits/param)", names.count, mbBefore, mbAfter, bitsPerParam)
                    + (compute == .bf16 ? "; base products computed in bf16 (fp32 accumulation), adapters in fp32" : ""))
        if !kept.isEmpty { context.log("kept in full precision: " + kept.joined(separator: ", ")) }
        if let line = model.compactEmbeddingDescription { context.log(line) }
        return StageResult(summary: ["layers": .integer(Int64(names.count)), "bits_per_param": .number((bitsPerParam * 100).rounded() / 100)])
    }
}
