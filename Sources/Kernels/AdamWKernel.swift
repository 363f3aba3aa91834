import CElementwise

/// One AdamW step over a tensor's elements with torch.optim.AdamW's single-tensor op order
/// (foreach=False, amsgrad=False), its scalars already folded for step t:
///     p *= decay ; m += (1 − β1)(g − m) ; v = v·β2 + (1 − β2)·g·g
///     p += −stepSize · m / (sqrt(v) / bias2Sqrt + eps)
/// with decay = 1 − lr·wd, stepSize = lr / (1 − β1ᵗ), bias2Sqrt = sqrt(1 − β2ᵗ) (Training's AdamW makes them).
public struct AdamWKernel: Sendable, Equatable {
    public var decay: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float
    public var bias2Sqrt: Float, eps: Float, stepSize: Float

    public init(decay: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float,
                bias2Sqrt: Float, eps: Float, stepSize: Float) {
        self.decay = decay; self.oneMinusBeta1 = oneMinusBeta1; self.beta2 = beta2
        self.oneMinusBeta2 = oneMinusBeta2; self.bias2Sqrt = bias2Sqrt; self.eps = eps; self.stepSize = stepSize
    }

    /// Updates parameters, firstMoment and secondMoment (count each) in place from gradient, on all
    /// cores: CElementwise's AVX-512 / AVX2 / portable loop, bit-identical to `applyExactly`.
    public func apply(parameters p: UnsafeMutablePointer<Float>, firstMoment m: UnsafeMutablePointer<Float>,
                      secondMoment v: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 8) { r in
            let i = r.lowerBound
            qlora_adamw_step(p + i, m + i, v + i, g + i, Int64(r.count), decay, oneMinusBeta1, beta2,
                             oneMinusBeta2, bias2Sqrt, eps, stepSize)
        }
    }

    /// The oracle: the same fp32 operations one element at a time in Swift.
    public func applyExactly(parameters p: UnsafeMutablePointer<Float>, firstMoment m: UnsafeMutablePointer<Float>,
                             secondMoment v: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            p[i] *= decay
            m[i] = m[i] + oneMinusBeta1 * (g[i] - m[i])     // torch lerp with weight < 0.5: start + weight·(end − start)
            v[i] = v[i] * beta2 + oneMinusBeta2 * g[i] * g[i]
            let denom = v[i].squareRoot() / bias2Sqrt + eps
            p[i] += -stepSize * (m[i] / denom)
        }
    }
}
