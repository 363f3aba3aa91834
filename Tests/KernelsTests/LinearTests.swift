import XCTest
@testable import Kernels

final class LinearTests: XCTestCase {
    func testMatchesOracle() {
        for (N, I, O) in [(1, 1, 1), (5, 7, 3), (67, 33, 129)] {
            let x = randomArray(N * I, stream: "x"), w = randomArray(O * I, stream: "w"), b = randomArray(O, stream: "b")
            var y = [Float](repeating: .nan, count: N * O), y0 = y
            Linear.forward(output: &y, input: x, weight: w, bias: b, rows: N, inFeatures: I, outFeatures: O)
            Linear.naiveForward(output: &y0, input: x, weight: w, bias: b, rows: N, inFeatures: I, outFeatures: O)
            XCTAssertLessThan(maxAbsDiff(y, y0), 1e-4)
            let dy = randomArray(N * O, stream: "dy")
            var dx = [Float](repeating: 1, count: N * I), dx0 = dx
            Linear.backwardInput(gradInput: &dx, gradOutput: dy, weight: w, rows: N, inFeatures: I, outFeatures: O)
            Linear.naiveBackwardInput(gradInput: &dx0, gradOutput: dy, weight: w, rows: N, inFeatures: I, outFeatures: O)
            XCTAssertLessThan(maxAbsDiff(dx, dx0), 1e-4)
            var dw = [Float](repeating: 1, count: O * I), dw0 = dw
            Linear.backwardWeight(gradWeight: &dw, gradOutput: dy, input: x, rows: N, inFeatures: I, outFeatures: O)
            Linear.naiveBackwardWeight(gradWeight: &dw0, gradOutput: dy, input: x, rows: N, inFeatures: I, outFeatures: O)
            XCTAssertLessThan(maxAbsDiff(dw, dw0), 1e-4)
        }
    }

    func testGradientFiniteDifference() {
        let N = 4, I = 5, O = 3
        var x = randomArray(N * I, stream: "x"), w = randomArray(O * I, stream: "w"), b = randomArray(O, stream: "b")
        let R = randomArray(N * O, stream: "R")
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: N * O)
            Linear.forward(output: &y, input: x, weight: w, bias: b, rows: N, inFeatures: I, outFeatures: O)
            return dot(y, R)
        }
        var dx = [Float](repeating: 1, count: N * I), dw = [Float](repeating: 1, count: O * I), db = [Float](repeating: 1, count: O)
        Linear.backwardInput(gradInput: &dx, gradOutput: R, weight: w, rows: N, inFeatures: I, outFeatures: O)
        Linear.backwardWeight(gradWeight: &dw, gradOutput: R, input: x, rows: N, inFeatures: I, outFeatures: O)
        Linear.backwardBias(gradBias: &db, gradOutput: R, rows: N, outFeatures: O)
        let (x0, w0, b0) = (x, w, b)
        let nx = numericGradient(&x) { loss($0, w0, b0) }
        let nw = numericGradient(&w) { loss(x0, $0, b0) }
        let nb = numericGradient(&b) { loss(x0, w0, $0) }
        XCTAssertLessThan(relativeError(dx.map { Double($0 - 1) }, nx), 1e-3)
        XCTAssertLessThan(relativeError(dw.map { Double($0 - 1) }, nw), 1e-3)
        XCTAssertLessThan(relativeError(db.map { Double($0 - 1) }, nb), 1e-3)
    }
}

final class ElementwiseTests: XCTestCase {
    func testEmbeddingGatherAndBadIds() {
        let table: [Float] = [0, 1, 10, 11, 20, 21]   // (V=3, C=2)
        var out = [Float](repeating: 9, count: 8)
        let bad = Embedding.forward(output: &out, table: table, tokens: [2, 0, 3, -1], rows: 4, channels: 2, vocab: 3)
        XCTAssertEqual(out, [20, 21, 0, 1, 0, 0, 0, 0])
        XCTAssertEqual(bad, 2)
    }

    func testAddScaleCopy() {
        let n = 100_003
        let a = randomArray(n, stream: "a"), b = randomArray(n, stream: "b")
        var x = a
        Elementwise.add(into: &x, b, count: n)
        XCTAssertEqual(x[n - 1], a[n - 1] + b[n - 1])
        XCTAssertEqual(x[0], a[0] + b[0])
        var y = [Float](repeating: 0, count: n)
        Elementwise.add(output: &y, a, b, count: n)
        XCTAssertEqual(x, y)
        Elementwise.scale(&y, by: 2, count: n)
        XCTAssertEqual(y[500], 2 * x[500])
        Elementwise.addScaled(into: &y, x, alpha: -2, count: n)
        XCTAssertEqual(maxAbsDiff(y, [Float](repeating: 0, count: n)), 0)
        Elementwise.copy(&y, from: a, count: n)
        XCTAssertEqual(y, a)
        Elementwise.zero(&y, count: n)
        XCTAssertEqual(y.max(), 0)
        var o: [Float] = [1, 2, 3, 4]
        Elementwise.addBias(&o, bias: [10, 20], rows: 2, channels: 2)
        XCTAssertEqual(o, [11, 22, 13, 24])
        XCTAssertEqual(Elementwise.sumOfSquares([3, 4], count: 2), 25)
    }

    func testSgemmBenchmarkReturnsARate() {
        let r = KernelBenchmark.sgemmGFLOPS(size: 64)
        XCTAssertTrue(r.isFinite && r > 0)
    }
}

final class BLASThreadsTests: XCTestCase {
    /// OpenBLAS runs on one thread; `singleThreaded` only marks "do not split", nested and concurrent.
    func testSingleThreadedIsCountedWhenNestedAndConcurrent() {
        XCTAssertEqual(BLAS.threads, 1)
        XCTAssertFalse(BLAS.isSingleThreaded)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            BLAS.singleThreaded {
                XCTAssertTrue(BLAS.isSingleThreaded)
                BLAS.singleThreaded { XCTAssertTrue(BLAS.isSingleThreaded) }
                XCTAssertTrue(BLAS.isSingleThreaded)
            }
        }
        XCTAssertFalse(BLAS.isSingleThreaded)
        XCTAssertEqual(BLAS.threads, 1)
    }

    /// A product split into blocks of rows or columns matches one unsplit call (to rounding: OpenBLAS
    /// may pick another kernel for a block's shape) and repeats bit for bit, for every transpose
    /// combination and for sizes that are not multiples of the block alignment.
    func testSplitProductMatchesTheUnsplitProductAndRepeatsBitForBit() {
        var rng = RandomStream(seed: 7, stream: "blas/split")
        for (m, n, k) in [(300, 97, 61), (70, 515, 33), (1024, 128, 16)] {
            XCTAssertGreaterThan(BLAS.blocks(m: m, n: n, k: k), Parallel.workers > 1 ? 1 : 0, "\(m)x\(n)x\(k)")
            for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = (0..<(m * k)).map { _ in Float(rng.nextUniform()) - 0.5 }
                let b = (0..<(k * n)).map { _ in Float(rng.nextUniform()) - 0.5 }
                let c0 = (0..<(m * n)).map { _ in Float(rng.nextUniform()) }
                var split = c0, again = c0, whole = c0
                let lda = tA ? m : k, ldb = tB ? k : n
                BLAS.sgemm(transposeA: tA, transposeB: tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                           beta: 0.25, c: &split, ldc: n)
                BLAS.sgemm(transposeA: tA, transposeB: tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                           beta: 0.25, c: &again, ldc: n)
                BLAS.singleThreaded {
                    BLAS.sgemm(transposeA: tA, transposeB: tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                               beta: 0.25, c: &whole, ldc: n)
                }
                XCTAssertTrue(split == again, "\(m)x\(n)x\(k) tA \(tA) tB \(tB): not repeatable")
                let worst = zip(split, whole).map { abs($0 - $1) }.max() ?? .nan
                XCTAssertLessThan(worst, 1e-5, "\(m)x\(n)x\(k) tA \(tA) tB \(tB)")
            }
        }
    }
}
