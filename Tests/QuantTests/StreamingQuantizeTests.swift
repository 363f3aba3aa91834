import XCTest
import Foundation
import Model
import Quant
import TestSupport

/// The quantize stage quantizes each linear while the checkpoint loads: the saved 4-bit model is
/// byte-identical to loading everything in fp32 first and quantizing after.
final class StreamingQuantizeTests: XCTestCase {
    func testQuantizingWhileLoadingGivesTheSameFileAsQuantizingAfter() throws {
        let dir = try makeTemporaryDirectory("stream-quant")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Llama with an untied and a tied head; Qwen2 (q/k/v biases, read beside their 4-bit weights).
        for (modelType, tied) in [("llama", false), ("llama", true), ("qwen2", false)] {
            let config = ModelConfig(modelType: modelType, vocabSize: 64, hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2,
                                     maxPositionEmbeddings: 64, tieWordEmbeddings: tied)
            XCTAssertEqual(config.qkvBias, modelType == "qwen2")
            let source = dir.appendingPathComponent("fp32-\(modelType)-\(tied)")
            try LlamaModel.initialized(config: config, layout: .huggingFace, seed: 4).save(to: source)
            let skip = tied ? [] : ["lm_head"]

            let whole = try LlamaModel.load(directory: source)
            let wholeNames = try whole.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: skip)
            var seen: [String] = [], streamed: [String] = []
            let stream = try LlamaModel.load(directory: source) { m in
                seen.append(m.name)
                if !LlamaModel.skips(m.name, skip), try LlamaModel.quantize(m, type: .nf4, blockSize: 64, doubleQuant: true) {
                    streamed.append(m.name)
                }
            }
            let rest = try stream.quantize(type: .nf4, blockSize: 64, doubleQuant: true, skip: skip)
            if modelType == "qwen2" { XCTAssertNotNil(stream.layers[1].k.bias) }
            XCTAssertEqual(seen.count, 2 * 7 + (tied ? 0 : 1), "every linear built from the file, once; a tied head is the embedding")
            XCTAssertEqual(Set(streamed + rest), Set(wholeNames))
            XCTAssertEqual(rest, tied ? ["lm_head"] : [])

            let a = dir.appendingPathComponent("whole-\(modelType)-\(tied)"), b = dir.appendingPathComponent("stream-\(modelType)-\(tied)")
            try whole.save(to: a); try stream.save(to: b)
            for file in ["model.safetensors", "config.json"] {
                XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent(file)), try Data(contentsOf: b.appendingPathComponent(file)), "\(file) \(modelType) tied \(tied)")
            }
        }
    }
}
