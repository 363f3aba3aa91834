import Foundation

// Legend: N rows (= B*T), C channels.
//
// RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization", eq. 4) with the numerics
// of transformers' `LlamaRMSNorm.forward`:
//     variance = hidden.float().pow(2).mean(-1); hidden = hidden * rsqrt(variance + eps); return weight * hidden
// i.e. normalise FIRST, multiply by the weight LAST (the order matters for ≤1e-4 parity in fp32).
// The sum of squares is accumulated in Double so the only fp32 rounding is that of the result, which
// makes the forward independent of vector width and thread count.
public enum RMSNorm {
    /// output (N, C) = input * rstd * weight; rstd (N) saved for the backward. Overwrites output and rstd.
    public static func forward(output: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows N: Int, channels C: Int, eps: Float) {
        Parallel.forEachChunk(N, costPerItem: C * 2) { range in
            for n in range {
                let x = input + n * C          // (C)
                let y = output + n * C         // (C)
                var ss = 0.0
                for c in 0..<C { let v = Double(x[c]); ss += v * v }
                let variance = Float(ss / Double(C))
                let r = 1 / (variance + eps).squareRoot()
                rstd[n] = r
                for c in 0..<C { y[c] = weight[c] * (x[c] * r) }
            }
        }
    }

    /// Oracle: the same formula in Double throughout (rounded once at the end).
    public static func naiveForward(output: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                    input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    rows N: Int, channels C: Int, eps: Float) {
        for n in 0..<N {
            var ss = 0.0
            for c in 0..<C { ss += Double(input[n * C + c]) * Double(input[n * C + c]) }
            let r = 1 / (ss / Double(C) + Double(eps)).squareRoot()
            rstd[n] = Float(r)
            for c in 0..<C { output[n * C + c] = Float(Double(weight[c]) * Double(input[n * C + c]) * r) }
        }
    }

    /// gradInput (N, C) += dL/dx; optional gradWeight (C) += dL/dw (summed over rows in row order).
    /// With y_i = w_i x_i r, r = (mean(x²) + eps)^(-1/2):
    ///     dx_i = r w_i dy_i − (r³ / C) x_i Σ_j dy_j w_j x_j
    public static func backward(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                rstd: UnsafePointer<Float>, rows N: Int, channels C: Int,
                                gradWeight: UnsafeMutablePointer<Float>? = nil) {
        Parallel.forEachChunk(N, costPerItem: C * 4) { range in
            for n in range {
                let x = input + n * C          // (C)
                let dy = gradOutput + n * C    // (C)
                let dx = gradInput + n * C     // (C)
                let r = rstd[n]
                var dot = 0.0
                for c in 0..<C { dot += Double(dy[c]) * Double(weight[c]) * Double(x[c]) }
                let k = Float(dot / Double(C)) * r * r * r
                for c in 0..<C { dx[c] += r * weight[c] * dy[c] - k * x[c] }
            }
        }
        if let gw = gradWeight {
            // Parallel over channels so each thread owns a disjoint slice of gw; rows summed in order.
            Parallel.forEachChunk(C, costPerItem: N) { range in
                for n in 0..<N {
                    let r = rstd[n]
                    for c in range { gw[c] += gradOutput[n * C + c] * input[n * C + c] * r }
                }
            }
        }
    }

    /// Oracle in Double.
    public static func naiveBackward(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                     input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     rstd: UnsafePointer<Float>, rows N: Int, channels C: Int,
                                     gradWeight: UnsafeMutablePointer<Float>? = nil) {
        for n in 0..<N {
            let r = Double(rstd[n])
            var dot = 0.0
            for c in 0..<C { dot += Double(gradOutput[n * C + c]) * Double(weight[c]) * Double(input[n * C + c]) }
            for c in 0..<C {
                let x = Double(input[n * C + c]), dy = Double(gradOutput[n * C + c])
                gradInput[n * C + c] += Float(r * Double(weight[c]) * dy - r * r * r / Double(C) * x * dot)
                gradWeight?[c] += Float(dy * x * r)
            }
        }
    }
}
