import Foundation
import Kernels

// Forward and backward of the decoder, side by side (llm.c style). Legend: B batch, T time,
// N = B·T rows, C hidden, NH query heads, KVH kv heads, HS head size, I intermediate, V vocab.

extension LlamaModel {
    /// Checks token ids and shapes; forward/backward treat out-of-range ids as a zero embedding,
    /// so callers holding user data validate first.
    public func validate(tokens: [Int32], batch B: Int, length T: Int) throws {
        guard B > 0, T > 0, tokens.count == B * T else {
            throw ModelError.invalidInput("expected \(B)×\(T) = \(B * T) token ids, got \(tokens.count)")
        }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.invalidInput("token id \(tokens[bad]) at position \(bad) is outside the vocabulary (0..<\(config.vocabSize))")
        }
        if T > config.maxPositionEmbeddings {
            throw ModelError.invalidInput("sequence length \(T) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        // Within the window sliding-window attention is plain causal attention; beyond it, it is
        // not implemented, and attending in full would be a different model.
        if let w = config.slidingWindow, T > w {
            throw ModelError.invalidInput("sequence length \(T) exceeds the model's sliding_window \(w) (config.json); sliding-window attention is not implemented: set max_seq_len to at most \(w)")
        }
    }

    /// cos/sin for positions 0..<n (rounded up to a power of two so growing sequences rarely
    /// rebuild it; the Kernels table computes positions past its end on the fly anyway).
    func rotaryTable(positions n: Int) -> RotaryTable {
        if let r = rotaryCache, r.maxPositions >= n { return r }
        var size = 64
        while size < n { size *= 2 }
        let scaling = config.ropeScaling
        let llama3 = scaling.flatMap { s in
            s.type == "llama3" ? RotaryTable.Llama3Scaling(factor: s.factor, lowFreqFactor: s.lowFreqFactor, highFreqFactor: s.highFreqFactor,
                                                          originalMaxPositions: s.originalMaxPositionEmbeddings) : nil
        }
        let table = RotaryTable(headSize: config.headDim, maxPositions: size, theta: config.ropeTheta,
                                linearScaling: scaling?.type == "linear" ? scaling?.factor ?? 1 : 1, llama3: llama3)
        rotaryCache = table
        return table
    }

    /// The plan for (B, T). Training needs the layout `gradientCheckpointing` asks for (never a
    /// forward-only one); a plain forward (no backward) reuses any plan of the right shape, else
    /// allocates the forward-only layout (two residual buffers in turn; with
    /// `keepsResidualStreams`, the checkpointed one, which keeps every layer's input).
    func activationPlan(B: Int, T: Int, forTraining: Bool) -> ActivationPlan {
        if let p = plan, p.B == B, p.T == T {
            if forTraining ? (!p.forwardOnly && p.checkpointed == gradientCheckpointing) : (!keepsResidualStreams || !p.forwardOnly) { return p }
        }
        plan = nil   // release the old plan before allocating the new one
        let p = ActivationPlan(config: config, B: B, T: T, checkpointed: forTraining ? gradientCheckpointing : true,
                               forwardOnly: !forTraining && !keepsResidualStreams)
        plan = p
        return p
    }

    /// Runs embedding → decoder layers → final norm, keeping every activation in the plan.
    /// attentionMask (B, T) of 1/0 or nil.
    func forwardTrunk(tokens: [Int32], B: Int, T: Int, attentionMask: [Float]?, forTraining: Bool,
                      segments: [[Range<Int>]]? = nil) -> ActivationPlan {
        let p = activationPlan(B: B, T: T, forTraining: forTraining)
        p.segments = segments
        setPositions(p)
        let c = config
        let N = B * T, C = c.hiddenSize
        let eps = Float(c.rmsNormEps)

        // Embedding lookup into the first layer's input (N, C).
        let x0 = p.layers.first?.input ?? p.output
        embed(tokens, into: x0.p)
        for l in 0..<layers.count {
            layerForward(l, plan: p, attentionMask: attentionMask, output: l + 1 < layers.count ? p.layers[l + 1].input : p.output)
        }
        finalNorm.withUnsafeBufferPointer { w in
            RMSNorm.forward(output: p.finalNorm.p, rstd: p.finalRstd.p, input: p.output.p, weight: w.baseAddress!,
                                    rows: N, channels: C, eps: eps)
        }
        return p
    }

    /// One decoder layer's forward from `plan.layers[l].input`, writing the residual stream after
    /// the layer into `output` (N, C) and the activations its backward needs into the plan.
    func layerForward(_ l: Int, plan p: ActivationPlan, attentionMask: [Float]?, output: FloatBuffer) {
        let c = config, layer = layers[l]
        let B = p.B, T = p.T
        let N = B * T, C = c.hiddenSize, NH = c.heads, KVH = c.kvHeads, HS = c.headDim, I = c.intermediateSize
        let eps = Float(c.rmsNormEps)
        let table = rotaryTable(positions: T)
        let rotLayout: Rotary.Layout = layout.rotaryLayout == .rotateHalf ? .rotateHalf : .interleaved
        p.positions.withUnsafeBufferPointer { pos in
            let a = p.layers[l]
            // Attention block.
            layer.attentionNorm.withUnsafeBufferPointer { w in
                RMSNorm.forward(output: a.norm1.p, rstd: a.rstd1.p, input: a.input.p, weight: w.baseAddress!,
                                        rows: N, channels: C, eps: eps)
            }
            if let qn = layer.queryNorm, let kn = layer.keyNorm {
                // Qwen3: q/k projections, then RMSNorm over each head's HS channels, then rotary.
                layer.q.forward(input: a.norm1.p, output: a.qRaw.p, rows: N)
                layer.k.forward(input: a.norm1.p, output: a.kRaw.p, rows: N)
                qn.withUnsafeBufferPointer { w in
                    RMSNorm.forward(output: a.q.p, rstd: a.rstdQ.p, input: a.qRaw.p, weight: w.baseAddress!, rows: N * NH, channels: HS, eps: eps)
                }
                kn.withUnsafeBufferPointer { w in
                    RMSNorm.forward(output: a.k.p, rstd: a.rstdK.p, input: a.kRaw.p, weight: w.baseAddress!, rows: N * KVH, channels: HS, eps: eps)
                }
            } else {
                layer.q.forward(input: a.norm1.p, output: a.q.p, rows: N)
                layer.k.forward(input: a.norm1.p, output: a.k.p, rows: N)
            }
            layer.v.forward(input: a.norm1.p, output: a.v.p, rows: N)
            Rotary.forward(a.q.p, positions: pos.baseAddress!, table: table, B: B, T: T, H: NH, HS: HS, layout: rotLayout)
            Rotary.forward(a.k.p, positions: pos.baseAddress!, table: table, B: B, T: T, H: KVH, HS: HS, layout: rotLayout)
            attentionMask.withOptionalPointer { mask in attentionForward(a, plan: p, mask: mask) }
            layer.o.forward(input: a.attention.p, output: p.scratch.p, rows: N)
            add(output: a.middle.p, a.input.p, p.scratch.p, count: N * C)
            // MLP block.
            layer.mlpNorm.withUnsafeBufferPointer { w in
                RMSNorm.forward(output: a.norm2.p, rstd: a.rstd2.p, input: a.middle.p, weight: w.baseAddress!,
                                        rows: N, channels: C, eps: eps)
            }
            layer.gate.forward(input: a.norm2.p, output: a.gate.p, rows: N)
            layer.up.forward(input: a.norm2.p, output: a.up.p, rows: N)
            SwiGLU.forward(output: a.act.p, gate: a.gate.p, up: a.up.p, count: N * I)
            layer.down.forward(input: a.act.p, output: p.scratch.p, rows: N)
            add(output: output.p, a.middle.p, p.scratch.p, count: N * C)
        }
    }

    /// logits (B, T, V) for tokens (B, T); attentionMask (B, T) of 1/0 or nil.
    public func forward(tokens: [Int32], batch B: Int, length T: Int, attentionMask: [Float]?) -> [Float] {
        guard B > 0, T > 0, tokens.count == B * T, attentionMask.map({ $0.count == B * T }) ?? true else { return [] }
        let p = forwardTrunk(tokens: tokens, B: B, T: T, attentionMask: attentionMask, forTraining: false)
        var logits = [Float](repeating: 0, count: B * T * config.vocabSize)
        logits.withUnsafeMutableBufferPointer { lp in
            head.forward(input: p.finalNorm.p, output: lp.baseAddress!, rows: B * T)
        }
        return logits
    }

    /// The residual stream after the embedding, after each layer and after the final norm, from
    /// the last forward (for locating a divergence against a reference). Each (B, T, C).
    /// Needs `keepsResidualStreams` set before the forward (else the layers' inputs are gone: empty).
    public func residualCheckpoints() -> [String: [Float]] {
        guard let p = plan, !p.forwardOnly else { return [:] }
        let n = p.B * p.T * config.hiddenSize
        func copy(_ b: FloatBuffer) -> [Float] { Array(UnsafeBufferPointer(start: b.p, count: n)) }
        var out: [String: [Float]] = ["final_norm": copy(p.finalNorm)]
        for l in 0..<layers.count {
            if l == 0 { out["embed"] = copy(p.layers[0].input) }
            out["layer\(l)"] = copy(l + 1 < layers.count ? p.layers[l + 1].input : p.output)
        }
        return out
    }

    /// Training step core: forward, next-token cross-entropy summed over positions with
    /// lossWeights[b, t+1] > 0 (weighted), and the backward pass accumulating
    /// d(sum · gradScale)/d(A, B) into every adapter. Base weights and the embedding are frozen.
    /// The head only runs on the rows that have a loss, in chunks (never all B·T·V logits).
    /// `attentionMask` (B, T) of 1/0 is only needed for left padding (right padding cannot
    /// influence real positions under the causal mask). `segments`: packed rows (PackedSequences.swift),
    /// covering each row; a segment's first token must have weight 0 (it is no prediction of the one before).
    public func lossAndGradients(tokens: [Int32], batch B: Int, length T: Int, lossWeights: [Float], gradScale: Float,
                                 attentionMask: [Float]? = nil, segments: [[Range<Int>]]? = nil) -> Double {
        guard B > 0, T > 0, tokens.count == B * T, lossWeights.count == B * T,
              attentionMask.map({ $0.count == B * T }) ?? true,
              segments.map({ Self.segmentsCover($0, B: B, T: T) && attentionMask == nil }) ?? true else { return .nan }
        let c = config
        let N = B * T, C = c.hiddenSize, V = c.vocabSize, NH = c.heads, KVH = c.kvHeads, HS = c.headDim, I = c.intermediateSize
        let p = forwardTrunk(tokens: tokens, B: B, T: T, attentionMask: attentionMask, forTraining: true, segments: segments)
        let g = p.gradients

        let rows = Self.lossRows(B: B, T: T, lossWeights: lossWeights)
        g.residual.zero()
        g.norm.zero()
        var loss: Double = 0
        if !rows.isEmpty {
            let chunk = ActivationPlan.headChunkRows(rows.count, vocab: V)
            let scratch = p.headScratch(rows: chunk, C: C, V: V)
            let xs = scratch.inputs                 // (R, C) gathered head inputs
            let logits = scratch.logits             // (R, V) logits, then their gradient in place
            let dxs = scratch.inputGradients        // (R, C)
            var start = 0
            while start < rows.count {
                let R = min(chunk, rows.count - start)
                let targets = gatherHeadInputs(rows[start..<(start + R)], plan: p, into: xs, tokens: tokens)
                let weights = rows[start..<(start + R)].map { lossWeights[$0 + 1] }
                head.adapter?.dropoutContext?.rowOffset = start   // this chunk's part of a head dropout mask
                head.forward(input: xs.p, output: logits.p, rows: R)
                loss += targets.withUnsafeBufferPointer { tp in
                    weights.withUnsafeBufferPointer { wp in
                        CrossEntropy.forwardBackward(logits: logits.p, targets: tp.baseAddress!, weights: wp.baseAddress!,
                                                             rows: R, vocab: V, gradLogits: logits.p, gradScale: gradScale)
                    }
                }
                dxs.p.update(repeating: 0, count: R * C)
                head.backward(input: xs.p, gradOutput: logits.p, gradInput: dxs.p, rows: R)
                // Scatter into dLoss/d(final norm output) (N, C); rows without loss stay 0.
                for i in 0..<R { (g.norm.p + rows[start + i] * C).update(from: dxs.p + i * C, count: C) }
                start += R
            }
            head.adapter?.dropoutContext?.rowOffset = 0
        }
        if rows.isEmpty { return 0 }
        // Layers below the lowest adapted one receive no parameter gradient: stop there.
        guard let lowest = layers.firstIndex(where: { $0.linears.contains { $0.adapter != nil } }) else { return loss }
        // Final norm backward: dResidual (N, C) += ∂/∂x.
        finalNorm.withUnsafeBufferPointer { w in
            RMSNorm.backward(gradInput: g.residual.p, gradOutput: g.norm.p, input: p.output.p, weight: w.baseAddress!,
                                     rstd: p.finalRstd.p, rows: N, channels: C)
        }
        let table = rotaryTable(positions: T)
        let rotLayout: Rotary.Layout = layout.rotaryLayout == .rotateHalf ? .rotateHalf : .interleaved
        p.positions.withUnsafeBufferPointer { pos in
            for l in stride(from: layers.count - 1, through: lowest, by: -1) {
                let layer = layers[l], a = p.layers[l]
                // Gradient checkpointing: recompute this layer's activations from its saved input;
                // else only the shared elementwise ones its adapters read.
                if p.checkpointed { layerForward(l, plan: p, attentionMask: attentionMask, output: p.scratchOutput) }
                else { recomputeShared(l, plan: p) }
                // MLP block: residual gradient flows straight through; add the branch's contribution.
                g.act.zero()
                layer.down.backward(input: a.act.p, gradOutput: g.residual.p, gradInput: g.act.p, rows: N)
                g.gate.zero(); g.up.zero()
                SwiGLU.backward(gradGate: g.gate.p, gradUp: g.up.p, gradOutput: g.act.p, gate: a.gate.p, up: a.up.p, count: N * I)
                g.norm.zero()
                layer.gate.backward(input: a.norm2.p, gradOutput: g.gate.p, gradInput: g.norm.p, rows: N)
                layer.up.backward(input: a.norm2.p, gradOutput: g.up.p, gradInput: g.norm.p, rows: N)
                layer.mlpNorm.withUnsafeBufferPointer { w in
                    RMSNorm.backward(gradInput: g.residual.p, gradOutput: g.norm.p, input: a.middle.p, weight: w.baseAddress!,
                                             rstd: a.rstd2.p, rows: N, channels: C)
                }
                // Attention block.
                g.attention.zero()
                layer.o.backward(input: a.attention.p, gradOutput: g.residual.p, gradInput: g.attention.p, rows: N)
                g.q.zero(); g.k.zero(); g.v.zero()
                attentionMask.withOptionalPointer { mask in attentionBackward(a, g, plan: p, mask: mask) }
                Rotary.backward(g.q.p, positions: pos.baseAddress!, table: table, B: B, T: T, H: NH, HS: HS, layout: rotLayout)
                Rotary.backward(g.k.p, positions: pos.baseAddress!, table: table, B: B, T: T, H: KVH, HS: HS, layout: rotLayout)
                // Qwen3: back through the per-head q/k norms (weights frozen: input gradients only).
                var gq = g.q, gk = g.k
                if let qn = layer.queryNorm, let kn = layer.keyNorm {
                    g.qRaw.zero(); g.kRaw.zero()
                    qn.withUnsafeBufferPointer { w in
                        RMSNorm.backward(gradInput: g.qRaw.p, gradOutput: g.q.p, input: a.qRaw.p, weight: w.baseAddress!,
                                         rstd: a.rstdQ.p, rows: N * NH, channels: HS)
                    }
                    kn.withUnsafeBufferPointer { w in
                        RMSNorm.backward(gradInput: g.kRaw.p, gradOutput: g.k.p, input: a.kRaw.p, weight: w.baseAddress!,
                                         rstd: a.rstdK.p, rows: N * KVH, channels: HS)
                    }
                    gq = g.qRaw; gk = g.kRaw
                }
                // The lowest adapted layer passes no gradient further down: only the q/k/v adapters'
                // own gradients are left to take (no input gradients, no norm backward).
                if l == lowest {
                    for (linear, grad) in [(layer.q, gq), (layer.k, gk), (layer.v, g.v)] where linear.adapter != nil {
                        linear.backward(input: a.norm1.p, gradOutput: grad.p, gradInput: nil, rows: N)
                    }
                    continue
                }
                g.norm.zero()
                layer.q.backward(input: a.norm1.p, gradOutput: gq.p, gradInput: g.norm.p, rows: N)
                layer.k.backward(input: a.norm1.p, gradOutput: gk.p, gradInput: g.norm.p, rows: N)
                layer.v.backward(input: a.norm1.p, gradOutput: g.v.p, gradInput: g.norm.p, rows: N)
                layer.attentionNorm.withUnsafeBufferPointer { w in
                    RMSNorm.backward(gradInput: g.residual.p, gradOutput: g.norm.p, input: a.input.p, weight: w.baseAddress!,
                                             rstd: a.rstd1.p, rows: N, channels: C)
                }
            }
        }
        return loss
    }
}

extension LlamaModel {
    /// Refills layer l's shared norm outputs and SwiGLU product (overwritten by later layers in the
    /// forward) where an adapter's backward reads them as its input — the same kernels on the same
    /// kept inputs, so the same bits as the forward.
    func recomputeShared(_ l: Int, plan p: ActivationPlan) {
        let c = config, layer = layers[l], a = p.layers[l]
        let N = p.B * p.T, C = c.hiddenSize
        let eps = Float(c.rmsNormEps)
        if layer.q.adapter != nil || layer.k.adapter != nil || layer.v.adapter != nil {
            layer.attentionNorm.withUnsafeBufferPointer { w in
                RMSNorm.forward(output: a.norm1.p, rstd: a.rstd1.p, input: a.input.p, weight: w.baseAddress!, rows: N, channels: C, eps: eps)
            }
        }
        if layer.gate.adapter != nil || layer.up.adapter != nil {
            layer.mlpNorm.withUnsafeBufferPointer { w in
                RMSNorm.forward(output: a.norm2.p, rstd: a.rstd2.p, input: a.middle.p, weight: w.baseAddress!, rows: N, channels: C, eps: eps)
            }
        }
        if layer.down.adapter != nil {
            SwiGLU.forward(output: a.act.p, gate: a.gate.p, up: a.up.p, count: N * c.intermediateSize)
        }
    }
}

extension LlamaModel {
    /// Rows (b, t) whose next token carries loss (lossWeights[b, t+1] > 0), in order: where the
    /// head runs, in training and in evaluation.
    static func lossRows(B: Int, T: Int, lossWeights: [Float]) -> [Int] {
        var rows: [Int] = []
        for b in 0..<B { for t in 0..<(T - 1) where lossWeights[b * T + t + 1] > 0 { rows.append(b * T + t) } }
        return rows
    }

    /// Copies the final-norm outputs of `rows` into xs (R, C) and returns their next-token targets
    /// (R), clamped into the vocabulary.
    func gatherHeadInputs(_ rows: ArraySlice<Int>, plan p: ActivationPlan, into xs: FloatBuffer, tokens: [Int32]) -> [Int32] {
        let C = config.hiddenSize, V = config.vocabSize
        return rows.enumerated().map { i, n in
            (xs.p + i * C).update(from: p.finalNorm.p + n * C, count: C)
            return max(0, min(Int32(V - 1), tokens[n + 1]))
        }
    }
}

/// output = a + b (count), on all cores.
func add(output: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    Parallel.forEachChunk(count) { r in for i in r { output[i] = a[i] + b[i] } }
}
