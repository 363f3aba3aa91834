import Foundation
import Kernels

// Private, minimal-but-correct kernels used by the model until the Kernels target's versions land
// (same math and argument order as the CONTRACTS.md signatures, so switching is a rename).
// Legend: N rows (= B*T), C channels, B batch, T time, NH query heads, KVH kv heads, HS head size,
// V vocab. Every backward ACCUMULATES (+=) into its gradient buffers, llm.c style.

/// y = x · rsqrt(mean(x²) + eps) · w, in fp32 like transformers' LlamaRMSNorm.
enum RMSNormFallback {
    static func forward(output: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, rows N: Int, channels C: Int, eps: Float) {
        Parallel.forEachChunk(N, costPerItem: C * 2) { range in
            for n in range {
                let x = input + n * C, y = output + n * C
                var ss: Float = 0
                for i in 0..<C { ss += x[i] * x[i] }
                let r = 1 / (ss / Float(C) + eps).squareRoot()
                rstd[n] = r
                for i in 0..<C { y[i] = weight[i] * (x[i] * r) }
            }
        }
    }

    /// dx_i += r·w_i·dy_i − x_i·r³/C · Σ_j dy_j·w_j·x_j
    static func backward(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows N: Int, channels C: Int) {
        Parallel.forEachChunk(N, costPerItem: C * 3) { range in
            for n in range {
                let x = input + n * C, dy = gradOutput + n * C, dx = gradInput + n * C
                let r = rstd[n]
                var dot: Float = 0
                for i in 0..<C { dot += dy[i] * weight[i] * x[i] }
                let k = dot * r * r * r / Float(C)
                for i in 0..<C { dx[i] += r * weight[i] * dy[i] - x[i] * k }
            }
        }
    }
}

/// cos/sin (maxPositions, HS/2), computed like transformers' default rope in fp32:
/// inv_freq_i = 1 / base^(2i/HS) (divided by the factor for linear scaling), angle = pos · inv_freq.
struct RotaryTableFallback {
    let half: Int
    let maxPositions: Int
    var cos: [Float]
    var sin: [Float]
    init(headSize HS: Int, maxPositions: Int, theta: Double, linearScaling: Double = 1) {
        half = HS / 2
        self.maxPositions = maxPositions
        var inv = [Float](repeating: 0, count: half)
        for i in 0..<half {
            inv[i] = Float(1) / powf(Float(theta), Float(2 * i) / Float(HS))
            if linearScaling != 1 { inv[i] = inv[i] / Float(linearScaling) }
        }
        cos = [Float](repeating: 0, count: maxPositions * half)
        sin = cos
        for p in 0..<maxPositions {
            for i in 0..<half {
                let a = Float(p) * inv[i]
                cos[p * half + i] = cosf(a)
                sin[p * half + i] = sinf(a)
            }
        }
    }
}

/// In place on (B, T, H, HS); positions (B, T). `inverse` rotates by −angle (the backward).
enum RotaryFallback {
    static func apply(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RotaryTableFallback,
                      B: Int, T: Int, H: Int, HS: Int, layout: RotaryLayoutKind, inverse: Bool) {
        let half = HS / 2
        table.cos.withUnsafeBufferPointer { cosT in
            table.sin.withUnsafeBufferPointer { sinT in
                Parallel.forEachChunk(B * T, costPerItem: H * HS * 3) { range in
                    for bt in range {
                        let p = Int(positions[bt])
                        let c = cosT.baseAddress! + p * half, s = sinT.baseAddress! + p * half
                        for h in 0..<H {
                            let v = x + (bt * H + h) * HS
                            for i in 0..<half {
                                let sn = inverse ? -s[i] : s[i]
                                let (ia, ib) = layout == .rotateHalf ? (i, i + half) : (2 * i, 2 * i + 1)
                                let a = v[ia], b = v[ib]
                                v[ia] = a * c[i] - b * sn
                                v[ib] = b * c[i] + a * sn
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Causal grouped-query attention with an optional key padding mask.
/// q (B,T,NH,HS), k/v (B,T,KVH,HS), out (B,T,NH,HS), probs (B,NH,T,T) kept for backward.
/// Per (b, h): S = Q Kᵀ/√HS via BLAS on strided views, masked softmax rows, O = P V.
enum AttentionFallback {
    static func forward(output: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyMask: UnsafePointer<Float>?,
                        B: Int, T: Int, NH: Int, KVH: Int, HS: Int) {
        let scale = 1 / Float(HS).squareRoot()
        let group = NH / KVH
        for b in 0..<B {
            for h in 0..<NH {
                let kh = h / group
                let P = probs + ((b * NH + h) * T) * T
                let Q = q + b * T * NH * HS + h * HS
                let K = k + b * T * KVH * HS + kh * HS
                let Vp = v + b * T * KVH * HS + kh * HS
                BLAS.sgemm(transposeA: false, transposeB: true, m: T, n: T, k: HS, alpha: scale,
                           a: Q, lda: NH * HS, b: K, ldb: KVH * HS, beta: 0, c: P, ldc: T)
                Parallel.forEachChunk(T, costPerItem: T * 2) { range in
                    for t in range { softmaxRow(P + t * T, t: t, T: T, mask: keyMask.map { $0 + b * T }) }
                }
                BLAS.sgemm(transposeA: false, transposeB: false, m: T, n: HS, k: T, alpha: 1,
                           a: P, lda: T, b: Vp, ldb: KVH * HS, beta: 0, c: output + b * T * NH * HS + h * HS, ldc: NH * HS)
            }
        }
    }

    /// Row t may see keys 0...t whose mask is 1; everything else gets probability 0.
    /// A row with no visible key (a padded query under left padding) is all zeros.
    @inline(__always) static func softmaxRow(_ row: UnsafeMutablePointer<Float>, t: Int, T: Int, mask: UnsafePointer<Float>?) {
        var mx = -Float.infinity
        for j in 0...t where mask == nil || mask![j] != 0 { mx = max(mx, row[j]) }
        if mx == -Float.infinity {
            for j in 0..<T { row[j] = 0 }
            return
        }
        var sum: Float = 0
        for j in 0...t {
            if mask == nil || mask![j] != 0 {
                let e = expf(row[j] - mx); row[j] = e; sum += e
            } else { row[j] = 0 }
        }
        let inv = 1 / sum
        for j in 0...t { row[j] *= inv }
        for j in (t + 1)..<max(T, t + 1) { row[j] = 0 }
    }

    /// dP = dO Vᵀ; dV += Pᵀ dO; dS = P ⊙ (dP − rowsum(P ⊙ dP)); dQ += dS K/√HS; dK += dSᵀ Q/√HS.
    /// `scratch` holds T·T floats.
    static func backward(gradQ: UnsafeMutablePointer<Float>, gradK: UnsafeMutablePointer<Float>, gradV: UnsafeMutablePointer<Float>,
                         gradOutput: UnsafePointer<Float>, probs: UnsafePointer<Float>, q: UnsafePointer<Float>,
                         k: UnsafePointer<Float>, v: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                         B: Int, T: Int, NH: Int, KVH: Int, HS: Int) {
        let scale = 1 / Float(HS).squareRoot()
        let group = NH / KVH
        for b in 0..<B {
            for h in 0..<NH {
                let kh = h / group
                let P = probs + ((b * NH + h) * T) * T
                let qo = b * T * NH * HS + h * HS, ko = b * T * KVH * HS + kh * HS
                let dO = gradOutput + qo
                BLAS.sgemm(transposeA: false, transposeB: true, m: T, n: T, k: HS, alpha: 1,
                           a: dO, lda: NH * HS, b: v + ko, ldb: KVH * HS, beta: 0, c: scratch, ldc: T)
                BLAS.sgemm(transposeA: true, transposeB: false, m: T, n: HS, k: T, alpha: 1,
                           a: P, lda: T, b: dO, ldb: NH * HS, beta: 1, c: gradV + ko, ldc: KVH * HS)
                Parallel.forEachChunk(T, costPerItem: T * 2) { range in
                    for t in range {
                        let p = P + t * T, d = scratch + t * T
                        var dot: Float = 0
                        for j in 0...t { dot += p[j] * d[j] }
                        for j in 0...t { d[j] = p[j] * (d[j] - dot) }
                        for j in (t + 1)..<max(T, t + 1) { d[j] = 0 }
                    }
                }
                BLAS.sgemm(transposeA: false, transposeB: false, m: T, n: HS, k: T, alpha: scale,
                           a: scratch, lda: T, b: k + ko, ldb: KVH * HS, beta: 1, c: gradQ + qo, ldc: NH * HS)
                BLAS.sgemm(transposeA: true, transposeB: false, m: T, n: HS, k: T, alpha: scale,
                           a: scratch, lda: T, b: q + qo, ldb: NH * HS, beta: 1, c: gradK + ko, ldc: KVH * HS)
            }
        }
    }
}

/// out = silu(gate) · up, silu(g) = g·σ(g).
enum SwiGLUFallback {
    static func forward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 8) { range in
            for i in range {
                let g = gate[i]
                output[i] = g / (1 + expf(-g)) * up[i]
            }
        }
    }
    /// dgate += dy·up·σ(g)(1 + g(1 − σ(g))); dup += dy·silu(g)
    static func backward(gradGate: UnsafeMutablePointer<Float>, gradUp: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 10) { range in
            for i in range {
                let g = gate[i]
                let s = 1 / (1 + expf(-g))
                gradGate[i] += gradOutput[i] * up[i] * s * (1 + g * (1 - s))
                gradUp[i] += gradOutput[i] * g * s
            }
        }
    }
}

/// Weighted softmax cross-entropy over rows of logits (N, V). Returns Σ_i w_i·CE_i (Double);
/// gradLogits (N, V) = scale·w_i·(softmax − onehot) (overwrites), when given.
enum CrossEntropyFallback {
    static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, weights: UnsafePointer<Float>,
                                rows N: Int, vocab V: Int, gradLogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        var perRow = [Double](repeating: 0, count: N)
        perRow.withUnsafeMutableBufferPointer { out in
            Parallel.forEachChunk(N, costPerItem: V * 3) { range in
                for n in range {
                    let x = logits + n * V
                    var mx = -Float.infinity
                    for j in 0..<V { mx = max(mx, x[j]) }
                    var sum: Double = 0
                    for j in 0..<V { sum += Double(expf(x[j] - mx)) }
                    let lse = Double(mx) + Foundation.log(sum)
                    let tgt = Int(targets[n])
                    out[n] = Double(weights[n]) * (lse - Double(x[tgt]))
                    if let g = gradLogits {
                        let gr = g + n * V
                        let w = gradScale * weights[n]
                        let inv = 1 / sum
                        for j in 0..<V { gr[j] = w * Float(Double(expf(x[j] - mx)) * inv) }
                        gr[tgt] -= w
                    }
                }
            }
        }
        var total: Double = 0
        for v in perRow { total += v }
        return total
    }
}
