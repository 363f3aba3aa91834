import Foundation

// Legend: N rows (any subset of positions the caller chose), V vocab.
//
// Weighted next-token cross-entropy over rows of logits, fused with its gradient (llm.c's
// fused_classifier): CE_i = logsumexp(l_i) − l_i[target_i], log-softmax in fp32 with max subtraction.
// Rows with weight 0 are skipped entirely (no exp over V), which is what makes loss-masked chat data
// cheap. The returned sum is accumulated in Double in row order, so it does not depend on threads.
public enum CrossEntropy {
    /// logits (N, V), targets (N), weights (N). Returns Σ_i weight_i · CE_i (Double).
    /// If gradLogits (N, V) is given it is OVERWRITTEN with gradScale · weight_i · (softmax_i − onehot_i)
    /// (zeros on rows of weight 0). A target outside 0..<V makes that row's loss NaN (callers validate ids).
    /// gradLogits may be the logits buffer itself (computed in place, row by row): the head's
    /// chunk then needs one (rows, V) buffer instead of two.
    @discardableResult
    public static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                       weights: UnsafePointer<Float>, rows N: Int, vocab V: Int,
                                       gradLogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        if N <= 0 { return 0 }
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: N)   // (N) per-row weighted CE
        defer { losses.deallocate() }
        Parallel.forEachChunk(N, costPerItem: V * 4) { range in
            for n in range {
                let w = weights[n]
                let l = logits + n * V                 // (V)
                if w == 0 {
                    losses[n] = 0
                    if let g = gradLogits { (g + n * V).initialize(repeating: 0, count: V) }
                    continue
                }
                let target = Int(targets[n])
                let targetLogit = target >= 0 && target < V ? l[target] : .nan   // read before an in-place overwrite
                let m = FastMath.max(l, count: V)
                let sum: Float
                if let g = gradLogits {
                    let gr = g + n * V
                    sum = FastMath.expSum(l, count: V, shift: m, into: gr)
                    FastMath.scale(gr, count: V, by: gradScale * w / sum)
                } else {
                    sum = FastMath.expSum(l, count: V, shift: m, into: nil)
                }
                guard target >= 0 && target < V else { losses[n] = .nan; continue }
                let logSumExp = logf(sum) + m
                losses[n] = Double(w) * Double(logSumExp - targetLogit)
                if let g = gradLogits { g[n * V + target] -= gradScale * w }
            }
        }
        var total = 0.0
        for n in 0..<N { total += losses[n] }
        return total
    }

    /// Oracle in Double.
    public static func naiveForwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                            weights: UnsafePointer<Float>, rows N: Int, vocab V: Int,
                                            gradLogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        var total = 0.0
        for n in 0..<N {
            let w = Double(weights[n])
            var m = -Double.infinity
            for j in 0..<V { m = max(m, Double(logits[n * V + j])) }
            var z = 0.0
            for j in 0..<V { z += Foundation.exp(Double(logits[n * V + j]) - m) }
            let t = Int(targets[n])
            if w != 0 { total += w * (Foundation.log(z) + m - Double(logits[n * V + t])) }
            if let g = gradLogits {
                for j in 0..<V {
                    let p = Foundation.exp(Double(logits[n * V + j]) - m) / z
                    g[n * V + j] = Float(Double(gradScale) * w * (p - (j == t ? 1 : 0)))
                }
            }
        }
        return total
    }
}
