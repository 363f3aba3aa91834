import Foundation
import Tokenizer

public struct DatasetOptions: Equatable, Sendable {
    public var maxSeqLen = 512
    /// Supervise every token (prompt included) instead of only the assistant replies.
    public var trainOnPrompt = false
    /// Append the EOS token after a `text` or `completion` (supervised), as TRL does.
    public var appendEOS = true
    public init() {}
}

/// JSONL datasets → tokenized examples with loss masks.
///
/// Line formats: `{"conversations"|"messages": [{"role", "content"}]}` rendered with ChatML
/// (`<|im_start|>{role}\n{content}<|im_end|>\n`), `{"text"}`, or `{"prompt", "completion"}`.
/// Chat loss mask (golden/lora_train/data.safetensors): 1 on assistant content tokens and the
/// assistant's closing `<|im_end|>`; 0 on prompts, the `<|im_start|>assistant\n` header, the `\n`
/// after `<|im_end|>`.
public enum DatasetLoader {
    public static func load(url: URL, tokenizer: Tokenizer, options: DatasetOptions = DatasetOptions()) throws -> TrainingDataset {
        let name = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TrainingError.unreadableFile(path: name, detail: error.localizedDescription) }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError.unreadableFile(path: name, detail: "not UTF-8 text") }
        return try load(text: text, name: name, tokenizer: tokenizer, options: options)
    }

    public static func load(text: String, name: String, tokenizer: Tokenizer, options: DatasetOptions = DatasetOptions()) throws -> TrainingDataset {
        guard options.maxSeqLen >= 2 else { throw TrainingError.invalidOption("max_seq_len must be at least 2, got \(options.maxSeqLen)") }
        var examples: [TokenizedExample] = []
        var audit = DatasetAudit()
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line.utf8)) } catch {
                throw TrainingError.malformedJSONLine(file: name, line: lineNumber, detail: "not valid JSON")
            }
            guard let dict = object as? [String: Any] else {
                throw TrainingError.malformedJSONLine(file: name, line: lineNumber, detail: "expected a JSON object")
            }
            var example = try encode(dict, file: name, line: lineNumber, tokenizer: tokenizer, options: options)
            if example.ids.count > options.maxSeqLen {
                example.ids = Array(example.ids.prefix(options.maxSeqLen))
                example.lossMask = Array(example.lossMask.prefix(options.maxSeqLen))
                example.truncated = true
            }
            if example.supervisedTokens == 0 { audit.skippedNoSupervision += 1; continue }
            audit.examples += 1
            audit.tokens += example.ids.count
            audit.supervisedTokens += example.supervisedTokens
            if example.truncated { audit.truncated += 1 }
            examples.append(example)
        }
        if examples.isEmpty {
            if audit.skippedNoSupervision > 0 { throw TrainingError.noSupervisedTokens(file: name, examples: audit.skippedNoSupervision) }
            throw TrainingError.emptyDataset(file: name)
        }
        let pad = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0
        return TrainingDataset(examples: examples, padId: pad, source: name, audit: audit)
    }

    /// Messages of a chat line, validated.
    static func messages(_ value: Any, key: String, file: String, line: Int) throws -> [(role: String, content: String)] {
        guard let list = value as? [Any] else { throw TrainingError.missingField(file: file, line: line, detail: "\"\(key)\" must be a list of {role, content}") }
        return try list.enumerated().map { i, item in
            guard let m = item as? [String: Any] else { throw TrainingError.missingField(file: file, line: line, detail: "\(key)[\(i)] must be an object {role, content}") }
            guard let role = m["role"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\(key)[\(i)] has no string \"role\"") }
            guard ["system", "user", "assistant"].contains(role) else { throw TrainingError.unknownRole(file: file, line: line, role: role) }
            guard let content = m["content"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\(key)[\(i)] has no string \"content\"") }
            return (role, content)
        }
    }

    static func encode(_ d: [String: Any], file: String, line: Int, tokenizer: Tokenizer, options: DatasetOptions) throws -> TokenizedExample {
        let all: Float = options.trainOnPrompt ? 1 : 0
        var ids: [Int32] = [], mask: [Float] = []
        func append(_ t: [Int32], _ w: Float) { ids += t; mask += [Float](repeating: w, count: t.count) }
        if let key = ["conversations", "messages"].first(where: { d[$0] != nil }) {
            let msgs = try messages(d[key]!, key: key, file: file, line: line)
            let newline = tokenizer.encode("\n")
            for m in msgs {
                let header = tokenizer.encode("<|im_start|>" + m.role + "\n")
                // HF tokenizes the whole rendered text; "{role}\n{content}" is one segment between
                // special tokens, so encode it whole and split after the header when it is a prefix.
                let whole = tokenizer.encode("<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>")
                let body: [Int32]
                if whole.starts(with: header) { body = Array(whole.dropFirst(header.count)) } else {
                    body = tokenizer.encode(m.content + "<|im_end|>")
                }
                let supervised: Float = m.role == "assistant" ? 1 : all
                append(header, all); append(body, supervised); append(newline, all)
            }
        } else if let text = d["text"] {
            guard let text = text as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\"text\" must be a string") }
            append(tokenizer.encode(text), 1)
            if options.appendEOS, let eos = tokenizer.eosTokenId { append([eos], 1) }
        } else if d["prompt"] != nil || d["completion"] != nil {
            guard let p = d["prompt"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\"prompt\" must be a string next to \"completion\"") }
            guard let c = d["completion"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\"completion\" must be a string next to \"prompt\"") }
            append(tokenizer.encode(p), all); append(tokenizer.encode(c), 1)
            if options.appendEOS, let eos = tokenizer.eosTokenId { append([eos], 1) }
        } else {
            throw TrainingError.missingField(file: file, line: line, detail: "no known field (found: \(d.keys.sorted().joined(separator: ", ")))")
        }
        return TokenizedExample(ids: ids, lossMask: mask)
    }
}

extension TrainingDataset {
    /// Convenience for `DatasetLoader.load(url:tokenizer:options:)`.
    public static func load(url: URL, tokenizer: Tokenizer, options: DatasetOptions = DatasetOptions()) throws -> TrainingDataset {
        try DatasetLoader.load(url: url, tokenizer: tokenizer, options: options)
    }
}
