import XCTest
@testable import Model
import TestSupport
import TensorIO

/// Reads a golden safetensors file of a reference kit through the model's reader.
func golden(_ kit: ReferenceKit, _ relative: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(url: kit.file(relative))
}

func referenceModel(_ kit: ReferenceKit, _ name: String) throws -> LlamaModel {
    try LlamaModel.load(directory: kit.file(name))
}

func maxAbsDiff(_ a: [Float], _ b: [Float], where keep: ((Int) -> Bool)? = nil) -> Float {
    precondition(a.count == b.count, "count \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices where keep?(i) ?? true { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// Against every reference kit (own, and shared when present): fp32 logits within 1e-4 absolute
/// (logits up to ~9, sums over 64-176 terms: fp32 rounding is ~1e-5 at most).
final class GoldenLogitsTests: XCTestCase {
    func testFP32LogitsAndResidualsMatchTransformers() throws {
        for kit in try Reference.kits() {
            let g = try golden(kit, "golden/logits.safetensors")
            let model = try referenceModel(kit, "tiny-llama")
            XCTAssertEqual(model.layout, .huggingFace, "\(kit)")
            let ids = try g.int64s("input_ids").map { Int32($0) }
            let forwardOnly = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: nil)
            XCTAssertEqual(model.residualCheckpoints(), [:], "a forward-only pass keeps no layer inputs")
            model.keepsResidualStreams = true
            let logits = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: nil)
            XCTAssertEqual(forwardOnly, logits, "two residual buffers in turn: the same logits, bit for bit")
            let residuals = model.residualCheckpoints()
            for key in ["embed", "layer0", "layer1", "final_norm"] {
                assertClose(residuals[key] ?? [], try g.floats("fp32.residual.\(key)"), rtol: 0, atol: 1e-4, "residual \(key) \(kit)")
            }
            assertClose(logits, try g.floats("fp32.logits"), rtol: 0, atol: 1e-4, "logits \(kit)")
        }
    }

    func testBF16CheckpointUpcastMatches() throws {
        for kit in try Reference.kits() {
            let g = try golden(kit, "golden/logits.safetensors")
            let model = try referenceModel(kit, "tiny-llama-bf16")
            XCTAssertEqual(model.config.dtype, "bfloat16", "\(kit)")
            let ids = try g.int64s("input_ids").map { Int32($0) }
            let logits = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: nil)
            assertClose(logits, try g.floats("bf16_upcast_fp32.logits"), rtol: 0, atol: 1e-4, "bf16 upcast logits \(kit)")
        }
    }

    func testPaddedBatchMatchesOnRealPositions() throws {
        for kit in try Reference.kits() {
            let g = try golden(kit, "golden/logits.safetensors")
            let model = try referenceModel(kit, "tiny-llama")
            let ids = try g.int64s("padded.input_ids").map { Int32($0) }
            let mask = try g.int64s("padded.attention_mask").map { Float($0) }
            XCTAssertEqual(mask.reduce(0, +), 24 + 17, "\(kit)")
            let logits = model.forward(tokens: ids, batch: 2, length: 24, attentionMask: mask)
            let V = 512
            let real = logits.indices.filter { mask[$0 / V] == 1 }
            let want = try g.floats("padded.logits")
            assertClose(real.map { logits[$0] }, real.map { want[$0] }, rtol: 0, atol: 1e-4, "padded logits \(kit)")
        }
    }
}
