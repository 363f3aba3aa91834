import Foundation
import PipelineCore

/// The tokenizer written next to an `init:` checkpoint: Hugging Face tokenizer.json with a BPE model
/// of the 256 byte symbols and no merges (so every byte is one token), the ChatML specials first
/// (`<|endoftext|>` 0, `<|im_start|>` 1, `<|im_end|>` 2, as in the reference kit), bytes at 3...258,
/// a ByteLevel pre-tokenizer without the GPT-2 regex and a ByteLevel decoder. Loadable by HF `tokenizers`.
enum ByteLevelTokenizerFiles {
    static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.
    static func byteSymbols() -> [String] {
        var printable = Set<Int>(33...126); printable.formUnion(161...172); printable.formUnion(174...255)
        var next = 256
        return (0..<256).map { b in
            if printable.contains(b) { return String(UnicodeScalar(UInt8(b))) }
            defer { next += 1 }
            return String(Character(UnicodeScalar(next)!))
        }
    }

    static func tokenizerJSON() -> JSONValue {
        var vocab: [String: JSONValue] = [:]
        for (i, s) in specials.enumerated() { vocab[s] = .integer(Int64(i)) }
        for (i, s) in byteSymbols().enumerated() { vocab[s] = .integer(Int64(i + specials.count)) }
        let added: [JSONValue] = specials.enumerated().map { i, s in
            .object(["id": .integer(Int64(i)), "content": .string(s), "single_word": .bool(false), "lstrip": .bool(false),
                     "rstrip": .bool(false), "normalized": .bool(false), "special": .bool(true)])
        }
        let byteLevel: JSONValue = .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(false),
                                            "trim_offsets": .bool(true), "use_regex": .bool(false)])
        return .object([
            "version": .string("1.0"), "truncation": .null, "padding": .null,
            "added_tokens": .array(added), "normalizer": .null,
            "pre_tokenizer": byteLevel, "post_processor": .null, "decoder": byteLevel,
            "model": .object(["type": .string("BPE"), "dropout": .null, "unk_token": .null,
                              "continuing_subword_prefix": .null, "end_of_word_suffix": .null,
                              "fuse_unk": .bool(false), "byte_fallback": .bool(false), "ignore_merges": .bool(false),
                              "vocab": .object(vocab), "merges": .array([])]),
        ])
    }

    static let chatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    static func write(to directory: URL) throws {
        try ArtifactFiles.writeJSON(tokenizerJSON(), to: directory.appendingPathComponent("tokenizer.json"))
        try ArtifactFiles.writeJSON(.object([
            "bos_token": .string("<|im_start|>"), "eos_token": .string("<|im_end|>"),
            "pad_token": .string("<|endoftext|>"), "unk_token": .string("<|endoftext|>"),
            "model_max_length": .integer(512), "chat_template": .string(chatTemplate),
            "tokenizer_class": .string("PreTrainedTokenizerFast"),
        ]), to: directory.appendingPathComponent("tokenizer_config.json"))
    }
}
