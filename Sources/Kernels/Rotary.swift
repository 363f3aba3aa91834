import Foundation

// Legend: B batch, T time, H heads (query or kv), HS head size.
//
// Rotary position embeddings (Su et al. 2021, "RoFormer", §3.4.2): channel pair i of a head at
// position p is rotated by the angle p · θ_i with θ_i = theta^(−2i/HS).

/// cos/sin of p · inv_freq[i] for p in 0..<maxPositions, i in 0..<HS/2, computed exactly like
/// transformers' `_compute_default_rope_parameters` + `LlamaRotaryEmbedding.forward`:
///     inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))   (fp32)
///     freqs    = position_ids.float() ⊗ inv_freq                                               (fp32)
///     cos, sin = freqs.cos(), freqs.sin()                                                      (fp32)
/// Linear rope scaling (`_compute_linear_scaling_rope_parameters`) divides inv_freq by the factor
/// (in fp32), which is what transformers does (not the positions).
public struct RotaryTable: Sendable {
    public let headSize: Int
    public let maxPositions: Int
    public let invFreq: [Float]   // (HS/2)
    public let cos: [Float]       // (maxPositions, HS/2)
    public let sin: [Float]       // (maxPositions, HS/2)

    /// Llama 3.x frequency-dependent scaling (transformers `_compute_llama3_parameters`): wavelengths
    /// longer than original/low_freq_factor are divided by `factor`, shorter than
    /// original/high_freq_factor are kept, and those between are interpolated smoothly.
    public struct Llama3Scaling: Sendable, Equatable {
        public var factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int
        public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int) {
            self.factor = factor; self.lowFreqFactor = lowFreqFactor; self.highFreqFactor = highFreqFactor
            self.originalMaxPositions = originalMaxPositions
        }
    }

    public init(headSize HS: Int, maxPositions: Int, theta: Double, linearScaling: Double = 1, llama3: Llama3Scaling? = nil) {
        let half = HS / 2
        self.headSize = HS
        self.maxPositions = max(0, maxPositions)
        var inv = [Float](repeating: 0, count: half)
        let base = Float(theta)
        let factor = Float(linearScaling)
        for i in 0..<half {
            let exponent = Float(2 * i) / Float(HS)          // int64 arange → float32, / dim in fp32
            var f = 1 / powf(base, exponent)                 // torch.pow(float, fp32 tensor) → fp32
            if linearScaling != 1 { f = f / factor }
            inv[i] = f
        }
        if let l = llama3 {
            // fp32 tensor arithmetic with Python scalars cast to fp32, in transformers' order.
            let scale = Float(l.factor), low = Float(l.lowFreqFactor), high = Float(l.highFreqFactor)
            let old = Float(l.originalMaxPositions)
            let lowWavelength = Float(Double(l.originalMaxPositions) / l.lowFreqFactor)
            let highWavelength = Float(Double(l.originalMaxPositions) / l.highFreqFactor)
            for i in 0..<half {
                let f = inv[i]
                let wavelength = Float(2 * Double.pi) / f
                let scaled = wavelength > lowWavelength ? f / scale : f
                if !(wavelength < highWavelength) && !(wavelength > lowWavelength) {
                    let smooth = (old / wavelength - low) / (high - low)
                    inv[i] = (1 - smooth) * scaled / scale + smooth * scaled
                } else {
                    inv[i] = scaled
                }
            }
        }
        self.invFreq = inv
        var c = [Float](repeating: 0, count: self.maxPositions * half)
        var s = [Float](repeating: 0, count: self.maxPositions * half)
        for p in 0..<self.maxPositions {
            for i in 0..<half {
                let angle = Float(p) * inv[i]
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        self.cos = c
        self.sin = s
    }

    /// cos/sin for one (position, pair); positions beyond the table (or negative) are computed on the fly.
    @inline(__always) func angle(_ p: Int, _ i: Int) -> (Float, Float) {
        if p >= 0 && p < maxPositions {
            let half = headSize / 2
            return (cos[p * half + i], sin[p * half + i])
        }
        let a = Float(p) * invFreq[i]
        return (Foundation.cos(a), Foundation.sin(a))
    }
}

public enum Rotary {
    /// Which channels form a rotated pair.
    /// - rotateHalf: (i, i + HS/2) — HF `rotate_half`: out = x·cos + cat(−x2, x1)·sin.
    /// - interleaved: (2i, 2i + 1) — Meta's original complex-number form (`torch.view_as_complex`), used by
    ///   checkpoints whose q/k projections were not permuted for HF.
    public enum Layout: Sendable { case rotateHalf, interleaved }

    /// In place on x (B, T, H, HS); positions (B, T).
    public static func forward(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RotaryTable,
                               B: Int, T: Int, H: Int, HS: Int, layout: Layout) {
        apply(x, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout, sign: 1)
    }

    /// In place on dx (B, T, H, HS): the rotation is orthogonal, so its transpose is the rotation by −θ.
    /// (Not accumulating: the gradient buffer of the rotated tensor becomes the gradient of its input.)
    public static func backward(_ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RotaryTable,
                                B: Int, T: Int, H: Int, HS: Int, layout: Layout) {
        apply(dx, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout, sign: -1)
    }

    static func apply(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RotaryTable,
                      B: Int, T: Int, H: Int, HS: Int, layout: Layout, sign: Float) {
        let half = HS / 2
        table.cos.withUnsafeBufferPointer { cosBuf in
            table.sin.withUnsafeBufferPointer { sinBuf in
                let cosT = cosBuf.baseAddress, sinT = sinBuf.baseAddress
                Parallel.forEachChunk(B * T, costPerItem: H * HS * 3) { range in
                    for bt in range {
                        let p = Int(positions[bt])
                        let inTable = p >= 0 && p < table.maxPositions && cosT != nil
                        for h in 0..<H {
                            let v = x + (bt * H + h) * HS     // (HS)
                            for i in 0..<half {
                                let c: Float, s: Float
                                if inTable { c = cosT![p * half + i]; s = sign * sinT![p * half + i] }
                                else { let (cc, ss) = table.angle(p, i); c = cc; s = sign * ss }
                                let (j1, j2) = layout == .rotateHalf ? (i, i + half) : (2 * i, 2 * i + 1)
                                let x1 = v[j1], x2 = v[j2]
                                v[j1] = x1 * c - x2 * s
                                v[j2] = x2 * c + x1 * s
                            }
                        }
                    }
                }
            }
        }
    }

    /// Oracle: angles recomputed in Double from the table's inv_freq (so it checks the table lookup and
    /// pairing, not the fp32 rounding of cos/sin).
    public static func naiveForward(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RotaryTable,
                                    B: Int, T: Int, H: Int, HS: Int, layout: Layout, inverse: Bool = false) {
        let half = HS / 2
        for bt in 0..<(B * T) {
            for h in 0..<H {
                for i in 0..<half {
                    let a = Double(Float(positions[bt]) * table.invFreq[i])   // the fp32 angle, as transformers
                    let c = Foundation.cos(a), s = (inverse ? -1 : 1) * Foundation.sin(a)
                    let (j1, j2) = layout == .rotateHalf ? (i, i + half) : (2 * i, 2 * i + 1)
                    let base = (bt * H + h) * HS
                    let x1 = Double(x[base + j1]), x2 = Double(x[base + j2])
                    x[base + j1] = Float(x1 * c - x2 * s)
                    x[base + j2] = Float(x2 * c + x1 * s)
                }
            }
        }
    }
}
