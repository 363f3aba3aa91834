import Foundation
import TensorIO
import Tokenizer

/// The tokenizer between GGUF's `tokenizer.ggml.*` metadata and Hugging Face's tokenizer files.
/// Only byte-level BPE (`tokenizer.ggml.model = gpt2`) is supported in either direction;
/// SentencePiece (`llama`) vocabularies are refused by name.
public enum GGUFTokenizer {
    /// llama.cpp token types (llama-vocab.h `llama_token_type`).
    static let normal = 1, control = 3, userDefined = 4

    /// Pre-tokenizer regexes transformers installs for these `tokenizer.ggml.pre` values
    /// (integrations/gguf/gguf_tokenizer_mapping.py); any other value keeps GPT-2's ByteLevel split.
    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let splits: [String: String] = [
        "llama3": llama3Split, "llama-v3": llama3Split, "llama-bpe": llama3Split, "falcon3": llama3Split, "smaug-bpe": llama3Split,
        "dbrx": llama3Split, "qwen2": qwen2Split, "deepseek-r1-qwen": qwen2Split, "megrez": qwen2Split,
    ]

    // MARK: GGUF -> tokenizer.json, tokenizer_config.json, generation_config.json

    /// Builds the files as transformers' GGUF loader builds its tokenizer (byte-level BPE over the
    /// file's tokens and merges; control tokens special, user-defined tokens added; the split
    /// regex of a known `tokenizer.ggml.pre`), so both encode alike.
    /// Refuses, before any tensor is read, a vocabulary that is not byte-level BPE.
    static func checkSupported(_ file: GGUFFile) throws {
        let model = file.metadata["tokenizer.ggml.model"]?.string ?? "(none)"
        guard model == "gpt2" else {
            throw GGUFError.unsupported(file: file.url.path, what: "tokenizer.ggml.model '\(model)'" + (model == "llama" ? " (a SentencePiece vocabulary)" : ""),
                                        hint: "qlora-run reads byte-level BPE (gpt2) tokenizers from GGUF; load the model's Hugging Face directory instead")
        }
    }

    static func writeHuggingFaceFiles(from file: GGUFFile, config: ModelConfig, to directory: URL) throws {
        let path = file.url.path, m = file.metadata
        try checkSupported(file)
        guard let tokens = m["tokenizer.ggml.tokens"]?.array?.compactMap(\.string), !tokens.isEmpty else {
            throw GGUFError.missingMetadata(file: path, key: "tokenizer.ggml.tokens")
        }
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        let merges = m["tokenizer.ggml.merges"]?.array?.compactMap(\.string) ?? []
        var vocab: [String: Int] = [:]
        for (id, token) in tokens.enumerated() {
            vocab[ByteLevelAlphabet.isSpelled(token) ? token : ByteLevelAlphabet.spell(token)] = id
        }
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() where id < types.count {
            let special = types[id] == control && ByteLevelAlphabet.isSpelled(token)
            guard special || (types[id] == userDefined && vocab[token] != nil) else { continue }
            added.append(["id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": special])
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        var pre: [String: Any] = byteLevel
        if let split = m["tokenizer.ggml.pre"]?.string.flatMap({ splits[$0] }) {
            pre = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": split], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]]
        }
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": pre, "post_processor": NSNull(), "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": "", "end_of_word_suffix": "",
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges] as [String: Any],
        ]
        try write(tokenizer, to: directory.appendingPathComponent("tokenizer.json"))

        func token(_ key: String) -> Any {
            guard let id = m["tokenizer.ggml.\(key)"]?.int, id >= 0, id < tokens.count else { return NSNull() }
            return tokens[id]
        }
        var tokenizerConfig: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": token("bos_token_id"), "eos_token": token("eos_token_id"),
            "unk_token": token("unknown_token_id"), "pad_token": token("padding_token_id"),
            "add_bos_token": m["tokenizer.ggml.add_bos_token"]?.bool ?? false, "add_eos_token": m["tokenizer.ggml.add_eos_token"]?.bool ?? false,
            "clean_up_tokenization_spaces": false, "model_max_length": config.maxPositionEmbeddings,
        ]
        if let template = m["tokenizer.chat_template"]?.string { tokenizerConfig["chat_template"] = template }
        try write(tokenizerConfig, to: directory.appendingPathComponent("tokenizer_config.json"))
        var generation: [String: Any] = [:]
        if let b = config.bosTokenId { generation["bos_token_id"] = b }
        if let e = config.eosTokenId { generation["eos_token_id"] = e }
        if let p = config.padTokenId { generation["pad_token_id"] = p }
        try write(generation, to: directory.appendingPathComponent("generation_config.json"))
    }

    /// Sorted keys, so the same file gives the same bytes.
    static func write(_ object: [String: Any], to url: URL) throws {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        try data.write(to: url, options: .atomic)
    }

    // MARK: tokenizer.json (+ tokenizer_config.json, chat template) -> GGUF metadata

    /// Sets `tokenizer.ggml.*` and `tokenizer.chat_template` from a checkpoint directory, as
    /// convert_hf_to_gguf.py does for a byte-level BPE vocabulary: `vocabSize` tokens (ids the
    /// tokenizer leaves unused are `[PAD<id>]`, user-defined), token types, merges "a b",
    /// the pre-tokenizer name, special-token ids and `add_bos_token`. Returns warnings.
    public static func addMetadata(fromDirectory directory: URL, config: ModelConfig, vocabSize: Int, to w: inout GGUFWriter,
                                   pre recorded: String? = nil) throws -> [String] {
        let file = directory.appendingPathComponent("tokenizer.json")
        guard let data = FileManager.default.contents(atPath: file.path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = json["model"] as? [String: Any] else {
            throw GGUFError.unsupported(file: file.path, what: "a checkpoint without a readable tokenizer.json", hint: "GGUF files carry the tokenizer; save it with tokenizer.save_pretrained")
        }
        let pre = json["pre_tokenizer"] as? [String: Any]
        guard model["type"] as? String == "BPE", let pre, containsByteLevel(pre) else {
            throw GGUFError.unsupported(file: file.path, what: "a tokenizer that is not byte-level BPE (model \(model["type"] as? String ?? "?"))",
                                        hint: "GGUF export writes gpt2-style (byte-level BPE) vocabularies only")
        }
        var warnings: [String] = []
        let vocab = model["vocab"] as? [String: Int] ?? [:]
        var byId = [String?](repeating: nil, count: vocabSize)
        for (token, id) in vocab where id >= 0 && id < vocabSize { byId[id] = token }
        var types = [Int](repeating: normal, count: vocabSize)
        for entry in json["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = entry["id"] as? Int, let content = entry["content"] as? String, id >= 0, id < vocabSize else { continue }
            byId[id] = content
            types[id] = (entry["special"] as? Bool ?? false) ? control : userDefined
        }
        let tokens = byId.enumerated().map { id, token -> String in
            if token == nil { types[id] = userDefined }
            return token ?? "[PAD\(id)]"
        }
        let merges: [String] = (model["merges"] as? [Any] ?? []).compactMap { merge in
            if let s = merge as? String { return s }
            if let pair = merge as? [String], pair.count == 2 { return pair[0] + " " + pair[1] }
            return nil
        }
        let preName = recorded ?? preTokenizerName(pre)
        if preName == "default" && !merges.isEmpty { warnings.append("tokenizer: pre-tokenizer not recognised; written as tokenizer.ggml.pre = default (llama.cpp then splits like GPT-2)") }
        w.set("tokenizer.ggml.model", string: "gpt2")
        w.set("tokenizer.ggml.pre", string: preName)
        w.set("tokenizer.ggml.tokens", strings: tokens)
        w.set("tokenizer.ggml.token_type", int32s: types)
        w.set("tokenizer.ggml.merges", strings: merges)

        let tokenizerConfig = (FileManager.default.contents(atPath: directory.appendingPathComponent("tokenizer_config.json").path))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        func id(_ key: String) -> Int? {
            let value = tokenizerConfig[key]
            let text = value as? String ?? (value as? [String: Any])?["content"] as? String
            return text.flatMap { t in tokens.firstIndex(of: t) }
        }
        if let b = config.bosTokenId ?? id("bos_token") { w.set("tokenizer.ggml.bos_token_id", uint32: b) }
        if let e = config.eosTokenId ?? id("eos_token") { w.set("tokenizer.ggml.eos_token_id", uint32: e) }
        if let u = id("unk_token") { w.set("tokenizer.ggml.unknown_token_id", uint32: u) }
        if let p = config.padTokenId ?? id("pad_token") { w.set("tokenizer.ggml.padding_token_id", uint32: p) }
        w.set("tokenizer.ggml.add_bos_token", .bool(tokenizerConfig["add_bos_token"] as? Bool ?? false))
        // The checkpoint's own template, found as training finds it (chat_template.jinja, else tokenizer_config's).
        if let template = ChatFormat.checkpointTemplate(directory: directory, configTemplate: Tokenizer.chatTemplate(in: tokenizerConfig)) {
            w.set("tokenizer.chat_template", string: template.source)
        }
        return warnings
    }

    static func containsByteLevel(_ pre: [String: Any]) -> Bool {
        if pre["type"] as? String == "ByteLevel" { return true }
        return (pre["pretokenizers"] as? [[String: Any]] ?? []).contains(where: containsByteLevel)
    }

    /// llama.cpp's name for the split this pre-tokenizer performs (convert_hf_to_gguf.py recognises
    /// it by hashing sample encodings; here the structure itself is matched).
    static func preTokenizerName(_ pre: [String: Any]) -> String {
        let parts = pre["type"] as? String == "Sequence" ? pre["pretokenizers"] as? [[String: Any]] ?? [] : [pre]
        let kinds = parts.compactMap { $0["type"] as? String }
        if kinds == ["ByteLevel"], parts[0]["use_regex"] as? Bool ?? true { return "gpt-2" }
        if kinds == ["Digits", "ByteLevel"], parts[0]["individual_digits"] as? Bool == true { return "smollm" }
        if kinds.first == "Split", let regex = (parts[0]["pattern"] as? [String: Any])?["Regex"] as? String {
            if regex == llama3Split { return "llama-bpe" }
            if regex == qwen2Split { return "qwen2" }
        }
        return "default"
    }
}
