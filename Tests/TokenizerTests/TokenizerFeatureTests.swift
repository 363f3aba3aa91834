import Foundation
import XCTest
import TestSupport
@testable import Tokenizer

/// Features the reference tokenizer does not exercise, on small hand-made tokenizer.json files whose
/// expected ids are worked out by hand in the comments.
final class TokenizerFeatureTests: XCTestCase {
    func tokenizer(_ json: String) throws -> Tokenizer { try Tokenizer(data: Data(json.utf8), name: "t.json") }

    func bpe(merges: String, ignoreMerges: Bool = false, preTokenizer: String = "{\"type\": \"WhitespaceSplit\"}") -> String {
        """
        {"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": \(preTokenizer), "post_processor": null, "decoder": null,
         "model": {"type": "BPE", "unk_token": null, "ignore_merges": \(ignoreMerges),
                   "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5}, "merges": \(merges)}}
        """
    }

    func testMergesInStringAndPairFormAgree() throws {
        // "abc": (a,b) rank 0 -> ab c; (ab,c) rank 1 -> abc. "cab": c a b -> c ab (no (c,ab) merge).
        let stringForm = try tokenizer(bpe(merges: "[\"a b\", \"ab c\"]"))
        let pairForm = try tokenizer(bpe(merges: "[[\"a\", \"b\"], [\"ab\", \"c\"]]"))
        XCTAssertEqual(stringForm.encode("abc ab cab"), [4, 3, 2, 3])
        XCTAssertEqual(pairForm.encode("abc ab cab"), [4, 3, 2, 3])
        // No decoder: HF joins tokens with single spaces.
        XCTAssertEqual(pairForm.decode([4, 3, 2, 3]), "abc ab c ab")
    }

    func testLowestRankMergesFirst() throws {
        // (b,c) has rank 0, (a,b) rank 1: a b c -> a bc, and (a,bc) has no merge.
        XCTAssertEqual(try tokenizer(bpe(merges: "[\"b c\", \"a b\"]")).encode("abc"), [0, 5])
    }

    func testIgnoreMergesTakesWholeWordFromVocab() throws {
        XCTAssertEqual(try tokenizer(bpe(merges: "[\"a b\"]", ignoreMerges: false)).encode("abc"), [3, 2])
        XCTAssertEqual(try tokenizer(bpe(merges: "[\"a b\"]", ignoreMerges: true)).encode("abc"), [4])
    }

    /// Llama-2 style: Prepend/Replace normalizer, byte fallback, unk, BOS template, SentencePiece decoders.
    let llamaStyle = """
    {"version": "1.0",
     "added_tokens": [{"id": 0, "content": "<unk>", "special": true, "normalized": false},
                      {"id": 1, "content": "<s>", "special": true, "normalized": false},
                      {"id": 2, "content": "</s>", "special": true, "normalized": false}],
     "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
     "pre_tokenizer": null,
     "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
     "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                 {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
     "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
               "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "h": 4, "i": 5, "▁h": 6, "▁hi": 7, "<0xC3>": 8, "<0xA9>": 9},
               "merges": ["▁ h", "▁h i"]}}
    """

    func testByteFallbackTemplateAndSentencePieceDecoders() throws {
        let t = try tokenizer(llamaStyle)
        // "▁hi▁é": ▁ h i ▁ <0xC3> <0xA9> -> ▁h ... -> ▁hi ▁ <0xC3> <0xA9>
        XCTAssertEqual(t.encode("hi é"), [7, 3, 8, 9])
        XCTAssertEqual(t.encode("hi é", addSpecialTokens: true), [1, 7, 3, 8, 9])
        XCTAssertEqual(t.decode([1, 7, 3, 8, 9], skipSpecialTokens: true), "hi é")
        XCTAssertEqual(t.decode([1, 7, 3, 8, 9]), "<s> hi é")
        // 'z' and 'q' have no token nor byte token: one fused <unk>.
        XCTAssertEqual(t.encode("zq"), [3, 0])
        // A lone continuation byte decodes to one U+FFFD per byte token.
        XCTAssertEqual(t.decode([7, 9]), "hi\u{FFFD}")
        // Special tokens in text are matched before normalization.
        XCTAssertEqual(t.encode("hi</s>"), [7, 2])
    }

    /// Split behaviours, with the examples of the HF tokenizers documentation (pattern "-").
    func testSplitBehaviours() throws {
        let expected: [(String, [String])] = [
            ("Removed", ["the", "final", "countdown"]),
            ("Isolated", ["the", "-", "final", "-", "-", "countdown"]),
            ("MergedWithPrevious", ["the-", "final-", "-", "countdown"]),
            ("MergedWithNext", ["the", "-final", "-", "-countdown"]),
            ("Contiguous", ["the", "-", "final", "--", "countdown"]),
        ]
        for (behavior, pieces) in expected {
            let json = "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"\(behavior)\", \"invert\": false}"
            let pre = try PreTokenizer(JSONFields(file: "t.json", object: JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any], path: "pre_tokenizer"))
            XCTAssertEqual(pre.apply(["the-final--countdown"], isFirstSegment: true), pieces, behavior)
        }
        // invert: the matches are the words, "-" runs the gaps.
        let json = "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[a-z]+\"}, \"behavior\": \"Removed\", \"invert\": true}"
        let pre = try PreTokenizer(JSONFields(file: "t.json", object: JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any], path: "pre_tokenizer"))
        XCTAssertEqual(pre.apply(["the-final--countdown"], isFirstSegment: true), ["the", "final", "countdown"])
    }

    func testSplitWithGPT2PatternUsesScannerAndMatchesByteLevel() throws {
        for kit in try Reference.kits() {
            let url = kit.file("tokenizer/tokenizer.json")
            var root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": GPT2Splitter.pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]]
            let sequence = try Tokenizer(data: JSONSerialization.data(withJSONObject: root), name: "seq.json")
            let reference = try Tokenizer(contentsOf: url)
            for text in ["Hello world", "it's  2024!\n\tdone", "中文 and 😀👍🏽", "<|im_start|>user\nhi<|im_end|>"] {
                XCTAssertEqual(sequence.encode(text), reference.encode(text), "\(text) \(kit)")
            }
        }
    }

    func testAddedTokenNearMissesAndLongestMatch() throws {
        let json = """
        {"added_tokens": [{"id": 6, "content": "<a>", "special": true, "normalized": false},
                          {"id": 7, "content": "<a><b>", "special": true, "normalized": false},
                          {"id": 8, "content": "ab", "special": false, "normalized": true, "single_word": true}],
         "pre_tokenizer": {"type": "WhitespaceSplit"},
         "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "<": 3, ">": 4, "ab": 5}, "merges": []}}
        """
        let t = try tokenizer(json)
        XCTAssertEqual(t.encode("<a><b>"), [7])            // longest wins
        XCTAssertEqual(t.encode("<a>b"), [6, 1])
        XCTAssertEqual(t.encode("<a"), [3, 0])               // near miss stays text
        XCTAssertEqual(t.encode("ab c"), [8, 2])             // single word matches
        XCTAssertEqual(t.encode("cab"), [2, 0, 1])           // not a single word: plain BPE (no merges)
        XCTAssertEqual(t.vocabularySize, 9)
        XCTAssertEqual(t.id(of: "<a><b>"), 7)
    }

    func testByteLevelTokenizerFileRoundTrips() throws {
        let dir = try makeTemporaryDirectory("tokenizer-file")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        try ByteLevelTokenizerFile.json().write(to: url)
        try ByteLevelTokenizerFile.configJSON().write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let t = try Tokenizer(contentsOf: url)
        XCTAssertEqual(t.vocabularySize, 259)
        XCTAssertEqual([t.id(of: "<|endoftext|>"), t.id(of: "<|im_start|>"), t.id(of: "<|im_end|>")], [0, 1, 2])
        XCTAssertEqual(t.bosToken, "<|im_start|>"); XCTAssertEqual(t.eosToken, "<|im_end|>"); XCTAssertEqual(t.padToken, "<|endoftext|>")
        XCTAssertEqual(t.id(of: "!"), 3)      // first byte symbol in code-point order, as in the reference
        XCTAssertEqual(t.id(of: "Ń"), 258)    // last
        for kit in try Reference.kits() {
            let ref = try Tokenizer(contentsOf: kit.file("tokenizer/tokenizer.json"))
            for b in 0..<256 { XCTAssertEqual(t.id(of: ByteLevel.symbol(UInt8(b))), ref.id(of: ByteLevel.symbol(UInt8(b))), "byte \(b) \(kit)") }
        }
        let text = ChatTemplate.chatML(messages: [("user", "héllo 🌍\r\n\ttabs  spaces"), ("assistant", "ok<|im_start")], addGenerationPrompt: true)
        let ids = t.encode(text)
        XCTAssertEqual(ids.filter { $0 < 3 }, [1, 2, 1, 2, 1])
        XCTAssertEqual(ids.count, text.utf8.count - 5 * 12 + 5 + 4)   // 3 <|im_start|> (12 bytes) + 2 <|im_end|> (10 bytes)
        XCTAssertEqual(t.decode(ids), text)
        XCTAssertEqual(t.decode(ids, skipSpecialTokens: true), text.replacingOccurrences(of: "<|im_start|>", with: "").replacingOccurrences(of: "<|im_end|>", with: ""))
    }

    // MARK: errors

    func assertError(_ json: String, _ expected: TokenizerError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try tokenizer(json), file: file, line: line) { error in
            XCTAssertEqual(error as? TokenizerError, expected, file: file, line: line)
        }
    }

    func testMissingModelIsAClearError() {
        assertError("{\"added_tokens\": [], \"pre_tokenizer\": null}", .missingField(file: "t.json", field: "model"))
        XCTAssertEqual(TokenizerError.missingField(file: "t.json", field: "model").localizedDescription,
                       "t.json: missing required field `model`; expected a tokenizer.json written by the Hugging Face tokenizers library")
        assertError("{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", .missingField(file: "t.json", field: "model.merges"))
    }

    func testBadMergesAreClearErrors() {
        assertError(bpe(merges: "[\"a x\"]"), .badMerge(file: "t.json", index: 0, merge: "\"a x\"", reason: "token \"x\" is not in model.vocab"))
        XCTAssertEqual(TokenizerError.badMerge(file: "t.json", index: 0, merge: "\"a x\"", reason: "token \"x\" is not in model.vocab").localizedDescription,
                       "t.json: model.merges[0] \"a x\": token \"x\" is not in model.vocab")
        assertError(bpe(merges: "[\"a b\", \"a b c\"]"), .badMerge(file: "t.json", index: 1, merge: "\"a b c\"", reason: "expected two tokens separated by one space"))
        assertError(bpe(merges: "[[\"c\", \"a\"]]"), .badMerge(file: "t.json", index: 0, merge: "[\"c\", \"a\"]", reason: "merged token \"ca\" is not in model.vocab"))
        assertError(bpe(merges: "[42]"), .badMerge(file: "t.json", index: 0, merge: "42", reason: "expected \"left right\" or [\"left\", \"right\"]"))
    }

    func testUnsupportedFeaturesNameTheFeature() {
        let feature = TokenizerError.unsupported(file: "t.json", feature: "normalizer type \"BertNormalizer\"")
        XCTAssertEqual(feature.localizedDescription,
                       "t.json: unsupported tokenizer feature: normalizer type \"BertNormalizer\"; qlora-run supports BPE models with ByteLevel, Split, Metaspace and Whitespace pre-tokenizers")
        assertError("{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {}}", feature)
        assertError("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\"}]}, \"model\": {}}",
                    .unsupported(file: "t.json", feature: "pre_tokenizer.pretokenizers[0] type \"Digits\""))
        assertError("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
                    .unsupported(file: "t.json", feature: "model type \"WordPiece\" (only BPE models are supported)"))
        assertError("{\"model\": {\"type\": \"BPE\", \"continuing_subword_prefix\": \"##\", \"vocab\": {}, \"merges\": []}}",
                    .unsupported(file: "t.json", feature: "model continuing_subword_prefix \"##\""))
        assertError("{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {}}", .unsupported(file: "t.json", feature: "decoder type \"WordPiece\""))
    }

    func testMalformedFilesAreErrorsNotCrashes() throws {
        XCTAssertThrowsError(try tokenizer("{\"model\": ")) { error in
            guard case .invalidJSON(let file, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "t.json")
            XCTAssertTrue(error.localizedDescription.hasPrefix("t.json: invalid JSON ("), error.localizedDescription)
        }
        assertError("[1, 2]", .invalidJSON(file: "t.json", reason: "the top level is not an object"))
        assertError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
                    .invalidField(file: "t.json", field: "model.vocab[\"a\"]", expected: "a non-negative integer id"))
        assertError("{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", .invalidField(file: "t.json", field: "model.vocab", expected: "an object"))
        assertError("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}, \"model\": {}}",
                    .invalidRegex(file: "t.json", field: "pre_tokenizer.pattern", pattern: "(", reason: "not a valid ICU regular expression"))
        XCTAssertEqual(TokenizerError.invalidRegex(file: "t.json", field: "pre_tokenizer.pattern", pattern: "(", reason: "not a valid ICU regular expression").localizedDescription,
                       "t.json: `pre_tokenizer.pattern` regex ( does not compile: not a valid ICU regular expression")
        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer.json")
        XCTAssertThrowsError(try Tokenizer(contentsOf: missing)) { error in
            guard case .unreadable(let file, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "/nonexistent/tokenizer.json")
        }
    }
}
