import XCTest
import TestSupport
@testable import Model
@testable import TensorIO
import Kernels
import Quant

/// The lossless compact embedding (CompactMatrix): found only where every value decodes to the
/// same fp32 bits, products equal to the fp32 matrix's within float rounding, files unchanged.
final class CompactMatrixTests: XCTestCase {
    /// Values of the Q8_0 form (ggml block_q8_0 dequantized: f16 scale · int8 in [-127, 127]),
    /// each block holding a ±127 code, as ggml's quantizer writes (d = amax / 127).
    static func q8Values(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, stream: "q8")
        var out: [Float] = []
        for _ in 0..<(rows * columns / 32) {
            let d = Float(Float16(Float(rng.nextNormal()).magnitude * 0.01 + 1e-4))
            var q = (0..<32).map { _ in Float(rng.nextInt(below: 255) - 127) }
            q[rng.nextInt(below: 32)] = rng.nextInt(below: 2) == 0 ? 127 : -127
            out += q.map { $0 * d }
        }
        return out
    }

    func testEncodingsAreChosenOnlyWhenExact() throws {
        let q8 = Self.q8Values(rows: 6, columns: 64, seed: 1)
        let m = try XCTUnwrap(CompactMatrix.lossless(q8, rows: 6, columns: 64))
        XCTAssertEqual(m.encoding, .int8Blocks)
        XCTAssertEqual(m.byteCount, 6 * 64 + 4 * 12)
        XCTAssertEqual(m.floats().map(\.bitPattern), q8.map(\.bitPattern))

        var rng = RandomStream(seed: 2, stream: "bf16")
        let bf16 = (0..<(5 * 24)).map { _ in Float(bitPattern: Float(rng.nextNormal()).bitPattern & 0xFFFF_0000) }
        let b = try XCTUnwrap(CompactMatrix.lossless(bf16, rows: 5, columns: 24))   // 24 columns: no int8 blocks
        XCTAssertEqual(b.encoding, .bf16)
        XCTAssertEqual(b.byteCount, 2 * 5 * 24)
        XCTAssertEqual(b.floats().map(\.bitPattern), bf16.map(\.bitPattern))

        // One value off the grid, by one ulp: int8 blocks no longer exact, nor bf16 → kept in fp32.
        var off = q8
        off[37] = off[37].nextUp
        XCTAssertNil(CompactMatrix.lossless(off, rows: 6, columns: 64))
        // -0.0 is not 0·d (+0.0): the int8 form would change its sign bit; bf16 keeps it.
        var negativeZero = q8.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }
        negativeZero[3] = -0.0
        XCTAssertEqual(CompactMatrix.lossless(negativeZero, rows: 6, columns: 64)?.encoding, .bf16)
        // A NaN or infinity is never int8 (amax would be meaningless).
        var nan = q8
        nan[0] = .nan
        XCTAssertNil(CompactMatrix.lossless(nan, rows: 6, columns: 64))
        XCTAssertNil(CompactMatrix.lossless([1, 2, 3], rows: 2, columns: 2), "count mismatch")
    }

    /// Products in tiles (3 rows per tile over 10 rows: three full tiles and one of one row)
    /// against a Double-accumulated reference: K = 64 fp32 products, so rtol 1e-5.
    func testTiledProductsMatchTheReference() throws {
        let R = 10, C = 64, N = 5
        let w = Self.q8Values(rows: R, columns: C, seed: 3)
        let m = try XCTUnwrap(CompactMatrix.lossless(w, rows: R, columns: C))
        let saved = CompactMatrix.tileRows
        CompactMatrix.tileRows = 3
        defer { CompactMatrix.tileRows = saved }
        var rng = RandomStream(seed: 4, stream: "x")
        let x = (0..<(N * C)).map { _ in Float(rng.nextNormal()) }      // (N, C)
        let dy = (0..<(N * R)).map { _ in Float(rng.nextNormal()) }     // (N, R)
        var y = [Float](repeating: .nan, count: N * R)                   // overwritten
        m.multiply(input: x, output: &y, rows: N)
        var dx = [Float](repeating: 0.5, count: N * C)                   // accumulated into
        m.accumulateInputGradient(gradOutput: dy, gradInput: &dx, rows: N)
        var yRef = [Double](repeating: 0, count: N * R), dxRef = [Double](repeating: 0.5, count: N * C)
        for n in 0..<N {
            for r in 0..<R {
                for c in 0..<C {
                    yRef[n * R + r] += Double(x[n * C + c]) * Double(w[r * C + c])
                    dxRef[n * C + c] += Double(dy[n * R + r]) * Double(w[r * C + c])
                }
            }
        }
        assertClose(y.map(Double.init), yRef, rtol: 1e-5, atol: 1e-6)
        assertClose(dx.map(Double.init), dxRef, rtol: 1e-5, atol: 1e-6)
    }

    let config = ModelConfig(vocabSize: 40, hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2,
                             maxPositionEmbeddings: 64, tieWordEmbeddings: true)

    /// A model with a Q8_0-form tied embedding, dense or compact.
    func model(compact: Bool) -> LlamaModel {
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 9)
        let e = Self.q8Values(rows: 40, columns: 32, seed: 5).map { $0 * 40 }   // logits of a useful size
        model.embeddingWeight = .dense(e)
        model.head.weight = .dense(e)
        if compact { XCTAssertEqual(model.compactEmbedding(), 4 * 40 * 32 - (40 * 32 + 4 * 40)) }
        return model
    }

    /// Same loss and adapter gradients as the fp32 embedding (within the rounding of the head's
    /// input-gradient sum, taken over the vocabulary in tiles), same files bit for bit.
    func testCompactEmbeddingTrainsAndSavesLikeTheFloatOne() throws {
        let saved = CompactMatrix.tileRows
        CompactMatrix.tileRows = 16   // 40 rows: tiles of 16, 16, 8
        defer { CompactMatrix.tileRows = saved }
        let tokens: [Int32] = [1, 4, 9, 16, 25, 3, 8, 2, 7, 7, 30, 39]
        let weights: [Float] = [0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]
        var results: [(loss: Double, grads: [Float], files: Data)] = []
        for compact in [false, true] {
            let m = model(compact: compact)
            if compact {
                guard case .compact(let e) = m.embeddingWeight, case .compact(let h) = m.head.weight else { return XCTFail("not compact") }
                XCTAssertTrue(e === h, "the tied head shares the embedding")
            }
            for l in m.linearModules where l.name.hasSuffix("q_proj") || l.name.hasSuffix("down_proj") {
                var rng = RandomStream(seed: 7, stream: l.name)
                let a = (0..<(2 * l.inFeatures)).map { _ in Float(rng.nextNormal() * 0.3) }
                let b = (0..<(l.outFeatures * 2)).map { _ in Float(rng.nextNormal() * 0.3) }
                l.adapter = LoRAAdapter(rank: 2, inFeatures: l.inFeatures, outFeatures: l.outFeatures, scale: 2, a: a, b: b)
            }
            let loss = m.lossAndGradients(tokens: tokens, batch: 2, length: 6, lossWeights: weights, gradScale: 0.25)
            let grads = m.linearModules.compactMap(\.adapter).flatMap { $0.gradA + $0.gradB }
            let dir = try makeTemporaryDirectory("qlora-compact")
            defer { try? FileManager.default.removeItem(at: dir) }
            for l in m.linearModules { l.adapter = nil }
            try m.save(to: dir)
            results.append((loss, grads, try Data(contentsOf: dir.appendingPathComponent("model.safetensors"))))
        }
        XCTAssertEqual(results[0].loss, results[1].loss, accuracy: 1e-5 * abs(results[0].loss))
        XCTAssertEqual(results[0].grads.count, results[1].grads.count)
        assertClose(results[1].grads.map(Double.init), results[0].grads.map(Double.init), rtol: 1e-4, atol: 1e-6)
        XCTAssertTrue(results[0].grads.contains { $0 != 0 })
        XCTAssertEqual(results[0].files, results[1].files, "the embedding is written as the same fp32 bytes")
    }

    /// Loading a checkpoint compacts its embedding when exact; quantizing a tied head that is not
    /// skipped reads the decoded values (the same 4-bit bytes as from fp32).
    func testLoadCompactsAndQuantizeReadsTheDecodedHead() throws {
        let dir = try makeTemporaryDirectory("qlora-compact-load")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model(compact: false).save(to: dir)
        let loaded = try LlamaModel.load(directory: dir)
        guard case .compact(let e) = loaded.embeddingWeight else { return XCTFail("a Q8_0-form embedding loads compact") }
        XCTAssertEqual(e.encoding, .int8Blocks)
        XCTAssertEqual(loaded.embedding, model(compact: false).embedding)
        let dense = model(compact: false)
        for m in [dense, loaded] { try m.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: []) }
        guard case .quantized(let a) = dense.head.weight, case .quantized(let b) = loaded.head.weight else { return XCTFail("head not quantized") }
        XCTAssertEqual(a.weight, b.weight)
        XCTAssertFalse(loaded.headTied)
        // A random fp32 embedding stays fp32.
        let plain = try makeTemporaryDirectory("qlora-compact-plain")
        defer { try? FileManager.default.removeItem(at: plain) }
        try LlamaModel.initialized(config: config, layout: .huggingFace, seed: 9).save(to: plain)
        guard case .dense = try LlamaModel.load(directory: plain).embeddingWeight else { return XCTFail("kept in fp32") }
    }
}
