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

    /// Four rows share one loop (their sums in flight together) but each row's sum keeps its own order:
    /// a batch gives the bits of the rows normalised one at a time, in place too (generation's q/k norms).
    func testFourRowsAtOnceGiveTheBitsOfOneRowAtATime() {
        let N = 11, C = 129   // two groups of four, then a tail of three
        let x = randomArray(N * C, stream: "x4", scale: 3), w = randomArray(C, stream: "w4"), dy = randomArray(N * C, stream: "dy4")
        var y = [Float](repeating: 0, count: N * C), r = [Float](repeating: 0, count: N)
        RMSNorm.forward(output: &y, rstd: &r, input: x, weight: w, rows: N, channels: C, eps: 1e-6)
        var dx = [Float](repeating: 0.5, count: N * C)
        RMSNorm.backward(gradInput: &dx, gradOutput: dy, input: x, weight: w, rstd: r, rows: N, channels: C)
        var inPlace = x, rInPlace = r
        inPlace.withUnsafeMutableBufferPointer { b in
            RMSNorm.forward(output: b.baseAddress!, rstd: &rInPlace, input: b.baseAddress!, weight: w, rows: N, channels: C, eps: 1e-6)
        }
        XCTAssertEqual(inPlace.map(\.bitPattern), y.map(\.bitPattern), "in place")
        for n in 0..<N {
            let row = Array(x[n * C..<(n + 1) * C]), dyRow = Array(dy[n * C..<(n + 1) * C])
            var y1 = [Float](repeating: 0, count: C), r1: [Float] = [0], dx1 = [Float](repeating: 0.5, count: C)
            RMSNorm.forward(output: &y1, rstd: &r1, input: row, weight: w, rows: 1, channels: C, eps: 1e-6)
            RMSNorm.backward(gradInput: &dx1, gradOutput: dyRow, input: row, weight: w, rstd: r1, rows: 1, channels: C)
            XCTAssertEqual(r1[0].bitPattern, r[n].bitPattern, "rstd of row \(n)")
            XCTAssertEqual(y1.map(\.bitPattern), y[n * C..<(n + 1) * C].map(\.bitPattern), "output row \(n)")
            XCTAssertEqual(dx1.map(\.bitPattern), dx[n * C..<(n + 1) * C].map(\.bitPattern), "gradient row \(n)")
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
