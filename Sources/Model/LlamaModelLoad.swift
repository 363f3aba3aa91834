import Foundation
import Kernels

extension LlamaModel {
    /// Loads `config.json` + safetensors (single file or sharded) from an HF-style directory,
    /// either layout (detected from the tensor names). F32/F16/BF16 weights become fp32.
    public static func load(directory: URL) throws -> LlamaModel {
        let config = try ModelConfig.load(from: directory.appendingPathComponent("config.json"))
        let source = try SafeTensorsFallback(directory: directory)
        return try load(config: config, source: source, directory: directory)
    }

    static func load(config c: ModelConfig, source: TensorSource, directory: URL) throws -> LlamaModel {
        let names = source.tensorNames
        let layout: WeightLayout = c.modelType == "minimind" && WeightLayout.detect(names: names) != .huggingFace
            ? .miniMind : (WeightLayout.detect(names: names) ?? .huggingFace)
        let present = Set(names)
        var consumed = Set<String>()
        var missing: [String] = [], misshaped: [String] = []
        var quantizedModules = Set<String>()
        for m in present where m.hasSuffix(".weight.quant_state.bitsandbytes__nf4") || m.hasSuffix(".weight.quant_state.bitsandbytes__fp4") {
            quantizedModules.insert(String(m.prefix(upTo: m.range(of: ".weight.quant_state.")!.lowerBound)))
        }
        var tensors: [String: [Float]] = [:]
        for (name, shape) in expectedTensors(config: c, layout: layout) {
            let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : ""
            if quantizedModules.contains(module) {
                // bnb 4-bit: <module>.weight (packed U8) + .weight.absmax/.quant_map/... read by Quant.
                for n in present where n == name || n.hasPrefix(name + ".") { consumed.insert(n) }
                continue
            }
            guard present.contains(name) else { missing.append(name); continue }
            consumed.insert(name)
            let s = source.tensorShape(name) ?? []
            if s != shape {
                misshaped.append("\(name) (expected \(shape), found \(s))")
                continue
            }
            tensors[name] = try source.tensorFloats(name)
        }
        // A tied head may still be stored (MiniMind's torch state_dict keeps `output.weight`).
        if c.tieWordEmbeddings, present.contains(layout.head + ".weight") { consumed.insert(layout.head + ".weight") }
        // Non-persistent buffers some exporters keep.
        for n in present where n.hasSuffix("rotary_emb.inv_freq") || n == "freqs_cis" || n == "pos_cis" { consumed.insert(n) }
        let unexpected = present.subtracting(consumed).sorted()
        if !missing.isEmpty || !unexpected.isEmpty || !misshaped.isEmpty {
            throw ModelError.tensorMismatch(directory: directory.path, missing: missing, unexpected: unexpected, misshaped: misshaped)
        }

        func linear(_ module: String, out: Int, in inF: Int, bias: Bool) throws -> LinearModule {
            let weight: LinearModule.Weight
            if quantizedModules.contains(module) {
                #if MODEL_QUANT
                weight = .quantized(try loadQuantized(module: module, source: source, directory: directory, out: out, in: inF))
                #else
                throw ModelError.checkpoint(directory: directory.path, reason: "module \(module) is 4-bit quantized; this build cannot load bitsandbytes checkpoints yet")
                #endif
            } else {
                weight = .dense(tensors[module + ".weight"]!)
            }
            return LinearModule(name: module, inFeatures: inF, outFeatures: out, weight: weight,
                                bias: bias ? tensors[module + ".bias"] : nil)
        }
        var layers: [DecoderLayer] = []
        for l in 0..<c.layers {
            var mods: [Projection: LinearModule] = [:]
            for p in Projection.allCases {
                let s = projectionShape(p, c)
                mods[p] = try linear(layout.projection(p, layer: l), out: s.out, in: s.in, bias: hasBias(p, c))
            }
            layers.append(DecoderLayer(attentionNorm: tensors[layout.attentionNorm(layer: l) + ".weight"]!,
                                       mlpNorm: tensors[layout.mlpNorm(layer: l) + ".weight"]!, projections: mods))
        }
        let emb = tensors[layout.embedding + ".weight"]!
        let head: LinearModule
        if c.tieWordEmbeddings {
            head = LinearModule(name: layout.head, inFeatures: c.hiddenSize, outFeatures: c.vocabSize, weight: .dense(emb))
        } else {
            head = try linear(layout.head, out: c.vocabSize, in: c.hiddenSize, bias: false)
        }
        return LlamaModel(config: c, layout: layout, embedding: emb, layers: layers,
                          finalNorm: tensors[layout.finalNorm + ".weight"]!, head: head, headTied: c.tieWordEmbeddings)
    }

    #if MODEL_QUANT
    static func loadQuantized(module: String, source: TensorSource, directory: URL, out: Int, in inF: Int) throws -> Linear4bit {
        throw ModelError.checkpoint(directory: directory.path, reason: "4-bit module \(module): quantized loading needs the Quant target")
    }
    #endif
}
