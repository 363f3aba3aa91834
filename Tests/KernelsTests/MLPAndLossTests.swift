import XCTest
@testable import Kernels

final class SwiGLUTests: XCTestCase {
    func testForwardPinnedAndOracle() {
        var out: [Float] = [9, 9, 9]
        SwiGLU.forward(output: &out, gate: [0, 1, -2], up: [5, 2, 1], count: 3)
        XCTAssertEqual(out[0], 0)
        XCTAssertEqual(out[1], 2 / (1 + Float(exp(-1.0))), accuracy: 1e-7)
        XCTAssertEqual(out[2], -2 / (1 + Float(exp(2.0))), accuracy: 1e-7)
        let n = 70_001
        let g = randomArray(n, stream: "g", scale: 3), u = randomArray(n, stream: "u")
        var a = [Float](repeating: 0, count: n), b = a
        SwiGLU.forward(output: &a, gate: g, up: u, count: n)
        SwiGLU.naiveForward(output: &b, gate: g, up: u, count: n)
        XCTAssertLessThan(maxAbsDiff(a, b), 1e-5)
        var dg = [Float](repeating: 1, count: n), du = dg, dg0 = dg, du0 = dg
        let d = randomArray(n, stream: "d")
        SwiGLU.backward(gradGate: &dg, gradUp: &du, gradOutput: d, gate: g, up: u, count: n)
        SwiGLU.naiveBackward(gradGate: &dg0, gradUp: &du0, gradOutput: d, gate: g, up: u, count: n)
        XCTAssertLessThan(maxAbsDiff(dg, dg0), 1e-5)
        XCTAssertLessThan(maxAbsDiff(du, du0), 1e-5)
    }

    func testGradientFiniteDifference() {
        let n = 23
        var g = randomArray(n, stream: "g", scale: 2), u = randomArray(n, stream: "u")
        let R = randomArray(n, stream: "R")
        func loss(_ g: [Float], _ u: [Float]) -> Double {
            var o = [Float](repeating: 0, count: n); SwiGLU.forward(output: &o, gate: g, up: u, count: n); return dot(o, R)
        }
        var dg = [Float](repeating: 2, count: n), du = dg
        SwiGLU.backward(gradGate: &dg, gradUp: &du, gradOutput: R, gate: g, up: u, count: n)
        let (g0, u0) = (g, u)
        let ng = numericGradient(&g, step: 1e-2) { loss($0, u0) }
        let nu = numericGradient(&u, step: 1e-2) { loss(g0, $0) }
        XCTAssertLessThan(relativeError(dg.map { Double($0 - 2) }, ng), 1e-3)
        XCTAssertLessThan(relativeError(du.map { Double($0 - 2) }, nu), 1e-3)
    }
}

final class CrossEntropyTests: XCTestCase {
    func testPinnedUniformLogits() {
        // All-zero logits over V = 4: CE = log 4 per row; grad = scale·w·(1/4 − onehot).
        let logits = [Float](repeating: 0, count: 8)
        var grad = [Float](repeating: 7, count: 8)
        let loss = CrossEntropy.forwardBackward(logits: logits, targets: [2, 0], weights: [1, 0.5], rows: 2, vocab: 4,
                                                gradLogits: &grad, gradScale: 2)
        XCTAssertEqual(loss, 1.5 * log(4.0), accuracy: 1e-6)
        XCTAssertEqual(grad, [0.5, 0.5, -1.5, 0.5, -0.75, 0.25, 0.25, 0.25])
    }

    func testIgnoredRowsAreSkippedAndZeroed() {
        // Row 1 has weight 0 and a NaN logit: skipped entirely (no NaN leaks), its gradient row is 0.
        var logits = randomArray(3 * 5, stream: "l"); logits[7] = .nan
        var grad = [Float](repeating: 7, count: 15)
        let loss = CrossEntropy.forwardBackward(logits: logits, targets: [1, 9, 4], weights: [1, 0, 1], rows: 3, vocab: 5,
                                                gradLogits: &grad, gradScale: 1)
        XCTAssertFalse(loss.isNaN)
        XCTAssertEqual(Array(grad[5..<10]), [0, 0, 0, 0, 0])
        let only = CrossEntropy.forwardBackward(logits: Array(logits[0..<5]), targets: [1], weights: [1], rows: 1, vocab: 5,
                                                gradLogits: nil, gradScale: 1)
        let last = CrossEntropy.forwardBackward(logits: Array(logits[10..<15]), targets: [4], weights: [1], rows: 1, vocab: 5,
                                                gradLogits: nil, gradScale: 1)
        XCTAssertEqual(loss, only + last, accuracy: 1e-12)   // chunking rows does not change the sum
    }

    func testMatchesOracle() {
        let N = 41, V = 1003
        let logits = randomArray(N * V, stream: "l", scale: 4)
        var rng = RandomStream(seed: 3, stream: "t")
        let targets = (0..<N).map { _ in Int32(rng.nextInt(below: V)) }
        let weights = (0..<N).map { Float($0 % 3) * 0.5 }
        var g = [Float](repeating: 0, count: N * V), g0 = g
        let a = CrossEntropy.forwardBackward(logits: logits, targets: targets, weights: weights, rows: N, vocab: V, gradLogits: &g, gradScale: 0.1)
        let b = CrossEntropy.naiveForwardBackward(logits: logits, targets: targets, weights: weights, rows: N, vocab: V, gradLogits: &g0, gradScale: 0.1)
        XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b))
        XCTAssertLessThan(maxAbsDiff(g, g0), 1e-6)
        let c = CrossEntropy.forwardBackward(logits: logits, targets: targets, weights: weights, rows: N, vocab: V, gradLogits: nil, gradScale: 0.1)
        XCTAssertEqual(a, c)   // bit-identical with and without the gradient
        // In place (the head's chunk buffer): the same loss and gradient bits.
        var inPlace = logits
        let d = inPlace.withUnsafeMutableBufferPointer { p in
            CrossEntropy.forwardBackward(logits: p.baseAddress!, targets: targets, weights: weights, rows: N, vocab: V,
                                         gradLogits: p.baseAddress!, gradScale: 0.1)
        }
        XCTAssertEqual(d, a)
        XCTAssertEqual(inPlace, g)
    }

    func testGradientFiniteDifference() {
        let N = 3, V = 7
        var logits = randomArray(N * V, stream: "l", scale: 2)
        let targets: [Int32] = [0, 6, 3], weights: [Float] = [1, 0.25, 2]
        var g = [Float](repeating: 0, count: N * V)
        _ = CrossEntropy.forwardBackward(logits: logits, targets: targets, weights: weights, rows: N, vocab: V, gradLogits: &g, gradScale: 0.5)
        let n = numericGradient(&logits, step: 1e-2) {
            0.5 * CrossEntropy.forwardBackward(logits: $0, targets: targets, weights: weights, rows: N, vocab: V, gradLogits: nil, gradScale: 1)
        }
        XCTAssertLessThan(relativeError(g.map(Double.init), n), 1e-3)
    }
}
