import XCTest
@testable import Model
import TensorIO
import TestSupport

final class CheckpointTests: XCTestCase {
    func testSaveLoadRoundTripIsDeterministicBothLayouts() throws {
        for (layout, type, tied) in [(WeightLayout.huggingFace, "qwen2", false), (.miniMind, "minimind", true)] {
            let config = ModelConfig(modelType: type, vocabSize: 40, hiddenSize: 16, intermediateSize: 24, layers: 2,
                                     heads: 4, kvHeads: 2, maxPositionEmbeddings: 32, tieWordEmbeddings: tied)
            let model = LlamaModel.initialized(config: config, layout: layout, seed: 99)
            let dir = try makeTemporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
            try model.save(to: dir.appendingPathComponent("a"))
            try model.save(to: dir.appendingPathComponent("b"))
            for f in ["config.json", "model.safetensors"] {
                XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("a/\(f)")),
                               try Data(contentsOf: dir.appendingPathComponent("b/\(f)")), f)
            }
            let file = try SafeTensorsFile(url: dir.appendingPathComponent("a/model.safetensors"))
            if layout == .miniMind {
                XCTAssertTrue(file.names.contains("layers.1.feed_forward.w3.weight"))
                XCTAssertFalse(file.names.contains("output.weight"))
            } else {
                XCTAssertTrue(file.names.contains("model.layers.0.self_attn.q_proj.bias"))
                XCTAssertFalse(file.names.contains("model.layers.0.self_attn.o_proj.bias"))
                XCTAssertTrue(file.names.contains("lm_head.weight"))
            }
            let loaded = try LlamaModel.load(directory: dir.appendingPathComponent("a"))
            XCTAssertEqual(loaded.config, model.config)
            XCTAssertEqual(loaded.layout, layout)
            XCTAssertEqual(loaded.headTied, tied)
            let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
            XCTAssertEqual(loaded.forward(tokens: tokens, batch: 2, length: 4, attentionMask: nil),
                           model.forward(tokens: tokens, batch: 2, length: 4, attentionMask: nil))
            XCTAssertEqual(loaded.linearModules.map { $0.name }.prefix(2),
                           layout == .miniMind ? ["layers.0.attention.wq", "layers.0.attention.wk"]
                                               : ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj"])
        }
    }

    func testMissingExtraAndMisshapedTensorsAreOneError() throws {
        let config = ModelConfig(vocabSize: 10, hiddenSize: 8, intermediateSize: 12, layers: 1, heads: 2)
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 1)
        let dir = try makeTemporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir)
        // Rewrite the weights: drop the final norm, add a stray tensor, mis-shape up_proj.
        let file = try SafeTensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        var w = SafeTensorsWriter()
        for n in file.names where n != "model.norm.weight" {
            let shape = n == "model.layers.0.mlp.up_proj.weight" ? [8, 12] : file.info(n)!.shape
            w.add(n, floats: try file.floats(n), shape: shape)
        }
        w.add("model.layers.0.extra.weight", floats: [1], shape: [1])
        try w.write(to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try LlamaModel.load(directory: dir)) { e in
            XCTAssertEqual(e.localizedDescription,
                "checkpoint \(dir.path) does not match its config.json (missing tensors: model.norm.weight; "
                + "unexpected tensors: model.layers.0.extra.weight; mis-shaped tensors: model.layers.0.mlp.up_proj.weight "
                + "(expected [12, 8], found [8, 12])); check that config.json belongs to these weights")
        }
    }

    /// Issue 11 §4: NaN or Inf in any weight (linear or not) fails the load naming the tensor,
    /// instead of becoming an absmax of Inf in a cached quantized model.
    func testNonFiniteWeightsFailNamingTheTensor() throws {
        let config = ModelConfig(vocabSize: 10, hiddenSize: 8, intermediateSize: 12, layers: 1, heads: 2)
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 1)
        let dir = try makeTemporaryDirectory(); defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir)
        let file = try SafeTensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        for (tensor, value) in [("model.layers.0.self_attn.v_proj.weight", Float.nan), ("model.norm.weight", -Float.infinity)] {
            var w = SafeTensorsWriter()
            for n in file.names {
                var floats = try file.floats(n)
                if n == tensor { floats[5] = value }
                w.add(n, floats: floats, shape: file.info(n)!.shape)
            }
            try w.write(to: dir.appendingPathComponent("model.safetensors"))
            XCTAssertThrowsError(try LlamaModel.load(directory: dir)) { e in
                XCTAssertEqual(e.localizedDescription, "checkpoint \(dir.path): tensor '\(tensor)' holds \(value) at element 5; weights must be finite "
                    + "(the file is damaged, or was saved from a run that diverged): re-download or re-export it")
            }
        }
    }
}

final class InputValidationTests: XCTestCase {
    func testValidateNamesTheProblem() {
        let model = LlamaModel.initialized(config: BackwardTests.tinyConfig(), layout: .huggingFace, seed: 1)
        XCTAssertThrowsError(try model.validate(tokens: [1, 2, 40], batch: 1, length: 3)) { e in
            XCTAssertEqual(e.localizedDescription, "token id 40 at position 2 is outside the vocabulary (0..<32)")
        }
        XCTAssertThrowsError(try model.validate(tokens: [1, 2], batch: 1, length: 3)) { e in
            XCTAssertEqual(e.localizedDescription, "expected 1×3 = 3 token ids, got 2")
        }
        XCTAssertNoThrow(try model.validate(tokens: [0, 31], batch: 2, length: 1))
        // Wrong shapes never crash: empty result / NaN.
        XCTAssertEqual(model.forward(tokens: [1, 2], batch: 1, length: 3, attentionMask: nil), [])
        XCTAssertTrue(model.lossAndGradients(tokens: [1], batch: 1, length: 1, lossWeights: [], gradScale: 1).isNaN)
        XCTAssertEqual(model.generate(prompt: [99], maxNewTokens: 3, sampling: .greedy, stopTokens: []), [])
    }
}
