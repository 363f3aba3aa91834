import XCTest
import Foundation
import TestSupport
import TensorIO
import Model

/// `merge` against PEFT's merge_and_unload() (Tests/Fixtures/generate_merge.py, torch 2.15, peft 0.21.2):
/// a tiny Llama with a PEFT adapter on all seven linear kinds (r 4, alpha 8, non-zero lora_B), loaded
/// with `init: {from: adapter}` and merged from the original fp32 weights.
final class MergeGoldenTests: XCTestCase {
    static let fixtures = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/merge")

    func testMergedCheckpointEqualsPEFTMergeAndUnload() throws {
        let dir = try makeTemporaryDirectory("qlora-merge-golden")
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: merge-golden
        stages:
          base: {kind: load_checkpoint, path: \(Self.fixtures.appendingPathComponent("base").path)}
          adapted:
            kind: attach_adapters
            model: base
            targets: all-linear
            rank: 4
            alpha: 8
            init: {from: \(Self.fixtures.appendingPathComponent("adapter").path)}
          merged: {kind: merge, model: adapted, to: out/merged}

        """.write(to: dir.appendingPathComponent("merge.yaml"), atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "merge.yaml"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)

        let golden = try SafeTensorsFile(url: Self.fixtures.appendingPathComponent("golden.safetensors"))
        let merged = dir.appendingPathComponent("out/merged")
        let file = try SafeTensorsFile(url: merged.appendingPathComponent("model.safetensors"))
        let expected = golden.names.filter { $0.hasPrefix("merged.") }.map { String($0.dropFirst("merged.".count)) }
        XCTAssertEqual(expected.count, 2 * 9 + 3)   // 2 layers x (7 linear + 2 norms) + embedding, final norm, head
        XCTAssertEqual(Set(file.names), Set(expected))
        for name in expected {
            // W + 2 * sum over r = 4 of B[o, k] A[k, i]: one rounding of a 5-term fp32 sum of O(0.1-1) values,
            // done in a different order from torch's addmm.
            assertClose(try file.floats(name), try golden.floats("merged." + name), rtol: 1e-6, atol: 1e-6, name)
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: merged.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual(config?["dtype"] as? String, "float32")
        for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: merged.appendingPathComponent(name).path), name)
        }

        // Our forward of the merged directory gives transformers' logits of PEFT's merged model: two
        // layers of fp32 sums over 32-64 terms, logits of std 1.5 (the same bound as VariantGoldenTests).
        let model = try LlamaModel.load(directory: merged)
        let ids = try golden.int64s("input_ids").map { Int32($0) }
        let logits = model.forward(tokens: ids, batch: 2, length: 12, attentionMask: nil)
        assertClose(logits, try golden.floats("logits.merged"), rtol: 1e-5, atol: 1e-5, "logits of the merged checkpoint")
        // And the unmerged PeftModel's logits, which is what the adapter computes before merging.
        assertClose(logits, try golden.floats("logits.adapter"), rtol: 1e-5, atol: 2e-5, "logits of base + adapter (PEFT)")
    }
}
