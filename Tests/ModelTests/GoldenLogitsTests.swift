import XCTest
@testable import Model
import TestSupport
import TensorIO

/// Reads a golden safetensors file through the model's reader.
func golden(_ relative: String) throws -> SafeTensorsFile {
    guard let url = Reference.file(relative) else { throw Reference.missing() }
    return try SafeTensorsFile(url: url)
}

func referenceModel(_ name: String) throws -> LlamaModel {
    guard let url = Reference.file(name) else { throw Reference.missing() }
    return try LlamaModel.load(directory: url)
}

func maxAbsDiff(_ a: [Float], _ b: [Float], where keep: ((Int) -> Bool)? = nil) -> Float {
    precondition(a.count == b.count, "count \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices where keep?(i) ?? true { m = max(m, abs(a[i] - b[i])) }
    return m
}

final class GoldenLogitsTests: XCTestCase {
    func testFP32LogitsAndResidualsMatchTransformers() throws {
        let g = try golden("golden/logits.safetensors")
        let model = try referenceModel("tiny-llama")
        XCTAssertEqual(model.layout, .huggingFace)
        let ids = try g.int64s("input_ids").map { Int32($0) }
        let logits = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: nil)
        let residuals = model.residualCheckpoints()
        for key in ["embed", "layer0", "layer1", "final_norm"] {
            let d = maxAbsDiff(residuals[key] ?? [], try g.floats("fp32.residual.\(key)"))
            XCTAssertLessThan(d, 1e-4, "residual \(key)")
        }
        XCTAssertLessThan(maxAbsDiff(logits, try g.floats("fp32.logits")), 1e-4)
    }

    func testBF16CheckpointUpcastMatches() throws {
        let g = try golden("golden/logits.safetensors")
        let model = try referenceModel("tiny-llama-bf16")
        XCTAssertEqual(model.config.dtype, "bfloat16")
        let ids = try g.int64s("input_ids").map { Int32($0) }
        let logits = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: nil)
        XCTAssertLessThan(maxAbsDiff(logits, try g.floats("bf16_upcast_fp32.logits")), 1e-4)
    }

    func testPaddedBatchMatchesOnRealPositions() throws {
        let g = try golden("golden/logits.safetensors")
        let model = try referenceModel("tiny-llama")
        let ids = try g.int64s("padded.input_ids").map { Int32($0) }
        let mask = try g.int64s("padded.attention_mask").map { Float($0) }
        XCTAssertEqual(mask.reduce(0, +), 24 + 17)
        let logits = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: mask)
        let V = 512
        let d = maxAbsDiff(logits, try g.floats("padded.logits")) { mask[$0 / V] == 1 }
        XCTAssertLessThan(d, 1e-4)
    }
}
