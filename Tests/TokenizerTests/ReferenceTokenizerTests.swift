import Foundation
import XCTest
import TestSupport
@testable import Tokenizer

/// Parity with HF `tokenizers` 0.23.3 on the reference kit (../shared/reference/tokenizer).
final class ReferenceTokenizerTests: XCTestCase {
    struct Case: Decodable { let category: String; let text: String; let ids: [Int32] }

    func referenceTokenizer() throws -> Tokenizer {
        guard let url = Reference.file("tokenizer/tokenizer.json") else { throw Reference.missing() }
        return try Tokenizer(contentsOf: url)
    }

    func referenceCases() throws -> [Case] {
        guard let url = Reference.file("tokenizer/tokenizer_cases.jsonl") else { throw Reference.missing() }
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
    }

    func testAll300CasesEncodeAndDecodeExactly() throws {
        let tokenizer = try referenceTokenizer()
        let cases = try referenceCases()
        XCTAssertEqual(cases.count, 300)
        var encodeFailures = [String: Int](), decodeFailures = [String: Int](), firstFailure: String?
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                encodeFailures[c.category, default: 0] += 1
                if firstFailure == nil { firstFailure = "encode \(c.category) \(c.text.debugDescription): got \(ids), want \(c.ids)" }
            }
            let decoded = tokenizer.decode(c.ids)
            if decoded != c.text {
                decodeFailures[c.category, default: 0] += 1
                if firstFailure == nil { firstFailure = "decode \(c.category): got \(decoded.debugDescription), want \(c.text.debugDescription)" }
            }
        }
        XCTAssertEqual(encodeFailures, [:], "encode failures per category; first: \(firstFailure ?? "-")")
        XCTAssertEqual(decodeFailures, [:], "decode failures per category; first: \(firstFailure ?? "-")")
    }

    /// The hand-written GPT-2 scanner against NSRegularExpression running the same pattern (naive oracle).
    func testGPT2ScannerMatchesRegexOracle() throws {
        let regex = try NSRegularExpression(pattern: GPT2Splitter.pattern)
        var texts = try referenceCases().map(\.text)
        texts += ["a  b", "x \t\ny", "  ", "it's 'twas we'll 'LL", "\u{00A0}\u{00A0}a", "١٢٣ ⅷ ½", "e\u{0301}x", "🇯🇵👩‍👩‍👧", "a\r\n\r\n b"]
        for text in texts {
            let oracle = PreTokenizer.matches(of: regex, in: text).map { $0.0 }
            XCTAssertEqual(PreTokenizer.gpt2Pieces(text), oracle, "text \(text.debugDescription)")
        }
    }

    func testChatTemplateCases() throws {
        guard let url = Reference.file("tokenizer/chat_template_cases.json") else { throw Reference.missing() }
        struct Message: Decodable { let role: String; let content: String }
        struct ChatCase: Decodable {
            let messages: [Message]; let add_generation_prompt: Bool; let text: String; let ids: [Int32]
        }
        let cases = try JSONDecoder().decode([ChatCase].self, from: Data(contentsOf: url))
        XCTAssertGreaterThan(cases.count, 1)
        let tokenizer = try referenceTokenizer()
        for c in cases {
            let text = ChatTemplate.chatML(messages: c.messages.map { ($0.role, $0.content) }, addGenerationPrompt: c.add_generation_prompt)
            XCTAssertEqual(text, c.text)
            XCTAssertEqual(tokenizer.encode(text), c.ids)
            XCTAssertEqual(tokenizer.decode(c.ids), c.text)
        }
    }

    func testConfigAndSpecialTokens() throws {
        let tokenizer = try referenceTokenizer()
        XCTAssertEqual(tokenizer.vocabularySize, 512)
        XCTAssertEqual(tokenizer.bosToken, "<|im_start|>")
        XCTAssertEqual(tokenizer.eosToken, "<|im_end|>")
        XCTAssertEqual(tokenizer.padToken, "<|endoftext|>")
        XCTAssertEqual(tokenizer.unkToken, "<|endoftext|>")
        XCTAssertEqual(tokenizer.id(of: "<|im_start|>"), 1)
        XCTAssertEqual(tokenizer.eosTokenId, 2)
        XCTAssertEqual(tokenizer.id(of: "Ġt"), 260)
        XCTAssertNil(tokenizer.id(of: "<|im_start"))
        XCTAssertEqual(tokenizer.chatTemplate, ByteLevelTokenizerFile.chatMLTemplate)
        // No post-processor in the reference: addSpecialTokens changes nothing.
        XCTAssertEqual(tokenizer.encode("Hello world", addSpecialTokens: true), [42, 71, 285, 81, 261, 266, 298])
        let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
        XCTAssertEqual(ids.first, 1)
        XCTAssertEqual(ids.last, 2)
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "user\nhi")
        // Invalid UTF-8 from a lone byte token decodes to U+FFFD, like from_utf8_lossy.
        let firstByteOfE9 = tokenizer.id(of: ByteLevel.symbol(0xE9))!
        XCTAssertEqual(tokenizer.decode([42, firstByteOfE9, 42]), "H\u{FFFD}H")
    }

    /// Prints throughput when QLORA_TOKENIZER_BENCH is set (no timed assertion; run in release).
    func testBenchmarkThroughput() throws {
        guard ProcessInfo.processInfo.environment["QLORA_TOKENIZER_BENCH"] != nil else { throw XCTSkip("set QLORA_TOKENIZER_BENCH=1 to measure") }
        guard let url = Reference.file("tokenizer/tokenizer.json") else { throw Reference.missing() }
        let corpus = try referenceCases().map(\.text).joined(separator: "\n")
        var text = ""
        while text.utf8.count < 5_000_000 { text += corpus + "\n" }
        for run in 1...3 {
            let fresh = try Tokenizer(contentsOf: url)
            let speed = TokenizerBenchmark.megabytesPerSecond(tokenizer: fresh, text: text)
            print("tokenizer bench run \(run): \(String(format: "%.1f", speed)) MB/s on \(text.utf8.count) bytes (fresh tokenizer)")
        }
    }
}
