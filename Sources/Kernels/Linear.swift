import Foundation

// Legend: N rows, in = input features, out = output features.
// Dense linear layer in PyTorch's convention: weight (out, in), y = x Wᵀ + b. All products go
// through BLAS.sgemm (OpenBLAS, all cores).
public enum Linear {
    /// output (N, out) = input (N, in) · weight (out, in)ᵀ + bias (out). Overwrites output.
    public static func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               rows N: Int, inFeatures: Int, outFeatures: Int) {
        if N == 0 || outFeatures == 0 { return }
        if inFeatures == 0 { output.update(repeating: 0, count: N * outFeatures) }
        else {
            BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: outFeatures, k: inFeatures,
                       a: input, lda: inFeatures, b: weight, ldb: inFeatures, beta: 0, c: output, ldc: outFeatures)
        }
        if let bias = bias { Elementwise.addBias(output, bias: bias, rows: N, channels: outFeatures) }
    }

    /// gradInput (N, in) += gradOutput (N, out) · weight (out, in).
    public static func backwardInput(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, rows N: Int, inFeatures: Int, outFeatures: Int) {
        if N == 0 || inFeatures == 0 || outFeatures == 0 { return }
        BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: inFeatures, k: outFeatures,
                   a: gradOutput, lda: outFeatures, b: weight, ldb: inFeatures, beta: 1, c: gradInput, ldc: inFeatures)
    }

    /// gradWeight (out, in) += gradOutput (N, out)ᵀ · input (N, in). Used for the LoRA A/B gradients.
    public static func backwardWeight(gradWeight: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                      input: UnsafePointer<Float>, rows N: Int, inFeatures: Int, outFeatures: Int) {
        if N == 0 || inFeatures == 0 || outFeatures == 0 { return }
        BLAS.sgemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: N,
                   a: gradOutput, lda: outFeatures, b: input, ldb: inFeatures, beta: 1, c: gradWeight, ldc: inFeatures)
    }

    /// gradBias (out) += Σ_n gradOutput[n] (rows summed in order).
    public static func backwardBias(gradBias: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                    rows N: Int, outFeatures: Int) {
        Parallel.forEachChunk(outFeatures, costPerItem: N) { r in
            for n in 0..<N { for o in r { gradBias[o] += gradOutput[n * outFeatures + o] } }
        }
    }

    // MARK: - Oracles (Double loops)

    public static func naiveForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                    rows N: Int, inFeatures: Int, outFeatures: Int) {
        for n in 0..<N { for o in 0..<outFeatures {
            var s = bias.map { Double($0[o]) } ?? 0
            for i in 0..<inFeatures { s += Double(input[n * inFeatures + i]) * Double(weight[o * inFeatures + i]) }
            output[n * outFeatures + o] = Float(s)
        } }
    }

    public static func naiveBackwardInput(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                          weight: UnsafePointer<Float>, rows N: Int, inFeatures: Int, outFeatures: Int) {
        for n in 0..<N { for i in 0..<inFeatures {
            var s = 0.0
            for o in 0..<outFeatures { s += Double(gradOutput[n * outFeatures + o]) * Double(weight[o * inFeatures + i]) }
            gradInput[n * inFeatures + i] += Float(s)
        } }
    }

    public static func naiveBackwardWeight(gradWeight: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                           input: UnsafePointer<Float>, rows N: Int, inFeatures: Int, outFeatures: Int) {
        for o in 0..<outFeatures { for i in 0..<inFeatures {
            var s = 0.0
            for n in 0..<N { s += Double(gradOutput[n * outFeatures + o]) * Double(input[n * inFeatures + i]) }
            gradWeight[o * inFeatures + i] += Float(s)
        } }
    }
}
