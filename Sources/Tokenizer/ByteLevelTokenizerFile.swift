import Foundation

/// Writes a minimal byte-level BPE tokenizer.json (the init-checkpoint stage's tokenizer): the special
/// tokens first (ids 0..<k), then the 256 GPT-2 byte symbols in code-point order (ids k..<k+256, the
/// same layout as the reference tokenizer), no merges. Every text round-trips exactly.
public enum ByteLevelTokenizerFile {
    public static let chatMLTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    public static func json(specialTokens: [String] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) -> Data {
        var s = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["
        for (id, token) in specialTokens.enumerated() {
            s += id == 0 ? "\n" : ",\n"
            s += "    {\"id\": \(id), \"content\": \(quoted(token)), \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
        }
        s += "\n  ],\n  \"normalizer\": null,\n"
        s += "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n"
        s += "  \"post_processor\": null,\n"
        s += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n"
        s += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
        s += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
        s += "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {"
        var entries = specialTokens
        let specials = Set(specialTokens)
        entries += ByteLevel.byteToScalar.sorted().map { String(Unicode.Scalar($0)!) }.filter { !specials.contains($0) }
        for (id, token) in entries.enumerated() {
            s += id == 0 ? "\n" : ",\n"
            s += "      \(quoted(token)): \(id)"
        }
        s += "\n    },\n    \"merges\": []\n  }\n}\n"
        return Data(s.utf8)
    }

    /// tokenizer_config.json to go with `json()`: ChatML template, bos `<|im_start|>`, eos `<|im_end|>`,
    /// pad/unk `<|endoftext|>` (like the reference kit's).
    public static func configJSON(bosToken: String = "<|im_start|>", eosToken: String = "<|im_end|>",
                                  padToken: String = "<|endoftext|>", modelMaxLength: Int = 2048) -> Data {
        var s = "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n"
        s += "  \"bos_token\": \(quoted(bosToken)),\n  \"eos_token\": \(quoted(eosToken)),\n"
        s += "  \"pad_token\": \(quoted(padToken)),\n  \"unk_token\": \(quoted(padToken)),\n"
        s += "  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n  \"clean_up_tokenization_spaces\": false,\n"
        s += "  \"model_max_length\": \(modelMaxLength),\n  \"chat_template\": \(quoted(chatMLTemplate))\n}\n"
        return Data(s.utf8)
    }

    /// JSON string literal (RFC 8259 escaping). The engine targets do not import PipelineCore,
    /// whose canonical JSON writer escapes the same way.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

/// ChatML rendering, identical to the reference tokenizer_config.json `chat_template`:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, plus `<|im_start|>assistant\n` when asked.
public enum ChatTemplate {
    public static func chatML(messages: [(role: String, content: String)], addGenerationPrompt: Bool) -> String {
        var s = ""
        for m in messages { s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n" }
        if addGenerationPrompt { s += "<|im_start|>assistant\n" }
        return s
    }
}

/// Encoding throughput for `qlora-run bench`: one encode of `text` (cold word cache on a fresh tokenizer).
public enum TokenizerBenchmark {
    public static func megabytesPerSecond(tokenizer: Tokenizer, text: String) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        let ids = tokenizer.encode(text)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        withExtendedLifetime(ids) {}
        return Double(text.utf8.count) / 1e6 / max(seconds, 1e-9)
    }
}
