import XCTest
@testable import Kernels

final class RotaryTests: XCTestCase {
    func testInverseFrequenciesLikeTransformers() {
        // HS = 4, theta = 10000: inv_freq = 1 / 10000^(0/4, 2/4) = (1, 1/100) in fp32.
        let t = RotaryTable(headSize: 4, maxPositions: 3, theta: 10000)
        XCTAssertEqual(t.invFreq, [1, Float(1) / 100])
        XCTAssertEqual(t.cos[0..<2], [1, 1])
        XCTAssertEqual(t.sin[0..<2], [0, 0])
        XCTAssertEqual(t.cos[4], Float(cos(2.0)))   // position 2, pair 0: fp32 cos of the fp32 angle 2
        XCTAssertEqual(t.sin[5], Float(sin(Double(Float(2) * (Float(1) / 100)))), accuracy: 1e-9)
        // Linear scaling by 4 divides inv_freq (transformers' _compute_linear_scaling_rope_parameters).
        let s = RotaryTable(headSize: 4, maxPositions: 1, theta: 10000, linearScaling: 4)
        XCTAssertEqual(s.invFreq, [0.25, Float(1) / 100 / 4])
        // HS = 64, theta = 1e6 (Qwen/SmolLM-like): pair 16 is 1e6^(-0.5) = 1e-3 in fp32.
        let q = RotaryTable(headSize: 64, maxPositions: 1, theta: 1e6)
        XCTAssertEqual(q.invFreq[16], 1 / powf(1e6, 0.5))
        XCTAssertEqual(q.invFreq[16], 0.001, accuracy: 1e-10)
    }

    func testPinnedRotationBothLayouts() {
        let table = RotaryTable(headSize: 4, maxPositions: 8, theta: 10000)
        let c1 = Float(cos(1.0)), s1 = Float(sin(1.0))
        // rotate-half pairs channel 0 with channel 2.
        var x: [Float] = [1, 0, 0, 0]
        Rotary.forward(&x, positions: [1], table: table, B: 1, T: 1, H: 1, HS: 4, layout: .rotateHalf)
        XCTAssertEqual(x, [c1, 0, s1, 0])
        // interleaved pairs channel 0 with channel 1.
        var y: [Float] = [1, 0, 0, 0]
        Rotary.forward(&y, positions: [1], table: table, B: 1, T: 1, H: 1, HS: 4, layout: .interleaved)
        XCTAssertEqual(y, [c1, s1, 0, 0])
        // second pair in rotate-half: (x1, x3) = (0, 1) rotated by 0.01: (−sin, cos).
        var z: [Float] = [0, 0, 0, 1]
        Rotary.forward(&z, positions: [1], table: table, B: 1, T: 1, H: 1, HS: 4, layout: .rotateHalf)
        XCTAssertEqual(z, [0, -Float(sin(Double(Float(0.01)))), 0, Float(cos(Double(Float(0.01))))])
        // position 0 is the identity.
        var w: [Float] = [1, 2, 3, 4]
        Rotary.forward(&w, positions: [0], table: table, B: 1, T: 1, H: 1, HS: 4, layout: .rotateHalf)
        XCTAssertEqual(w, [1, 2, 3, 4])
    }

    func testForwardMatchesOracleIncludingPositionsBeyondTable() {
        let B = 2, T = 5, H = 3, HS = 8
        let table = RotaryTable(headSize: HS, maxPositions: 6, theta: 500)
        let positions: [Int32] = [0, 1, 2, 3, 4, 5, 6, 7, 100, 3]   // 6, 7, 100 are beyond the table
        for layout in [Rotary.Layout.rotateHalf, .interleaved] {
            var x = randomArray(B * T * H * HS, stream: "x")
            var x0 = x
            Rotary.forward(&x, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout)
            Rotary.naiveForward(&x0, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout)
            XCTAssertLessThan(maxAbsDiff(x, x0), 2e-6)
        }
    }

    func testBackwardIsTransposeOfForward() {
        // Rotary is linear: L = ⟨R, rot(x)⟩ has dL/dx = rotᵀ(R); check by finite differences.
        let B = 1, T = 3, H = 2, HS = 6
        let table = RotaryTable(headSize: HS, maxPositions: 16, theta: 10000)
        let positions: [Int32] = [2, 7, 11]
        for layout in [Rotary.Layout.rotateHalf, .interleaved] {
            var x = randomArray(B * T * H * HS, stream: "x")
            let R = randomArray(x.count, stream: "R")
            var g = R
            Rotary.backward(&g, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout)
            let n = numericGradient(&x, step: 0.5) { x in
                var y = x
                Rotary.forward(&y, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout)
                return dot(y, R)
            }
            XCTAssertLessThan(relativeError(g.map(Double.init), n), 1e-4)
            // and backward ∘ forward = identity
            var y = x
            Rotary.forward(&y, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout)
            Rotary.backward(&y, positions: positions, table: table, B: B, T: T, H: H, HS: HS, layout: layout)
            XCTAssertLessThan(maxAbsDiff(y, x), 1e-6)
        }
    }
}
