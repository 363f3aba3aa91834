import XCTest
@testable import Model
import TestSupport
import TensorIO
import Kernels

/// Llama-family variants against transformers (Tests/Fixtures/generate_models.py): tiny random
/// checkpoints with N(0, 0.2) weights, fp32 logits of two 16-token rows.
final class VariantGoldenTests: XCTestCase {
    static let root = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/models")

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> LlamaModel {
        let model = try LlamaModel.load(directory: Self.root.appendingPathComponent(name))
        let g = try SafeTensorsFile(url: Self.root.appendingPathComponent(name + ".golden.safetensors"))
        let ids = try g.int64s("input_ids").map { Int32($0) }
        try model.validate(tokens: ids, batch: 2, length: 16)
        let logits = model.forward(tokens: ids, batch: 2, length: 16, attentionMask: nil)
        // Two layers of fp32 sums over 32-64 terms of O(1) values: a few ulps of |logit| ~ 10.
        assertClose(logits, try g.floats("logits"), rtol: 1e-5, atol: 1e-4, name, file: file, line: line)
        return model
    }

    func testLlama3RotaryScalingMatchesTransformers() throws {
        let model = try check("llama3-rope")
        XCTAssertEqual(model.config.ropeScaling?.type, "llama3")
        XCTAssertEqual(model.config.ropeScaling?.originalMaxPositionEmbeddings, 64)
        // The scaling matters here: without it the logits are far off.
        var plain = model.config
        plain.ropeScaling = nil
        let unscaled = RotaryTable(headSize: 8, maxPositions: 16, theta: plain.ropeTheta)
        let scaled = model.rotaryTable(positions: 16)
        XCTAssertEqual(unscaled.invFreq[0], scaled.invFreq[0])                 // short wavelength: kept
        XCTAssertEqual(scaled.invFreq[3], unscaled.invFreq[3] / 8, accuracy: 1e-12)   // long: divided by factor
        XCTAssertNotEqual(scaled.invFreq[1], unscaled.invFreq[1])              // medium: interpolated
    }

    func testLinearRotaryScalingWithUntiedHeadMatchesTransformers() throws {
        let model = try check("llama-linear-rope-untied")
        XCTAssertFalse(model.config.tieWordEmbeddings)
    }

    func testQwen3HeadNormsAndExplicitHeadDimMatchTransformers() throws {
        let model = try check("qwen3-head-norms")
        XCTAssertEqual(model.config.headDim, 16)
        XCTAssertEqual(model.layers[0].queryNorm?.count, 16)
        XCTAssertNil(model.config.slidingWindow)
        // The KV-cache path applies the norms too: its last logits equal the full forward's.
        let g = try SafeTensorsFile(url: Self.root.appendingPathComponent("qwen3-head-norms.golden.safetensors"))
        let ids = Array(try g.int64s("input_ids").map { Int32($0) }.prefix(16))
        let full = model.forward(tokens: ids, batch: 1, length: 16, attentionMask: nil)
        let cache = KVCache(layers: model.layers.count, capacity: 16, kvChannels: model.config.kvHeads * model.config.headDim)
        _ = model.decode(tokens: Array(ids.prefix(10)), cache: cache)
        let last = model.decode(tokens: Array(ids.suffix(6)), cache: cache)
        assertClose(last, Array(full.suffix(model.config.vocabSize)), rtol: 1e-5, atol: 1e-4)
    }

    func testMistralWithinTheSlidingWindowMatchesAndBeyondItIsRefused() throws {
        let model = try check("mistral-window")
        XCTAssertEqual(model.config.slidingWindow, 16)
        XCTAssertThrowsError(try model.validate(tokens: [Int32](repeating: 5, count: 17), batch: 1, length: 17)) { error in
            XCTAssertEqual((error as? LocalizedError)?.errorDescription,
                           "sequence length 17 exceeds the model's sliding_window 16 (config.json); sliding-window attention is not implemented: set max_seq_len to at most 16")
        }
        // Generation stops at the window instead of attending past it.
        let out = model.generate(prompt: [Int32](repeating: 5, count: 10), maxNewTokens: 20, sampling: .greedy, stopTokens: [])
        XCTAssertEqual(out.count, 6)
    }
}
