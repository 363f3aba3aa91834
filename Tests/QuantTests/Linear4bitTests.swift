import XCTest
import Quant

final class Linear4bitTests: XCTestCase {
    func values(_ n: Int, seed: Int) -> [Float] {
        (0..<n).map { i in Float(sin(Double(i * 31 + seed) * 0.731) * 0.1) }
    }

    func check(out O: Int, in I: Int, rows N: Int, tileRows: Int?, type: QuantType, dq: Bool) throws {
        let q = try Quantizer.quantize(values(O * I, seed: 1), shape: [O, I], type: type, blockSize: 64, doubleQuant: dq)
        let layer = try Linear4bit(q, tileRows: tileRows)
        let w = Quantizer.dequantize(q)
        let x = values(N * I, seed: 2)
        var y = [Float](repeating: .nan, count: N * O)   // overwritten
        layer.forward(input: x, output: &y, rows: N)
        let yRef = Linear4bit.naiveForward(weight: w, input: x, rows: N, inFeatures: I, outFeatures: O)
        for k in 0..<y.count where abs(y[k] - yRef[k]) > 1e-5 { XCTFail("forward \(O)x\(I) [\(k)]: \(y[k]) vs \(yRef[k])"); return }
        let dy = values(N * O, seed: 3)
        var dx = [Float](repeating: 1, count: N * I)     // accumulates onto 1
        layer.backwardInput(gradOutput: dy, gradInput: &dx, rows: N)
        let dxRef = Linear4bit.naiveBackwardInput(weight: w, gradOutput: dy, rows: N, inFeatures: I, outFeatures: O)
        for k in 0..<dx.count where abs(dx[k] - (1 + dxRef[k])) > 1e-5 { XCTFail("backward \(O)x\(I) [\(k)]: \(dx[k]) vs \(1 + dxRef[k])"); return }
    }

    func testMatchesNaiveOracle() throws {
        try check(out: 176, in: 64, rows: 7, tileRows: nil, type: .nf4, dq: true)
        try check(out: 64, in: 176, rows: 5, tileRows: 3, type: .nf4, dq: true)      // blocks cross rows, 22 tiles
        try check(out: 37, in: 33, rows: 4, tileRows: 5, type: .fp4, dq: false)      // odd in_features: rows start mid-byte
        try check(out: 300, in: 128, rows: 3, tileRows: 64, type: .nf4, dq: false)   // short last tile
    }

    func testDequantizeRangeAgreesWithFullDequantize() throws {
        let q = try Quantizer.quantize(values(33 * 37, seed: 5), shape: [33, 37], type: .nf4, blockSize: 32, doubleQuant: true)
        let full = Quantizer.dequantize(q)
        for (lo, hi) in [(0, 1), (1, 2), (3, 70), (31, 33), (64, 1221), (1220, 1221)] {
            var part = [Float](repeating: .nan, count: hi - lo)
            part.withUnsafeMutableBufferPointer { Quantizer.dequantize(q, elements: lo..<hi, into: $0.baseAddress!) }
            XCTAssertEqual(part.map(\.bitPattern), full[lo..<hi].map(\.bitPattern), "\(lo)..<\(hi)")
        }
    }

    func testRejectsNon2DWeights() throws {
        let q = try Quantizer.quantize([1, 2, 3, 4], shape: [4], type: .nf4, blockSize: 64, doubleQuant: false)
        XCTAssertThrowsError(try Linear4bit(q)) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription, "inconsistent 4-bit quantized tensor: a 4-bit linear weight must be 2-D [out, in], got shape [4]")
        }
    }
}
