import Foundation

/// Vectorised exp and row reductions for the softmax-like kernels (attention, cross-entropy, SiLU).
///
/// exp: Cephes `expf` (S. Moshier) range reduction and degree-6 polynomial, evaluated on SIMD8 lanes:
///     n = round(x · log2 e), r = x − n·ln2 (ln2 split in two constants for exactness), exp(x) = 2ⁿ · p(r).
/// Relative error ≤ 2 ulp on [−87.3, 88]; inputs are clamped to that range (exp(−87.3) ≈ 1.2e−38, below
/// which the result is exactly 0, so exp(−inf) = 0 for masked keys). The same lane function is used for tails
/// (one value in lane 0), so a value's result never depends on its position in a row.
enum FastMath {
    @inline(__always) static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87.33654), hi = SIMD8<Float>(repeating: 88.0)
        let x = v.replacing(with: lo, where: v .< lo).replacing(with: hi, where: v .> hi)
        // Round-to-nearest via the 1.5·2²³ magic constant; its low mantissa bits then hold n.
        let magic = SIMD8<Float>(repeating: 12_582_912.0)
        let m = x * 1.442_695_04 + magic
        let fx = m - magic
        var r = x - fx * 0.693_359_375
        r = r + fx * 2.121_944_40e-4
        let z = r * r
        var y = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        y = y * r + 1.398_199_950_7e-3
        y = y * r + 8.333_451_907_3e-3
        y = y * r + 4.166_579_589_4e-2
        y = y * r + 1.666_666_545_9e-1
        y = y * r + 5.000_000_120_1e-1
        y = y * z + r + 1
        let n = SIMD8<Int32>(truncatingIfNeeded: m.bitPattern(asInt32: ())) &- 0x4B40_0000
        let pow2 = SIMD8<Float>(bitPattern: SIMD8<UInt32>(truncatingIfNeeded: (n &+ 127) &<< 23))
        return (y * pow2).replacing(with: 0, where: v .< lo)   // exp(−inf) = 0 exactly
    }

    @inline(__always) static func exp(_ x: Float) -> Float {
        exp(SIMD8<Float>(repeating: x))[0]
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// max of p[0..<count] (count ≥ 1).
    @inline(__always) static func max(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if count >= 8 {
            var acc = SIMD8<Float>(repeating: -.infinity)
            while i + 8 <= count { let x = load(p + i); acc = acc.replacing(with: x, where: x .> acc); i += 8 }
            m = acc.max()
        }
        while i < count { m = Swift.max(m, p[i]); i += 1 }
        return m
    }

    /// p[i] = exp(p[i] − shift) in place for i < count; returns Σ p[i] (8 lane sums, then the tail).
    @inline(__always) static func expInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        var i = 0
        var acc = SIMD8<Float>(repeating: 0)
        let s = SIMD8<Float>(repeating: shift)
        while i + 8 <= count {
            let e = exp(load(p + i) - s)
            store(e, p + i)
            acc += e
            i += 8
        }
        var sum = acc.sum()
        while i < count { let e = exp(p[i] - shift); p[i] = e; sum += e; i += 1 }
        return sum
    }

    /// out[i] = exp(p[i] − shift); returns Σ out[i]. `out` may be nil (sum only).
    @inline(__always) static func expSum(_ p: UnsafePointer<Float>, count: Int, shift: Float, into out: UnsafeMutablePointer<Float>?) -> Float {
        var i = 0
        var acc = SIMD8<Float>(repeating: 0)
        let s = SIMD8<Float>(repeating: shift)
        while i + 8 <= count {
            let e = exp(load(p + i) - s)
            if let o = out { store(e, o + i) }
            acc += e
            i += 8
        }
        var sum = acc.sum()
        while i < count { let e = exp(p[i] - shift); out?[i] = e; sum += e; i += 1 }
        return sum
    }

    /// p[i] *= a for i < count.
    @inline(__always) static func scale(_ p: UnsafeMutablePointer<Float>, count: Int, by a: Float) {
        var i = 0
        while i + 8 <= count { store(load(p + i) * a, p + i); i += 8 }
        while i < count { p[i] *= a; i += 1 }
    }
}

extension SIMD8 where Scalar == Float {
    @inline(__always) func bitPattern(asInt32: Void) -> SIMD8<UInt32> {
        unsafeBitCast(self, to: SIMD8<UInt32>.self)
    }
    @inline(__always) init(bitPattern b: SIMD8<UInt32>) { self = unsafeBitCast(b, to: SIMD8<Float>.self) }
}
