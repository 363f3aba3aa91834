import XCTest
@testable import Kernels

/// Deterministic test data from the project's counter-based generator.
func randomArray(_ count: Int, seed: UInt64 = 1, stream: String = "test", scale: Float = 1) -> [Float] {
    var rng = RandomStream(seed: seed, stream: stream)
    return (0..<count).map { _ in Float(rng.nextNormal()) * scale }
}

/// max |a − b|.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// ‖a − b‖ / max(‖b‖, tiny), in Double.
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<a.count { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i] }
    return (num / max(den, 1e-30)).squareRoot()
}

/// Central-difference gradient of a scalar function of `x` (which is perturbed in place and restored).
func numericGradient(_ x: inout [Float], step: Float = 1e-2, _ f: ([Float]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let saved = x[i]
        x[i] = saved + step; let fp = f(x)
        x[i] = saved - step; let fm = f(x)
        x[i] = saved
        g[i] = (fp - fm) / (Double(step) * 2)
    }
    return g
}

/// ⟨a, r⟩ in Double: the scalar loss L = Σ out·R whose gradient w.r.t. out is R.
func dot(_ a: [Float], _ r: [Float]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += Double(a[i]) * Double(r[i]) }
    return s
}

final class FastMathTests: XCTestCase {
    func testExpWithinTwoUlpAndExactZeroForMinusInfinity() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let e = Double(FastMath.exp(x)), r = Foundation.exp(Double(x))
            worst = max(worst, abs(e - r) / r)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 2.5e-7)   // ≈ 2 ulp of fp32
        XCTAssertEqual(FastMath.exp(0), 1)
        XCTAssertEqual(FastMath.exp(-Float.infinity), 0)
        XCTAssertEqual(FastMath.exp(-100), 0)
        let v = FastMath.exp(SIMD8<Float>(0, 1, -1, 2, -2, 0.5, -0.5, 10))
        for i in 0..<8 { XCTAssertEqual(v[i], FastMath.exp([0, 1, -1, 2, -2, 0.5, -0.5, 10][i] as Float)) }
    }
}
