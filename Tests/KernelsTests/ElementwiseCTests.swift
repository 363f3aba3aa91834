import CElementwise
import Foundation
import XCTest
@testable import Kernels

/// CElementwise's builds (AVX-512, AVX2, portable; CI runs each with QLORA_NF4_ISA=2|1|0) against the
/// Swift oracles one element at a time: the same bits, not a tolerance, since every path does the same
/// fp32 operations in the same order without fused multiply-adds.
final class ElementwiseCTests: XCTestCase {
    /// Awkward values for every kernel: signed zeros, infinities, NaN, subnormals, the exp clamp's edges,
    /// bf16 rounding ties, huge and tiny magnitudes — then normal draws. 1,037 values: not a multiple of
    /// any vector width, so every build also runs its scalar tail.
    private func awkwardValues(_ seed: UInt64) -> [Float] {
        var v: [Float] = [0, -0, .infinity, -.infinity, .nan, -.nan, .leastNonzeroMagnitude, -.leastNormalMagnitude,
                          .greatestFiniteMagnitude, -.greatestFiniteMagnitude, -87.33654, -87.33655, -87.3365, 88, 88.0001,
                          87.99999, -103.9, 1e-30, -1e-30, 0.5, -0.5, 1, -1, 20, -20, 1e10, -1e10,
                          Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_7FFF),
                          Float(bitPattern: 0x7F7F_8000), Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x0000_8000)]
        v += randomArray(1037 - v.count, seed: seed, stream: "elementwise-c", scale: 6)
        return v
    }

    private func assertSameBits(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let bad = zip(a, b).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        XCTAssertTrue(bad.isEmpty, "\(what) (ISA \(qlora_elementwise_isa())): \(bad.count) elements differ, first at \(bad.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")",
                      file: file, line: line)
    }

    func testTheDetectedBuildMatchesThisCPU() throws {
        guard ProcessInfo.processInfo.environment["QLORA_NF4_ISA"] == nil,
              let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no /proc/cpuinfo flags, or QLORA_NF4_ISA caps the build")
        }
        let flags = Set(line.split(separator: " ").map(String.init))
        let expected: Int32 = ["avx512f", "avx512bw", "avx512vl"].allSatisfy(flags.contains) ? 2
            : flags.contains("avx2") && flags.contains("fma") ? 1 : 0
        XCTAssertEqual(qlora_elementwise_isa(), expected)
    }

    func testExpIsFastMathExpBitForBit() {
        // Every 4,099th bit pattern: 1.05 M values spread over all signs, exponents and NaN payloads.
        var x = [Float](), step: UInt64 = 4099, u: UInt64 = 0
        while u <= UInt64(UInt32.max) { x.append(Float(bitPattern: UInt32(u))); u += step }
        x += awkwardValues(1)
        var out = [Float](repeating: 1, count: x.count)
        qlora_exp(x, &out, Int64(x.count))
        assertSameBits(out, x.map(FastMath.exp), "exp")
        XCTAssertEqual(out[x.firstIndex(of: -.infinity)!], 0)
        XCTAssertEqual(out[x.firstIndex(of: 0)!], 1)
    }

    func testSwiGLUForwardAndBackwardMatchTheExactOracle() {
        let gate = awkwardValues(2), up = awkwardValues(3).reversed() as [Float], d = randomArray(1037, seed: 4)
        let n = gate.count
        var fast = [Float](repeating: .nan, count: n), exact = fast
        SwiGLU.forward(output: &fast, gate: gate, up: up, count: n)
        SwiGLU.exactForward(output: &exact, gate: gate, up: up, count: n)
        assertSameBits(fast, exact, "SwiGLU forward")
        XCTAssertEqual(gate[21], 1)          // silu(1) = 1 / (1 + e^−1) = 0.731058578630...
        XCTAssertEqual(Double(fast[21]), 0.731_058_578_630_005 * Double(up[21]), accuracy: 3e-7 * abs(Double(up[21])))
        var inPlace = gate                   // generation runs it in place (output is gate)
        inPlace.withUnsafeMutableBufferPointer { g in SwiGLU.forward(output: g.baseAddress!, gate: g.baseAddress!, up: up, count: n) }
        assertSameBits(inPlace, exact, "SwiGLU forward in place")

        // Backward accumulates: start from non-zero gradients.
        var gg = randomArray(n, seed: 5), gu = randomArray(n, seed: 6)
        var eg = gg, eu = gu
        SwiGLU.backward(gradGate: &gg, gradUp: &gu, gradOutput: d, gate: gate, up: up, count: n)
        SwiGLU.exactBackward(gradGate: &eg, gradUp: &eu, gradOutput: d, gate: gate, up: up, count: n)
        assertSameBits(gg, eg, "SwiGLU backward, gradGate")
        assertSameBits(gu, eu, "SwiGLU backward, gradUp")
        // Large enough for all cores (Parallel's chunks): the same bits as one pass.
        let big = randomArray(100_003, seed: 7, scale: 4), bigUp = randomArray(100_003, seed: 8)
        var a = [Float](repeating: 0, count: big.count), b = a
        SwiGLU.forward(output: &a, gate: big, up: bigUp, count: big.count)
        SwiGLU.exactForward(output: &b, gate: big, up: bigUp, count: big.count)
        assertSameBits(a, b, "SwiGLU forward, 100,003 elements on all cores")
    }

    func testAdamWKernelMatchesTheExactOracleOverSteps() {
        let n = 70_001   // above Parallel's threshold, not a multiple of 16
        var p = randomArray(n, seed: 9), m = [Float](repeating: 0, count: n), v = m
        var ep = p, em = m, ev = v
        for t in 1...3 {
            var g = randomArray(n, seed: 10 + UInt64(t), scale: 1e-3)
            g[0] = 0; g[1] = 1e-30; g[2] = 1e20    // zero, tiny and huge gradients
            let k = AdamWKernel(decay: Float(1 - 1e-3 * 0.01), oneMinusBeta1: Float(1 - 0.9), beta2: 0.999,
                                oneMinusBeta2: Float(1 - 0.999), bias2Sqrt: Float((1 - pow(0.999, Double(t))).squareRoot()),
                                eps: 1e-8, stepSize: Float(1e-3 / (1 - pow(0.9, Double(t)))))
            k.apply(parameters: &p, firstMoment: &m, secondMoment: &v, gradient: g, count: n)
            k.applyExactly(parameters: &ep, firstMoment: &em, secondMoment: &ev, gradient: g, count: n)
        }
        assertSameBits(p, ep, "AdamW parameters")
        assertSameBits(m, em, "AdamW first moment")
        assertSameBits(v, ev, "AdamW second moment")
        XCTAssertNotEqual(p[5], randomArray(n, seed: 9)[5], "the parameters moved")
    }

    func testBFloat16RoundingCopyAndInPlaceMatchTheScalarRule() {
        var x = awkwardValues(11)
        for u: UInt32 in [0x3F80_8000, 0x3F81_8000, 0xBF80_8001, 0x7F7F_FFFF, 0xFF80_0000, 0x7FC0_0001, 0x0001_8000] {
            x.append(Float(bitPattern: u))
        }
        let expected = x.map(BFloat16Rounding.round)
        var copy = [Float](repeating: 0, count: x.count)
        BFloat16Rounding.round(x, into: &copy, count: x.count)
        assertSameBits(copy, expected, "bf16 rounded copy")
        BFloat16Rounding.round(&x, count: x.count)
        assertSameBits(x, expected, "bf16 rounding in place")
        // With a bias, row by row: round(x + b) with the fp32 sum, as the scalar rule.
        let rows = 7, channels = 149   // 1,043 values: a tail in every row
        var y = awkwardValues(12) + randomArray(rows * channels - 1037, seed: 13)
        let bias = randomArray(channels, seed: 14).map(BFloat16Rounding.round)
        let expectedBiased = y.indices.map { BFloat16Rounding.round(y[$0] + bias[$0 % channels]) }
        BFloat16Rounding.roundAddingBias(&y, bias: bias, rows: rows, channels: channels)
        assertSameBits(y, expectedBiased, "bf16 rounding with a bias")
        // Ties to even: 1 + 2^-8 (0x3F808000) rounds down to 1, 1 + 3·2^-8 (0x3F818000) up; NaN stays quiet NaN.
        XCTAssertEqual(BFloat16Rounding.round(Float(bitPattern: 0x3F80_8000)).bitPattern, 0x3F80_0000)
        XCTAssertEqual(BFloat16Rounding.round(Float(bitPattern: 0x3F81_8000)).bitPattern, 0x3F82_0000)
        XCTAssertEqual(BFloat16Rounding.round(Float(bitPattern: 0x7F80_0001)).bitPattern, 0x7FC0_0000)
    }
}
