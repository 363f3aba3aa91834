import Foundation

// Legend: N rows, I intermediate size; `count` = N * I.
//
// SiLU-gated linear unit (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6), as in
// transformers' LlamaMLP: down(act_fn(gate(x)) * up(x)) with act_fn = silu(x) = x · sigmoid(x).
public enum SwiGLU {
    /// output (count) = silu(gate) * up. Overwrites output.
    public static func forward(output: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                               up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 8) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let g = FastMath.load(gate + i)
                FastMath.store(g / (1 + FastMath.exp(-g)) * FastMath.load(up + i), output + i)
                i += 8
            }
            while i < range.upperBound {
                let g = gate[i]
                output[i] = (g / (1 + FastMath.exp(-g))) * up[i]
                i += 1
            }
        }
    }

    /// gradGate += dout · up · σ(g)(1 + g(1 − σ(g)));  gradUp += dout · silu(g).
    public static func backward(gradGate: UnsafeMutablePointer<Float>, gradUp: UnsafeMutablePointer<Float>,
                                gradOutput: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, costPerItem: 10) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let g = FastMath.load(gate + i), d = FastMath.load(gradOutput + i)
                let s = 1 / (1 + FastMath.exp(-g))
                FastMath.store(FastMath.load(gradGate + i) + d * FastMath.load(up + i) * s * (1 + g * (1 - s)), gradGate + i)
                FastMath.store(FastMath.load(gradUp + i) + d * g * s, gradUp + i)
                i += 8
            }
            while i < range.upperBound {
                let g = gate[i], d = gradOutput[i]
                let s = 1 / (1 + FastMath.exp(-g))
                gradGate[i] += d * up[i] * s * (1 + g * (1 - s))
                gradUp[i] += d * g * s
                i += 1
            }
        }
    }

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
