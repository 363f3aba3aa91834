import XCTest
@testable import Model
import Quant
import TensorIO
import TestSupport

final class QLoRATests: XCTestCase {
    func goldenSamples(_ kit: ReferenceKit) throws -> (ids: [Int32], mask: [Float]) {
        let data = try golden(kit, "golden/qlora_train/data.safetensors")
        return (try data.int64s("input_ids").map { Int32($0) }, try data.int64s("loss_mask").map { Float($0) })
    }

    /// Our NF4 + double-quant of every decoder linear (head skipped) reproduces transformers/bitsandbytes.
    func testQuantizedForwardMatchesBitsAndBytes() throws {
        for kit in try Reference.kits() {
            let model = try referenceModel(kit, "tiny-llama")
            let names = try model.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: ["lm_head"])
            XCTAssertEqual(names.count, 14, "\(kit)")
            XCTAssertFalse(model.head.isQuantized, "\(kit)")
            let (ids, _) = try goldenSamples(kit)
            let logits = model.forward(tokens: ids, batch: 4, length: 48, attentionMask: nil)
            let ref = try golden(kit, "golden/qlora_train/logits_step0.safetensors").floats("logits")
            assertClose(logits, ref, rtol: 0, atol: 1e-4, "quantized logits \(kit)")

            // Save in bnb format, reload: same logits, same quantized layers.
            let dir = try makeTemporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
            try model.save(to: dir)
            let reloaded = try LlamaModel.load(directory: dir)
            XCTAssertEqual(reloaded.linearModules.filter { $0.isQuantized }.count, 14, "\(kit)")
            XCTAssertEqual(reloaded.config.quantization?.skipModules, ["lm_head"], "\(kit)")
            XCTAssertEqual(reloaded.forward(tokens: ids, batch: 4, length: 48, attentionMask: nil), logits, "\(kit)")
        }
    }

    func testTransformersFourBitCheckpointLoads() throws {
        for kit in try Reference.kits() {
            let model = try referenceModel(kit, "golden/qlora_train/base-nf4-dq")
            XCTAssertEqual(model.linearModules.filter { $0.isQuantized }.map { $0.name }.count, 14, "\(kit)")
            let (ids, _) = try goldenSamples(kit)
            let logits = model.forward(tokens: ids, batch: 4, length: 48, attentionMask: nil)
            let ref = try golden(kit, "golden/qlora_train/logits_step0.safetensors").floats("logits")
            assertClose(logits, ref, rtol: 0, atol: 1e-4, "4-bit checkpoint logits \(kit)")
        }
    }

    func testQLoRAStepOneLossAndGradients() throws {
        for kit in try Reference.kits() {
            let model = try referenceModel(kit, "tiny-llama")
            try model.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: ["lm_head"])
            try checkStepOne(kit: kit, run: "qlora_train", model: model)
        }
    }

    func testTiedHeadBecomesUntiedQuantizedCopy() throws {
        let config = ModelConfig(modelType: "minimind", vocabSize: 64, hiddenSize: 64, intermediateSize: 128, layers: 1,
                                 heads: 4, kvHeads: 2, maxPositionEmbeddings: 32, tieWordEmbeddings: true)
        let model = LlamaModel.initialized(config: config, layout: .miniMind, seed: 3)
        let names = try model.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: ["attention.wo"])
        XCTAssertEqual(names, ["layers.0.attention.wq", "layers.0.attention.wk", "layers.0.attention.wv",
                               "layers.0.feed_forward.w1", "layers.0.feed_forward.w3", "layers.0.feed_forward.w2", "output"])
        XCTAssertFalse(model.headTied); XCTAssertFalse(model.config.tieWordEmbeddings)
        let dir = try makeTemporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir)
        let reloaded = try LlamaModel.load(directory: dir)
        XCTAssertTrue(reloaded.head.isQuantized)
        let tokens: [Int32] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(reloaded.forward(tokens: tokens, batch: 1, length: 6, attentionMask: nil),
                       model.forward(tokens: tokens, batch: 1, length: 6, attentionMask: nil))
    }

    func testLoRAGradientsMatchFiniteDifferencesFourBitBase() throws {
        let config = ModelConfig(vocabSize: 32, hiddenSize: 64, intermediateSize: 64, layers: 2, heads: 4, kvHeads: 2,
                                 rmsNormEps: 1e-5, maxPositionEmbeddings: 64)
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 4)
        for m in model.linearModules { if case .dense(let w) = m.weight { m.weight = .dense(w.map { $0 * 8 }) } }
        try model.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: [])
        BackwardTests.attachRandomAdapters(model, names: ["q_proj", "o_proj", "down_proj"])
        finiteDifferenceCheck(model)
    }
}
