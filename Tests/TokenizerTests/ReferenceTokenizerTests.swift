import Foundation
import XCTest
import TestSupport
@testable import Tokenizer

/// Parity with HF `tokenizers` 0.23.3 on every reference kit's tokenizer/ (own, and shared when present).
final class ReferenceTokenizerTests: XCTestCase {
    struct Case: Decodable { let category: String; let text: String; let ids: [Int32] }

    func referenceTokenizer(_ kit: ReferenceKit) throws -> Tokenizer {
        try Tokenizer(contentsOf: kit.file("tokenizer/tokenizer.json"))
    }

    func referenceCases(_ kit: ReferenceKit) throws -> [Case] {
        let text = try String(contentsOf: kit.file("tokenizer/tokenizer_cases.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
    }

    func testAll300CasesEncodeAndDecodeExactly() throws {
        for kit in try Reference.kits() {
            let tokenizer = try referenceTokenizer(kit)
            let cases = try referenceCases(kit)
            XCTAssertEqual(cases.count, 300, "\(kit)")
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
            XCTAssertEqual(encodeFailures, [:], "encode failures per category \(kit); first: \(firstFailure ?? "-")")
            XCTAssertEqual(decodeFailures, [:], "decode failures per category \(kit); first: \(firstFailure ?? "-")")
        }
    }

    /// The hand-written GPT-2 scanner against NSRegularExpression running the same pattern (naive oracle).
    func testGPT2ScannerMatchesRegexOracle() throws {
        let regex = try NSRegularExpression(pattern: GPT2Splitter.pattern)
        var texts = try Reference.kits().flatMap { try referenceCases($0).map(\.text) }
        texts += ["a  b", "x \t\ny", "  ", "it's 'twas we'll 'LL", "\u{00A0}\u{00A0}a", "١٢٣ ⅷ ½", "e\u{0301}x", "🇯🇵👩‍👩‍👧", "a\r\n\r\n b"]
        for text in texts {
            let oracle = PreTokenizer.matches(of: regex, in: text).map { $0.0 }
            XCTAssertEqual(PreTokenizer.gpt2Pieces(text), oracle, "text \(text.debugDescription)")
        }
    }

    func testChatTemplateCases() throws {
        struct Message: Decodable { let role: String; let content: String }
        struct ChatCase: Decodable {
            let messages: [Message]; let add_generation_prompt: Bool; let text: String; let ids: [Int32]
        }
        for kit in try Reference.kits() {
            let cases = try JSONDecoder().decode([ChatCase].self, from: Data(contentsOf: kit.file("tokenizer/chat_template_cases.json")))
            XCTAssertGreaterThan(cases.count, 1, "\(kit)")
            let tokenizer = try referenceTokenizer(kit)
            for c in cases {
                let text = ChatTemplate.chatML(messages: c.messages.map { ($0.role, $0.content) }, addGenerationPrompt: c.add_generation_prompt)
                XCTAssertEqual(text, c.text, "\(kit)")
                XCTAssertEqual(tokenizer.encode(text), c.ids, "\(c.text.debugDescription) \(kit)")
                XCTAssertEqual(tokenizer.decode(c.ids), c.text, "\(kit)")
            }
        }
    }

    func testConfigAndSpecialTokens() throws {
        for kit in try Reference.kits() {
            let tokenizer = try referenceTokenizer(kit)
            XCTAssertEqual(tokenizer.vocabularySize, 512, "\(kit)")
            XCTAssertEqual(tokenizer.bosToken, "<|im_start|>", "\(kit)")
            XCTAssertEqual(tokenizer.eosToken, "<|im_end|>", "\(kit)")
            XCTAssertEqual(tokenizer.padToken, "<|endoftext|>", "\(kit)")
            XCTAssertEqual(tokenizer.unkToken, "<|endoftext|>", "\(kit)")
            XCTAssertEqual(tokenizer.id(of: "<|im_start|>"), 1, "\(kit)")
            XCTAssertEqual(tokenizer.eosTokenId, 2, "\(kit)")
            // A merge's id, from each kit's own training corpus.
            XCTAssertEqual(tokenizer.id(of: "Ġt"), kit.isShared ? 260 : 266, "\(kit)")
            XCTAssertNil(tokenizer.id(of: "<|im_start"), "\(kit)")
            XCTAssertEqual(tokenizer.chatTemplate, ByteLevelTokenizerFile.chatMLTemplate, "\(kit)")
            // No post-processor in the reference: addSpecialTokens changes nothing.
            let hello = try XCTUnwrap(try referenceCases(kit).first { $0.text == "Hello world" }, "\(kit)")
            if kit.isShared { XCTAssertEqual(hello.ids, [42, 71, 285, 81, 261, 266, 298], "\(kit)") }
            XCTAssertEqual(tokenizer.encode("Hello world", addSpecialTokens: true), hello.ids, "\(kit)")
            let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
            XCTAssertEqual(ids.first, 1, "\(kit)")
            XCTAssertEqual(ids.last, 2, "\(kit)")
            XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "user\nhi", "\(kit)")
            // Invalid UTF-8 from a lone byte token decodes to U+FFFD, like from_utf8_lossy.
            let firstByteOfE9 = try XCTUnwrap(tokenizer.id(of: ByteLevel.symbol(0xE9)), "\(kit)")
            XCTAssertEqual(tokenizer.decode([42, firstByteOfE9, 42]), "H\u{FFFD}H", "\(kit)")
        }
    }

    /// Prints throughput when QLORA_TOKENIZER_BENCH is set (no timed assertion; run in release).
    func testBenchmarkThroughput() throws {
        guard ProcessInfo.processInfo.environment["QLORA_TOKENIZER_BENCH"] != nil else { throw XCTSkip("set QLORA_TOKENIZER_BENCH=1 to measure") }
        let kit = try Reference.own()
        let url = kit.file("tokenizer/tokenizer.json")
        let corpus = try referenceCases(kit).map(\.text).joined(separator: "\n")
        var text = ""
        while text.utf8.count < 5_000_000 { text += corpus + "\n" }
        for run in 1...3 {
            let fresh = try Tokenizer(contentsOf: url)
            let speed = TokenizerBenchmark.megabytesPerSecond(tokenizer: fresh, text: text)
            print("tokenizer bench run \(run): \(String(format: "%.1f", speed)) MB/s on \(text.utf8.count) bytes (fresh tokenizer)")
        }
    }
}
