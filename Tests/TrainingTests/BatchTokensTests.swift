import XCTest
import Foundation
import TestSupport
import Model
@testable import Training

/// `batch_tokens`: micro-batches filled in data order while their real tokens fit the budget.
final class BatchTokensTests: XCTestCase {
    func testMicroBatchesFillUpToTheBudgetInOrder() {
        let data = ResumeTests.makeData()   // 7 examples of 6, 7, 8, 9, 6, 7, 8 tokens
        XCTAssertEqual(Trainer.tokenBudgetBatches(Array(0..<7), data, budget: 15), [[0, 1], [2], [3, 4], [5, 6]])
        XCTAssertEqual(Trainer.tokenBudgetBatches(Array(0..<7), data, budget: 5), [[0], [1], [2], [3], [4], [5], [6]], "longer than the budget: alone")
        XCTAssertEqual(Trainer.tokenBudgetBatches([3, 0, 6], data, budget: 100), [[3, 0, 6]])
        XCTAssertEqual(Trainer.tokenBudgetBatches([], data, budget: 10), [])
    }

    func testStepsGroupBudgetBatchesAndActivationRowsFollow() {
        let data = ResumeTests.makeData()
        var options = ResumeTests.options(); options.shuffle = false; options.batchTokens = 15; options.gradAccum = 2
        let trainer = Trainer(options)
        XCTAssertEqual(trainer.stepsOfEpoch(data, epoch: 0), [[[0, 1], [2]], [[3, 4], [5, 6]]])
        XCTAssertEqual(trainer.largestMicroBatch(data), 2)
        options.packRowLength = 8
        XCTAssertEqual(Trainer(options).largestMicroBatch(data), 1, "15 tokens hold one packed row of 8")
    }

    /// A budget that groups the examples as batch_size 2 does trains to the same bytes.
    func testABudgetGroupingLikeBatchSizeTrainsIdentically() throws {
        let data = ResumeTests.makeData()
        var bySize = ResumeTests.options(); bySize.shuffle = false; bySize.batchSize = 2; bySize.checkpointEvery = 0
        var byTokens = bySize; byTokens.batchTokens = 17   // [6, 7], [8, 9], [6, 7], [8]: batch_size 2's grouping
        XCTAssertEqual(Trainer(byTokens).stepsOfEpoch(data, epoch: 0), Trainer(bySize).stepsOfEpoch(data, epoch: 0))
        let w1 = try makeTemporaryDirectory("bt-size"), w2 = try makeTemporaryDirectory("bt-tokens")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        let a = try Trainer(bySize).train(model: try DataParallelTests.makeModel(), dataset: data, workDirectory: w1)
        let b = try Trainer(byTokens).train(model: try DataParallelTests.makeModel(), dataset: data, workDirectory: w2)
        XCTAssertFalse(a.metrics.isEmpty)
        XCTAssertEqual(b.metrics.map(\.loss), a.metrics.map(\.loss))
    }
}

/// evaluate's `packing`: the same targets and sums, fewer passes.
final class EvaluationPackingTests: XCTestCase {
    func testPackedEvaluationGivesTheUnpackedMetrics() throws {
        let data = ResumeTests.makeData()
        let model = try DataParallelTests.makeModel()
        let plain = Evaluator.metrics(model: model, dataset: data, batchSize: 2)
        let packed = Evaluator.metrics(model: model, dataset: data, batchSize: 2, packRowLength: 20)
        XCTAssertEqual(packed.supervisedTokens, plain.supervisedTokens)
        XCTAssertGreaterThan(plain.supervisedTokens, 0)
        // An argmax may flip only where two logits tie to float rounding: at most one target here.
        XCTAssertLessThanOrEqual(abs(packed.tokenAccuracy - plain.tokenAccuracy), 1.0 / Double(plain.supervisedTokens))
        // Sums over ~25 targets of fp32 logits computed through other GEMM shapes: float rounding only.
        assertClose([packed.loss], [plain.loss], rtol: 1e-5, atol: 0, "mean loss")
        let decision = PackingChoice.auto.decide(evaluating: data, batchSize: 2, rowLength: 20)
        XCTAssertEqual([decision.plain, decision.packed], [4, 2])   // 7 examples by 2; 4 packed rows by 2
        XCTAssertTrue(decision.pack)
        XCTAssertFalse(PackingChoice.off.decide(evaluating: data, batchSize: 2, rowLength: 20).pack)
    }
}
