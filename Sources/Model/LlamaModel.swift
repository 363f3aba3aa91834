import Foundation
import Kernels
import Quant

/// One decoder layer's parameters: two RMSNorm weights (C) and seven linear projections.
public final class DecoderLayer {
    public var attentionNorm: [Float]   // (C)
    public var mlpNorm: [Float]         // (C)
    /// Qwen3 q_norm / k_norm weights (HS), nil for the other families.
    public var queryNorm: [Float]?, keyNorm: [Float]?
    public let q: LinearModule, k: LinearModule, v: LinearModule, o: LinearModule
    public let gate: LinearModule, up: LinearModule, down: LinearModule

    init(attentionNorm: [Float], mlpNorm: [Float], projections: [Projection: LinearModule], queryNorm: [Float]? = nil, keyNorm: [Float]? = nil) {
        self.attentionNorm = attentionNorm; self.mlpNorm = mlpNorm
        self.queryNorm = queryNorm; self.keyNorm = keyNorm
        q = projections[.q]!; k = projections[.k]!; v = projections[.v]!; o = projections[.o]!
        gate = projections[.gate]!; up = projections[.up]!; down = projections[.down]!
    }
    public var linears: [LinearModule] { [q, k, v, o, gate, up, down] }
    public func projection(_ p: Projection) -> LinearModule {
        switch p {
        case .q: return q
        case .k: return k
        case .v: return v
        case .o: return o
        case .gate: return gate
        case .up: return up
        case .down: return down
        }
    }
}

/// A Llama-family decoder (llama, mistral, qwen2, minimind) in fp32 on the CPU.
public final class LlamaModel {
    public internal(set) var config: ModelConfig
    public let layout: WeightLayout
    /// The token embedding (V, C), frozen: `.dense` fp32, or `.compact` when its values have a
    /// smaller lossless form (`compactEmbedding()`); a tied head shares it.
    public internal(set) var embeddingWeight: LinearModule.Weight
    /// The embedding in fp32 (decoded when compact: 4·V·C bytes; writers take `embeddingWeight`).
    public var embedding: [Float] { (try? LinearModule.fullPrecision(embeddingWeight)) ?? [] }
    public let layers: [DecoderLayer]
    public var finalNorm: [Float]          // (C)
    /// The output head (V, C). When tied it shares the embedding's storage (copy-on-write arrays).
    public internal(set) var head: LinearModule
    public internal(set) var headTied: Bool

    /// Keep only each decoder layer's input between forward and backward and recompute the rest
    /// per layer in the backward: activation memory ≈ L·N·C + one layer's set instead of L sets.
    /// Same numbers bit for bit (the recompute repeats the same deterministic kernels).
    public var gradientCheckpointing = false
    /// Keep every layer's input in forward-only passes, for `residualCheckpoints()` (diagnostics,
    /// golden tests); off, a forward pass holds two residual buffers instead of one per layer.
    public var keepsResidualStreams = false

    /// What `gradient_checkpointing: auto` allows the kept per-layer activations of one micro-batch
    /// to take before it turns checkpointing on (SmolLM-135M at 1 × 512 keeps ~350 MB and stays off).
    public static let automaticCheckpointingBudget = 1 << 30

    /// Bytes the decoder layers keep for the backward of one (B, T) micro-batch.
    public func activationBytes(batch B: Int, length T: Int, checkpointed: Bool) -> Int {
        ActivationPlan.layerBytes(config: config, B: B, T: T, checkpointed: checkpointed)
    }

    /// `gradient_checkpointing: auto`: on only when the kept activations would exceed the budget.
    /// Either way the numbers are the same bit for bit; only memory and speed differ.
    public func chooseCheckpointing(batch B: Int, length T: Int) -> Bool {
        activationBytes(batch: B, length: T, checkpointed: false) > Self.automaticCheckpointingBudget
    }

    var plan: ActivationPlan?
    var rotaryCache: RotaryTable?

    init(config: ModelConfig, layout: WeightLayout, embedding: [Float], layers: [DecoderLayer], finalNorm: [Float],
         head: LinearModule, headTied: Bool) {
        self.config = config; self.layout = layout; self.embeddingWeight = .dense(embedding); self.layers = layers
        self.finalNorm = finalNorm; self.head = head; self.headTied = headTied
    }

    /// Holds the embedding, and the head when tied to it, in a lossless compact form when its
    /// values allow one (CompactMatrix: int8 blocks for a dequantized Q8_0 GGUF, bf16 for a bf16
    /// checkpoint): the same numbers in fewer bytes. Returns the bytes saved (0: kept in fp32).
    @discardableResult
    public func compactEmbedding() -> Int {
        guard case .dense(let e) = embeddingWeight,
              let m = CompactMatrix.lossless(e, rows: config.vocabSize, columns: config.hiddenSize) else { return 0 }
        embeddingWeight = .compact(m)
        if headTied, case .dense = head.weight { head.weight = .compact(m) }
        return 4 * e.count - m.byteCount
    }

    /// How the embedding is held when compact, for the stages' logs; nil in fp32.
    public var compactEmbeddingDescription: String? {
        guard case .compact(let m) = embeddingWeight else { return nil }
        let form = m.encoding == .int8Blocks ? "int8 blocks of 32 with a scale each (the values of a Q8_0 tensor)" : "bf16 (its values are bf16)"
        return String(format: "embedding%@ held exactly as %@: %.1f MB -> %.1f MB", headTied ? " (and the head tied to it)" : "", form,
                      Double(4 * m.rows * m.columns) / 1e6, Double(m.byteCount) / 1e6)
    }

    /// The embedding rows of `tokens` into x (n, C), n = tokens.count; an id outside the
    /// vocabulary gives a zero row (callers holding user data validate first).
    func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        let V = config.vocabSize, C = config.hiddenSize
        func each(_ row: (Int, UnsafeMutablePointer<Float>) -> Void) {
            for (n, t) in tokens.enumerated() {
                let id = Int(t)
                if id >= 0 && id < V { row(id, x + n * C) } else { (x + n * C).update(repeating: 0, count: C) }
            }
        }
        switch embeddingWeight {
        case .compact(let m): each { id, out in m.decode(row: id, into: out) }
        default:
            let e = embedding
            e.withUnsafeBufferPointer { ep in each { id, out in out.update(from: ep.baseAddress! + id * C, count: C) } }
        }
    }

    /// Every linear incl. the head, in model order.
    public var linearModules: [LinearModule] { layers.flatMap { $0.linears } + [head] }

    /// (out, in) of each projection.
    public static func projectionShape(_ p: Projection, _ c: ModelConfig) -> (out: Int, in: Int) {
        let C = c.hiddenSize, I = c.intermediateSize
        switch p {
        case .q: return (c.heads * c.headDim, C)
        case .k, .v: return (c.kvHeads * c.headDim, C)
        case .o: return (C, c.heads * c.headDim)
        case .gate, .up: return (I, C)
        case .down: return (C, I)
        }
    }

    static func hasBias(_ p: Projection, _ c: ModelConfig) -> Bool {
        switch p {
        case .q, .k, .v: return c.qkvBias
        case .o: return c.outputBias
        default: return false
        }
    }

    /// The tensors a checkpoint must hold (name → shape), excluding the head when tied.
    static func expectedTensors(config c: ModelConfig, layout: WeightLayout) -> [(String, [Int])] {
        var out: [(String, [Int])] = [(layout.embedding + ".weight", [c.vocabSize, c.hiddenSize])]
        for l in 0..<c.layers {
            out.append((layout.attentionNorm(layer: l) + ".weight", [c.hiddenSize]))
            if c.qkNorm {
                out.append((layout.queryNorm(layer: l) + ".weight", [c.headDim]))
                out.append((layout.keyNorm(layer: l) + ".weight", [c.headDim]))
            }
            for p in Projection.allCases {
                let s = projectionShape(p, c)
                out.append((layout.projection(p, layer: l) + ".weight", [s.out, s.in]))
                if hasBias(p, c) { out.append((layout.projection(p, layer: l) + ".bias", [s.out])) }
            }
            out.append((layout.mlpNorm(layer: l) + ".weight", [c.hiddenSize]))
        }
        out.append((layout.finalNorm + ".weight", [c.hiddenSize]))
        if !c.tieWordEmbeddings { out.append((layout.head + ".weight", [c.vocabSize, c.hiddenSize])) }
        return out
    }

    // MARK: Deterministic initialisation

    /// normal(0, config.initializerRange) like HF's `_init_weights` (0.02 unless set), one
    /// RandomStream per tensor name (so one tensor's values do not depend on the others); norm
    /// weights 1, biases 0.
    public static func initialized(config: ModelConfig, layout: WeightLayout, seed: UInt64) -> LlamaModel {
        let std = config.initializerRange
        func normal(_ name: String, _ count: Int) -> [Float] {
            var rng = RandomStream(seed: seed, stream: "init/" + name)
            return (0..<count).map { _ in Float(rng.nextNormal() * std) }
        }
        let c = config
        let emb = normal(layout.embedding + ".weight", c.vocabSize * c.hiddenSize)
        var layers: [DecoderLayer] = []
        for l in 0..<c.layers {
            var mods: [Projection: LinearModule] = [:]
            for p in Projection.allCases {
                let s = projectionShape(p, c)
                let name = layout.projection(p, layer: l)
                mods[p] = LinearModule(name: name, inFeatures: s.in, outFeatures: s.out,
                                       weight: .dense(normal(name + ".weight", s.out * s.in)),
                                       bias: hasBias(p, c) ? [Float](repeating: 0, count: s.out) : nil)
            }
            let headNorm: [Float]? = c.qkNorm ? [Float](repeating: 1, count: c.headDim) : nil
            layers.append(DecoderLayer(attentionNorm: [Float](repeating: 1, count: c.hiddenSize),
                                       mlpNorm: [Float](repeating: 1, count: c.hiddenSize), projections: mods,
                                       queryNorm: headNorm, keyNorm: headNorm))
        }
        let headWeight = c.tieWordEmbeddings ? emb : normal(layout.head + ".weight", c.vocabSize * c.hiddenSize)
        let head = LinearModule(name: layout.head, inFeatures: c.hiddenSize, outFeatures: c.vocabSize, weight: .dense(headWeight))
        return LlamaModel(config: c, layout: layout, embedding: emb, layers: layers,
                          finalNorm: [Float](repeating: 1, count: c.hiddenSize), head: head, headTied: c.tieWordEmbeddings)
    }

    // MARK: Quantization

    /// Replaces dense linears by frozen 4-bit ones. `skip` entries match a module name exactly or
    /// as a dotted suffix (`lm_head`, `self_attn.o_proj`). A tied head that is not skipped becomes
    /// an untied quantized copy (the embedding stays fp32). Returns the names quantized.
    @discardableResult
    public func quantize(type: QuantType, blockSize: Int, doubleQuant: Bool, skip: [String], compute: ComputeDType = .fp32) throws -> [String] {
        var done: [String] = []
        for m in linearModules where !Self.skips(m.name, skip) {
            guard try Self.quantize(m, type: type, blockSize: blockSize, doubleQuant: doubleQuant, compute: compute) else { continue }
            done.append(m.name)
            if m === head && headTied {
                headTied = false
                config.tieWordEmbeddings = false
            }
        }
        config.quantization = ModelConfig.QuantizationConfig(quantType: type.rawValue, useDoubleQuant: doubleQuant,
                                                             computeDtype: compute.torchName, skipModules: skip)
        plan = nil
        return done
    }

    /// Whether `skip` (module names or name suffixes, transformers' llm_int8_skip_modules) keeps
    /// the module `name` in full precision.
    public static func skips(_ name: String, _ skip: [String]) -> Bool {
        skip.contains { name == $0 || name.hasSuffix("." + $0) }
    }

    /// Replaces a dense module's weight by its 4-bit quantization; false when it is not dense.
    /// Used while loading (`load(directory:eachLinear:)`), one module at a time.
    @discardableResult
    public static func quantize(_ m: LinearModule, type: QuantType, blockSize: Int, doubleQuant: Bool, compute: ComputeDType = .fp32) throws -> Bool {
        let w: [Float]
        switch m.weight {
        case .dense(let dense): w = dense
        case .compact(let compact): w = compact.floats()   // a tied head sharing the compact embedding
        default: return false
        }
        let q = try Quantizer.quantize(w, shape: [m.outFeatures, m.inFeatures], type: type, blockSize: blockSize, doubleQuant: doubleQuant)
        m.weight = .quantized(try Linear4bit(q, compute: compute))
        return true
    }
}
