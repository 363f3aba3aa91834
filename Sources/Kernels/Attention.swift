import Foundation

// Legend: B batch, T time, NH query heads, KVH kv heads, HS head size, G = NH / KVH heads per kv group.
//
// Causal grouped-query attention (Ainslie et al. 2023, "GQA", §2): query head h reads kv head h / G,
// exactly as transformers' `repeat_kv` + eager attention:
//     S = (Q Kᵀ) · HS^(−1/2);  S[t, j] = −inf for j > t or keyMask[j] == 0;  P = softmax(S) in fp32;  O = P V
// A query whose keys are all masked gets P = 0 and O = 0 (not NaN, unlike a plain softmax of −infs).
//
// Fast path (T ≥ 32): per (b, h) the rows are processed in blocks of `blockRows`; a block of rows
// [i0, i1) only needs keys [0, i1), so the masked upper triangle is never multiplied (≈ half the
// FLOPs of a full T×T product for long T). Q/K/V are read in place with strided leading dimensions.
public enum Attention {
    static let blockRows = 64
    static let blasMinT = 32

    /// q (B, T, NH, HS), k/v (B, T, KVH, HS), keyMask (B, T) 1/0 or nil.
    /// Overwrites output (B, T, NH, HS) and, when given, probs (B, NH, T, T) (upper triangle written
    /// as 0). Training passes nil: the backward recomputes each block of probabilities from Q and K
    /// (one extra Q·Kᵀ block product) instead of keeping B·NH·T·T floats per layer — 9 MB per layer
    /// for SmolLM at T = 512, more than all its other activations of that layer together.
    public static func forward(output: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?,
                               q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               keyMask: UnsafePointer<Float>?, B: Int, T: Int, NH: Int, KVH: Int, HS: Int) {
        let G = NH / max(KVH, 1)
        let qs = NH * HS, kvs = KVH * HS               // row strides of q/out and of k/v
        BLAS.singleThreaded {
        Parallel.forEachChunk(B * NH, costPerItem: T * T * HS) { range in
            // (rows, T) probabilities of one row block when they are not kept.
            ScratchPool.withBuffer(probs == nil ? rowBlock(T) * T : 0) { block in
            let scratch: UnsafeMutablePointer<Float>? = probs == nil ? block : nil
            for bh in range {
                let b = bh / NH, h = bh % NH, kvh = h / G
                let Q = q + b * T * qs + h * HS        // (T, HS) stride qs
                let K = k + b * T * kvs + kvh * HS     // (T, HS) stride kvs
                let V = v + b * T * kvs + kvh * HS     // (T, HS) stride kvs
                let O = output + b * T * qs + h * HS   // (T, HS) stride qs
                let mask = keyMask.map { $0 + b * T }  // (T)
                var i0 = 0
                while i0 < T {
                    let i1 = min(T, i0 + rowBlock(T))
                    let P = probs.map { $0 + bh * T * T + i0 * T } ?? scratch!   // (i1 − i0, T) rows i0..<i1
                    blockProbabilities(P, rows: i0..<i1, Q: Q, K: K, T: T, HS: HS, qs: qs, kvs: kvs, mask: mask)
                    if T < blasMinT {
                        for t in i0..<i1 {
                            let row = P + (t - i0) * T
                            for d in 0..<HS { O[t * qs + d] = 0 }
                            for j in 0...t {
                                let p = row[j]
                                if p == 0 { continue }
                                for d in 0..<HS { O[t * qs + d] += p * V[j * kvs + d] }
                            }
                        }
                    } else {
                        BLAS.sgemm(transposeA: false, transposeB: false, m: i1 - i0, n: HS, k: i1,
                                   a: P, lda: T, b: V, ldb: kvs, beta: 0, c: O + i0 * qs, ldc: qs)
                    }
                    i0 = i1
                }
            }
            }
        }
        }
    }

    /// Rows per block: `blockRows` on the BLAS path, all T rows below it.
    @inline(__always) static func rowBlock(_ T: Int) -> Int { T < blasMinT ? T : blockRows }

    /// Probabilities of query rows i0..<i1 of one head into P (i1 − i0, T), row stride T: the same
    /// operations in the same order in the forward and in the backward's recomputation, so both
    /// give the same bits. A block of rows only needs keys 0..<i1 (causal).
    @inline(__always)
    static func blockProbabilities(_ P: UnsafeMutablePointer<Float>, rows: Range<Int>, Q: UnsafePointer<Float>,
                                   K: UnsafePointer<Float>, T: Int, HS: Int, qs: Int, kvs: Int, mask: UnsafePointer<Float>?) {
        let scale = 1 / Float(HS).squareRoot()
        let i0 = rows.lowerBound, i1 = rows.upperBound
        if T < blasMinT {
            for t in rows {
                let row = P + (t - i0) * T
                for j in 0...t {
                    var s: Float = 0
                    for d in 0..<HS { s += Q[t * qs + d] * K[j * kvs + d] }
                    row[j] = s * scale
                }
                softmaxRow(row, t: t, T: T, mask: mask)
            }
        } else {
            BLAS.sgemm(transposeA: false, transposeB: true, m: i1 - i0, n: i1, k: HS, alpha: scale,
                       a: Q + i0 * qs, lda: qs, b: K, ldb: kvs, beta: 0, c: P, ldc: T)
            for t in rows { softmaxRow(P + (t - i0) * T, t: t, T: T, mask: mask) }
        }
    }

    /// In place on row (T): softmax over the allowed keys j ≤ t (mask[j] != 0), zeros elsewhere.
    @inline(__always) static func softmaxRow(_ row: UnsafeMutablePointer<Float>, t: Int, T: Int, mask: UnsafePointer<Float>?) {
        if let mask = mask {
            for j in 0...t where mask[j] == 0 { row[j] = -.infinity }
        }
        let m = FastMath.max(row, count: t + 1)
        if m == -Float.infinity {   // every key masked: no attention at all
            (row).update(repeating: 0, count: T)
            return
        }
        let sum = FastMath.expInPlace(row, count: t + 1, shift: m)   // exp(−inf − m) = 0 exactly
        FastMath.scale(row, count: t + 1, by: 1 / sum)
        if t + 1 < T { (row + t + 1).update(repeating: 0, count: T - t - 1) }
    }

    /// Given dO (B, T, NH, HS) and the saved probs (or nil: recomputed per row block from q, k and
    /// keyMask exactly as the forward made them), ACCUMULATES dQ (B, T, NH, HS), dK/dV (B, T, KVH, HS).
    ///     dV += Pᵀ dO;  dP = dO Vᵀ;  dS = P ∘ (dP − rowsum(P ∘ dP));  dQ += scale·dS K;  dK += scale·dSᵀ Q
    /// Parallel over (b, h). Without GQA each head owns its kv head and accumulates in place; with GQA
    /// each head writes its dK/dV contribution to scratch (B, NH, T, HS) and the G heads of a group are
    /// then summed in head order — deterministic, independent of the thread count, and balanced even
    /// when B·KVH is not a multiple of the core count (SmolLM: 1 × 3 kv heads on 2 cores).
    public static func backward(gradQ: UnsafeMutablePointer<Float>, gradK: UnsafeMutablePointer<Float>,
                                gradV: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                probs: UnsafePointer<Float>?, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                v: UnsafePointer<Float>, keyMask: UnsafePointer<Float>? = nil,
                                B: Int, T: Int, NH: Int, KVH: Int, HS: Int) {
        let G = NH / max(KVH, 1)
        let qs = NH * HS, kvs = KVH * HS
        if B * T == 0 || NH == 0 { return }
        let grouped = G > 1
        // (B, NH, T, HS) per-head dK and dV contributions when heads share a kv head.
        let scratchCount = grouped ? B * NH * T * HS : 0
        ScratchPool.withBuffer(2 * scratchCount) { dKVh in
        let dKh = dKVh, dVh = dKVh + scratchCount
        BLAS.singleThreaded {
        Parallel.forEachChunk(B * NH, costPerItem: T * T * HS * 2) { range in
            // dS (rows, cols) scratch, then (rows, T) recomputed probabilities of one row block
            // when they were not kept.
            ScratchPool.withBuffer(2 * rowBlock(T) * T) { buffer in
            let dS = buffer
            let scratch: UnsafeMutablePointer<Float>? = probs == nil ? buffer + rowBlock(T) * T : nil
            for bh in range {
                let b = bh / NH, h = bh % NH, kvh = h / G
                let dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>, ld: Int
                if grouped {
                    dK = dKh + bh * T * HS; dV = dVh + bh * T * HS; ld = HS
                    dK.update(repeating: 0, count: T * HS); dV.update(repeating: 0, count: T * HS)
                } else {
                    dK = gradK + b * T * kvs + kvh * HS; dV = gradV + b * T * kvs + kvh * HS; ld = kvs
                }
                headBackward(dQ: gradQ + b * T * qs + h * HS, dK: dK, dV: dV, ldKV: ld,
                             dO: gradOutput + b * T * qs + h * HS, P: probs.map { $0 + bh * T * T },
                             Q: q + b * T * qs + h * HS, K: k + b * T * kvs + kvh * HS, V: v + b * T * kvs + kvh * HS,
                             mask: keyMask.map { $0 + b * T }, T: T, HS: HS, qs: qs, kvs: kvs, dS: dS, scratch: scratch)
            }
            }
        }
        }
        if grouped {
            // gradK/V[b, t, kvh] += Σ_{g < G} dKh/dVh[b, kvh·G + g, t]   (head order)
            Parallel.forEachChunk(B * T, costPerItem: NH * HS * 2) { range in
                for bt in range {
                    let b = bt / T, t = bt % T
                    for kvh in 0..<KVH {
                        let gk = gradK + bt * kvs + kvh * HS, gv = gradV + bt * kvs + kvh * HS
                        for g in 0..<G {
                            let src = ((b * NH + kvh * G + g) * T + t) * HS
                            for d in 0..<HS { gk[d] += dKh[src + d]; gv[d] += dVh[src + d] }
                        }
                    }
                }
            }
        }
        }
    }

    /// One (b, h): dQ (T, HS) stride qs, dK/dV (T, HS) stride ldKV, all +=. dS is (rowBlock, T)
    /// scratch; P (T, T) saved probabilities or nil, then recomputed per row block into `scratch`.
    @inline(__always)
    static func headBackward(dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
                             ldKV: Int, dO: UnsafePointer<Float>, P savedP: UnsafePointer<Float>?,
                             Q: UnsafePointer<Float>, K: UnsafePointer<Float>, V: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                             T: Int, HS: Int, qs: Int, kvs: Int, dS: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?) {
        let scale = 1 / Float(HS).squareRoot()
        var i0 = 0
        while i0 < T {
            let i1 = min(T, i0 + rowBlock(T))
            let rows = i1 - i0, cols = i1
            // Pb (rows, T), row stride T: rows i0..<i1 of the saved matrix, or the block recomputed.
            let Pb: UnsafePointer<Float>
            if let saved = savedP { Pb = saved + i0 * T } else {
                blockProbabilities(scratch!, rows: i0..<i1, Q: Q, K: K, T: T, HS: HS, qs: qs, kvs: kvs, mask: mask)
                Pb = UnsafePointer(scratch!)
            }
            // dP (rows, cols) = dO[i0..<i1] · V[0..<i1]ᵀ
            if T < blasMinT {
                for r in 0..<rows { for j in 0..<cols {
                    var s: Float = 0
                    for d in 0..<HS { s += dO[(i0 + r) * qs + d] * V[j * kvs + d] }
                    dS[r * cols + j] = s
                } }
            } else {
                BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: cols, k: HS,
                           a: dO + i0 * qs, lda: qs, b: V, ldb: kvs, beta: 0, c: dS, ldc: cols)
            }
            // dS = P ∘ (dP − Σ_j P dP), zero above the diagonal
            for r in 0..<rows {
                let t = i0 + r
                let p = Pb + r * T, ds = dS + r * cols
                var dot: Float = 0
                for j in 0...t { dot += p[j] * ds[j] }
                for j in 0...t { ds[j] = p[j] * (ds[j] - dot) }
                for j in (t + 1)..<cols { ds[j] = 0 }
            }
            if T < blasMinT {
                for r in 0..<rows {
                    let t = i0 + r
                    for j in 0...t {
                        let p = Pb[r * T + j], ds = dS[r * cols + j] * scale
                        for d in 0..<HS {
                            dV[j * ldKV + d] += p * dO[t * qs + d]
                            dQ[t * qs + d] += ds * K[j * kvs + d]
                            dK[j * ldKV + d] += ds * Q[t * qs + d]
                        }
                    }
                }
            } else {
                // dV[0..<i1] += P[i0..<i1, 0..<i1]ᵀ · dO[i0..<i1]
                BLAS.sgemm(transposeA: true, transposeB: false, m: cols, n: HS, k: rows,
                           a: Pb, lda: T, b: dO + i0 * qs, ldb: qs, beta: 1, c: dV, ldc: ldKV)
                // dQ[i0..<i1] += scale · dS · K[0..<i1]
                BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: HS, k: cols, alpha: scale,
                           a: dS, lda: cols, b: K, ldb: kvs, beta: 1, c: dQ + i0 * qs, ldc: qs)
                // dK[0..<i1] += scale · dSᵀ · Q[i0..<i1]
                BLAS.sgemm(transposeA: true, transposeB: false, m: cols, n: HS, k: rows, alpha: scale,
                           a: dS, lda: cols, b: Q + i0 * qs, ldb: qs, beta: 1, c: dK, ldc: ldKV)
            }
            i0 = i1
        }
    }

    // MARK: - Oracles (Double, full T×T with an explicit causal test)

    public static func naiveForward(output: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                    keyMask: UnsafePointer<Float>?, B: Int, T: Int, NH: Int, KVH: Int, HS: Int) {
        let G = NH / KVH
        let scale = 1 / Double(HS).squareRoot()
        for b in 0..<B { for h in 0..<NH { for t in 0..<T {
            var s = [Double](repeating: -.infinity, count: T)
            for j in 0..<T where j <= t && (keyMask == nil || keyMask![b * T + j] != 0) {
                var d = 0.0
                for c in 0..<HS { d += Double(q[((b * T + t) * NH + h) * HS + c]) * Double(k[((b * T + j) * KVH + h / G) * HS + c]) }
                s[j] = d * scale
            }
            let m = s.max()!
            var p = [Double](repeating: 0, count: T)
            if m > -.infinity {
                let z = s.reduce(0.0) { $0 + Foundation.exp($1 - m) }
                for j in 0..<T { p[j] = Foundation.exp(s[j] - m) / z }
            }
            for j in 0..<T { probs[((b * NH + h) * T + t) * T + j] = Float(p[j]) }
            for c in 0..<HS {
                var o = 0.0
                for j in 0..<T { o += p[j] * Double(v[((b * T + j) * KVH + h / G) * HS + c]) }
                output[((b * T + t) * NH + h) * HS + c] = Float(o)
            }
        } } }
    }

    public static func naiveBackward(gradQ: UnsafeMutablePointer<Float>, gradK: UnsafeMutablePointer<Float>,
                                     gradV: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                                     probs: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                     v: UnsafePointer<Float>, B: Int, T: Int, NH: Int, KVH: Int, HS: Int) {
        let G = NH / KVH
        let scale = 1 / Double(HS).squareRoot()
        func qi(_ b: Int, _ t: Int, _ h: Int, _ c: Int) -> Int { ((b * T + t) * NH + h) * HS + c }
        func ki(_ b: Int, _ t: Int, _ h: Int, _ c: Int) -> Int { ((b * T + t) * KVH + h / G) * HS + c }
        for b in 0..<B { for h in 0..<NH { for t in 0..<T {
            let P = probs + ((b * NH + h) * T + t) * T
            var dP = [Double](repeating: 0, count: T)
            for j in 0..<T { for c in 0..<HS { dP[j] += Double(gradOutput[qi(b, t, h, c)]) * Double(v[ki(b, j, h, c)]) } }
            var dot = 0.0
            for j in 0..<T { dot += Double(P[j]) * dP[j] }
            for j in 0..<T {
                let p = Double(P[j])
                let ds = p * (dP[j] - dot) * scale
                for c in 0..<HS {
                    gradV[ki(b, j, h, c)] += Float(p * Double(gradOutput[qi(b, t, h, c)]))
                    gradQ[qi(b, t, h, c)] += Float(ds * Double(k[ki(b, j, h, c)]))
                    gradK[ki(b, j, h, c)] += Float(ds * Double(q[qi(b, t, h, c)]))
                }
            }
        } } }
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's base address, or with nil: an optional mask (B, T) handed to a
    /// kernel that takes an optional pointer.
    public func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        switch self {
        case .some(let a): return try a.withUnsafeBufferPointer { try body($0.baseAddress) }
        case .none: return try body(nil)
        }
    }
}
