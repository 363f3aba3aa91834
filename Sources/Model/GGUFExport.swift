import Foundation
import TensorIO

/// A model or its LoRA adapter as a GGUF file llama.cpp loads (convert_hf_to_gguf.py and
/// convert_lora_to_gguf.py conventions): `<arch>.*` hyper-parameters, llama.cpp tensor names,
/// q/k rows permuted for the `llama` architecture, 1-D tensors (norms, biases) always F32.
public enum GGUFExport {
    /// llama.cpp `llama_ftype` of a file whose matrices are all `type`.
    static func fileType(_ type: GGMLType) -> Int {
        switch type {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q8_0: return 7
        case .bf16: return 32
        default: return 0
        }
    }

    public struct Options: Sendable {
        public var type: GGMLType = .f16
        public var name = "model"
        /// `tokenizer.ggml.pre` to write instead of the name matched from tokenizer.json (the value of
        /// the GGUF the model was loaded from).
        public var tokenizerPre: String? = nil
        public init(type: GGMLType = .f16, name: String = "model", tokenizerPre: String? = nil) {
            self.type = type; self.name = name; self.tokenizerPre = tokenizerPre
        }
    }

    /// The architecture, or an error naming what cannot be written.
    static func architecture(_ model: LlamaModel) throws -> String {
        let c = model.config
        guard let arch = GGUFLlama.architecture(modelType: c.modelType) else {
            throw ModelError.unsupportedConfig(field: "model_type", value: "\"\(c.modelType)\"", hint: "GGUF export writes llama, mistral, minimind, qwen2 and qwen3 models")
        }
        if let s = c.ropeScaling, s.type != "linear" {
            throw ModelError.unsupportedConfig(field: "rope_scaling.rope_type", value: "\"\(s.type)\"",
                                               hint: "GGUF export writes default or linear rotary scaling (llama3 scaling needs a rope_freqs table, not written yet)")
        }
        return arch
    }

    /// Whether q/k rows are stored permuted: llama.cpp's llama architecture pairs adjacent
    /// elements; a Hugging Face-layout model rotates halves, a MiniMind-layout one is adjacent already.
    static func permutes(_ model: LlamaModel, _ arch: String) -> Bool {
        GGUFLlama.permutesQueryKey(architecture: arch) && model.layout.rotaryLayout == .rotateHalf
    }

    /// The model (its adapters, if any, are ignored: merge them first) with the tokenizer and chat
    /// template from `tokenizerDirectory`. Returns the writer and warnings to show the user.
    public static func model(_ model: LlamaModel, tokenizerDirectory: URL, options: Options) throws -> (GGUFWriter, [String]) {
        let arch = try architecture(model)
        let c = model.config
        var w = GGUFWriter()
        w.set("general.architecture", string: arch)
        w.set("general.type", string: "model")
        w.set("general.name", string: options.name)
        w.set("general.file_type", uint32: fileType(options.type))
        if options.type == .q8_0 || options.type == .q4_0 { w.set("general.quantization_version", uint32: 2) }
        w.set("\(arch).context_length", uint32: c.maxPositionEmbeddings)
        w.set("\(arch).embedding_length", uint32: c.hiddenSize)
        w.set("\(arch).block_count", uint32: c.layers)
        w.set("\(arch).feed_forward_length", uint32: c.intermediateSize)
        w.set("\(arch).rope.dimension_count", uint32: c.headDim)
        w.set("\(arch).attention.head_count", uint32: c.heads)
        w.set("\(arch).attention.head_count_kv", uint32: c.kvHeads)
        if c.headDim * c.heads != c.hiddenSize {
            w.set("\(arch).attention.key_length", uint32: c.headDim)
            w.set("\(arch).attention.value_length", uint32: c.headDim)
        }
        w.set("\(arch).attention.layer_norm_rms_epsilon", float32: c.rmsNormEps)
        w.set("\(arch).rope.freq_base", float32: c.ropeTheta)
        if let s = c.ropeScaling {
            w.set("\(arch).rope.scaling.type", string: "linear")
            w.set("\(arch).rope.scaling.factor", float32: s.factor)
        }
        w.set("\(arch).vocab_size", uint32: c.vocabSize)
        var warnings = try GGUFTokenizer.addMetadata(fromDirectory: tokenizerDirectory, config: c, vocabSize: c.vocabSize, to: &w,
                                                     pre: options.tokenizerPre)

        var fellBack: [String] = []
        func type(_ name: String, _ shape: [Int]) -> GGMLType {
            if shape[1] % options.type.blockSize != 0 { fellBack.append(name); return .f16 }
            return options.type
        }
        func matrix(_ name: String, _ values: [Float], _ shape: [Int]) {
            w.add(name, floats: values, shape: shape, type: type(name, shape))
        }
        func matrix(_ name: String, _ shape: [Int], _ produce: @escaping () throws -> [Float]) {
            w.add(name, shape: shape, type: type(name, shape), deferredFloats: produce)
        }
        func vector(_ name: String, _ values: [Float]) { w.add(name, floats: values, shape: [values.count], type: .f32) }
        let permute = permutes(model, arch)
        matrix(GGUFLlama.embedding + ".weight", [c.vocabSize, c.hiddenSize]) { model.embedding }   // decoded as it is written when compact
        for (l, layer) in model.layers.enumerated() {
            vector(GGUFLlama.attentionNorm(layer: l) + ".weight", layer.attentionNorm)
            if let qn = layer.queryNorm, let kn = layer.keyNorm {
                vector(GGUFLlama.queryNorm(layer: l) + ".weight", qn)
                vector(GGUFLlama.keyNorm(layer: l) + ".weight", kn)
            }
            for p in Projection.allCases {
                let m = layer.projection(p)
                let name = GGUFLlama.tensorName(projection: p, layer: l)
                let heads = p == .q ? c.heads : p == .k ? c.kvHeads : 0
                var bias = m.bias
                let permuted = permute && heads > 0
                if permuted { bias = bias.map { GGUFLlama.permuteRows($0, heads: heads, columns: 1) } }
                // Produced while the file is written: one full-precision weight in memory at a time.
                matrix(name + ".weight", [m.outFeatures, m.inFeatures]) {
                    let weight = try m.fullPrecisionWeight()
                    return permuted ? GGUFLlama.permuteRows(weight, heads: heads, columns: m.inFeatures) : weight
                }
                if let bias { vector(name + ".bias", bias) }
            }
            vector(GGUFLlama.mlpNorm(layer: l) + ".weight", layer.mlpNorm)
        }
        vector(GGUFLlama.finalNorm + ".weight", model.finalNorm)
        if !model.headTied { matrix(GGUFLlama.head + ".weight", [c.vocabSize, c.hiddenSize]) { try model.head.fullPrecisionWeight() } }
        if !fellBack.isEmpty {
            warnings.append("\(fellBack.count) tensors have rows not divisible by \(options.type.blockSize) and were written as F16 (\(fellBack.prefix(3).joined(separator: ", "))…)")
        }
        return (w, warnings)
    }

    /// The adapters as a llama.cpp LoRA GGUF (`general.type = adapter`, `adapter.type = lora`,
    /// `adapter.lora.alpha`): `<tensor>.weight.lora_a` (r, in) and `.lora_b` (out, r) under the
    /// base's GGUF names; lora_b rows of q/k permuted like their weights. llama.cpp scales by
    /// alpha / rank, so alpha is written as scale · rank (PEFT's alpha unless rsLoRA).
    public static func adapter(_ model: LlamaModel, alpha: Double?, type: GGMLType) throws -> GGUFWriter {
        let arch = try architecture(model)
        let c = model.config
        var w = GGUFWriter()
        w.set("general.architecture", string: arch)
        w.set("general.type", string: "adapter")
        w.set("adapter.type", string: "lora")
        let permute = permutes(model, arch)
        var written = false
        for (l, layer) in model.layers.enumerated() {
            for p in Projection.allCases {
                let m = layer.projection(p)
                guard let ad = m.adapter else { continue }
                if !written { w.set("adapter.lora.alpha", float32: alpha ?? Double(ad.scale) * Double(ad.rank)); written = true }
                let name = GGUFLlama.tensorName(projection: p, layer: l) + ".weight"
                let heads = p == .q ? c.heads : p == .k ? c.kvHeads : 0
                let b = permute && heads > 0 ? GGUFLlama.permuteRows(ad.b, heads: heads, columns: ad.rank) : ad.b
                let blockType = m.inFeatures % type.blockSize == 0 && ad.rank % type.blockSize == 0 ? type : .f32
                w.add(name + ".lora_a", floats: ad.a, shape: [ad.rank, m.inFeatures], type: blockType)
                w.add(name + ".lora_b", floats: b, shape: [m.outFeatures, ad.rank], type: blockType)
            }
        }
        guard written else {
            throw ModelError.invalidInput("the model has no LoRA adapters on its decoder layers; export `what: adapter` from an attach_adapters or train stage")
        }
        return w
    }
}
