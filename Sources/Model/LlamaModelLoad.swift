import Foundation
import Kernels
import TensorIO
import Quant

extension LlamaModel {
    /// Writes `config.json` and `model.safetensors` (deterministic bytes: same model, same files).
    /// Dense tensors are F32; 4-bit modules use transformers' bitsandbytes serialization. A tied head
    /// is not written (as transformers does). The tokenizer is the caller's business.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        let C = config.hiddenSize
        w.add(layout.embedding + ".weight", floats: embedding, shape: [config.vocabSize, C])
        func addLinear(_ m: LinearModule) {
            switch m.weight {
            case .dense(let weight): w.add(m.name + ".weight", floats: weight, shape: [m.outFeatures, m.inFeatures])
            case .quantized(let q): BitsAndBytesFormat.add(q.weight, module: m.name, to: &w)
            }
            if let b = m.bias { w.add(m.name + ".bias", floats: b, shape: [m.outFeatures]) }
        }
        for (l, layer) in layers.enumerated() {
            w.add(layout.attentionNorm(layer: l) + ".weight", floats: layer.attentionNorm, shape: [C])
            w.add(layout.mlpNorm(layer: l) + ".weight", floats: layer.mlpNorm, shape: [C])
            if let qn = layer.queryNorm, let kn = layer.keyNorm {
                w.add(layout.queryNorm(layer: l) + ".weight", floats: qn, shape: [config.headDim])
                w.add(layout.keyNorm(layer: l) + ".weight", floats: kn, shape: [config.headDim])
            }
            for m in layer.linears { addLinear(m) }
        }
        w.add(layout.finalNorm + ".weight", floats: finalNorm, shape: [C])
        if !headTied { addLinear(head) }
        var c = config
        c.tieWordEmbeddings = headTied
        try c.write(to: directory.appendingPathComponent("config.json"))
        try w.write(to: directory.appendingPathComponent("model.safetensors"))
    }

    /// Loads `config.json` + safetensors (single file or sharded) from an HF-style directory,
    /// either layout (detected from the tensor names). F32/F16/BF16 weights become fp32.
    /// Linear weights are read one module at a time and handed to `eachLinear` as soon as they are
    /// built (the quantize stage quantizes them there), so a model never needs all its fp32 linear
    /// weights in memory at once.
    public static func load(directory: URL, eachLinear: ((LinearModule) throws -> Void)? = nil) throws -> LlamaModel {
        let config = try ModelConfig.load(from: directory.appendingPathComponent("config.json"))
        let source: ShardedCheckpoint
        do { source = try ShardedCheckpoint(directory: directory) } catch {
            throw ModelError.checkpoint(directory: directory.path, reason: error.localizedDescription)
        }
        return try load(config: config, source: source, directory: directory, eachLinear: eachLinear)
    }

    static func load(config c: ModelConfig, source: ShardedCheckpoint, directory: URL,
                     eachLinear: ((LinearModule) throws -> Void)? = nil) throws -> LlamaModel {
        let names = source.names
        let layout: WeightLayout = c.modelType == "minimind" && WeightLayout.detect(names: names) != .huggingFace
            ? .miniMind : (WeightLayout.detect(names: names) ?? .huggingFace)
        let present = Set(names)
        var consumed = Set<String>()
        var missing: [String] = [], misshaped: [String] = []
        var quantizedModules = Set<String>()
        for m in present where m.hasSuffix(".weight.quant_state.bitsandbytes__nf4") || m.hasSuffix(".weight.quant_state.bitsandbytes__fp4") {
            quantizedModules.insert(String(m.prefix(upTo: m.range(of: ".weight.quant_state.")!.lowerBound)))
        }
        // Only linear layers can be 4-bit (never embeddings or norms).
        let linearNames = Set((0..<c.layers).flatMap { l in Projection.allCases.map { layout.projection($0, layer: l) } } + [layout.head])
        quantizedModules.formIntersection(linearNames)
        var tensors: [String: [Float]] = [:]
        /// NaN or Inf in a weight would be quantized into an absmax of Inf and poison every later stage.
        func finite(_ values: [Float], _ name: String) throws -> [Float] {
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw ModelError.nonFiniteWeight(directory: directory.path, tensor: name, index: i, value: values[i])
            }
            return values
        }
        for (name, shape) in expectedTensors(config: c, layout: layout) {
            let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : ""
            if quantizedModules.contains(module) {
                // bnb 4-bit: <module>.weight (packed U8) + .weight.absmax/.quant_map/... read by Quant.
                for n in present where n == name || n.hasPrefix(name + ".") { consumed.insert(n) }
                continue
            }
            guard present.contains(name) else { missing.append(name); continue }
            consumed.insert(name)
            let s = source.info(name)?.shape ?? []
            if s != shape {
                misshaped.append("\(name) (expected \(shape), found \(s))")
                continue
            }
            // Linear weights are read when their module is built (below), not all up front.
            if !linearNames.contains(module) { tensors[name] = try finite(try source.floats(name), name) }
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
                weight = .quantized(try loadQuantized(module: module, source: source, directory: directory, out: out, in: inF))
            } else {
                weight = .dense(try finite(try source.floats(module + ".weight"), module + ".weight"))
            }
            let m = LinearModule(name: module, inFeatures: inF, outFeatures: out, weight: weight,
                                 bias: bias ? tensors[module + ".bias"] : nil)
            try eachLinear?(m)
            return m
        }
        var layers: [DecoderLayer] = []
        for l in 0..<c.layers {
            var mods: [Projection: LinearModule] = [:]
            for p in Projection.allCases {
                let s = projectionShape(p, c)
                mods[p] = try linear(layout.projection(p, layer: l), out: s.out, in: s.in, bias: hasBias(p, c))
            }
            layers.append(DecoderLayer(attentionNorm: tensors[layout.attentionNorm(layer: l) + ".weight"]!,
                                       mlpNorm: tensors[layout.mlpNorm(layer: l) + ".weight"]!, projections: mods,
                                       queryNorm: c.qkNorm ? tensors[layout.queryNorm(layer: l) + ".weight"] : nil,
                                       keyNorm: c.qkNorm ? tensors[layout.keyNorm(layer: l) + ".weight"] : nil))
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

    static func loadQuantized(module: String, source: ShardedCheckpoint, directory: URL, out: Int, in inF: Int) throws -> Linear4bit {
        let q: QuantizedTensor
        do { q = try BitsAndBytesFormat.read(module: module, from: source) } catch {
            throw ModelError.checkpoint(directory: directory.path, reason: "4-bit module \(module): \(error.localizedDescription)")
        }
        guard q.shape == [out, inF] else {
            throw ModelError.tensorMismatch(directory: directory.path, missing: [], unexpected: [],
                                            misshaped: ["\(module).weight (expected [\(out), \(inF)], found \(q.shape))"])
        }
        return try Linear4bit(q)
    }
}
