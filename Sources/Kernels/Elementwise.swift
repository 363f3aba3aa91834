import CElementwise
import Foundation

// Legend: N rows, C channels, V vocab. Elementwise helpers run on all cores via Parallel.forEachChunk.
public enum Elementwise {
    /// into (count) += x (count). The residual connection and gradient accumulation.
    public static func add(into: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count) { r in for i in r { into[i] += x[i] } }
    }

    /// output (count) = a + b.
    public static func add(output: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count) { r in for i in r { output[i] = a[i] + b[i] } }
    }

    /// into (count) += alpha · x (count).
    public static func addScaled(into: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, alpha: Float, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 2) { r in for i in r { into[i] += alpha * x[i] } }
    }

    /// x (count) *= alpha.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        Parallel.forEachChunk(count) { r in for i in r { x[i] *= alpha } }
    }

    /// output (count) = input (count).
    public static func copy(_ output: UnsafeMutablePointer<Float>, from input: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count) { r in (output + r.lowerBound).update(from: input + r.lowerBound, count: r.count) }
    }

    /// x (count) = 0.
    public static func zero(_ x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count) { r in (x + r.lowerBound).update(repeating: 0, count: r.count) }
    }

    /// Σ x² in Double, in index order (deterministic). For gradient norms.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { let v = Double(x[i]); s += v * v }
        return s
    }

    /// output (N, C) += bias (C) on every row.
    public static func addBias(_ output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows N: Int, channels C: Int) {
        Parallel.forEachChunk(N, costPerItem: C) { r in
            for n in r { let o = output + n * C; for c in 0..<C { o[c] += bias[c] } }
        }
    }
}

/// Token embedding lookup. Forward only: embeddings are frozen during LoRA training.
public enum Embedding {
    /// output (N, C) = table[tokens[n]] for table (V, C), tokens (N). A token outside 0..<V gives a
    /// zero row; the number of such tokens is returned (callers validate ids and report them).
    @discardableResult
    public static func forward(output: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>,
                               tokens: UnsafePointer<Int32>, rows N: Int, channels C: Int, vocab V: Int) -> Int {
        Parallel.forEachChunk(N, costPerItem: C) { r in
            for n in r {
                let t = Int(tokens[n])
                if t >= 0 && t < V { (output + n * C).update(from: table + t * C, count: C) }
                else { (output + n * C).update(repeating: 0, count: C) }
            }
        }
        var bad = 0
        for n in 0..<N where tokens[n] < 0 || Int(tokens[n]) >= V { bad += 1 }
        return bad
    }
}

/// bfloat16 rounding of fp32 values, kept in fp32 storage: the exact emulation of a bf16 tensor
/// (`tensor.to(torch.bfloat16)`), round to nearest even, NaN kept NaN. A product of two such values
/// is exact in fp32 (8 + 8 significand bits), so an sgemm over rounded operands is a bf16 matmul
/// with fp32 accumulation — what bitsandbytes' `bnb_4bit_compute_dtype=torch.bfloat16` computes.
public enum BFloat16Rounding {
    /// One value, branch-free (a select for NaN): the rule the buffer versions below run as
    /// CElementwise's vector loop (and their tests' oracle).
    @inline(__always)
    public static func round(_ x: Float) -> Float {
        let u = x.bitPattern
        let rounded = (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000
        let quietNaN = (u | 0x0040_0000) & 0xFFFF_0000
        return Float(bitPattern: (u & 0x7FFF_FFFF) > 0x7F80_0000 ? quietNaN : rounded)
    }

    /// x (count) rounded in place, on all cores (CElementwise's loop: the same bits as `round(_:)`).
    public static func round(_ x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count) { r in qlora_round_bf16(x + r.lowerBound, x + r.lowerBound, Int64(r.count)) }
    }

    /// x (N, C) = round(x + bias) row by row, on all cores: a bf16 layer's output with its (rounded) bias.
    public static func roundAddingBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows N: Int, channels C: Int) {
        Parallel.forEachChunk(N, costPerItem: C) { r in
            qlora_round_bf16_bias(x + r.lowerBound * C, bias, Int64(r.count), Int64(C))
        }
    }

    /// output (count) = round(input): a rounded copy.
    public static func round(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count) { r in qlora_round_bf16(input + r.lowerBound, output + r.lowerBound, Int64(r.count)) }
    }
}
