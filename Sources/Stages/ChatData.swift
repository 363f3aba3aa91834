import Foundation
import PipelineCore
import Tokenizer
import Training

/// JSONL data -> tokenized examples with loss masks (ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n`).
/// Loss on assistant content and its closing `<|im_end|>` (or on everything with train_on_prompt).
/// Formats per line: {conversations|messages: [{role, content}]}, {text}, {prompt, completion}.
/// Segments are tokenized separately so the mask is exact at segment boundaries.
enum ChatData {
    static func load(_ url: URL, tokenizer: Tokenizer, maxSeqLen: Int, trainOnPrompt: Bool) throws -> TrainingDataset {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw StageError.missingFile(url.path) }
        var examples: [TokenizedExample] = []
        var audit = DatasetAudit()
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let value: JSONValue
            do { value = try JSONReader.read(text: trimmed, displayName: "\(url.lastPathComponent):\(index + 1)") } catch {
                throw StageError.badData(file: url.lastPathComponent, line: index + 1, reason: "not valid JSON")
            }
            let segments = try self.segments(value, file: url.lastPathComponent, line: index + 1)
            var ids: [Int32] = [], mask: [Float] = []
            for (segment, supervised) in segments {
                let t = tokenizer.encode(segment)
                ids += t; mask += [Float](repeating: supervised || trainOnPrompt ? 1 : 0, count: t.count)
            }
            let truncated = ids.count > maxSeqLen
            if truncated { ids = Array(ids.prefix(maxSeqLen)); mask = Array(mask.prefix(maxSeqLen)) }
            let example = TokenizedExample(ids: ids, lossMask: mask, truncated: truncated)
            audit.examples += 1; audit.tokens += ids.count; if truncated { audit.truncated += 1 }
            if example.supervisedTokens == 0 { audit.skippedNoSupervision += 1; continue }
            audit.supervisedTokens += example.supervisedTokens
            examples.append(example)
        }
        guard !examples.isEmpty else {
            throw StageError.badData(file: url.lastPathComponent, line: 0, reason: "no example has a supervised token")
        }
        return TrainingDataset(examples: examples, padId: tokenizer.padTokenId ?? 0, source: url.path, audit: audit)
    }

    /// (text, supervised) segments of one line.
    static func segments(_ value: JSONValue, file: String, line: Int) throws -> [(String, Bool)] {
        if let messages = (value["conversations"] ?? value["messages"])?.arrayValue {
            var out: [(String, Bool)] = []
            for m in messages {
                guard let role = m["role"]?.stringValue, let content = m["content"]?.stringValue else {
                    throw StageError.badData(file: file, line: line, reason: "every message needs string `role` and `content`")
                }
                let assistant = role == "assistant"
                out += [("<|im_start|>\(role)\n", false), (content, assistant), ("<|im_end|>", assistant), ("\n", false)]
            }
            return out
        }
        if let prompt = value["prompt"]?.stringValue, let completion = value["completion"]?.stringValue {
            return [(prompt, false), (completion, true)]
        }
        if let text = value["text"]?.stringValue { return [(text, true)] }
        throw StageError.badData(file: file, line: line, reason: "expected `conversations`, `messages`, `text`, or `prompt` and `completion`")
    }
}
