import XCTest
import Foundation
import TestSupport
import Model
import Kernels
@testable import Training

/// Issue 16 §1-2: validation inside training, early stopping, the best adapter, exact resume.
final class ValidationTests: XCTestCase {
    /// Held-out examples of the same shape as ResumeTests' data, from another stream.
    static func heldOut() -> TrainingDataset {
        var rng = RandomStream(seed: 12, stream: "test-eval-data")
        let examples: [TokenizedExample] = (0..<3).map { i in
            let n = 7 + i
            let ids = (0..<n).map { _ in Int32(1 + rng.nextInt(below: 63)) }
            return TokenizedExample(ids: ids, lossMask: (0..<n).map { $0 >= n / 2 ? Float(1) : 0 })
        }
        return TrainingDataset(examples: examples, padId: 0)
    }

    func model() throws -> LlamaModel {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 3)
        var o = LoRAOptions(); o.rank = 4; o.targets = .names(["q_proj", "o_proj", "down_proj"])
        try LoRAAttacher.attach(to: model, options: o, seed: 5)
        return model
    }

    /// The adapter after 6 steps and every step row are byte-identical with and without validation
    /// every step; metrics.jsonl puts each pass right after its step's row.
    func testValidationDoesNotChangeTraining() throws {
        let data = ResumeTests.makeData(), trainer = Trainer(ResumeTests.options())
        let w1 = try makeTemporaryDirectory("plain"), w2 = try makeTemporaryDirectory("validated")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        let plain = try model(), validated = try model()
        let r1 = try trainer.train(model: plain, dataset: data, workDirectory: w1)
        var v = ValidationOptions(); v.every = 1; v.batchSize = 2
        var lines: [String] = []
        let r2 = try trainer.train(model: validated, dataset: data, workDirectory: w2, validation: (v, Self.heldOut()), log: { lines.append($0) })
        XCTAssertEqual(try ResumeTests.adapterBytes(validated), try ResumeTests.adapterBytes(plain))
        XCTAssertEqual(r2.metrics, r1.metrics)
        XCTAssertEqual(r2.validations.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(r2.keptStep, 6)
        XCTAssertEqual(r2.stopReason, .completed)
        // 3 held-out examples of 7, 8, 9 tokens: 3 + 4 + 4 supervised targets.
        XCTAssertEqual(Set(r2.validations.map(\.tokens)), [13])
        // A pass equals the evaluator on the model of that step: the last one on the final model.
        let final = Evaluator.metrics(model: validated, dataset: Self.heldOut(), batchSize: 2)
        XCTAssertEqual(r2.validations.last?.loss, final.loss)
        XCTAssertEqual(r2.validations.last?.tokenAccuracy, final.tokenAccuracy)
        let rows = r2.metricsJSONL.split(separator: "\n").map(String.init)
        XCTAssertEqual(rows.count, 12)
        XCTAssertTrue(rows[0].hasPrefix("{\"step\":1,\"epoch\":1,\"loss\":"), rows[0])
        XCTAssertTrue(rows[1].hasPrefix("{\"step\":1,\"eval_loss\":"), rows[1])
        XCTAssertTrue(rows[1].contains(",\"eval_perplexity\":") && rows[1].contains(",\"eval_token_accuracy\":")
                      && rows[1].hasSuffix(",\"eval_tokens\":13}"), rows[1])
        XCTAssertEqual(ValidationMetrics.parse(rows[1]), r2.validations[0])
        XCTAssertEqual(lines.filter { $0.hasPrefix("eval at step ") }.count, 6)
        XCTAssertTrue(lines.contains { $0.hasPrefix("eval at step 1: loss ") && $0.hasSuffix(" over 13 tokens (new best)") }, "\(lines)")
        // The plot draws the validation curve with one dot per pass.
        let svg = LossPlot.svg(r2.metrics, validations: r2.validations)
        XCTAssertEqual(svg.components(separatedBy: "<circle ").count - 1, 6)
        XCTAssertTrue(svg.contains(">validation loss</text>"))
        XCTAssertFalse(LossPlot.svg(r1.metrics).contains("<circle "))
    }

    /// No pass can beat the first by min_delta 1e9: patience 2 stops after the passes of steps 2
    /// and 3; keep: best outputs exactly the adapter of step 1.
    func testEarlyStoppingKeepsTheBestAdapter() throws {
        let data = ResumeTests.makeData(), trainer = Trainer(ResumeTests.options())
        let w1 = try makeTemporaryDirectory("stop"), w2 = try makeTemporaryDirectory("step1")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        var v = ValidationOptions(); v.every = 1; v.patience = 2; v.minDelta = 1e9; v.keepBest = true
        let stopped = try model()
        let r = try trainer.train(model: stopped, dataset: data, workDirectory: w1, validation: (v, Self.heldOut()))
        XCTAssertEqual(r.metrics.count, 3)
        XCTAssertEqual(r.validations.map(\.step), [1, 2, 3])
        XCTAssertEqual(r.keptStep, 1)
        XCTAssertEqual(r.stopReason, .earlyStopping(step: 3, passes: 2))
        XCTAssertEqual(r.stopReason.text, "stopped early at step 3: eval loss did not improve in 2 validation passes")
        // The model after one step of the same run (interrupted right after it).
        let oneStep = try model()
        var calls = 0
        XCTAssertThrowsError(try trainer.train(model: oneStep, dataset: data, workDirectory: w2, isInterrupted: { calls += 1; return calls > 1 }))
        XCTAssertEqual(try ResumeTests.adapterBytes(stopped), try ResumeTests.adapterBytes(oneStep))
        // keep: last with the same stop holds step 3's adapter instead.
        v.keepBest = false
        let last = try model()
        try? FileManager.default.removeItem(at: w1)
        let rl = try trainer.train(model: last, dataset: data, workDirectory: w1, validation: (v, Self.heldOut()))
        XCTAssertEqual(rl.keptStep, 3)
        XCTAssertNotEqual(try ResumeTests.adapterBytes(last), try ResumeTests.adapterBytes(stopped))
    }

    /// Interrupted at every step, a resumed run ends exactly as the uninterrupted one: the same
    /// rows, stop, kept step and kept adapter (best-so-far and patience replayed from the checkpoint,
    /// the best adapter read from it).
    func testResumeKeepsEarlyStoppingStateExact() throws {
        let data = ResumeTests.makeData(), trainer = Trainer(ResumeTests.options())
        var v = ValidationOptions(); v.every = 1; v.patience = 2; v.minDelta = 0.002; v.keepBest = true
        let w1 = try makeTemporaryDirectory("straight"), w2 = try makeTemporaryDirectory("resumed")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        let straight = try model()
        let r1 = try trainer.train(model: straight, dataset: data, workDirectory: w1, validation: (v, Self.heldOut()))
        for stopAt in 1..<r1.metrics.count {
            try? FileManager.default.removeItem(at: w2)
            var calls = 0
            XCTAssertThrowsError(try trainer.train(model: try model(), dataset: data, workDirectory: w2, validation: (v, Self.heldOut()),
                                                   isInterrupted: { calls += 1; return calls > stopAt }))
            let resumed = try model()
            let r2 = try trainer.train(model: resumed, dataset: data, workDirectory: w2, validation: (v, Self.heldOut()))
            XCTAssertEqual(r2.resumedFromStep, stopAt)
            XCTAssertEqual(r2.metricsJSONL, r1.metricsJSONL, "interrupted after step \(stopAt)")
            XCTAssertEqual(r2.keptStep, r1.keptStep)
            XCTAssertEqual(r2.stopReason, r1.stopReason)
            XCTAssertEqual(try ResumeTests.adapterBytes(resumed), try ResumeTests.adapterBytes(straight), "interrupted after step \(stopAt)")
        }
        // A damaged best adapter makes its checkpoint fail verification like any other file.
        let newest = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: w1.path).filter { $0.hasPrefix("checkpoint-") }.sorted().last)
        let best = w1.appendingPathComponent(newest).appendingPathComponent(CheckpointStore.bestFile)
        var bytes = [UInt8](try Data(contentsOf: best))
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: best)
        var lines: [String] = []
        _ = try trainer.train(model: try model(), dataset: data, workDirectory: w1, validation: (v, Self.heldOut()), log: { lines.append($0) })
        XCTAssertTrue(lines.contains { $0.hasPrefix("warning: checkpoint at step \(newest.dropFirst("checkpoint-".count)) does not verify (best_adapters.safetensors has ") },
                      "\(lines)")
    }

    /// Best, patience counter and stop, on hand-made losses.
    func testEarlyStoppingRule() {
        func row(_ step: Int, _ loss: Double) -> ValidationMetrics {
            ValidationMetrics(step: step, loss: loss, perplexity: Foundation.exp(loss), tokenAccuracy: 0, tokens: 1)
        }
        var e = EarlyStopping()
        let losses = [3.0, 2.5, 2.6, 2.4, 2.45, .nan, 2.36, 2.2]
        var best: [Bool] = [], counters: [Int] = []
        for (i, l) in losses.enumerated() {
            best.append(e.record(row(i + 1, l), minDelta: 0.05))
            counters.append(e.passesWithoutImprovement)
        }
        // 2.4 < 2.5 − 0.05 is an improvement; 2.36 is not (needs < 2.35); NaN never is.
        XCTAssertEqual(best, [true, true, false, true, false, false, false, true])
        XCTAssertEqual(counters, [0, 0, 1, 0, 1, 2, 3, 0])
        XCTAssertEqual(e.bestStep, 8)
        XCTAssertEqual(e.bestLoss, 2.2)
        XCTAssertEqual(EarlyStopping(replaying: losses.enumerated().map { row($0.offset + 1, $0.element) }, minDelta: 0.05), e)
        var f = EarlyStopping(replaying: losses.prefix(7).enumerated().map { row($0.offset + 1, $0.element) }, minDelta: 0.05)
        XCTAssertTrue(f.shouldStop(patience: 3))
        XCTAssertFalse(f.shouldStop(patience: 4))
        XCTAssertFalse(f.shouldStop(patience: nil))
        XCTAssertTrue(f.record(row(9, 1.0), minDelta: 0.05))
        XCTAssertFalse(f.shouldStop(patience: 1))
    }

    /// The split is a pure function of (count, fraction, seed), on its own stream.
    func testEvaluationSplitIsSeededAndBounded() {
        let held = EvaluationSplit.heldOut(count: 20, fraction: 0.25, seed: 0)
        XCTAssertEqual(held, [1, 2, 5, 6, 13])  // pinned: the stream "eval-split" of seed 0
        XCTAssertEqual(held, EvaluationSplit.heldOut(count: 20, fraction: 0.25, seed: 0))
        XCTAssertNotEqual(held, EvaluationSplit.heldOut(count: 20, fraction: 0.25, seed: 1))
        XCTAssertEqual(held, held.sorted())
        XCTAssertEqual(EvaluationSplit.heldOut(count: 20, fraction: 0.001, seed: 0).count, 1, "at least one held out")
        XCTAssertEqual(EvaluationSplit.heldOut(count: 20, fraction: 0.999, seed: 0).count, 19, "at least one kept for training")
        XCTAssertEqual(EvaluationSplit.heldOut(count: 1, fraction: 0.5, seed: 0), [])
        let data = ResumeTests.makeData()
        let parts = EvaluationSplit.split(data, fraction: 0.3, seed: 42)
        XCTAssertEqual(parts.eval.examples.count, 2)
        XCTAssertEqual(parts.train.examples.count + parts.eval.examples.count, data.examples.count)
        let heldIds = EvaluationSplit.heldOut(count: 7, fraction: 0.3, seed: 42).map { data.examples[$0] }
        XCTAssertEqual(parts.eval.examples, heldIds)
    }
}
