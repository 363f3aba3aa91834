import XCTest
import Foundation
import TestSupport

/// `qlora-run chat render`: the rendering on stdout byte for byte (no newline added), a template's
/// refusal as an error with its own words and exit 2.
final class ChatRenderCommandTests: XCTestCase {
    let templates = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/chat_templates/templates")

    func testRendersACheckpointTemplateExactly() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A checkpoint whose template is the named-list form of tokenizer_config.json.
        let template = try String(contentsOf: templates.appendingPathComponent("smollm2-135m-instruct.jinja"), encoding: .utf8)
        let config: [String: Any] = ["bos_token": "<|im_start|>", "eos_token": ["content": "<|im_end|>"],
                                     "chat_template": [["name": "tool_use", "template": "unused"], ["name": "default", "template": template]]]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let input = #"{"messages": [{"role": "user", "content": "Hi"}]}"#
        let result = try CLI.run(["chat", "render", dir.path, "--add-generation-prompt"], input: input)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")

        // chat_template.jinja wins over tokenizer_config.json.
        try "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try CLI.run(["chat", "render", dir.path], input: input).stdout, "<|im_start|>[user]Hi")
    }

    func testTemplateVariablesNowAndRefusals() throws {
        let llama = templates.appendingPathComponent("llama-3.2-1b-instruct.jinja").path
        let input = #"{"messages": [{"role": "user", "content": "Hi"}]}"#
        let dated = try CLI.run(["chat", "render", "--template", llama, "--bos-token", "<|begin_of_text|>", "--now", "2024-07-26"], input: input)
        XCTAssertEqual(dated.stdout, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
        let qwen3 = templates.appendingPathComponent("qwen3-0.6b.jinja").path
        let thinking = try CLI.run(["chat", "render", "--template", qwen3, "--add-generation-prompt"],
                                   input: #"{"messages": [{"role": "user", "content": "Hi"}], "enable_thinking": false}"#)
        XCTAssertEqual(thinking.stdout, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")

        let gemma = templates.appendingPathComponent("gemma-style.jinja").path
        let refused = try CLI.run(["chat", "render", "--template", gemma], input: #"{"messages": [{"role": "system", "content": "x"}]}"#)
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stdout, "")
        XCTAssertEqual(refused.stderr, "error: \(gemma):1:56: the chat template refused this conversation: System role not supported\n")
        let badJSON = try CLI.run(["chat", "render", "--template", gemma], input: #"{"messages": ["#)
        XCTAssertEqual(badJSON.stderr, "error: stdin: invalid JSON at byte 14: unexpected end of JSON\n")
        let badNow = try CLI.run(["chat", "render", "--template", gemma, "--now", "yesterday"], input: input)
        XCTAssertEqual(badNow.stderr, "error: --now: expected an ISO-8601 date or time (2024-07-26 or 2024-07-26T12:00:00[Z]), found 'yesterday'\n")
        let neither = try CLI.run(["chat", "render"], input: input)
        XCTAssertEqual(neither.stderr, "error: 'chat render' needs a checkpoint DIR or --template FILE; run 'qlora-run --help' for usage\n")
    }
}

/// `qlora-run generate PIPELINE.yaml [--stage NAME]` runs on exactly the model a cached stage produced.
final class GenerateFromPipelineTests: XCTestCase {
    func testGeneratesFromTheStageArtifactAndRefusesStaleOrNonModelStages() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: tiny
        stages:
          base: {kind: load_checkpoint, init: {hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1}}
          adapted: {kind: attach_adapters, model: base, rank: 2, init: gaussian}

        """.write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let stale = try CLI.run(["generate", "p.yaml", "--prompt", "Hi"], in: dir)
        XCTAssertEqual(stale.status, 2)
        XCTAssertEqual(stale.stderr, "error: stage 'adapted' has not run with this configuration (upstream: base will run); run the pipeline first\n")
        XCTAssertEqual(try CLI.run(["run", "p.yaml"], in: dir).status, 0)
        let fromPipeline = try CLI.run(["generate", "p.yaml", "--prompt", "Hi", "--max-new-tokens", "5"], in: dir)
        XCTAssertEqual(fromPipeline.status, 0, fromPipeline.stderr)
        let artifacts = dir.appendingPathComponent(".qlora/artifacts")
        var outputs = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: artifacts.path) where !name.hasPrefix(".") {
            outputs.insert(try CLI.run(["generate", "--model", artifacts.appendingPathComponent(name).path, "--prompt", "Hi", "--max-new-tokens", "5"], in: dir).stdout)
        }
        XCTAssertTrue(outputs.contains(fromPipeline.stdout), "\(fromPipeline.stdout) not among \(outputs)")
        let base = try CLI.run(["generate", "p.yaml", "--stage", "nope", "--prompt", "Hi"], in: dir)
        XCTAssertEqual(base.stderr, "error: no stage 'nope' in p.yaml; stages: base, adapted\n")
    }
}
