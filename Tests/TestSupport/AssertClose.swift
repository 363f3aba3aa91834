import Foundation
import XCTest

/// Numerical comparison for tests: element-wise `|actual - expected| <= atol + rtol * |expected|`
/// (numpy's `allclose` rule). A failure reports the largest absolute and relative differences and
/// where they are, so a tolerance that is too tight says by how much.
public func assertClose(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("count \(actual.count) != expected \(expected.count) \(message)", file: file, line: line)
        return
    }
    var worstAbs = (0.0, -1), worstRel = (0.0, -1), failures = 0, firstFailure = -1
    for i in 0..<actual.count {
        let difference = abs(actual[i] - expected[i])
        let relative = difference / max(abs(expected[i]), Double.leastNormalMagnitude)
        if !(difference <= atol + rtol * abs(expected[i])) {  // NaN fails
            failures += 1
            if firstFailure < 0 { firstFailure = i }
        }
        if difference > worstAbs.0 || difference.isNaN { worstAbs = (difference, i) }
        if relative > worstRel.0 || relative.isNaN { worstRel = (relative, i) }
    }
    guard failures > 0 else { return }
    let a = worstAbs.1, r = worstRel.1
    XCTFail("""
        not close (rtol \(rtol), atol \(atol)): \(failures) of \(actual.count) elements differ, first at [\(firstFailure)]; \
        max abs diff \(worstAbs.0) at [\(a)] (\(actual[a]) vs \(expected[a])); \
        max rel diff \(worstRel.0) at [\(r)] (\(actual[r]) vs \(expected[r])) \(message)
        """, file: file, line: line)
}

public func assertClose(_ actual: [Float], _ expected: [Float], rtol: Double, atol: Double, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    assertClose(actual.map(Double.init), expected.map(Double.init), rtol: rtol, atol: atol, message, file: file, line: line)
}

public func assertClose(_ actual: Double, _ expected: Double, rtol: Double, atol: Double, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], rtol: rtol, atol: atol, message, file: file, line: line)
}

/// Error bounds from float precision, for tolerances that follow from the computation instead of
/// trial: a sum of `n` products computed in fp32, in any order or blocking (Higham, *Accuracy and
/// Stability of Numerical Algorithms*, 2nd ed., §3.1: |error| <= γ_n Σ|x_i y_i|, γ_n ≈ n·u with
/// u = 2^-24 the unit roundoff). OpenBLAS kernels (AVX2 vs AVX-512) differ only in order and blocking.
public enum FloatBound {
    /// Unit roundoff of fp32.
    public static let unitRoundoff = Double(Float.ulpOfOne) / 2

    /// Bound on the error of an fp32 dot product of length `n` whose terms sum to `magnitude` in absolute value.
    public static func dot(length n: Int, magnitude: Double) -> Double {
        let gamma = Double(n) * unitRoundoff
        return gamma / (1 - gamma) * magnitude
    }
}
