import Foundation

/// bitsandbytes' blockwise 8-bit AdamW (Dettmers et al., "8-bit Optimizers via Block-wise
/// Quantization", ICLR 2022; kernel `kOptimizerStatic8bit2StateBlockwise`).
///
/// Both moments live as 8-bit codes into a dynamic-tree map (signed map for m, unsigned for v)
/// with one Float absmax per block of 256. Each step dequantizes a block, updates it in fp32,
/// takes the new block absmax, updates the parameter from the fp32 moments and re-quantizes to the
/// nearest code. As in bitsandbytes, tensors with fewer than `minimum8bitSize` (4096) elements keep
/// 32-bit moments.
public final class AdamW8bit: Optimizer {
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public let blockSize = 256
    public let minimum8bitSize = 4096
    public private(set) var step = 0
    private var lr = 0.0

    struct State8 { var m: [UInt8]; var v: [UInt8]; var absM: [Float]; var absV: [Float] }
    private var states8: [Int: State8] = [:]
    private var states32: [Int: (m: [Float], v: [Float])] = [:]

    public static let signedMap = DynamicMap.make(signed: true)
    public static let unsignedMap = DynamicMap.make(signed: false)

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    public func beginStep(learningRate lr: Double) { self.lr = lr; step += 1 }

    public func update(index: Int, value p: inout [Float], grad g: [Float]) {
        let n = p.count
        let b1 = Float(beta1), b2 = Float(beta2), e = Float(eps)
        let correction1 = 1 - powf(b1, Float(step))
        let correction2 = (1 - powf(b2, Float(step))).squareRoot()
        let stepSize = -Float(lr) * correction2 / correction1
        let decay = Float(1 - lr * weightDecay)
        if n < minimum8bitSize {
            var s = states32[index] ?? (m: [Float](repeating: 0, count: n), v: [Float](repeating: 0, count: n))
            for i in 0..<n {
                s.m[i] = s.m[i] * b1 + (1 - b1) * g[i]
                s.v[i] = s.v[i] * b2 + (1 - b2) * g[i] * g[i]
                if weightDecay > 0 { p[i] *= decay }
                p[i] += stepSize * (s.m[i] / (s.v[i].squareRoot() + e * correction2))
            }
            states32[index] = s
            return
        }
        let blocks = (n + blockSize - 1) / blockSize
        var s = states8[index] ?? State8(m: [UInt8](repeating: AdamW8bit.signedMap.zeroCode, count: n),
                                         v: [UInt8](repeating: AdamW8bit.unsignedMap.zeroCode, count: n),
                                         absM: [Float](repeating: 0, count: blocks), absV: [Float](repeating: 0, count: blocks))
        let mapM = AdamW8bit.signedMap, mapV = AdamW8bit.unsignedMap
        var m = [Float](repeating: 0, count: blockSize), v = [Float](repeating: 0, count: blockSize)
        for blk in 0..<blocks {
            let lo = blk * blockSize, hi = min(n, lo + blockSize)
            var maxM: Float = 0, maxV: Float = 0
            for i in lo..<hi {
                let j = i - lo
                m[j] = mapM.values[Int(s.m[i])] * s.absM[blk] * b1 + (1 - b1) * g[i]
                v[j] = mapV.values[Int(s.v[i])] * s.absV[blk] * b2 + (1 - b2) * g[i] * g[i]
                maxM = max(maxM, abs(m[j])); maxV = max(maxV, abs(v[j]))
            }
            for i in lo..<hi {
                let j = i - lo
                if weightDecay > 0 { p[i] *= decay }
                p[i] += stepSize * (m[j] / (v[j].squareRoot() + e * correction2))
                s.m[i] = mapM.nearest(maxM > 0 ? m[j] / maxM : 0)
                s.v[i] = mapV.nearest(maxV > 0 ? v[j] / maxV : 0)
            }
            s.absM[blk] = maxM; s.absV[blk] = maxV
        }
        states8[index] = s
    }

    public func writeState(to append: (UnsafeRawBufferPointer) throws -> Void) throws {
        try ByteWriter.stream(to: append) { w in
            w.tag("adamw8bit"); w.int(step)
            w.int(states8.count)
            for (k, s) in states8.sorted(by: { $0.key < $1.key }) { w.int(k); try w.uint8s(s.m); try w.uint8s(s.v); try w.floats(s.absM); try w.floats(s.absV) }
            w.int(states32.count)
            for (k, s) in states32.sorted(by: { $0.key < $1.key }) { w.int(k); try w.floats(s.m); try w.floats(s.v) }
        }
    }

    public func restore(stateBytes: [UInt8]) throws {
        var r = ByteReader(stateBytes)
        try r.expectTag("adamw8bit"); step = try r.int()
        states8 = [:]; states32 = [:]
        for _ in 0..<max(0, try r.int()) {
            let k = try r.int()
            states8[k] = State8(m: try r.uint8s(), v: try r.uint8s(), absM: try r.floats(), absV: try r.floats())
        }
        for _ in 0..<max(0, try r.int()) { let k = try r.int(); states32[k] = (try r.floats(), try r.floats()) }
    }
}

/// bitsandbytes `create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`: 256 sorted values
/// in [-1, 1] (signed) or [0, 1], dense near zero (one decimal exponent per "tree level").
public struct DynamicMap: Sendable {
    public let values: [Float]   // 256, ascending
    public let zeroCode: UInt8

    public static func make(signed: Bool) -> DynamicMap {
        let maxExponentBits = 7, nonSignBits = 7
        var data: [Float] = []
        for i in 0..<maxExponentBits {
            let items = signed ? (1 << (i + nonSignBits - maxExponentBits)) + 1 : (1 << (i + nonSignBits - maxExponentBits + 1)) + 1
            let bounds = linspace(0.1, 1, items)
            let scale = pow(10.0, Double(-(maxExponentBits - 1) + i))
            for k in 0..<(items - 1) {
                let mean = (bounds[k] + bounds[k + 1]) / 2
                // torch multiplies a float32 tensor by a Python scalar in float32
                data.append(Float(scale) * mean)
                if signed { data.append(Float(-scale) * mean) }
            }
        }
        data.append(0); data.append(1)
        while data.count < 256 { data.append(0) }
        data.sort()
        let zero = UInt8(data.firstIndex(of: 0) ?? 0)
        return DynamicMap(values: data, zeroCode: zero)
    }

    /// torch.linspace in float32: the first half counts up from start, the second half down from end.
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { i in i < halfway ? start + step * Float(i) : end - step * Float(steps - i - 1) }
    }

    /// Code of the nearest map value (binary search, ties to the upper neighbour).
    public func nearest(_ x: Float) -> UInt8 {
        var lo = 0, hi = values.count - 1
        if x <= values[lo] { return UInt8(lo) }
        if x >= values[hi] { return UInt8(hi) }
        while hi - lo > 1 { let mid = (lo + hi) / 2; if values[mid] <= x { lo = mid } else { hi = mid } }
        return UInt8(x - values[lo] < values[hi] - x ? lo : hi)
    }
}
