import XCTest
import Foundation
import TestSupport
import Tokenizer
@testable import Training

final class DatasetTests: XCTestCase {
    /// The own kit's tokenizer (byte-level BPE, ChatML specials) for tests that only need one.
    func tokenizer() throws -> Tokenizer {
        try Tokenizer(contentsOf: try Reference.own().file("tokenizer/tokenizer.json"))
    }

    /// The golden conversations (steps.json data.texts), re-encoded as JSONL, give exactly the golden
    /// input_ids and loss_mask of golden/lora_train/data.safetensors, in every reference kit.
    func testChatMaskMatchesGolden() throws {
        for kit in try Reference.kits() { try checkChatMask(kit) }
    }

    func checkChatMask(_ kit: ReferenceKit) throws {
        let tok = try Tokenizer(contentsOf: kit.file("tokenizer/tokenizer.json"))
        let dir = kit.file("golden/lora_train")
        let steps = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("steps.json"))) as! [String: Any]
        let texts = (steps["data"] as! [String: Any])["texts"] as! [String]
        var jsonl = ""
        for t in texts {
            // "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
            let parts = t.components(separatedBy: "<|im_start|>").filter { !$0.isEmpty }
            let msgs: [[String: String]] = parts.map { p in
                let body = p.replacingOccurrences(of: "<|im_end|>\n", with: "")
                let nl = body.firstIndex(of: "\n")!
                return ["role": String(body[..<nl]), "content": String(body[body.index(after: nl)...])]
            }
            jsonl += String(decoding: try JSONSerialization.data(withJSONObject: ["conversations": msgs]), as: UTF8.self) + "\n"
        }
        let data = try DatasetLoader.load(text: jsonl, name: "golden.jsonl", tokenizer: tok)
        let golden = TrainerGoldenTests.dataset(try GoldenTensors(dir.appendingPathComponent("data.safetensors")))
        XCTAssertEqual(data.examples.map(\.ids), golden.examples.map(\.ids), "\(kit)")
        XCTAssertEqual(data.examples.map(\.lossMask), golden.examples.map(\.lossMask), "\(kit)")
        XCTAssertEqual(data.padId, 0, "\(kit)")
        XCTAssertEqual(data.audit.examples, 4, "\(kit)")
        XCTAssertEqual(data.audit.supervisedTokens, golden.examples.reduce(0) { $0 + $1.supervisedTokens }, "\(kit)")
        // dynamic padding: batch of rows 1 and 2 pads to the longer one (shared kit: 34) with id 0, weight 0
        let b = data.batch([1, 2])
        let longer = max(golden.examples[1].ids.count, golden.examples[2].ids.count)
        if kit.isShared { XCTAssertEqual(longer, 34, "\(kit)") }
        XCTAssertEqual(b.length, longer, "\(kit)")
        XCTAssertEqual(b.batch, 2, "\(kit)")
    }

    func testErrorsNameFileAndLine() throws {
        let tok = try tokenizer()
        func message(_ text: String) -> String? {
            do { _ = try DatasetLoader.load(text: text, name: "d.jsonl", tokenizer: tok); return nil } catch { return error.localizedDescription }
        }
        XCTAssertEqual(message("{\"text\": \"hi\"}\n{oops\n"), "d.jsonl:2: malformed JSON line: not valid JSON. Each line must be one JSON object.")
        XCTAssertEqual(message("\n{\"foo\": 1}\n"), "d.jsonl:2: no known field (found: foo). Expected `conversations` or `messages` ([{role, content}] or ShareGPT [{from, value}]), Alpaca `instruction` + `output`, `text`, or `prompt` + `completion`.")
        XCTAssertEqual(message("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}"), "d.jsonl:1: unknown role \"bot\"; use system, user or assistant.")
        XCTAssertEqual(message("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}"),
                       "d.jsonl:1: this example has no supervised token (no assistant reply or completion to learn); add one, or set train_on_prompt: true.")
        XCTAssertEqual(message(""), "d.jsonl: the dataset has no examples; add JSONL lines.")
    }

    func testTruncationPromptCompletionAndTrainOnPrompt() throws {
        let tok = try tokenizer()
        var o = DatasetOptions(); o.maxSeqLen = 8
        let chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"hello there my friend\"}, {\"role\": \"assistant\", \"content\": \"hi\"}]}\n"
        // the reply lies beyond 8 tokens: skipped, counted
        XCTAssertThrowsError(try DatasetLoader.load(text: chat, name: "c", tokenizer: tok, options: o))
        o.trainOnPrompt = true
        let d = try DatasetLoader.load(text: chat + "{\"prompt\": \"a\", \"completion\": \"b\"}\n", name: "c", tokenizer: tok, options: o)
        XCTAssertEqual(d.audit.examples, 2)
        XCTAssertEqual(d.audit.truncated, 1)
        XCTAssertEqual(d.examples[0].ids.count, 8)
        XCTAssertEqual(d.examples[0].lossMask, [Float](repeating: 1, count: 8))
        XCTAssertEqual(d.examples[1].ids, tok.encode("a") + tok.encode("b") + [2])
        XCTAssertEqual(d.audit.line, "data: 2 examples, \(8 + d.examples[1].ids.count) tokens, \(7 + d.examples[1].ids.count - 1) supervised, 1 truncated, 0 skipped (no supervised token)")
        // shuffle is a pure function of (seed, epoch)
        XCTAssertEqual(d.order(epoch: 3, shuffle: true, seed: 1), d.order(epoch: 3, shuffle: true, seed: 1))
    }
}

/// Conversations rendered with a model's own chat template: the supervised tokens are exactly
/// each assistant reply and the end-of-turn token after it, whatever format the line is in.
final class ChatTemplateDatasetTests: XCTestCase {
    func tokenizer() throws -> Tokenizer {
        try Tokenizer(contentsOf: try Reference.own().file("tokenizer/tokenizer.json"))
    }

    func smolLM2() throws -> ChatFormat {
        let file = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/chat_templates/templates/smollm2-135m-instruct.jinja")
        return try ChatFormat(source: String(contentsOf: file, encoding: .utf8), name: file.lastPathComponent, origin: "test",
                              bosToken: "<|im_start|>", eosToken: "<|im_end|>")
    }

    func supervisedText(_ example: TokenizedExample, _ tok: Tokenizer) -> String {
        tok.decode(zip(example.ids, example.lossMask).filter { $0.1 > 0 }.map(\.0))
    }

    func testTemplateDefaultSystemPromptIsRenderedAndOnlyRepliesAreSupervised() throws {
        let tok = try tokenizer()
        let chat = try smolLM2()
        let line = #"{"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}, {"role": "assistant", "content": "Rome."}]}"#
        let data = try DatasetLoader.load(text: line, name: "d.jsonl", tokenizer: tok, chat: chat)
        let example = data.examples[0]
        XCTAssertEqual(tok.decode(example.ids), "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n<|im_start|>user\nAnd Italy?<|im_end|>\n<|im_start|>assistant\nRome.<|im_end|>\n")
        XCTAssertEqual(supervisedText(example, tok), "Paris.<|im_end|>Rome.<|im_end|>")
        XCTAssertEqual(data.audit.sample, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n⟦Paris.<|im_end|>⟧\n<|im_start|>user\nAnd Italy?<|im_end|>\n<|im_start|>assistant\n⟦Rome.<|im_end|>⟧\n")

        // system_prompt replaces the template's default; ShareGPT and Alpaca lines give the same tokens.
        var options = DatasetOptions()
        options.systemPrompt = "Be brief."
        let sharegpt = #"{"conversations": [{"from": "human", "value": "Capital of France?"}, {"from": "gpt", "value": "Paris."}]}"#
        let alpaca = #"{"instruction": "Capital of France?", "input": "", "output": "Paris."}"#
        let a = try DatasetLoader.load(text: sharegpt, name: "s.jsonl", tokenizer: tok, options: options, chat: chat).examples[0]
        let b = try DatasetLoader.load(text: alpaca, name: "a.jsonl", tokenizer: tok, options: options, chat: chat).examples[0]
        XCTAssertEqual(a, b)
        XCTAssertEqual(tok.decode(a.ids), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n")
        XCTAssertEqual(supervisedText(a, tok), "Paris.<|im_end|>")
    }

    func testTemplateRefusalNamesTheDataLine() throws {
        let tok = try tokenizer()
        let chat = try ChatFormat(source: "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}",
                                  name: "gemma.jinja", origin: "test", bosToken: nil, eosToken: nil)
        let text = "{\"text\": \"fine\"}\n" + #"{"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}"#
        XCTAssertThrowsError(try DatasetLoader.load(text: text, name: "d.jsonl", tokenizer: tok, chat: chat)) { error in
            XCTAssertEqual((error as? LocalizedError)?.errorDescription, "d.jsonl:2: gemma.jinja:1:51: the chat template refused this conversation: System role not supported")
        }
    }
}
