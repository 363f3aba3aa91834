import Foundation

/// A zero-initialised fp32 buffer owned by the activation plan.
final class FloatBuffer {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { p.deallocate() }
    func zero() { p.update(repeating: 0, count: count) }
}

/// Everything the forward of one decoder layer keeps for its backward.
/// N = B·T rows; C hidden; Q = NH·HS; KV = KVH·HS; I intermediate.
///
/// Kept per layer: the products of the linears (expensive to redo). Shared by all layers and
/// recomputed in the backward when an adapter needs them: the two RMSNorm outputs and the SwiGLU
/// product (elementwise, from the kept input/middle/gate/up) — they would be 35% of the kept
/// floats. Attention probabilities are never kept (see `Attention.forward`).
final class LayerActivations {
    let input: FloatBuffer        // (N, C)  residual stream entering the layer
    let norm1: FloatBuffer        // (N, C)  input_layernorm output                       [shared]
    let rstd1: FloatBuffer        // (N)
    let q: FloatBuffer            // (B, T, NH, HS) after rotary
    let k: FloatBuffer            // (B, T, KVH, HS) after rotary
    let v: FloatBuffer            // (B, T, KVH, HS)
    let attention: FloatBuffer    // (B, T, NH, HS) attention output (o_proj input)
    let middle: FloatBuffer       // (N, C)  residual after attention
    let norm2: FloatBuffer        // (N, C)  post_attention_layernorm output              [shared]
    let rstd2: FloatBuffer        // (N)
    let gate: FloatBuffer         // (N, I)
    let up: FloatBuffer           // (N, I)
    let act: FloatBuffer          // (N, I)  silu(gate)·up (down_proj input)              [shared]
    // Qwen3 only (one float otherwise): projections before the per-head q/k RMSNorm, and its rstd.
    let qRaw: FloatBuffer         // (B, T, NH, HS)
    let kRaw: FloatBuffer         // (B, T, KVH, HS)
    let rstdQ: FloatBuffer        // (N·NH)
    let rstdK: FloatBuffer        // (N·KVH)

    /// Own input buffer, everything else shared with `shared` (gradient checkpointing: the
    /// layer's activations are recomputed from its input in the backward).
    init(sharingAll shared: LayerActivations, input: FloatBuffer) {
        self.input = input
        norm1 = shared.norm1; rstd1 = shared.rstd1; q = shared.q; k = shared.k; v = shared.v
        attention = shared.attention; middle = shared.middle; norm2 = shared.norm2
        rstd2 = shared.rstd2; gate = shared.gate; up = shared.up; act = shared.act
        qRaw = shared.qRaw; kRaw = shared.kRaw; rstdQ = shared.rstdQ; rstdK = shared.rstdK
    }

    /// Own buffers for what the layer keeps; norm outputs and the SwiGLU product from `shared`
    /// (nil: allocate them, for the first layer).
    init(B: Int, T: Int, C: Int, NH: Int, KVH: Int, HS: Int, I: Int, headNorm: Bool = false, sharingRecomputed shared: LayerActivations? = nil) {
        let N = B * T
        let h = headNorm ? 1 : 0
        qRaw = FloatBuffer(h * N * NH * HS); kRaw = FloatBuffer(h * N * KVH * HS)
        rstdQ = FloatBuffer(h * N * NH); rstdK = FloatBuffer(h * N * KVH)
        input = FloatBuffer(N * C); rstd1 = FloatBuffer(N)
        q = FloatBuffer(N * NH * HS); k = FloatBuffer(N * KVH * HS); v = FloatBuffer(N * KVH * HS)
        attention = FloatBuffer(N * NH * HS)
        middle = FloatBuffer(N * C); rstd2 = FloatBuffer(N)
        gate = FloatBuffer(N * I); up = FloatBuffer(N * I)
        norm1 = shared?.norm1 ?? FloatBuffer(N * C)
        norm2 = shared?.norm2 ?? FloatBuffer(N * C)
        act = shared?.act ?? FloatBuffer(N * I)
    }

    /// Floats one layer keeps in the non-checkpointed layout (for choosing the layout).
    static func keptFloats(B: Int, T: Int, C: Int, NH: Int, KVH: Int, HS: Int, I: Int, headNorm: Bool = false) -> Int {
        let N = B * T
        return N * (3 * C + 2 * NH * HS + 2 * KVH * HS + 2 * I + 2) + (headNorm ? N * (NH * HS + KVH * HS + NH + KVH) : 0)
    }
}

/// Gradient scratch for the backward pass (allocated on the first backward, reused).
final class GradientBuffers {
    let residual: FloatBuffer     // (N, C)  dLoss/d(residual stream), walked backwards through the layers
    let norm: FloatBuffer         // (N, C)  dLoss/d(norm output)
    let q: FloatBuffer            // (N, NH·HS)
    let k: FloatBuffer            // (N, KVH·HS)
    let v: FloatBuffer            // (N, KVH·HS)
    let attention: FloatBuffer    // (N, NH·HS)
    let gate: FloatBuffer         // (N, I)
    let up: FloatBuffer           // (N, I)
    let act: FloatBuffer          // (N, I)
    let qRaw: FloatBuffer         // (N, NH·HS)  Qwen3: gradient before the q norm (one float otherwise)
    let kRaw: FloatBuffer         // (N, KVH·HS)
    init(B: Int, T: Int, C: Int, NH: Int, KVH: Int, HS: Int, I: Int, headNorm: Bool = false) {
        let N = B * T
        qRaw = FloatBuffer(headNorm ? N * NH * HS : 0); kRaw = FloatBuffer(headNorm ? N * KVH * HS : 0)
        residual = FloatBuffer(N * C); norm = FloatBuffer(N * C)
        q = FloatBuffer(N * NH * HS); k = FloatBuffer(N * KVH * HS); v = FloatBuffer(N * KVH * HS)
        attention = FloatBuffer(N * NH * HS)
        gate = FloatBuffer(N * I); up = FloatBuffer(N * I); act = FloatBuffer(N * I)
    }
}

/// One activation memory plan per (B, T), allocated once and reused across calls (llm.c style).
final class ActivationPlan {
    let B: Int, T: Int
    let layers: [LayerActivations]
    let output: FloatBuffer       // (N, C)  residual stream after the last layer
    let finalNorm: FloatBuffer    // (N, C)  final RMSNorm output (head input)
    let finalRstd: FloatBuffer    // (N)
    let scratch: FloatBuffer      // (N, C)  o_proj / down_proj output before the residual add
    lazy var scratchOutput = FloatBuffer(B * T * dims.C)  // (N, C) discarded layer output of a recompute
    var positions: [Int32]        // (B, T)  rotary positions (restarting per segment when packed)
    /// Per row, the packed segments of this call (PackedSequences.swift), nil for plain rows.
    var segments: [[Range<Int>]]? = nil
    lazy var gradients = GradientBuffers(B: B, T: T, C: dims.C, NH: dims.NH, KVH: dims.KVH, HS: dims.HS, I: dims.I, headNorm: headNorm)
    let headNorm: Bool
    let dims: (C: Int, NH: Int, KVH: Int, HS: Int, I: Int)

    /// Logits per head chunk in training (8M floats, 32 MB).
    nonisolated(unsafe) static var headChunkLogits = 1 << 23   // var: tests force several chunks

    /// Rows per head chunk for `rows` supervised rows: ≤ `headChunkLogits` logits at a time. Each
    /// chunk's head products pack the whole (V, C) weight, so fewer, larger chunks (SmolLM: 170
    /// rows) cost less than many small ones.
    static func headChunkRows(_ rows: Int, vocab V: Int) -> Int { max(1, min(rows, headChunkLogits / V)) }

    /// The head's chunk buffers, allocated on first use and kept (no allocation per step).
    private var head: (inputs: FloatBuffer, logits: FloatBuffer, inputGradients: FloatBuffer)?
    func headScratch(rows R: Int, C: Int, V: Int) -> (inputs: FloatBuffer, logits: FloatBuffer, inputGradients: FloatBuffer) {
        if let h = head, h.logits.count >= R * V, h.inputs.count >= R * C { return h }
        let h = (inputs: FloatBuffer(R * C), logits: FloatBuffer(R * V), inputGradients: FloatBuffer(R * C))   // (R, C), (R, V), (R, C)
        head = h
        return h
    }

    /// true: only each layer's input is kept per layer; the rest is one shared set, recomputed
    /// per layer in the backward (gradient checkpointing, Chen et al. 2016 "Training Deep Nets with
    /// Sublinear Memory Cost" §3, one segment per decoder layer).
    let checkpointed: Bool

    /// Bytes the per-layer activations of a training step take at (B, T) in either layout (the
    /// shared buffers and gradient scratch, about two layers' worth, not counted).
    static func layerBytes(config c: ModelConfig, B: Int, T: Int, checkpointed: Bool) -> Int {
        let perLayer = checkpointed ? B * T * c.hiddenSize
            : LayerActivations.keptFloats(B: B, T: T, C: c.hiddenSize, NH: c.heads, KVH: c.kvHeads, HS: c.headDim, I: c.intermediateSize, headNorm: c.qkNorm)
        return 4 * c.layers * perLayer
    }

    /// true: a plan for forward passes only (evaluation, generation prefill): the layers take turns
    /// with two residual buffers (layer l reads buffer l mod 2 and writes the other), since nothing
    /// needs a layer's input once the layer is done. Per-layer inputs of a 1 × 1290 SmolLM2 pass
    /// would be 89 MB.
    let forwardOnly: Bool

    init(config c: ModelConfig, B: Int, T: Int, checkpointed: Bool = false, forwardOnly: Bool = false) {
        self.B = B; self.T = T
        self.checkpointed = checkpointed || forwardOnly
        self.forwardOnly = forwardOnly
        self.headNorm = c.qkNorm
        let C = c.hiddenSize
        dims = (C, c.heads, c.kvHeads, c.headDim, c.intermediateSize)
        if forwardOnly {
            let shared = LayerActivations(B: B, T: T, C: C, NH: c.heads, KVH: c.kvHeads, HS: c.headDim, I: c.intermediateSize, headNorm: c.qkNorm)
            let other = FloatBuffer(B * T * C)
            layers = [shared] + (1..<max(c.layers, 1)).map { l in
                LayerActivations(sharingAll: shared, input: l % 2 == 0 ? shared.input : other)
            }
        } else if checkpointed {
            let shared = LayerActivations(B: B, T: T, C: C, NH: c.heads, KVH: c.kvHeads, HS: c.headDim, I: c.intermediateSize, headNorm: c.qkNorm)
            layers = [shared] + (1..<max(c.layers, 1)).map { _ in LayerActivations(sharingAll: shared, input: FloatBuffer(B * T * C)) }
        } else {
            let first = LayerActivations(B: B, T: T, C: C, NH: c.heads, KVH: c.kvHeads, HS: c.headDim, I: c.intermediateSize, headNorm: c.qkNorm)
            layers = [first] + (1..<max(c.layers, 1)).map { _ in
                LayerActivations(B: B, T: T, C: C, NH: c.heads, KVH: c.kvHeads, HS: c.headDim, I: c.intermediateSize, headNorm: c.qkNorm, sharingRecomputed: first)
            }
        }
        output = FloatBuffer(B * T * C); finalNorm = FloatBuffer(B * T * C); finalRstd = FloatBuffer(B * T)
        scratch = FloatBuffer(B * T * C)
        positions = (0..<(B * T)).map { Int32($0 % T) }
    }
}
