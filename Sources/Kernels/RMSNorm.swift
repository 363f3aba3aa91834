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
            // Each row's sum of squares is one chain of dependent Double adds (its order fixes the bits);
            // four rows at a time keep four chains in flight instead of waiting on one.
            var n = range.lowerBound
            while n < range.upperBound {
                let k = min(4, range.upperBound - n)
                let x0 = input + n * C                       // (k, C)
                var ss = SIMD4<Double>()
                if k == 4 {
                    for c in 0..<C {
                        let v = SIMD4<Double>(Double(x0[c]), Double(x0[C + c]), Double(x0[2 * C + c]), Double(x0[3 * C + c]))
                        ss += v * v
                    }
                } else {
                    for j in 0..<k { var s = 0.0; for c in 0..<C { let v = Double(x0[j * C + c]); s += v * v }; ss[j] = s }
                }
                for j in 0..<k {
                    let x = x0 + j * C, y = output + (n + j) * C   // (C)
                    let variance = Float(ss[j] / Double(C))
                    let r = 1 / (variance + eps).squareRoot()
                    rstd[n + j] = r
                    for c in 0..<C { y[c] = weight[c] * (x[c] * r) }
                }
                n += k
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
            // As in the forward: each row's dot product is one ordered chain, four rows in flight.
            var n = range.lowerBound
            while n < range.upperBound {
                let rows = min(4, range.upperBound - n)
                let x0 = input + n * C, dy0 = gradOutput + n * C   // (rows, C)
                var dots = SIMD4<Double>()
                if rows == 4 {
                    for c in 0..<C {
                        let w = Double(weight[c])
                        let d = SIMD4<Double>(Double(dy0[c]), Double(dy0[C + c]), Double(dy0[2 * C + c]), Double(dy0[3 * C + c]))
                        let x = SIMD4<Double>(Double(x0[c]), Double(x0[C + c]), Double(x0[2 * C + c]), Double(x0[3 * C + c]))
                        dots += d * w * x
                    }
                } else {
                    for j in 0..<rows {
                        var dot = 0.0
                        for c in 0..<C { dot += Double(dy0[j * C + c]) * Double(weight[c]) * Double(x0[j * C + c]) }
                        dots[j] = dot
                    }
                }
                for j in 0..<rows {
                    let x = x0 + j * C, dy = dy0 + j * C, dx = gradInput + (n + j) * C   // (C)
                    let r = rstd[n + j]
                    let k = Float(dots[j] / Double(C)) * r * r * r
                    for c in 0..<C { dx[c] += r * weight[c] * dy[c] - k * x[c] }
                }
                n += rows
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
