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
        // Next fit at 20 takes 4 rows (13, 17, 13, 8 tokens); at 15, the smallest capacity that still
        // needs 4: [0, 1] (6 + 7), [2] (8, padded to 13), [3, 4] (9 + 6), [5, 6] (7 + 8); two rows per
        // micro-batch: 2 × 13 + 2 × 15 = 56 positions instead of 2 × 17 + 2 × 13 = 60.
        XCTAssertEqual(data.examples.map(\.ids.count), [6, 7, 8, 9, 6, 7, 8])
        XCTAssertEqual(data.nextFit(all, capacity: 20).map(\.count), [2, 2, 2, 1])
        XCTAssertEqual(data.packedRows(all, rowLength: 20), [[0, 1], [2], [3, 4], [5, 6]])
        XCTAssertEqual(packed.map(\.batch), [2, 2])
        XCTAssertEqual(packed.map(\.length), [13, 15])
        XCTAssertEqual(packed[0].segments, [[0..<6, 6..<13], [0..<8, 8..<13]])
        XCTAssertEqual(packed[1].segments, [[0..<9, 9..<15], [0..<7, 7..<15]])
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

    func testRowsAreBalancedAndAutoCountsPassesAndPositions() {
        // Chat turns of 40, 40, 40, 44 tokens, rows of 128: next fit 120 + 44, balanced 80 + 84.
        let lengths = [40, 40, 40, 44]
        let data = TrainingDataset(examples: lengths.map { TokenizedExample(ids: [Int32](repeating: 5, count: $0), lossMask: [Float](repeating: 1, count: $0)) }, padId: 0)
        XCTAssertEqual(data.nextFit([0, 1, 2, 3], capacity: 128), [[0, 1, 2], [3]])
        XCTAssertEqual(data.packedRows([0, 1, 2, 3], rowLength: 128), [[0, 1], [2, 3]])
        XCTAssertEqual(data.positions([[0, 1], [2, 3]], per: 4), 168)
        XCTAssertEqual(data.positions([[0, 1, 2], [3]], per: 4), 240)
        XCTAssertEqual(data.packedRows([3], rowLength: 128), [[3]], "one example: one row")
        XCTAssertEqual(data.packedRows([0, 1, 2, 3], rowLength: 40), [[0], [1], [2], [3]], "an example longer than the row stays alone")
        // batch_size 4: one pass either way; 168 packed positions instead of 4 × 44 = 176.
        var options = ResumeTests.options(); options.batchSize = 4; options.gradAccum = 1; options.shuffle = false
        let decision = PackingChoice.auto.decide(Trainer(options), data: data, rowLength: 128)
        XCTAssertEqual(decision, .init(pack: true, packed: 1, plain: 1, packedPositions: 168, plainPositions: 176))
        XCTAssertEqual(decision.summary(auto: true, rowLength: 128) { $0 == 1 ? "1 pass" : "\($0) passes" },
                       "packing on (auto): 1 pass of packed rows (up to 128 tokens), 168 token positions; unpacked: 1 pass, 176")
        // The rule: fewer passes with at most 10% more positions, or fewer positions with no more passes.
        XCTAssertTrue(PackingChoice.auto.choose(packed: 2, plain: 4, packedPositions: 110, plainPositions: 100).pack)
        XCTAssertFalse(PackingChoice.auto.choose(packed: 2, plain: 4, packedPositions: 111, plainPositions: 100).pack)
        XCTAssertFalse(PackingChoice.auto.choose(packed: 5, plain: 4, packedPositions: 50, plainPositions: 100).pack)
        XCTAssertFalse(PackingChoice.auto.choose(packed: 4, plain: 4, packedPositions: 100, plainPositions: 100).pack)
        XCTAssertTrue(PackingChoice.on.choose(packed: 4, plain: 4, packedPositions: 100, plainPositions: 100).pack)
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
