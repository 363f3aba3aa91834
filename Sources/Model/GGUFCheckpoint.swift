import Foundation
import TensorIO

/// GGUF as input: a llama/qwen2/qwen3 GGUF file becomes a Hugging Face checkpoint directory
/// (config.json, fp32 model.safetensors, tokenizer.json, tokenizer_config.json,
/// generation_config.json), so every later stage reads it like any other checkpoint.
/// Tensors are dequantized one at a time from the mapping while the file is written (peak memory:
/// the largest tensor, not the model); llama q/k rows are un-permuted back to rotate-half order, as
/// transformers' GGUF loader does.
public enum GGUFCheckpoint {
    public struct Summary: Sendable {
        public var config: ModelConfig
        /// Tensor type -> count, as stored in the file.
        public var types: [String: Int]
        public var architecture: String
        /// The file's `tokenizer.ggml.pre` (llama.cpp's pre-tokenizer name), kept for a re-export:
        /// the tokenizer.json built from the file splits as transformers' GGUF loader does, which for
        /// names like `smollm` is not the split llama.cpp uses.
        public var tokenizerPre: String? = nil
    }

    @discardableResult
    public static func convert(_ url: URL, to directory: URL) throws -> Summary {
        let file = try GGUFFile(url: url)
        let config = try GGUFLlama.config(from: file)
        try GGUFTokenizer.checkSupported(file)
        let arch = file.metadata["general.architecture"]?.string ?? "llama"
        let layout = WeightLayout.huggingFace
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        var consumed = Set<String>()
        var types: [String: Int] = [:]
        let path = url.path

        func read(_ gguf: String, _ hf: String, shape: [Int], permuteHeads: Int? = nil) throws {
            guard let info = file.info(gguf) else { throw GGUFError.missingTensor(file: path, tensor: gguf) }
            guard info.shape.reduce(1, *) == shape.reduce(1, *), info.shape.last == shape.last else {
                throw GGUFError.corrupt(file: path, detail: "tensor '\(gguf)' has shape \(info.shape), the hyper-parameters say \(shape)")
            }
            consumed.insert(gguf)
            types[info.type.name, default: 0] += 1
            let columns = shape.count == 2 ? shape[1] : 1
            let permute = permuteHeads.flatMap { GGUFLlama.permutesQueryKey(architecture: arch) ? $0 : nil }
            // Dequantized only while the safetensors file is written: one fp32 tensor in memory at a time.
            w.add(hf, shape: shape) {
                let values = try file.floats(gguf)
                if let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw ModelError.nonFiniteWeight(directory: path, tensor: gguf, index: i, value: values[i])
                }
                guard let heads = permute else { return values }
                return GGUFLlama.unpermuteRows(values, heads: heads, columns: columns)
            }
        }

        let C = config.hiddenSize
        try read(GGUFLlama.embedding + ".weight", layout.embedding + ".weight", shape: [config.vocabSize, C])
        for l in 0..<config.layers {
            try read(GGUFLlama.attentionNorm(layer: l) + ".weight", layout.attentionNorm(layer: l) + ".weight", shape: [C])
            try read(GGUFLlama.mlpNorm(layer: l) + ".weight", layout.mlpNorm(layer: l) + ".weight", shape: [C])
            if config.qkNorm {
                try read(GGUFLlama.queryNorm(layer: l) + ".weight", layout.queryNorm(layer: l) + ".weight", shape: [config.headDim])
                try read(GGUFLlama.keyNorm(layer: l) + ".weight", layout.keyNorm(layer: l) + ".weight", shape: [config.headDim])
            }
            for p in Projection.allCases {
                let s = LlamaModel.projectionShape(p, config)
                let heads: Int? = p == .q ? config.heads : p == .k ? config.kvHeads : nil
                let name = GGUFLlama.tensorName(projection: p, layer: l)
                try read(name + ".weight", layout.projection(p, layer: l) + ".weight", shape: [s.out, s.in], permuteHeads: heads)
                if LlamaModel.hasBias(p, config) {
                    try read(name + ".bias", layout.projection(p, layer: l) + ".bias", shape: [s.out], permuteHeads: heads)
                }
            }
        }
        try read(GGUFLlama.finalNorm + ".weight", layout.finalNorm + ".weight", shape: [C])
        if !config.tieWordEmbeddings { try read(GGUFLlama.head + ".weight", layout.head + ".weight", shape: [config.vocabSize, C]) }
        // rope_freqs (llama3 rope factors) and other extras would change the model: refuse them.
        let unexpected = file.tensors.map(\.name).filter { !consumed.contains($0) }
        guard unexpected.isEmpty else {
            throw GGUFError.unsupported(file: path, what: "tensors " + unexpected.prefix(5).map { "'\($0)'" }.joined(separator: ", ") + (unexpected.count > 5 ? " (and \(unexpected.count - 5) more)" : ""),
                                        hint: "qlora-run reads plain Llama-family decoders (no rope factor tables, experts or vision towers)")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try config.write(to: directory.appendingPathComponent("config.json"))
        try w.write(to: directory.appendingPathComponent(ShardedCheckpoint.singleFileName))
        try GGUFTokenizer.writeHuggingFaceFiles(from: file, config: config, to: directory)
        return Summary(config: config, types: types, architecture: arch, tokenizerPre: file.metadata["tokenizer.ggml.pre"]?.string)
    }
}
