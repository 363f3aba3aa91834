import Foundation
import Kernels
import Quant

/// Which dropout mask a training forward/backward uses: a pure function of (pipeline seed,
/// module name, optimizer step, micro-batch, element index), so forward, backward and a
/// gradient-checkpointing recomputation see the same mask without storing it, and a run resumed
/// from a checkpoint draws exactly the masks of an uninterrupted one.
public struct LoRADropoutContext: Equatable {
    public var seed: UInt64
    public var step: Int       // optimizer step being computed (1-based, as in metrics.jsonl)
    public var micro: Int      // micro-batch index inside that step
    /// Index of this call's first row among the rows the module sees in the micro-batch: the
    /// output head runs on chunks of the supervised rows, and each chunk needs its own part of the
    /// mask (the same mask whatever the chunk size).
    public var rowOffset = 0
    public init(seed: UInt64, step: Int, micro: Int) { self.seed = seed; self.step = step; self.micro = micro }
}

/// One call's dropout mask: `keeps(e)` for element e of its (N, in) input (a value, so the
/// per-element test inlines into the loops that use it).
struct DropoutMask: Sendable {
    let stream: RandomStream
    let offset: UInt64
    let p: Double
    @inline(__always) func keeps(_ e: Int) -> Bool { stream.uniform(at: offset + UInt64(e)) >= p }
}

/// A LoRA adapter on one linear layer: y += scale · B(A dropout(x)). A (r, in), B (out, r).
/// Gradients accumulate (+=) into gradA/gradB; the optimizer zeroes them.
public final class LoRAAdapter {
    public let rank: Int
    public var scale: Float
    /// Probability p of zeroing an input element of the LoRA path (PEFT lora_dropout, torch
    /// nn.Dropout: inverted, kept elements scaled by 1/(1-p)). Only active with a context.
    public var dropout: Float
    /// Set by the Trainer around each training micro-batch; nil = evaluation (no dropout).
    public var dropoutContext: LoRADropoutContext?
    public var a: [Float]      // (r, in)
    public var b: [Float]      // (out, r)
    public var gradA: [Float]  // (r, in)
    public var gradB: [Float]  // (out, r)
    // Scratch reused across calls, grown when N grows (no allocation in the step loop).
    var scratchH: [Float] = []    // (N, r)
    var scratchDH: [Float] = []   // (N, r)
    var scratchX: [Float] = []    // (N, in) dropped input, then dh·A in backward

    public init(rank: Int, inFeatures: Int, outFeatures: Int, scale: Float, dropout: Float = 0,
                a: [Float]? = nil, b: [Float]? = nil) {
        self.rank = rank; self.scale = scale; self.dropout = dropout
        self.a = a ?? [Float](repeating: 0, count: rank * inFeatures)
        self.b = b ?? [Float](repeating: 0, count: outFeatures * rank)
        self.gradA = [Float](repeating: 0, count: rank * inFeatures)
        self.gradB = [Float](repeating: 0, count: outFeatures * rank)
    }

    public func zeroGradients() {
        for i in gradA.indices { gradA[i] = 0 }
        for i in gradB.indices { gradB[i] = 0 }
    }

    /// The mask for `module` as a function of the element index e of this call's (N, in) input —
    /// true where the element is kept (u ≥ p, u the uniform at e + the context's row offset) — or
    /// nil when no dropout applies (p = 0 or evaluation). Forward and backward both use it.
    func dropoutKeeps(module: String, inFeatures: Int) -> DropoutMask? {
        guard dropout > 0, let c = dropoutContext else { return nil }
        return DropoutMask(stream: RandomStream(seed: c.seed, stream: "lora-dropout/\(module)/step-\(c.step)/micro-\(c.micro)"),
                           offset: UInt64(c.rowOffset * inFeatures), p: Double(dropout))
    }

    static func grow(_ buffer: inout [Float], _ n: Int) {
        if buffer.count < n { buffer = [Float](repeating: 0, count: n) }
    }
}

/// The producer of a deferred full-precision weight (`LinearModule.Weight.deferred`).
public struct DeferredWeight {
    public let produce: () throws -> [Float]   // (out, in)
    public init(_ produce: @escaping () throws -> [Float]) { self.produce = produce }
}

/// One linear layer of the model, named with the checkpoint's own name.
public final class LinearModule {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public enum Weight {
        case dense([Float])      // (out, in)
        case quantized(Linear4bit)
        /// A full-precision (out, in) weight produced when it is written (read from the checkpoint,
        /// dequantized, merged): a model that is only saved or exported (merge, export) holds one
        /// such weight at a time instead of all of them. Compute paths produce it on every call.
        case deferred(DeferredWeight)
        /// A frozen full-precision weight held losslessly in fewer bytes (CompactMatrix: a tied
        /// head sharing the compact embedding); computes exactly as its fp32 values would.
        case compact(CompactMatrix)
    }
    public var weight: Weight
    public var bias: [Float]?    // (out)
    public var adapter: LoRAAdapter?

    public init(name: String, inFeatures: Int, outFeatures: Int, weight: Weight, bias: [Float]? = nil) {
        self.name = name; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.weight = weight; self.bias = bias
    }

    public var isQuantized: Bool {
        if case .quantized = weight { return true }
        return false
    }

    /// The fp32 weight (out, in): the dense weight itself, the dequantized 4-bit one, or the
    /// deferred one produced now (which can fail: a checkpoint read again).
    public func fullPrecisionWeight() throws -> [Float] { try Self.fullPrecision(weight) }

    static func fullPrecision(_ weight: Weight) throws -> [Float] {
        switch weight {
        case .dense(let w): return w
        case .quantized(let q): return Quantizer.dequantize(q.weight)
        case .deferred(let d): return try d.produce()
        case .compact(let m): return m.floats()
        }
    }

    /// A deferred weight for a compute path, which cannot throw: NaN when it cannot be produced, so
    /// the failure shows in the output instead of passing for numbers. Only merge and export build
    /// models with deferred weights, and they never run them.
    func producedForCompute(_ d: DeferredWeight) -> [Float] {
        (try? d.produce()) ?? [Float](repeating: .nan, count: outFeatures * inFeatures)
    }

    /// output (N, out) = input (N, in) · Wᵀ + bias + scale · (input Aᵀ) Bᵀ. Overwrites output.
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows N: Int) {
        func dense(_ w: [Float]) {
            w.withUnsafeBufferPointer { wp in
                BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: outFeatures, k: inFeatures,
                           a: input, lda: inFeatures, b: wp.baseAddress!, ldb: inFeatures, beta: 0, c: output, ldc: outFeatures)
            }
            if let bias { Elementwise.addBias(output, bias: bias, rows: N, channels: outFeatures) }
        }
        switch weight {
        case .dense(let w): dense(w)
        case .quantized(let q):
            q.forward(input: input, output: output, rows: N, bias: bias)   // in its compute dtype's sum
        case .deferred(let d): dense(producedForCompute(d))
        case .compact(let m):
            m.multiply(input: input, output: output, rows: N)
            if let bias { Elementwise.addBias(output, bias: bias, rows: N, channels: outFeatures) }
        }
        if let ad = adapter {
            let r = ad.rank
            LoRAAdapter.grow(&ad.scratchH, N * r)
            let dropping = fillDroppedInput(ad, input: input, rows: N)
            ad.scratchX.withUnsafeBufferPointer { xp in
                let x = dropping ? xp.baseAddress! : input   // (N, in) LoRA-path input
                ad.scratchH.withUnsafeMutableBufferPointer { hp in   // (N, r) = x Aᵀ
                    ad.a.withUnsafeBufferPointer { ap in
                        BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: r, k: inFeatures,
                                   a: x, lda: inFeatures, b: ap.baseAddress!, ldb: inFeatures, beta: 0, c: hp.baseAddress!, ldc: r)
                    }
                    ad.b.withUnsafeBufferPointer { bp in
                        BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: outFeatures, k: r, alpha: ad.scale,
                                   a: hp.baseAddress!, lda: r, b: bp.baseAddress!, ldb: r, beta: 1, c: output, ldc: outFeatures)
                    }
                }
            }
        }
    }

    /// Inverted dropout of the LoRA-path input (PEFT: lora_B(lora_A(dropout(x)))): element e of
    /// the (N, in) input is kept iff u_e ≥ p, u_e = uniform(at: e) of the context's stream, and a
    /// kept element becomes x/(1-p). Writes `ad.scratchX` and returns true, or returns false
    /// (scratch untouched) when no dropout applies. Chunked in parallel; each element depends
    /// only on its index, so the partitioning cannot change the result.
    func fillDroppedInput(_ ad: LoRAAdapter, input: UnsafePointer<Float>, rows N: Int) -> Bool {
        guard let mask = ad.dropoutKeeps(module: name, inFeatures: inFeatures) else { return false }
        let I = inFeatures, q = 1 - ad.dropout
        LoRAAdapter.grow(&ad.scratchX, N * I)
        ad.scratchX.withUnsafeMutableBufferPointer { xp in
            let xd = xp.baseAddress!
            Parallel.forEachChunk(N, costPerItem: 8 * I) { range in
                for e in (range.lowerBound * I)..<(range.upperBound * I) {
                    xd[e] = mask.keeps(e) ? input[e] / q : 0
                }
            }
        }
        return true
    }

    /// The LoRA-path input the adapter sees for `input` (N, in): x itself in evaluation, the
    /// dropped and rescaled x during training. For tests and diagnostics.
    public func loraInput(_ input: [Float], rows N: Int) -> [Float] {
        guard let ad = adapter, input.count == N * inFeatures else { return input }
        let dropping = input.withUnsafeBufferPointer { fillDroppedInput(ad, input: $0.baseAddress!, rows: N) }
        return dropping ? Array(ad.scratchX[0..<(N * inFeatures)]) : input
    }

    /// Backward for a frozen base: gradInput (N, in) += dy · W (+ LoRA path), and, when an
    /// adapter is attached, gradB += scale · dyᵀ (x Aᵀ), gradA += (scale · dy B)ᵀ x.
    /// `input` is the forward input (N, in); no base weight or bias gradient (frozen).
    public func backward(input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                         gradInput: UnsafeMutablePointer<Float>?, rows N: Int) {
        if let gradInput {
            func dense(_ w: [Float]) {
                w.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: inFeatures, k: outFeatures,
                               a: gradOutput, lda: outFeatures, b: wp.baseAddress!, ldb: inFeatures, beta: 1, c: gradInput, ldc: inFeatures)
                }
            }
            switch weight {
            case .dense(let w): dense(w)
            case .quantized(let q):
                q.backwardInput(gradOutput: gradOutput, gradInput: gradInput, rows: N)
            case .deferred(let d): dense(producedForCompute(d))
            case .compact(let m): m.accumulateInputGradient(gradOutput: gradOutput, gradInput: gradInput, rows: N)
            }
        }
        guard let ad = adapter else { return }
        let r = ad.rank, I = inFeatures
        LoRAAdapter.grow(&ad.scratchH, N * r)
        LoRAAdapter.grow(&ad.scratchDH, N * r)
        // Same mask as the forward: regenerated from the context, never stored.
        let dropping = fillDroppedInput(ad, input: input, rows: N)
        ad.scratchH.withUnsafeMutableBufferPointer { hp in          // (N, r) = x̃ Aᵀ
            ad.scratchDH.withUnsafeMutableBufferPointer { dhp in    // (N, r) = scale · dy B
                ad.scratchX.withUnsafeMutableBufferPointer { xp in  // (N, in) x̃, then dh A
                    let x = dropping ? UnsafePointer(xp.baseAddress!) : input
                    ad.a.withUnsafeBufferPointer { ap in
                        BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: r, k: I,
                                   a: x, lda: I, b: ap.baseAddress!, ldb: I, beta: 0, c: hp.baseAddress!, ldc: r)
                    }
                    ad.b.withUnsafeBufferPointer { bp in
                        BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: r, k: outFeatures, alpha: ad.scale,
                                   a: gradOutput, lda: outFeatures, b: bp.baseAddress!, ldb: r, beta: 0, c: dhp.baseAddress!, ldc: r)
                    }
                    ad.gradB.withUnsafeMutableBufferPointer { gb in
                        BLAS.sgemm(transposeA: true, transposeB: false, m: outFeatures, n: r, k: N, alpha: ad.scale,
                                   a: gradOutput, lda: outFeatures, b: hp.baseAddress!, ldb: r, beta: 1, c: gb.baseAddress!, ldc: r)
                    }
                    ad.gradA.withUnsafeMutableBufferPointer { ga in
                        BLAS.sgemm(transposeA: true, transposeB: false, m: r, n: I, k: N, alpha: 1,
                                   a: dhp.baseAddress!, lda: r, b: x, ldb: I, beta: 1, c: ga.baseAddress!, ldc: I)
                    }
                    guard let gradInput else { return }
                    ad.a.withUnsafeBufferPointer { ap in
                        if !dropping {
                            BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: I, k: r, alpha: 1,
                                       a: dhp.baseAddress!, lda: r, b: ap.baseAddress!, ldb: I, beta: 1, c: gradInput, ldc: I)
                            return
                        }
                        // dx̃ = dh A (N, in), then gradInput += dx̃ ⊙ m/(1-p) with the same mask.
                        let t = xp.baseAddress!
                        BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: I, k: r, alpha: 1,
                                   a: dhp.baseAddress!, lda: r, b: ap.baseAddress!, ldb: I, beta: 0, c: t, ldc: I)
                        guard let mask = ad.dropoutKeeps(module: name, inFeatures: I) else { return }
                        let q = 1 - ad.dropout
                        Parallel.forEachChunk(N, costPerItem: 8 * I) { range in
                            for e in (range.lowerBound * I)..<(range.upperBound * I) where mask.keeps(e) {
                                gradInput[e] += t[e] / q
                            }
                        }
                    }
                }
            }
        }
    }
}
