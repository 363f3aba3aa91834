// torch's float32 CPU `sum` summation order, reproduced so `mean(absmax)` (the double-quant
// offset) is bit-identical to bitsandbytes (which calls `absmax.mean()`).
//
// Source: aten/src/ATen/native/cpu/SumKernel.cpp (torch 2.x): `vectorized_inner_sum` over
// Vectorized<float> (8 lanes — the AVX2 kernel, which matched every golden offset, while 16
// lanes did not), `row_sum` with ilp_factor 4, and `multi_row_sum`'s 4-level cascade of
// accumulators. The scalar tail is summed first, then the 8 lanes in order; mean = sum / n.

enum TorchSum {
    static let lanes = 8

    /// multi_row_sum: `nrows` interleaved accumulators with a 4-level cascade.
    static func multiRowSum<V: Summable>(_ item: (Int, Int) -> V, nrows: Int, size: Int) -> [V] {
        let levels = 4
        let ceilLog2 = size <= 1 ? 0 : (Int.bitWidth - (size - 1).leadingZeroBitCount)
        let levelPower = max(4, ceilLog2 / levels)
        let levelStep = 1 << levelPower
        let levelMask = levelStep - 1
        var acc = [[V]](repeating: [V](repeating: .zero, count: nrows), count: levels)
        var i = 0
        while i + levelStep <= size {
            for _ in 0..<levelStep {
                for k in 0..<nrows { acc[0][k] += item(i, k) }
                i += 1
            }
            for j in 1..<levels {
                for k in 0..<nrows { acc[j][k] += acc[j - 1][k]; acc[j - 1][k] = .zero }
                if i & (levelMask << (j * levelPower)) != 0 { break }
            }
        }
        while i < size {
            for k in 0..<nrows { acc[0][k] += item(i, k) }
            i += 1
        }
        for j in 1..<levels { for k in 0..<nrows { acc[0][k] += acc[j][k] } }
        return acc[0]
    }

    /// row_sum with ilp_factor 4.
    static func rowSum<V: Summable>(_ item: (Int) -> V, size: Int) -> V {
        let ilp = 4
        let sizeIlp = size / ilp
        var partial = multiRowSum({ i, k in item(i * ilp + k) }, nrows: ilp, size: sizeIlp)
        for i in (sizeIlp * ilp)..<max(size, sizeIlp * ilp) { partial[0] += item(i) }
        for k in 1..<ilp { partial[0] += partial[k] }
        return partial[0]
    }

    static func sum(_ x: [Float]) -> Float {
        let n = x.count
        if n < lanes { return rowSum({ x[$0] }, size: n) }
        let vectors = n / lanes
        let vacc: SIMD8<Float> = rowSum({ v in
            var s = SIMD8<Float>()
            for l in 0..<8 { s[l] = x[v * 8 + l] }
            return s
        }, size: vectors)
        var total: Float = 0
        for k in (vectors * lanes)..<n { total += x[k] }
        for l in 0..<lanes { total += vacc[l] }
        return total
    }

    static func mean(_ x: [Float]) -> Float { sum(x) / Float(x.count) }
}

/// Float and its 8-lane vector: what torch's sum kernel accumulates.
protocol Summable { static var zero: Self { get }; static func + (a: Self, b: Self) -> Self }
extension Summable { static func += (a: inout Self, b: Self) { a = a + b } }
extension Float: Summable {}
extension SIMD8: Summable where Scalar == Float {}
