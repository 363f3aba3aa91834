import XCTest
@testable import Model
import Kernels
import TestSupport
import TensorIO

final class BackwardTests: XCTestCase {
    static func tinyConfig(tied: Bool = false, modelType: String = "llama") -> ModelConfig {
        ModelConfig(modelType: modelType, vocabSize: 32, hiddenSize: 16, intermediateSize: 24, layers: 2, heads: 4, kvHeads: 2,
                    rmsNormEps: 1e-5, maxPositionEmbeddings: 64, tieWordEmbeddings: tied)
    }

    /// Random non-zero adapters so both A and B gradients are exercised.
    static func attachRandomAdapters(_ model: LlamaModel, names: [String], rank: Int = 3, seed: UInt64 = 7) {
        for m in model.linearModules where names.contains(where: { m.name.hasSuffix($0) }) {
            var rng = RandomStream(seed: seed, stream: m.name)
            let a = (0..<(rank * m.inFeatures)).map { _ in Float(rng.nextNormal() * 0.3) }
            let b = (0..<(m.outFeatures * rank)).map { _ in Float(rng.nextNormal() * 0.3) }
            m.adapter = LoRAAdapter(rank: rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures, scale: 1.5, a: a, b: b)
        }
    }

    func testLoRAGradientsMatchFiniteDifferencesDenseBase() {
        let model = LlamaModel.initialized(config: Self.tinyConfig(), layout: .huggingFace, seed: 11)
        // Larger weights than 0.02 so the loss is not flat.
        for m in model.linearModules { if case .dense(let w) = m.weight { m.weight = .dense(w.map { $0 * 15 }) } }
        Self.attachRandomAdapters(model, names: ["q_proj", "v_proj", "o_proj", "down_proj", "lm_head"])
        finiteDifferenceCheck(model)
    }

    func testLoRAGradientsMatchFiniteDifferencesMiniMindTied() {
        let model = LlamaModel.initialized(config: Self.tinyConfig(tied: true, modelType: "minimind"), layout: .miniMind, seed: 5)
        for m in model.linearModules where m !== model.head { if case .dense(let w) = m.weight { m.weight = .dense(w.map { $0 * 15 }) } }
        XCTAssertTrue(model.headTied)
        Self.attachRandomAdapters(model, names: ["attention.wq", "attention.wk", "feed_forward.w1", "feed_forward.w3"])
        finiteDifferenceCheck(model)
    }

    /// Qwen3: per-head q/k RMSNorm (non-unit weights) with an explicit head_dim (q_proj 16 -> 32):
    /// adapters below and on q/k get their gradients through the norms' backward, with and without
    /// gradient checkpointing.
    func testLoRAGradientsMatchFiniteDifferencesQwen3HeadNorms() {
        for checkpointed in [false, true] {
            let config = ModelConfig(modelType: "qwen3", vocabSize: 32, hiddenSize: 16, intermediateSize: 24, layers: 2, heads: 4, kvHeads: 2,
                                     headDim: 8, rmsNormEps: 1e-6, maxPositionEmbeddings: 64, tieWordEmbeddings: true)
            let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 13)
            for m in model.linearModules where m !== model.head { if case .dense(let w) = m.weight { m.weight = .dense(w.map { $0 * 15 }) } }
            var rng = RandomStream(seed: 2, stream: "norms")
            for layer in model.layers {
                layer.queryNorm = (0..<8).map { _ in Float(0.5 + rng.nextUniform()) }
                layer.keyNorm = (0..<8).map { _ in Float(0.5 + rng.nextUniform()) }
            }
            XCTAssertEqual(model.layers[0].q.outFeatures, 32)
            model.gradientCheckpointing = checkpointed
            Self.attachRandomAdapters(model, names: ["q_proj", "k_proj", "o_proj", "up_proj"])
            finiteDifferenceCheck(model)
        }
    }

    /// Step 1 of the PEFT golden run: loss and raw gradients of the LoRA parameters.
    func testGoldenLoRAStepOneLossAndGradients() throws {
        for kit in try Reference.kits() {
            let model = try referenceModel(kit, "tiny-llama")
            try checkStepOne(kit: kit, run: "lora_train", model: model)
        }
    }

}

final class CheckpointingTests: XCTestCase {
    /// Gradient checkpointing recomputes the same kernels: identical loss and gradients, bit for bit.
    func testCheckpointedBackwardIsBitIdentical() {
        func run(_ checkpointing: Bool) -> (Double, [[Float]]) {
            let model = LlamaModel.initialized(config: BackwardTests.tinyConfig(), layout: .huggingFace, seed: 11)
            for m in model.linearModules { if case .dense(let w) = m.weight { m.weight = .dense(w.map { $0 * 15 }) } }
            BackwardTests.attachRandomAdapters(model, names: ["q_proj", "o_proj", "up_proj"])
            model.gradientCheckpointing = checkpointing
            let tokens: [Int32] = [1, 4, 9, 16, 25, 3, 8, 2, 7, 7, 30, 31]
            let weights: [Float] = [0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]
            let loss = model.lossAndGradients(tokens: tokens, batch: 2, length: 6, lossWeights: weights, gradScale: 0.25)
            return (loss, model.linearModules.compactMap { $0.adapter }.flatMap { [$0.gradA, $0.gradB] })
        }
        let plain = run(false), checkpointed = run(true)
        XCTAssertEqual(plain.0, checkpointed.0)
        XCTAssertEqual(plain.1, checkpointed.1)
        XCTAssertEqual(plain.1.count, 12)
        XCTAssertTrue(plain.1.allSatisfy { g in g.contains { $0 != 0 } })
    }
}

/// Central finite differences on a sample of A and B entries of every adapter.
func finiteDifferenceCheck(_ model: LlamaModel, file: StaticString = #filePath, line: UInt = #line) {
    let B = 2, T = 7
    var rng = RandomStream(seed: 3, stream: "tokens")
    let tokens = (0..<(B * T)).map { _ in Int32(rng.nextInt(below: 32)) }
    var weights = [Float](repeating: 0, count: B * T)
    for i in 0..<(B * T) where i % T >= 2 { weights[i] = (i % 3 == 0) ? 0.5 : 1 }
    let lossFn: () -> Double = { model.lossAndGradients(tokens: tokens, batch: B, length: T, lossWeights: weights, gradScale: 0) }
    for m in model.linearModules { m.adapter?.zeroGradients() }
    _ = model.lossAndGradients(tokens: tokens, batch: B, length: T, lossWeights: weights, gradScale: 1)
    var checked = 0
    for m in model.linearModules {
        guard let ad = m.adapter else { continue }
        for which in 0..<2 {
            let count = which == 0 ? ad.a.count : ad.b.count
            for idx in stride(from: 0, to: count, by: max(1, count / 5)) {
                let h: Float = 1e-2
                func set(_ v: Float) { if which == 0 { ad.a[idx] = v } else { ad.b[idx] = v } }
                let orig = which == 0 ? ad.a[idx] : ad.b[idx]
                set(orig + h); let lp = lossFn()
                set(orig - h); let lm = lossFn()
                set(orig)
                let numeric = (lp - lm) / Double(2 * h)
                let analytic = Double(which == 0 ? ad.gradA[idx] : ad.gradB[idx])
                XCTAssertEqual(analytic, numeric, accuracy: 2e-3 + 2e-2 * abs(numeric),
                               "\(m.name) \(which == 0 ? "A" : "B")[\(idx)]", file: file, line: line)
                checked += 1
            }
        }
    }
    XCTAssertGreaterThan(checked, 20, file: file, line: line)
}

/// Step 1 of a golden run (`golden/<run>`): the loss to 1e-5 relative and the raw LoRA gradients to
/// 1e-5 of each tensor's largest entry (fp32 sums over ≤ 176 terms and 94 tokens, in another order).
func checkStepOne(kit: ReferenceKit, run: String, model: LlamaModel) throws {
    let params = try golden(kit, "golden/\(run)/lora_params.safetensors")
    let data = try golden(kit, "golden/\(run)/data.safetensors")
    for m in model.linearModules where m.name.hasSuffix("q_proj") || m.name.hasSuffix("o_proj") {
        let key = "base_model.model.\(m.name)"
        let a = try params.floats("init.\(key).lora_A.weight"), b = try params.floats("init.\(key).lora_B.weight")
        m.adapter = LoRAAdapter(rank: 8, inFeatures: m.inFeatures, outFeatures: m.outFeatures, scale: 2, a: a, b: b)
    }
    let T = 48
    XCTAssertEqual(data.info("input_ids")?.shape, [4, T], "\(kit)")
    let ids = try data.int64s("input_ids").map { Int32($0) }
    let mask = try data.int64s("loss_mask").map { Float($0) }
    let tokens = Array(ids[0..<(2 * T)]), weights = Array(mask[0..<(2 * T)])
    var count: Float = 0
    for b in 0..<2 { for t in 1..<T { count += weights[b * T + t] } }
    let sum = model.lossAndGradients(tokens: tokens, batch: 2, length: T, lossWeights: weights, gradScale: 1 / count)
    let loss = sum / Double(count)
    let steps = try JSONSerialization.jsonObject(with: Data(contentsOf: kit.file("golden/\(run)/steps.json"))) as! [String: Any]
    let expected = ((steps["steps"] as! [[String: Any]])[0]["loss"] as! NSNumber).doubleValue
    assertClose(loss, expected, rtol: 1e-5, atol: 0, "\(run) step-1 loss \(kit)")
    var compared = 0
    for m in model.linearModules {
        guard let ad = m.adapter else { continue }
        let key = "step1.grad.base_model.model.\(m.name)"
        for (suffix, mine) in [("lora_A.weight", ad.gradA), ("lora_B.weight", ad.gradB)] {
            let ref = try params.floats("\(key).\(suffix)")
            let scale = Double(max(ref.map { abs($0) }.max() ?? 0, 1e-6))
            assertClose(mine, ref, rtol: 0, atol: 1e-5 * scale + 1e-9, "\(run) \(m.name) \(suffix) \(kit)")
            compared += 1
        }
    }
    XCTAssertEqual(compared, 8, "\(kit)")
}

final class HeadDropoutChunkTests: XCTestCase {
    /// The head runs on chunks of the supervised rows; a dropout adapter on it draws each row's
    /// mask by the row's index among them, so the chunk size changes nothing but rounding.
    func testHeadDropoutMaskDoesNotDependOnTheChunking() {
        let model = LlamaModel.initialized(config: BackwardTests.tinyConfig(), layout: .huggingFace, seed: 11)
        BackwardTests.attachRandomAdapters(model, names: ["q_proj", "lm_head"])
        let head = model.head
        XCTAssertEqual(head.name, "lm_head")
        head.adapter?.dropout = 0.3
        let tokens: [Int32] = [1, 4, 9, 16, 25, 3, 8, 2, 7, 7, 30, 31, 5, 6, 12, 13]
        let weights = [Float](repeating: 1, count: tokens.count)
        func run(chunkLogits: Int, dropping: Bool = true) -> (Double, [Float], [Float], [Float]) {
            let saved = ActivationPlan.headChunkLogits
            ActivationPlan.headChunkLogits = chunkLogits
            defer { ActivationPlan.headChunkLogits = saved }
            for m in model.linearModules { m.adapter?.zeroGradients() }
            head.adapter?.dropoutContext = dropping ? LoRADropoutContext(seed: 9, step: 1, micro: 0) : nil
            defer { head.adapter?.dropoutContext = nil }
            let loss = model.lossAndGradients(tokens: tokens, batch: 2, length: 8, lossWeights: weights, gradScale: 1)
            // q_proj's gradients come through the head's input gradient (the mask again, in backward).
            let q = model.layers[1].q.adapter!
            return (loss, head.adapter!.gradA, head.adapter!.gradB, q.gradA + q.gradB)
        }
        let whole = run(chunkLogits: 1 << 23), threeRows = run(chunkLogits: 3 * 32)
        // As in EvaluationSumsTests: chunking rounds each logit differently, by at most the fp32
        // dot-product bound over C terms; the loss is a weighted sum over the rows of ≤ 2·|Δlogit| each.
        let logits = model.forward(tokens: tokens, batch: 2, length: 8, attentionMask: nil)
        let largest = Double(logits.map { abs($0) }.max() ?? 0)
        let perLogit = FloatBound.dot(length: model.config.hiddenSize, magnitude: 2 * largest / (1 - 0.3))  // dropout scales by 1/(1-p)
        assertClose(threeRows.0, whole.0, rtol: 0, atol: Double(tokens.count) * 2 * perLogit)
        XCTAssertLessThan(maxAbsDiff(whole.1, threeRows.1), 1e-5)
        XCTAssertLessThan(maxAbsDiff(whole.2, threeRows.2), 1e-5)
        XCTAssertLessThan(maxAbsDiff(whole.3, threeRows.3), 1e-5)
        XCTAssertGreaterThan(abs(run(chunkLogits: 1 << 23, dropping: false).0 - whole.0), 1e-3, "the mask acts")
    }
}

final class EvaluationSumsTests: XCTestCase {
    /// The evaluate stage's sums (head on supervised rows only, in chunks) against the full logits
    /// of the plain forward, in Double; chunking changes nothing.
    func testMatchesFullLogitsAndDoesNotDependOnChunking() {
        let model = LlamaModel.initialized(config: BackwardTests.tinyConfig(), layout: .huggingFace, seed: 11)
        for m in model.linearModules { if case .dense(let w) = m.weight { m.weight = .dense(w.map { $0 * 15 }) } }
        let B = 2, T = 8, V = model.config.vocabSize
        let tokens: [Int32] = [1, 4, 9, 16, 25, 3, 8, 2, 7, 7, 30, 31, 5, 6, 12, 13]
        let weights: [Float] = [0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0.5, 1, 1, 1, 1, 1]
        let logits = model.forward(tokens: tokens, batch: B, length: T, attentionMask: nil)
        var loss = 0.0, correct = 0, count = 0
        for b in 0..<B { for t in 0..<(T - 1) where weights[b * T + t + 1] > 0 {
            let row = Array(logits[((b * T + t) * V)..<((b * T + t + 1) * V)]).map(Double.init)
            let target = Int(tokens[b * T + t + 1]), m = row.max()!
            loss += m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) - row[target]
            if row.firstIndex(of: m) == target { correct += 1 }
            count += 1
        } }
        XCTAssertEqual(count, 11)
        let whole = model.evaluationSums(tokens: tokens, batch: B, length: T, lossWeights: weights)
        XCTAssertEqual(whole.lossSum, loss, accuracy: 1e-5 * loss)
        XCTAssertEqual(whole.correct, correct)
        XCTAssertEqual(whole.count, count)
        let saved = ActivationPlan.headChunkLogits
        ActivationPlan.headChunkLogits = 3 * V
        defer { ActivationPlan.headChunkLogits = saved }
        let chunked = model.evaluationSums(tokens: tokens, batch: B, length: T, lossWeights: weights)
        // Chunking changes the head GEMM's shape, so each fp32 logit may round differently (AVX2 vs
        // AVX-512 kernels differ too): by at most the dot-product bound over C = hidden terms. The
        // terms' absolute sum Σ|x_i w_i| is taken as twice the largest |logit| (a margin for
        // cancellation; the products themselves are not exposed). A row's loss moves by at most
        // 2·max|Δlogit| (the gradient of logsumexp − target has absolute sum ≤ 2).
        let C = model.config.hiddenSize
        let largest = Double(logits.map { abs($0) }.max() ?? 0)
        let perLogit = FloatBound.dot(length: C, magnitude: 2 * largest)
        assertClose(chunked.lossSum, whole.lossSum, rtol: 0, atol: Double(count) * 2 * perLogit)
        XCTAssertEqual(chunked.correct, whole.correct)
    }
}
