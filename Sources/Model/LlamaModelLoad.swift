import Foundation
import Kernels
import TensorIO
import Quant

extension LlamaModel {
    /// Writes `config.json` and `model.safetensors` (deterministic bytes: same model, same files).
    /// Dense tensors are F32; 4-bit modules use transformers' bitsandbytes serialization. A tied head
    /// is not written (as transformers does). The tokenizer is the caller's business.
    /// `dtype` F32 (default), BF16 or F16 stores the dense tensors in that type (round to nearest
    /// even, as torch's `.to()`), and config.json names it. Above `maxShardBytes` the weights are
    /// split into `model-0000k-of-0000n.safetensors` shards with a `model.safetensors.index.json`,
    /// as transformers' `save_pretrained` does.
    public func save(to directory: URL, dtype: DType = .f32, maxShardBytes: Int = 2_000_000_000) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        let C = config.hiddenSize
        let stored: DType = dtype == .bf16 || dtype == .f16 ? dtype : .f32
        func dense(_ name: String, _ values: [Float], _ shape: [Int]) {
            if stored == .f32 { w.add(name, floats: values, shape: shape) }   // no copy until written
            else { w.add(name, dtype: stored, shape: shape, bytes: stored.bytes(of: values)) }
        }
        func frozen(_ name: String, _ weight: LinearModule.Weight, _ shape: [Int]) {
            switch weight {
            case .dense(let values): dense(name, values, shape)
            case .quantized(let q): BitsAndBytesFormat.add(q.weight, module: String(name.dropLast(".weight".count)), to: &w)
            case .deferred(let d): w.add(name, dtype: stored, shape: shape, deferredFloats: d.produce)
            case .compact(let m): w.add(name, dtype: stored, shape: shape, deferredFloats: m.floats)   // decoded as it is written
            }
        }
        frozen(layout.embedding + ".weight", embeddingWeight, [config.vocabSize, C])
        func addLinear(_ m: LinearModule) {
            switch m.weight {
            case .dense(let weight): dense(m.name + ".weight", weight, [m.outFeatures, m.inFeatures])
            case .compact(let c): w.add(m.name + ".weight", dtype: stored, shape: [m.outFeatures, m.inFeatures], deferredFloats: c.floats)
            case .quantized(let q): BitsAndBytesFormat.add(q.weight, module: m.name, to: &w)
            case .deferred(let d): w.add(m.name + ".weight", dtype: stored, shape: [m.outFeatures, m.inFeatures], deferredFloats: d.produce)
            }
            if let b = m.bias { dense(m.name + ".bias", b, [m.outFeatures]) }
        }
        for (l, layer) in layers.enumerated() {
            dense(layout.attentionNorm(layer: l) + ".weight", layer.attentionNorm, [C])
            dense(layout.mlpNorm(layer: l) + ".weight", layer.mlpNorm, [C])
            if let qn = layer.queryNorm, let kn = layer.keyNorm {
                dense(layout.queryNorm(layer: l) + ".weight", qn, [config.headDim])
                dense(layout.keyNorm(layer: l) + ".weight", kn, [config.headDim])
            }
            for m in layer.linears { addLinear(m) }
        }
        dense(layout.finalNorm + ".weight", finalNorm, [C])
        if !headTied { addLinear(head) }
        var c = config
        c.tieWordEmbeddings = headTied
        switch dtype {
        case .bf16: c.dtype = "bfloat16"
        case .f16: c.dtype = "float16"
        default: break   // fp32 keeps the config's own dtype field (pinned artifact bytes)
        }
        try c.write(to: directory.appendingPathComponent("config.json"))
        try Self.writeShards(w, to: directory, maxShardBytes: maxShardBytes)
    }

    /// One model.safetensors, or shards in name order each at most `maxShardBytes` (a larger
    /// tensor gets a shard of its own) plus the index transformers reads.
    static func writeShards(_ w: SafeTensorsWriter, to directory: URL, maxShardBytes: Int) throws {
        let entries = w.orderedEntries
        let total = entries.reduce(0) { $0 + $1.byteCount }
        guard total > maxShardBytes else {
            try w.write(to: directory.appendingPathComponent(ShardedCheckpoint.singleFileName))
            return
        }
        var shards: [[SafeTensorsWriter.Entry]] = [[]]
        var size = 0
        for e in entries {
            if size > 0 && size + e.byteCount > maxShardBytes { shards.append([]); size = 0 }
            shards[shards.count - 1].append(e); size += e.byteCount
        }
        var map: [(String, String)] = []
        for (k, group) in shards.enumerated() {
            let name = String(format: "model-%05d-of-%05d.safetensors", k + 1, shards.count)
            var shard = SafeTensorsWriter(metadata: w.metadata)
            for e in group { shard.add(e); map.append((e.name, name)) }
            try shard.write(to: directory.appendingPathComponent(name))
        }
        var index = "{\n  \"metadata\": {\n    \"total_size\": \(total)\n  },\n  \"weight_map\": {\n"
        index += map.sorted { $0.0 < $1.0 }.map { "    \"\($0.0)\": \"\($0.1)\"" }.joined(separator: ",\n")
        index += "\n  }\n}\n"
        try Data(index.utf8).write(to: directory.appendingPathComponent(ShardedCheckpoint.indexFileName), options: .atomic)
    }

    /// Loads `config.json` + safetensors (single file or sharded) from an HF-style directory,
    /// either layout (detected from the tensor names). F32/F16/BF16 weights become fp32.
    /// Linear weights are read one module at a time and handed to `eachLinear` as soon as they are
    /// built (the quantize stage quantizes them there), so a model never needs all its fp32 linear
    /// weights in memory at once. With `deferLinearWeights` the full-precision linear weights stay in
    /// the files (validated for presence and shape now, read and checked for NaN/Inf when written):
    /// merge and export, which only write the model, hold one of them at a time.
    public static func load(directory: URL, deferLinearWeights: Bool = false,
                            eachLinear: ((LinearModule) throws -> Void)? = nil) throws -> LlamaModel {
        let config = try ModelConfig.load(from: directory.appendingPathComponent("config.json"))
        let source: ShardedCheckpoint
        do { source = try ShardedCheckpoint(directory: directory) } catch {
            throw ModelError.checkpoint(directory: directory.path, reason: error.localizedDescription)
        }
        return try load(config: config, source: source, directory: directory, deferLinearWeights: deferLinearWeights, eachLinear: eachLinear)
    }

    static func load(config c: ModelConfig, source: ShardedCheckpoint, directory: URL, deferLinearWeights: Bool = false,
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
        // bitsandbytes' compute dtype of the 4-bit layers (transformers: bnb_4bit_compute_dtype).
        var compute = ComputeDType.fp32
        if let name = c.quantization?.computeDtype {
            guard let known = Linear4bit.computeDType(named: name) else {
                throw ModelError.unsupportedConfig(field: "quantization_config.bnb_4bit_compute_dtype", value: name,
                                                   hint: "qlora-run computes 4-bit layers in float32 or bfloat16")
            }
            compute = known
        }
        var tensors: [String: [Float]] = [:]
        /// NaN or Inf in a weight would be quantized into an absmax of Inf and poison every later stage.
        let path = directory.path
        @Sendable func finite(_ values: [Float], _ name: String) throws -> [Float] {
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw ModelError.nonFiniteWeight(directory: path, tensor: name, index: i, value: values[i])
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
                weight = .quantized(try loadQuantized(module: module, source: source, directory: directory, out: out, in: inF, compute: compute))
            } else if deferLinearWeights {
                let name = module + ".weight"
                weight = .deferred(DeferredWeight { try finite(try source.floats(name), name) })
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
        let model = LlamaModel(config: c, layout: layout, embedding: emb, layers: layers,
                               finalNorm: tensors[layout.finalNorm + ".weight"]!, head: head, headTied: c.tieWordEmbeddings)
        model.compactEmbedding()   // same values; 113 -> 30 MB for SmolLM2 from its Q8_0 GGUF
        return model
    }

    static func loadQuantized(module: String, source: ShardedCheckpoint, directory: URL, out: Int, in inF: Int, compute: ComputeDType) throws -> Linear4bit {
        let q: QuantizedTensor
        do { q = try BitsAndBytesFormat.read(module: module, from: source) } catch {
            throw ModelError.checkpoint(directory: directory.path, reason: "4-bit module \(module): \(error.localizedDescription)")
        }
        guard q.shape == [out, inF] else {
            throw ModelError.tensorMismatch(directory: directory.path, missing: [], unexpected: [],
                                            misshaped: ["\(module).weight (expected [\(out), \(inF)], found \(q.shape))"])
        }
        return try Linear4bit(q, compute: compute)
    }
}
