import XCTest
import Foundation
import TestSupport
import Kernels
import Model
import TensorIO
@testable import Training

/// LoRA dropout (PEFT: result += lora_B(lora_A(dropout(x))) · scaling, torch inverted dropout),
/// training-only, with masks regenerated from (seed, module, step, micro-batch, element).
final class LoRADropoutTests: XCTestCase {
    /// A dense (out, in) layer named `name` with a rank-r adapter whose A and B are both non-zero.
    func makeLayer(name: String = "layers.0.attention.wq", inFeatures I: Int, outFeatures O: Int, rank r: Int,
                   dropout: Float) -> LinearModule {
        var rng = RandomStream(seed: 7, stream: "layer")
        let w = (0..<(O * I)).map { _ in Float(rng.nextNormal() * 0.3) }
        let m = LinearModule(name: name, inFeatures: I, outFeatures: O, weight: .dense(w))
        let a = (0..<(r * I)).map { _ in Float(rng.nextNormal() * 0.3) }
        let b = (0..<(O * r)).map { _ in Float(rng.nextNormal() * 0.3) }
        m.adapter = LoRAAdapter(rank: r, inFeatures: I, outFeatures: O, scale: 1.5, dropout: dropout, a: a, b: b)
        return m
    }

    /// Inputs in [0.5, 1.5): never 0, so a dropped element is told from a kept one.
    func makeInput(_ count: Int, stream: String = "x") -> [Float] {
        var rng = RandomStream(seed: 3, stream: stream)
        return (0..<count).map { _ in Float(0.5 + rng.nextUniform()) }
    }

    func forward(_ m: LinearModule, _ x: [Float], rows N: Int) -> [Float] {
        var y = [Float](repeating: 0, count: N * m.outFeatures)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { m.forward(input: xp.baseAddress!, output: $0.baseAddress!, rows: N) } }
        return y
    }

    func testMaskRateAndKeptValuesAreExact() throws {
        let N = 256, I = 64, p: Float = 0.25
        let m = makeLayer(inFeatures: I, outFeatures: 8, rank: 4, dropout: p)
        m.adapter!.dropoutContext = LoRADropoutContext(seed: 42, step: 3, micro: 1)
        let x = makeInput(N * I)
        let xd = m.loraInput(x, rows: N)
        XCTAssertEqual(xd.count, N * I)
        var dropped = 0
        for e in 0..<(N * I) {
            if xd[e] == 0 { dropped += 1 } else { XCTAssertEqual(xd[e], x[e] / (1 - p), "element \(e)") }
        }
        // Binomial(16384, 0.25): mean 4096, σ ≈ 55.4; 5σ ≈ 277.
        XCTAssertEqual(Double(dropped), 0.25 * Double(N * I), accuracy: 5 * (Double(N * I) * 0.25 * 0.75).squareRoot())
        XCTAssertNotEqual(dropped, 0)
        // Element e's decision depends on e only: a shorter input (other chunking) gets the prefix.
        let half = m.loraInput(Array(x[0..<(N / 2 * I)]), rows: N / 2)
        XCTAssertEqual(half, Array(xd[0..<(N / 2 * I)]))
    }

    func testMaskIsAFunctionOfSeedModuleStepAndMicroBatch() throws {
        let N = 8, I = 32
        let x = makeInput(N * I)
        func mask(module: String = "layers.0.attention.wq", seed: UInt64 = 42, step: Int = 3, micro: Int = 0) -> [Bool] {
            let m = makeLayer(name: module, inFeatures: I, outFeatures: 4, rank: 2, dropout: 0.5)
            m.adapter!.dropoutContext = LoRADropoutContext(seed: seed, step: step, micro: micro)
            return m.loraInput(x, rows: N).map { $0 == 0 }
        }
        let base = mask()
        XCTAssertEqual(mask(), base)
        XCTAssertNotEqual(mask(step: 4), base)
        XCTAssertNotEqual(mask(micro: 1), base)
        XCTAssertNotEqual(mask(seed: 43), base)
        XCTAssertNotEqual(mask(module: "layers.0.attention.wo"), base)
    }

    /// Evaluation (no context) and p = 0 are the undropped layer, bit for bit.
    func testNoContextOrZeroRateIsTheUndroppedForward() throws {
        let N = 5, I = 12, O = 7
        let x = makeInput(N * I)
        let plain = makeLayer(inFeatures: I, outFeatures: O, rank: 3, dropout: 0)
        let reference = forward(plain, x, rows: N)
        let evalLayer = makeLayer(inFeatures: I, outFeatures: O, rank: 3, dropout: 0.3)
        XCTAssertEqual(forward(evalLayer, x, rows: N), reference)
        XCTAssertEqual(evalLayer.loraInput(x, rows: N), x)
        plain.adapter!.dropoutContext = LoRADropoutContext(seed: 1, step: 1, micro: 0)
        XCTAssertEqual(forward(plain, x, rows: N), reference)
        // and in training the dropout does change the output
        evalLayer.adapter!.dropoutContext = LoRADropoutContext(seed: 1, step: 1, micro: 0)
        XCTAssertNotEqual(forward(evalLayer, x, rows: N), reference)
    }

    /// Central differences of L = Σ w ⊙ y (y linear in A, B and x for a fixed mask) against the
    /// backward's gradA, gradB and gradInput, with dropout on and the same mask in every evaluation.
    func testFiniteDifferenceGradientsWithDropout() throws {
        let N = 4, I = 6, O = 5, r = 3, p: Float = 0.3
        let m = makeLayer(inFeatures: I, outFeatures: O, rank: r, dropout: p)
        let ad = m.adapter!
        ad.dropoutContext = LoRADropoutContext(seed: 9, step: 2, micro: 0)
        var x = makeInput(N * I)
        let w = makeInput(N * O, stream: "w").map { $0 - 1 }   // dL/dy
        XCTAssertTrue(m.loraInput(x, rows: N).contains(0), "the mask must drop something for the test to mean anything")
        func loss() -> Double { zip(forward(m, x, rows: N), w).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
        ad.zeroGradients()
        var gradInput = [Float](repeating: 0, count: N * I)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in gradInput.withUnsafeMutableBufferPointer {
            m.backward(input: xp.baseAddress!, gradOutput: wp.baseAddress!, gradInput: $0.baseAddress!, rows: N) } } }
        let eps: Float = 1e-2
        func check(_ name: String, _ analytic: [Float], _ get: () -> [Float], _ set: ([Float]) -> Void) {
            let saved = get()
            for i in saved.indices {
                var v = saved; v[i] = saved[i] + eps; set(v); let up = loss()
                v[i] = saved[i] - eps; set(v); let down = loss()
                set(saved)
                let numeric = (up - down) / Double(2 * eps)
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "\(name)[\(i)]")
            }
        }
        check("A", ad.gradA, { ad.a }, { ad.a = $0 })
        check("B", ad.gradB, { ad.b }, { ad.b = $0 })
        check("x", gradInput, { x }, { x = $0 })
        // The dropout changed the gradients: without a context they differ.
        let gradA = ad.gradA
        ad.dropoutContext = nil; ad.zeroGradients()
        var g0 = [Float](repeating: 0, count: N * I)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in g0.withUnsafeMutableBufferPointer {
            m.backward(input: xp.baseAddress!, gradOutput: wp.baseAddress!, gradInput: $0.baseAddress!, rows: N) } } }
        XCTAssertNotEqual(ad.gradA, gradA)
        XCTAssertNotEqual(g0, gradInput)
    }

    func testAttacherBoundsAndLogsDropout() throws {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 1)
        var o = LoRAOptions(); o.rank = 4
        o.dropout = -0.1
        XCTAssertThrowsError(try LoRAAttacher.attach(to: model, options: o, seed: 1)) {
            XCTAssertEqual($0.localizedDescription, "lora dropout -0.1 is out of range; use a probability with 0 <= dropout < 1")
        }
        o.dropout = 1
        XCTAssertThrowsError(try LoRAAttacher.attach(to: model, options: o, seed: 1)) {
            XCTAssertEqual($0.localizedDescription, "lora dropout 1.0 is out of range; use a probability with 0 <= dropout < 1")
        }
        o.dropout = 0.1
        var lines: [String] = []
        try LoRAAttacher.attach(to: model, options: o, seed: 1) { lines.append($0) }
        XCTAssertEqual(lines.first, "adapter on model.layers.0.self_attn.q_proj (16x16, rank 4, dropout 0.1)")
        XCTAssertEqual(model.layers[0].q.adapter?.dropout, 0.1)
        XCTAssertNil(model.layers[0].q.adapter?.dropoutContext)

        // PEFT round trip: lora_dropout written as 0.1 and kept by load (no longer ignored).
        let dir = try makeTemporaryDirectory("dropout-adapter"); defer { try? FileManager.default.removeItem(at: dir) }
        try PEFTAdapter.save(model, to: dir, baseModelNameOrPath: "tiny")
        let config = try String(contentsOf: dir.appendingPathComponent(PEFTAdapter.configFile), encoding: .utf8)
        XCTAssertTrue(config.contains("  \"lora_dropout\": 0.1,\n"), config)
        XCTAssertEqual(try PEFTAdapter.readConfig(dir).dropout, 0.1)
        let loaded = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 1)
        var loadLines: [String] = []
        try PEFTAdapter.load(from: dir, into: loaded) { loadLines.append($0) }
        XCTAssertEqual(loadLines.first, "adapter on model.layers.0.self_attn.q_proj (16x16, rank 4, dropout 0.1)")
        XCTAssertEqual(loaded.layers[1].o.adapter?.dropout, 0.1)
        // attach_adapters init {from: DIR} with its own dropout overrides the file's
        let overridden = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 1)
        var f = LoRAOptions(); f.initialization = .from(dir); f.dropout = 0.25
        try LoRAAttacher.attach(to: overridden, options: f, seed: 1)
        XCTAssertEqual(overridden.layers[0].q.adapter?.dropout, 0.25)
        let dir2 = try makeTemporaryDirectory("dropout-adapter2"); defer { try? FileManager.default.removeItem(at: dir2) }
        try PEFTAdapter.save(overridden, to: dir2, baseModelNameOrPath: "tiny")
        XCTAssertEqual(try PEFTAdapter.readConfig(dir2).dropout, 0.25)
        // ... 0 included (turns the file's dropout off); not given keeps the file's.
        for (given, expected) in [(0.0, Float(0)), (nil, 0.1)] as [(Double?, Float)] {
            let m = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 1)
            var g = LoRAOptions(); g.initialization = .from(dir); g.dropout = given
            try LoRAAttacher.attach(to: m, options: g, seed: 1)
            XCTAssertEqual(m.layers[0].q.adapter?.dropout, expected, "dropout \(String(describing: given))")
        }
    }

    // MARK: Trainer (the data, options and adapter bytes of ResumeTests)

    func makeModel(dropout: Double, checkpointing: Bool = false) throws -> LlamaModel {
        let model = LlamaModel.initialized(config: LoRATests.tinyConfig(), layout: .huggingFace, seed: 3)
        model.gradientCheckpointing = checkpointing
        var o = LoRAOptions(); o.rank = 4; o.targets = .names(["q_proj", "o_proj", "down_proj"]); o.dropout = dropout
        try LoRAAttacher.attach(to: model, options: o, seed: 5)
        return model
    }

    /// Interrupted at step k and resumed in a fresh model: adapter bytes and metrics.jsonl equal
    /// an uninterrupted run's, with dropout 0.1 (the masks are keyed by step, not by history).
    func testTrainerResumeWithDropoutIsByteIdentical() throws {
        let data = ResumeTests.makeData()
        let trainer = Trainer(ResumeTests.options())
        let w1 = try makeTemporaryDirectory("d1"), w2 = try makeTemporaryDirectory("d2"), w0 = try makeTemporaryDirectory("d0")
        defer { for w in [w0, w1, w2] { try? FileManager.default.removeItem(at: w) } }
        let straight = try makeModel(dropout: 0.1)
        let r1 = try trainer.train(model: straight, dataset: data, workDirectory: w1)
        XCTAssertEqual(r1.metrics.count, 6)
        XCTAssertTrue(LoRAAttacher.adapted(straight).allSatisfy { $0.adapter?.dropoutContext == nil }, "eval after training must not drop")
        // dropout really acts: the same run without dropout has other losses
        let r0 = try trainer.train(model: try makeModel(dropout: 0), dataset: data, workDirectory: w0)
        XCTAssertEqual(r0.metrics.count, 6)
        XCTAssertNotEqual(r0.metrics.map { $0.loss }, r1.metrics.map { $0.loss })
        for stopAt in [1, 4] {
            try? FileManager.default.removeItem(at: w2)
            var calls = 0
            XCTAssertThrowsError(try trainer.train(model: try makeModel(dropout: 0.1), dataset: data, workDirectory: w2, isInterrupted: {
                calls += 1; return calls > stopAt })) { error in
                XCTAssertEqual(error as? TrainingError, .interrupted(step: stopAt))
            }
            let resumedModel = try makeModel(dropout: 0.1)
            let r2 = try trainer.train(model: resumedModel, dataset: data, workDirectory: w2)
            XCTAssertEqual(r2.resumedFromStep, stopAt)
            XCTAssertEqual(r2.metricsJSONL, r1.metricsJSONL)
            XCTAssertEqual(try ResumeTests.adapterBytes(resumedModel), try ResumeTests.adapterBytes(straight))
        }
    }

    /// Gradient checkpointing recomputes each layer's forward in backward: the regenerated masks
    /// are the same, so the trajectory equals the stored-activation one.
    func testGradientCheckpointingSeesTheSameMasks() throws {
        let data = ResumeTests.makeData()
        var options = ResumeTests.options(); options.epochs = 1
        let trainer = Trainer(options)
        let w1 = try makeTemporaryDirectory("g1"), w2 = try makeTemporaryDirectory("g2")
        defer { for w in [w1, w2] { try? FileManager.default.removeItem(at: w) } }
        let stored = try makeModel(dropout: 0.2, checkpointing: false)
        let recomputed = try makeModel(dropout: 0.2, checkpointing: true)
        let r1 = try trainer.train(model: stored, dataset: data, workDirectory: w1)
        let r2 = try trainer.train(model: recomputed, dataset: data, workDirectory: w2)
        XCTAssertEqual(r1.metrics.map { $0.loss }, r2.metrics.map { $0.loss })
        XCTAssertEqual(r1.metrics.map { $0.gradNorm }, r2.metrics.map { $0.gradNorm })
        XCTAssertEqual(LoRAAttacher.adapted(stored).map { $0.adapter!.a }, LoRAAttacher.adapted(recomputed).map { $0.adapter!.a })
    }
}
