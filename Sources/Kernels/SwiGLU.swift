import CElementwise
import Foundation

// Legend: N rows, I intermediate size; `count` = N * I.
//
// SiLU-gated linear unit (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6), as in
// transformers' LlamaMLP: down(act_fn(gate(x)) * up(x)) with act_fn = silu(x) = x · sigmoid(x).
public enum SwiGLU {
    /// output (count) = silu(gate) * up. Overwrites output; output may be gate (in place).
    /// CElementwise's AVX-512 / AVX2 / portable loop, bit-identical to `exactForward`.
    public static func forward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                               up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 8) { range in
            let i = range.lowerBound
            qlora_swiglu_forward(output + i, gate + i, up + i, Int64(range.count))
        }
    }

    /// gradGate += dout · up · σ(g)(1 + g(1 − σ(g)));  gradUp += dout · silu(g).
    /// CElementwise's loop, bit-identical to `exactBackward`.
    public static func backward(gradGate: UnsafeMutablePointer<Float>, gradUp: UnsafeMutablePointer<Float>,
                                gradOutput: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 10) { range in
            let i = range.lowerBound
            qlora_swiglu_backward(gradGate + i, gradUp + i, gradOutput + i, gate + i, up + i, Int64(range.count))
        }
    }

    /// The fast kernels' exact oracle: the same fp32 operations, in the same order, one element at a time
    /// (FastMath.exp for σ). The C builds must match it bit for bit.
    public static func exactForward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                                    up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            output[i] = (g / (1 + FastMath.exp(-g))) * up[i]
        }
    }

    public static func exactBackward(gradGate: UnsafeMutablePointer<Float>, gradUp: UnsafeMutablePointer<Float>,
                                     gradOutput: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                     up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i], d = gradOutput[i]
            let s = 1 / (1 + FastMath.exp(-g))
            gradGate[i] += d * up[i] * s * (1 + g * (1 - s))
            gradUp[i] += d * g * s
        }
    }

    /// Oracles in Double (the formula, not the rounding).
    public static func naiveForward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                                    up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = Double(gate[i])
            output[i] = Float(g / (1 + Foundation.exp(-g)) * Double(up[i]))
        }
    }

    public static func naiveBackward(gradGate: UnsafeMutablePointer<Float>, gradUp: UnsafeMutablePointer<Float>,
                                     gradOutput: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                     up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = Double(gate[i]), d = Double(gradOutput[i])
            let s = 1 / (1 + Foundation.exp(-g))
            gradGate[i] += Float(d * Double(up[i]) * (s + g * s * (1 - s)))
            gradUp[i] += Float(d * g * s)
        }
    }
}
