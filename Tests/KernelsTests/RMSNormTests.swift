import XCTest
@testable import Kernels

final class RMSNormTests: XCTestCase {
    func testPinnedValues() {
        // x = (1,1,1,1), eps = 3: mean(x²) + eps = 4, rstd = 0.5 exactly; y = w · 0.5 exactly.
        let x: [Float] = [1, 1, 1, 1], w: [Float] = [1, 2, -3, 0.5]
        var y = [Float](repeating: 9, count: 4), r: [Float] = [9]
        RMSNorm.forward(output: &y, rstd: &r, input: x, weight: w, rows: 1, channels: 4, eps: 3)
        XCTAssertEqual(r, [0.5])
        XCTAssertEqual(y, [0.5, 1, -1.5, 0.25])
        // x = (2,−2,2,−2,...), eps = 0: rstd = 0.5, y = ±w.
        let x2: [Float] = [2, -2, 2, -2, 2, -2]
        var y2 = [Float](repeating: 0, count: 6), r2: [Float] = [0]
        RMSNorm.forward(output: &y2, rstd: &r2, input: x2, weight: [1, 1, 1, 1, 1, 4], rows: 1, channels: 6, eps: 0)
        XCTAssertEqual(y2, [1, -1, 1, -1, 1, -4])
    }

    func testForwardMatchesOracle() {
        for (N, C) in [(1, 1), (3, 7), (17, 64), (300, 129)] {
            let x = randomArray(N * C, stream: "x\(N)"), w = randomArray(C, stream: "w\(C)")
            var y = [Float](repeating: 0, count: N * C), r = [Float](repeating: 0, count: N)
            var y0 = y, r0 = r
            RMSNorm.forward(output: &y, rstd: &r, input: x, weight: w, rows: N, channels: C, eps: 1e-5)
            RMSNorm.naiveForward(output: &y0, rstd: &r0, input: x, weight: w, rows: N, channels: C, eps: 1e-5)
            XCTAssertLessThan(maxAbsDiff(y, y0), 2e-6, "N=\(N) C=\(C)")
            XCTAssertLessThan(maxAbsDiff(r, r0), 2e-6)
        }
    }

    func testBackwardMatchesOracleAndAccumulates() {
        let N = 37, C = 65
        let x = randomArray(N * C, stream: "x"), w = randomArray(C, stream: "w"), dy = randomArray(N * C, stream: "dy")
        var y = [Float](repeating: 0, count: N * C), r = [Float](repeating: 0, count: N)
        RMSNorm.forward(output: &y, rstd: &r, input: x, weight: w, rows: N, channels: C, eps: 1e-5)
        var dx = [Float](repeating: 1, count: N * C), dw = [Float](repeating: 1, count: C)
        var dx0 = dx, dw0 = dw
        RMSNorm.backward(gradInput: &dx, gradOutput: dy, input: x, weight: w, rstd: r, rows: N, channels: C, gradWeight: &dw)
        RMSNorm.naiveBackward(gradInput: &dx0, gradOutput: dy, input: x, weight: w, rstd: r, rows: N, channels: C, gradWeight: &dw0)
        XCTAssertLessThan(maxAbsDiff(dx, dx0), 1e-5)
        XCTAssertLessThan(maxAbsDiff(dw, dw0), 1e-4)
    }

    func testGradientFiniteDifference() {
        let N = 3, C = 8
        var x = randomArray(N * C, stream: "x"), w = randomArray(C, stream: "w")
        let R = randomArray(N * C, stream: "R")
        func loss(_ x: [Float], _ w: [Float]) -> Double {
            var y = [Float](repeating: 0, count: N * C), r = [Float](repeating: 0, count: N)
            RMSNorm.forward(output: &y, rstd: &r, input: x, weight: w, rows: N, channels: C, eps: 1e-5)
            return dot(y, R)
        }
        var y = [Float](repeating: 0, count: N * C), r = [Float](repeating: 0, count: N)
        RMSNorm.forward(output: &y, rstd: &r, input: x, weight: w, rows: N, channels: C, eps: 1e-5)
        let offset: Float = 0.25   // backward must ADD to what is there
        var dx = [Float](repeating: offset, count: N * C), dw = [Float](repeating: offset, count: C)
        RMSNorm.backward(gradInput: &dx, gradOutput: R, input: x, weight: w, rstd: r, rows: N, channels: C, gradWeight: &dw)
        let wFixed = w, xFixed = x
        let nx = numericGradient(&x) { loss($0, wFixed) }
        let nw = numericGradient(&w) { loss(xFixed, $0) }
        XCTAssertLessThan(relativeError(dx.map { Double($0 - offset) }, nx), 1e-3)
        XCTAssertLessThan(relativeError(dw.map { Double($0 - offset) }, nw), 1e-3)
    }
}
