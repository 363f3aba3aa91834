import Foundation
import Kernels
import Quant

/// A LoRA adapter on one linear layer: y += scale · B(A x). A (r, in), B (out, r).
/// Gradients accumulate (+=) into gradA/gradB; the optimizer zeroes them.
public final class LoRAAdapter {
    public let rank: Int
    public var scale: Float
    public var dropout: Float
    public var a: [Float]      // (r, in)
    public var b: [Float]      // (out, r)
    public var gradA: [Float]  // (r, in)
    public var gradB: [Float]  // (out, r)

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
}

/// One linear layer of the model, named with the checkpoint's own name.
public final class LinearModule {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public enum Weight {
        case dense([Float])      // (out, in)
        case quantized(Linear4bit)
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

    /// The fp32 weight (out, in): the dense weight itself or the dequantized 4-bit one.
    public var denseWeight: [Float] {
        switch weight {
        case .dense(let w): return w
        case .quantized(let q): return Quantizer.dequantize(q.weight)
        }
    }

    /// output (N, out) = input (N, in) · Wᵀ + bias + scale · (input Aᵀ) Bᵀ. Overwrites output.
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows N: Int) {
        switch weight {
        case .dense(let w):
            w.withUnsafeBufferPointer { wp in
                BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: outFeatures, k: inFeatures,
                           a: input, lda: inFeatures, b: wp.baseAddress!, ldb: inFeatures, beta: 0, c: output, ldc: outFeatures)
            }
        case .quantized(let q):
            q.forward(input: input, output: output, rows: N)
        }
        if let bias {
            let O = outFeatures
            bias.withUnsafeBufferPointer { bp in
                Parallel.forEachChunk(N, costPerItem: O) { range in
                    for n in range { for j in 0..<O { output[n * O + j] += bp[j] } }
                }
            }
        }
        if let ad = adapter {
            let r = ad.rank
            var h = [Float](repeating: 0, count: N * r)   // (N, r) = x Aᵀ
            h.withUnsafeMutableBufferPointer { hp in
                ad.a.withUnsafeBufferPointer { ap in
                    BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: r, k: inFeatures,
                               a: input, lda: inFeatures, b: ap.baseAddress!, ldb: inFeatures, beta: 0, c: hp.baseAddress!, ldc: r)
                }
                ad.b.withUnsafeBufferPointer { bp in
                    BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: outFeatures, k: r, alpha: ad.scale,
                               a: hp.baseAddress!, lda: r, b: bp.baseAddress!, ldb: r, beta: 1, c: output, ldc: outFeatures)
                }
            }
        }
    }

    /// Backward for a frozen base: gradInput (N, in) += dy · W (+ LoRA path), and, when an
    /// adapter is attached, gradB += scale · dyᵀ (x Aᵀ), gradA += (scale · dy B)ᵀ x.
    /// `input` is the forward input (N, in); no base weight or bias gradient (frozen).
    public func backward(input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                         gradInput: UnsafeMutablePointer<Float>?, rows N: Int) {
        if let gradInput {
            switch weight {
            case .dense(let w):
                w.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: inFeatures, k: outFeatures,
                               a: gradOutput, lda: outFeatures, b: wp.baseAddress!, ldb: inFeatures, beta: 1, c: gradInput, ldc: inFeatures)
                }
            case .quantized(let q):
                q.backwardInput(gradOutput: gradOutput, gradInput: gradInput, rows: N)
            }
        }
        guard let ad = adapter else { return }
        let r = ad.rank
        var h = [Float](repeating: 0, count: N * r)    // (N, r) = x Aᵀ
        var dh = [Float](repeating: 0, count: N * r)   // (N, r) = scale · dy B
        h.withUnsafeMutableBufferPointer { hp in
            dh.withUnsafeMutableBufferPointer { dhp in
                ad.a.withUnsafeBufferPointer { ap in
                    BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: r, k: inFeatures,
                               a: input, lda: inFeatures, b: ap.baseAddress!, ldb: inFeatures, beta: 0, c: hp.baseAddress!, ldc: r)
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
                    BLAS.sgemm(transposeA: true, transposeB: false, m: r, n: inFeatures, k: N, alpha: 1,
                               a: dhp.baseAddress!, lda: r, b: input, ldb: inFeatures, beta: 1, c: ga.baseAddress!, ldc: inFeatures)
                }
                if let gradInput {
                    ad.a.withUnsafeBufferPointer { ap in
                        BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: inFeatures, k: r, alpha: 1,
                                   a: dhp.baseAddress!, lda: r, b: ap.baseAddress!, ldb: inFeatures, beta: 1, c: gradInput, ldc: inFeatures)
                    }
                }
            }
        }
    }
}
