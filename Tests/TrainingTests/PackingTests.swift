import XCTest
import Foundation
import TestSupport
import Model
@testable import Training

/// Sequence packing: the same examples packed into rows give the loss and adapter gradients of the
/// unpacked batch (segments attend only to themselves, positions restart), and a trainer run packed
/// takes the same steps with the same losses.
final class PackingTests: XCTestCase {
    /// Loss sum and every adapter gradient after one pass over `batches`.
    func lossAndGradients(_ model: LlamaModel, _ batches: [Batch]) -> (Double, [Float]) {
        let adapters = Trainer.parameters(model)
        for ad in adapters { ad.zeroGradients() }
        var loss = 0.0
        for b in batches {
            loss += model.lossAndGradients(tokens: b.tokens, batch: b.batch, length: b.length, lossWeights: b.lossWeights, gradScale: 1,
                                           segments: b.segments)
        }
        return (loss, adapters.flatMap { $0.gradA + $0.gradB })
    }

    func testPackedRowsGiveTheUnpackedLossAndGradients() throws {
        let data = ResumeTests.makeData()   // 7 examples of 6, 7, 8, 9, 6, 7, 8 tokens
        let all = Array(0..<7)
        let packed = data.packedBatches(all, rowLength: 20, rowsPerBatch: 2)
        // Next fit: rows [0, 1] (13 tokens), [2, 3] (17), [4, 5] (13), [6] (8); two rows per micro-batch.
        XCTAssertEqual(packed.map(\.batch), [2, 2])
        XCTAssertEqual(packed.map(\.length), [17, 13])
        XCTAssertEqual(packed[0].segments, [[0..<6, 6..<13, 13..<17], [0..<8, 8..<17]])
        XCTAssertEqual(packed[1].segments, [[0..<6, 6..<13], [0..<8, 8..<13]])
        XCTAssertEqual(packed.reduce(0) { $0 + $1.supervisedTokens }, all.reduce(0) { $0 + data.examples[$1].supervisedTokens })
        let model = try DataParallelTests.makeModel()
        let (plainLoss, plainGrads) = lossAndGradients(model, [data.batch(all)])
        let (packedLoss, packedGrads) = lossAndGradients(model, packed)
        XCTAssertTrue(plainLoss.isFinite && plainLoss > 0)
        // Same terms, summed in another order and through GEMMs of other shapes: float32 rounding only.
        assertClose([packedLoss], [plainLoss], rtol: 1e-5, atol: 0, "loss sum")
        let scale = Double(plainGrads.map { abs($0) }.max() ?? 1)
        assertClose(packedGrads, plainGrads, rtol: 0, atol: 1e-4 * scale, "adapter gradients")
        // A wrong layout is refused, not computed: segments must cover each row.
        var broken = packed[0]; broken.segments = [[0..<6], [0..<17]]
        XCTAssertTrue(model.lossAndGradients(tokens: broken.tokens, batch: 2, length: 17, lossWeights: broken.lossWeights, gradScale: 1,
                                             segments: broken.segments).isNaN)
    }

    func testAPackedRunTakesTheSameStepsWithTheSameLosses() throws {
        let data = ResumeTests.makeData()
        var options = ResumeTests.options(); options.batchSize = 1; options.gradAccum = 4; options.checkpointEvery = 0
        let w1 = try makeTemporaryDirectory("pack-off"), w2 = try makeTemporaryDirectory("pack-on")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        let plain = try Trainer(options).train(model: try DataParallelTests.makeModel(), dataset: data, workDirectory: w1)
        let decision = PackingChoice.auto.decide(Trainer(options), data: data, rowLength: 32)
        XCTAssertEqual(decision.pack, true)
        XCTAssertEqual(decision.plain, 7)     // 7 examples, one per micro-batch
        XCTAssertEqual(decision.packed, 2)    // steps of 4 and 3 examples, each one row of ≤ 32 tokens
        options.packRowLength = 32
        let packed = try Trainer(options).train(model: try DataParallelTests.makeModel(), dataset: data, workDirectory: w2)
        XCTAssertEqual(packed.metrics.map(\.step), plain.metrics.map(\.step))
        XCTAssertEqual(packed.metrics.map(\.supervisedTokens), plain.metrics.map(\.supervisedTokens))
        assertClose(packed.metrics.map(\.loss), plain.metrics.map(\.loss), rtol: 1e-5, atol: 0, "per-step loss")
        XCTAssertEqual(PackingChoice.auto.decide(Trainer(ResumeTests.options()), data: data, rowLength: 8).pack, false,
                       "rows too short to hold two examples: nothing to gain")
    }
}
