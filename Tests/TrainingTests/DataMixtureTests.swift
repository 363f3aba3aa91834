import XCTest
import Foundation
import TestSupport
import Kernels
import Model
@testable import Training

/// Issue 16 §3: several training files mixed by weight.
final class DataMixtureTests: XCTestCase {
    typealias Source = DataMixture.Source

    /// Examples whose first id names their file and position, so orders can be read back.
    static func file(_ tag: Int32, count: Int) -> TrainingDataset {
        TrainingDataset(examples: (0..<count).map { i in TokenizedExample(ids: [tag, Int32(i), 7], lossMask: [0, 1, 1]) },
                        padId: 0, source: "file\(tag).jsonl")
    }

    func testSlotsAreTheWeightedShareOfAllExamplesByLargestRemainder() {
        // 94 + 10 examples, weights 1 : 3 -> 26 and 78 of 104 slots.
        XCTAssertEqual(DataMixture(sources: [Source(name: "a", range: 0..<94, weight: 1), Source(name: "b", range: 94..<104, weight: 3)]).slotsPerEpoch,
                       [26, 78])
        // 10 slots in thirds: 3.33 each, the spare slot to the first file (equal remainders).
        XCTAssertEqual(DataMixture(sources: [Source(name: "a", range: 0..<5, weight: 1), Source(name: "b", range: 5..<8, weight: 1),
                                             Source(name: "c", range: 8..<10, weight: 1)]).slotsPerEpoch, [4, 3, 3])
        // A file emptied by eval_split takes nothing, whatever its weight.
        XCTAssertEqual(DataMixture(sources: [Source(name: "a", range: 0..<6, weight: 1), Source(name: "b", range: 6..<6, weight: 5)]).slotsPerEpoch,
                       [6, 0])
    }

    /// Without shuffle each file is walked in order, continuing across epochs and starting a new
    /// pass when it runs out, and the files are interleaved evenly.
    func testUnshuffledOrderInterleavesEvenlyAndContinuesAcrossEpochs() {
        let mix = DataMixture(sources: [Source(name: "a", range: 0..<4, weight: 1), Source(name: "b", range: 4..<6, weight: 1)])
        XCTAssertEqual(mix.order(epoch: 0, shuffle: false, seed: 0), [0, 4, 1, 5, 2, 4])
        XCTAssertEqual(mix.order(epoch: 1, shuffle: false, seed: 0), [3, 5, 0, 4, 1, 5])
        // Weights 1 : 2 of 6 slots: a's 2 at the quarter points, b's 4 at the eighths (b starts a second pass).
        let skewed = DataMixture(sources: [Source(name: "a", range: 0..<3, weight: 1), Source(name: "b", range: 3..<6, weight: 2)])
        XCTAssertEqual(skewed.order(epoch: 0, shuffle: false, seed: 0), [3, 0, 4, 5, 1, 3])
    }

    /// Shuffled: a pure function of (seed, epoch); each epoch holds exactly each file's slots; a
    /// repeated small file goes through whole permutations before any example comes back.
    func testShuffledOrderIsSeededExactInCountsAndCyclesWholePasses() {
        let mix = DataMixture(sources: [Source(name: "a", range: 0..<20, weight: 1), Source(name: "b", range: 20..<25, weight: 4)])
        XCTAssertEqual(mix.slotsPerEpoch, [5, 20])
        var drawnFromB: [Int] = []
        for epoch in 0..<3 {
            let order = mix.order(epoch: epoch, shuffle: true, seed: 7)
            XCTAssertEqual(order, mix.order(epoch: epoch, shuffle: true, seed: 7))
            XCTAssertEqual(order.count, 25)
            XCTAssertEqual(order.filter { $0 < 20 }.count, 5)
            drawnFromB += order.filter { $0 >= 20 }
        }
        // 60 draws from b's 5 examples: 12 passes, each a permutation of 20..<25.
        for pass in 0..<12 { XCTAssertEqual(Set(drawnFromB[(pass * 5)..<(pass * 5 + 5)]), Set(20..<25), "pass \(pass)") }
        XCTAssertNotEqual(drawnFromB[0..<5], drawnFromB[5..<10])  // passes are reshuffled
        // File a (20 examples, 5 per epoch): four epochs walk one permutation of it.
        let fromA = (0..<4).flatMap { mix.order(epoch: $0, shuffle: true, seed: 7).filter { $0 < 20 } }
        XCTAssertEqual(fromA.sorted(), Array(0..<20))
        XCTAssertNotEqual(mix.order(epoch: 0, shuffle: true, seed: 7), mix.order(epoch: 0, shuffle: true, seed: 8))
        // Golden: the stream names are part of the format (a change would re-order every mixed run).
        XCTAssertEqual(DataMixture(sources: [Source(name: "a", range: 0..<3, weight: 1), Source(name: "b", range: 3..<5, weight: 1)])
                        .order(epoch: 0, shuffle: true, seed: 0), Self.goldenShuffled)
    }
    static let goldenShuffled = [3, 4, 0, 2, 1]

    func testMixingKeepsFirstMaxExamplesAndSplitShrinksRanges() throws {
        let mixed = TrainingDataset.mixing([(Self.file(1, count: 6), 1, nil), (Self.file(2, count: 8), 2, 3)])
        XCTAssertEqual(mixed.examples.map { $0.ids[0] }, [1, 1, 1, 1, 1, 1, 2, 2, 2])
        XCTAssertEqual(mixed.examples.suffix(3).map { $0.ids[1] }, [0, 1, 2])  // the file's first 3
        XCTAssertEqual(mixed.mixture?.sources.map(\.range), [0..<6, 6..<9])
        XCTAssertEqual(mixed.audit.examples, 9)
        XCTAssertEqual(mixed.audit.supervisedTokens, 18)
        XCTAssertEqual(mixed.source, "file1.jsonl + file2.jsonl")
        XCTAssertEqual(mixed.mixtureLines(labels: ["data[0] a.jsonl", "data[1] b.jsonl"]), [
            "  data[0] a.jsonl: 6 examples, 12 supervised tokens; weight 1 -> 3 of 9 examples per epoch (33.3%, 0.50 passes over the file)",
            "  data[1] b.jsonl: 3 examples, 6 supervised tokens; weight 2 -> 6 of 9 examples per epoch (66.7%, 2.00 passes over the file)",
        ])
        // Holding out examples 0, 5 and 7 leaves a with 4 (0..<4) and b with 2 (4..<6).
        XCTAssertEqual(mixed.mixture?.removing([0, 5, 7]).sources.map(\.range), [0..<4, 4..<6])
        let parts = EvaluationSplit.split(mixed, fraction: 0.3, seed: 0)
        let held = Set(EvaluationSplit.heldOut(count: 9, fraction: 0.3, seed: 0))
        XCTAssertEqual(held.count, 3)
        XCTAssertEqual(parts.train.mixture, mixed.mixture?.removing(held))
        XCTAssertNil(parts.eval.mixture)
        // The trainer walks the mixture's order: 9 slots a epoch in batches of 2 -> 5 steps.
        var options = TrainingOptions(); options.batchSize = 2; options.epochs = 2
        let trainer = Trainer(options)
        XCTAssertEqual(trainer.totalSteps(mixed), 10)
        XCTAssertEqual(trainer.stepsOfEpoch(mixed, epoch: 1).flatMap { $0.flatMap { $0 } }, mixed.order(epoch: 1, shuffle: true, seed: 0))
    }

    /// A one-file dataset orders exactly as before the mixture existed (same stream, same draws).
    func testOneFileKeepsThePlainShuffle() {
        let plain = Self.file(1, count: 9)
        var rng = RandomStream(seed: 3, stream: "shuffle/epoch-2")
        var expected = Array(0..<9)
        for i in stride(from: 8, to: 0, by: -1) { expected.swapAt(i, rng.nextInt(below: i + 1)) }
        XCTAssertEqual(plain.order(epoch: 2, shuffle: true, seed: 3), expected)
    }

    func model() throws -> LlamaModel {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 3)
        var o = LoRAOptions(); o.rank = 4; o.targets = .names(["q_proj", "o_proj", "down_proj"])
        try LoRAAttacher.attach(to: model, options: o, seed: 5)
        return model
    }

    /// Training on a mix interrupted after any step and resumed ends byte-identical to a straight
    /// run (the mixed order needs no state), and differs from training on the plain concatenation.
    func testMixedTrainingResumesExactly() throws {
        let all = ResumeTests.makeData()
        let first = TrainingDataset(examples: Array(all.examples.prefix(5)), padId: 0, source: "a")
        let second = TrainingDataset(examples: Array(all.examples.suffix(2)), padId: 0, source: "b")
        let mixed = TrainingDataset.mixing([(first, 1, nil), (second, 3, nil)])
        XCTAssertEqual(mixed.mixture?.slotsPerEpoch, [2, 5])
        let trainer = Trainer(ResumeTests.options())
        let w1 = try makeTemporaryDirectory("mix-straight"), w2 = try makeTemporaryDirectory("mix-resumed"), w3 = try makeTemporaryDirectory("mix-plain")
        defer { for w in [w1, w2, w3] { try? FileManager.default.removeItem(at: w) } }
        let straight = try model()
        let r1 = try trainer.train(model: straight, dataset: mixed, workDirectory: w1)
        XCTAssertEqual(r1.totalSteps, 6)  // 7 slots, batches of 2 -> 4 micro-batches -> 2 steps an epoch, 3 epochs
        let plain = try model()
        _ = try trainer.train(model: plain, dataset: all, workDirectory: w3)
        XCTAssertNotEqual(try ResumeTests.adapterBytes(plain), try ResumeTests.adapterBytes(straight))
        for stopAt in [1, 3, 5] {
            try? FileManager.default.removeItem(at: w2)
            var calls = 0
            XCTAssertThrowsError(try trainer.train(model: try model(), dataset: mixed, workDirectory: w2,
                                                   isInterrupted: { calls += 1; return calls > stopAt }))
            let resumed = try model()
            let r2 = try trainer.train(model: resumed, dataset: mixed, workDirectory: w2)
            XCTAssertEqual(r2.resumedFromStep, stopAt)
            XCTAssertEqual(r2.metricsJSONL, r1.metricsJSONL, "interrupted after step \(stopAt)")
            XCTAssertEqual(try ResumeTests.adapterBytes(resumed), try ResumeTests.adapterBytes(straight), "interrupted after step \(stopAt)")
        }
    }
}
