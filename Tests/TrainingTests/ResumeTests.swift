import XCTest
import Foundation
import TestSupport
import Model
import TensorIO
import Kernels
@testable import Training

final class ResumeTests: XCTestCase {
    func makeModel() throws -> LlamaModel {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 3)
        var o = LoRAOptions(); o.rank = 4; o.targets = .names(["q_proj", "o_proj", "down_proj"])
        try LoRAAttacher.attach(to: model, options: o, seed: 5)
        return model
    }

    /// The toy data, options and adapter bytes shared with LoRADropoutTests' resume test.
    static func makeData() -> TrainingDataset {
        var rng = RandomStream(seed: 11, stream: "test-data")
        let examples: [TokenizedExample] = (0..<7).map { i in
            let n = 6 + i % 4
            let ids = (0..<n).map { _ in Int32(1 + rng.nextInt(below: 63)) }
            let mask = (0..<n).map { $0 >= n / 2 ? Float(1) : 0 }
            return TokenizedExample(ids: ids, lossMask: mask)
        }
        return TrainingDataset(examples: examples, padId: 0)
    }

    static func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 3; o.batchSize = 2; o.gradAccum = 2; o.learningRate = 1e-2; o.schedule = .cosine(warmupSteps: 1)
        o.checkpointEvery = 1; o.shuffle = true; o.seed = 42; o.logEvery = 0
        return o
    }

    static func adapterBytes(_ model: LlamaModel) throws -> Data {
        let dir = try makeTemporaryDirectory("adapter"); defer { try? FileManager.default.removeItem(at: dir) }
        try PEFTAdapter.save(model, to: dir, baseModelNameOrPath: "tiny")
        return try Data(contentsOf: dir.appendingPathComponent("adapter_model.safetensors"))
    }

    /// Interrupt after a few steps, resume with a fresh process-like state (new model, same init),
    /// and compare adapter bytes and metrics.jsonl with an uninterrupted run.
    func testResumeIsByteIdentical() throws {
        let data = Self.makeData()
        let trainer = Trainer(Self.options())
        XCTAssertEqual(trainer.totalSteps(data), 6)   // 4 micro-batches of 2 → 2 steps per epoch
        let w1 = try makeTemporaryDirectory("w1"), w2 = try makeTemporaryDirectory("w2")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        let straight = try makeModel()
        let r1 = try trainer.train(model: straight, dataset: data, workDirectory: w1)
        XCTAssertEqual(r1.metrics.count, 6)
        XCTAssertTrue(r1.metrics.allSatisfy { $0.loss.isFinite && $0.loss > 0 })

        for stopAt in [1, 3] {
            try? FileManager.default.removeItem(at: w2)
            var calls = 0
            let interrupted = try makeModel()
            XCTAssertThrowsError(try trainer.train(model: interrupted, dataset: data, workDirectory: w2, isInterrupted: {
                calls += 1; return calls > stopAt })) { error in
                XCTAssertEqual(error as? TrainingError, .interrupted(step: stopAt))
            }
            let resumedModel = try makeModel()
            let r2 = try trainer.train(model: resumedModel, dataset: data, workDirectory: w2)
            XCTAssertEqual(r2.resumedFromStep, stopAt)
            XCTAssertEqual(r2.metricsJSONL, r1.metricsJSONL)
            XCTAssertEqual(try Self.adapterBytes(resumedModel), try Self.adapterBytes(straight))
        }
        // artifacts
        let out = try makeTemporaryDirectory("art"); defer { try? FileManager.default.removeItem(at: out) }
        try r1.writeArtifacts(to: out)
        let svg = try String(contentsOf: out.appendingPathComponent("loss.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains(">optimizer step</text>") && svg.contains(">loss</text>") && svg.contains(">learning rate</text>"))
        XCTAssertEqual(LossPlot.svg(r1.metrics), svg)
        let first = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(), ["loss.svg", "metrics.jsonl"],
                       "only deterministic files in the artifact")
        XCTAssertEqual(r1.timingJSONL.split(separator: "\n").count, 6)
        XCTAssertTrue(r1.timingJSONL.hasPrefix("{\"step\":1,\"seconds\":"), r1.timingJSONL)
        XCTAssertTrue(first.hasPrefix("{\"step\":1,\"epoch\":1,\"loss\":"), String(first))
    }

    /// Issue 11 §2: a checkpoint that does not match its manifest (a flipped byte, an edited step)
    /// is discarded with a warning; training resumes from the previous one (two are kept) and still
    /// ends byte-identical; with no good checkpoint it starts over.
    func testDamagedCheckpointFallsBackToThePreviousOne() throws {
        let data = Self.makeData()
        let trainer = Trainer(Self.options())
        let w1 = try makeTemporaryDirectory("w1"), w2 = try makeTemporaryDirectory("w2")
        defer { try? FileManager.default.removeItem(at: w1); try? FileManager.default.removeItem(at: w2) }
        let straight = try makeModel()
        let r1 = try trainer.train(model: straight, dataset: data, workDirectory: w1)
        var calls = 0
        XCTAssertThrowsError(try trainer.train(model: try makeModel(), dataset: data, workDirectory: w2, isInterrupted: {
            calls += 1; return calls > 3 }))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: w2.path).filter { $0.hasPrefix("checkpoint-") }.sorted(),
                       ["checkpoint-2", "checkpoint-3"])
        // Flip one byte of the newest adapters (same size: only the checksum can tell).
        let adapters = w2.appendingPathComponent("checkpoint-3/adapters.safetensors")
        var bytes = [UInt8](try Data(contentsOf: adapters))
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: adapters)
        var lines: [String] = []
        let resumed = try makeModel()
        let r2 = try trainer.train(model: resumed, dataset: data, workDirectory: w2, log: { lines.append($0) })
        XCTAssertEqual(r2.resumedFromStep, 2)
        XCTAssertEqual(lines.filter { $0.hasPrefix("warning") }.count, 1, "\(lines)")
        let warning = try XCTUnwrap(lines.first { $0.hasPrefix("warning") })
        XCTAssertTrue(warning.hasPrefix("warning: checkpoint at step 3 does not verify (adapters.safetensors has \(bytes.count) bytes, checksum "), warning)
        XCTAssertTrue(warning.hasSuffix("; discarded, using the previous one"), warning)
        XCTAssertEqual(r2.metricsJSONL, r1.metricsJSONL)
        XCTAssertEqual(try Self.adapterBytes(resumed), try Self.adapterBytes(straight))

        // Both damaged: start from the beginning, same result.
        try? FileManager.default.removeItem(at: w2)
        calls = 0
        XCTAssertThrowsError(try trainer.train(model: try makeModel(), dataset: data, workDirectory: w2, isInterrupted: {
            calls += 1; return calls > 2 }))
        for step in [1, 2] {
            let state = w2.appendingPathComponent("checkpoint-\(step)/state.json")
            let text = try String(contentsOf: state, encoding: .utf8)
            try text.replacingOccurrences(of: "\"step\":\(step)", with: "\"step\":9").write(to: state, atomically: true, encoding: .utf8)
        }
        lines = []
        let fresh = try makeModel()
        let r3 = try trainer.train(model: fresh, dataset: data, workDirectory: w2, log: { lines.append($0) })
        XCTAssertNil(r3.resumedFromStep)
        XCTAssertEqual(lines.filter { $0.hasPrefix("warning") }.count, 2, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("warning: checkpoint at step 1 does not verify (state.json has ") && $0.hasSuffix("; discarded, training starts from the beginning") }, "\(lines)")
        XCTAssertEqual(try Self.adapterBytes(fresh), try Self.adapterBytes(straight))
    }

    /// With grad_accum the loss is normalised by all micro-batches' supervised tokens together:
    /// one step over batch 4 equals one step over 2 micro-batches of 2.
    /// The manifest check read from a file in pieces equals the one of its bytes: empty, one piece,
    /// several pieces (FNV-1a 64 of "a" is af63dc4c8601ec8c).
    func testFileCheckOfAFileEqualsTheCheckOfItsBytes() throws {
        let dir = try makeTemporaryDirectory("filecheck"); defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(CheckpointStore.FileCheck(bytes: Array("a".utf8)).fnv1a64, "af63dc4c8601ec8c")
        for n in [0, 1, 3 << 19] {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let url = dir.appendingPathComponent("f\(n)")
            try Data(bytes).write(to: url)
            XCTAssertEqual(CheckpointStore.FileCheck(file: url), CheckpointStore.FileCheck(bytes: bytes), "\(n) bytes")
        }
        XCTAssertNil(CheckpointStore.FileCheck(file: dir.appendingPathComponent("missing")))
    }

    func testGradAccumEqualsLargeBatch() throws {
        let data = TrainingDataset(examples: Array(Self.makeData().examples.prefix(4)), padId: 0)
        var a = Self.options(); a.epochs = 1; a.shuffle = false; a.batchSize = 4; a.gradAccum = 1; a.maxGradNorm = nil
        var b = a; b.batchSize = 2; b.gradAccum = 2
        let ma = try makeModel(), mb = try makeModel()
        let wa = try makeTemporaryDirectory("ga"), wb = try makeTemporaryDirectory("gb")
        defer { try? FileManager.default.removeItem(at: wa); try? FileManager.default.removeItem(at: wb) }
        let ra = try Trainer(a).train(model: ma, dataset: data, workDirectory: wa)
        let rb = try Trainer(b).train(model: mb, dataset: data, workDirectory: wb)
        XCTAssertEqual(ra.metrics.count, 1); XCTAssertEqual(rb.metrics.count, 1)
        XCTAssertEqual(ra.metrics[0].loss, rb.metrics[0].loss, accuracy: 1e-6 * ra.metrics[0].loss)
        XCTAssertEqual(ra.metrics[0].gradNorm, rb.metrics[0].gradNorm, accuracy: 1e-5 * ra.metrics[0].gradNorm)
        XCTAssertEqual(ra.metrics[0].supervisedTokens, rb.metrics[0].supervisedTokens)
    }
}
