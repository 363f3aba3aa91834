import Foundation
import Tokenizer
import Jinja

public struct DatasetOptions: Equatable, Sendable {
    public var maxSeqLen = 512
    /// Supervise every token (prompt included) instead of only the assistant replies.
    public var trainOnPrompt = false
    /// Append the EOS token after a `text` or `completion` (supervised), as TRL does.
    public var appendEOS = true
    /// Used when a conversation has no system message (nil: the template's own default).
    public var systemPrompt: String? = nil
    public init() {}
}

/// JSONL datasets → tokenized examples with loss masks.
///
/// Line formats: `{"conversations"|"messages": [{"role", "content"}]}` (ShareGPT's `from`/`value`
/// with human/gpt/system too), Alpaca `{"instruction", "input"?, "output"}` — all rendered with the
/// model's chat template (`ChatFormat`) —, `{"text"}`, or `{"prompt", "completion"}`.
/// Chat loss mask: 1 on each assistant message's content as the template writes it and on the
/// end-of-turn token right after it (`<|im_end|>`, `<|eot_id|>`, `</s>`...); 0 on everything else
/// (system text, prompts, headers, generation prompts).
public enum DatasetLoader {
    public static func load(url: URL, tokenizer: Tokenizer, options: DatasetOptions = DatasetOptions(), chat: ChatFormat? = nil) throws -> TrainingDataset {
        let name = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TrainingError.unreadableFile(path: name, detail: error.localizedDescription) }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError.unreadableFile(path: name, detail: "not UTF-8 text") }
        return try load(text: text, name: name, tokenizer: tokenizer, options: options, chat: chat)
    }

    public static func load(text: String, name: String, tokenizer: Tokenizer, options: DatasetOptions = DatasetOptions(), chat: ChatFormat? = nil) throws -> TrainingDataset {
        let chat = try chat ?? ChatFormat.chatML(tokenizer: tokenizer)
        let specials = tokenizer.specialTokens
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
            var example = try encode(dict, line: line, file: name, lineNumber: lineNumber, tokenizer: tokenizer, options: options,
                                     chat: chat, specialTokens: specials)
            if audit.sample == nil { audit.sample = example.marked(tokenizer) }
            // Nothing to learn from, whatever the length: the line itself is wrong (a conversation
            // without an assistant reply, an empty completion). Truncation-emptied examples are skipped below.
            if example.supervisedTokens == 0 && !options.trainOnPrompt {
                throw TrainingError.unsupervisedLine(file: name, line: lineNumber)
            }
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
            if m["role"] == nil, let from = m["from"] as? String {   // ShareGPT
                guard let role = ["human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"][from] else {
                    throw TrainingError.unknownRole(file: file, line: line, role: from)
                }
                guard let value = m["value"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\(key)[\(i)] has no string \"value\"") }
                return (role, value)
            }
            guard let role = m["role"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\(key)[\(i)] has no string \"role\"") }
            guard ["system", "user", "assistant"].contains(role) else { throw TrainingError.unknownRole(file: file, line: line, role: role) }
            guard let content = m["content"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\(key)[\(i)] has no string \"content\"") }
            return (role, content)
        }
    }

    static func encode(_ d: [String: Any], line text: String, file: String, lineNumber line: Int, tokenizer: Tokenizer, options: DatasetOptions,
                       chat: ChatFormat, specialTokens: [String]) throws -> TokenizedExample {
        let all: Float = options.trainOnPrompt ? 1 : 0
        var ids: [Int32] = [], mask: [Float] = []
        func append(_ t: [Int32], _ w: Float) { ids += t; mask += [Float](repeating: w, count: t.count) }
        var conversation: [(role: String, content: String)]? = nil
        if let key = ["conversations", "messages"].first(where: { d[$0] != nil }) {
            conversation = try messages(d[key]!, key: key, file: file, line: line)
        } else if d["instruction"] != nil || d["output"] != nil {   // Alpaca
            guard let instruction = d["instruction"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\"instruction\" must be a string next to \"output\"") }
            guard let output = d["output"] as? String else { throw TrainingError.missingField(file: file, line: line, detail: "\"output\" must be a string next to \"instruction\"") }
            let input = (d["input"] as? String) ?? ""
            conversation = [("user", input.isEmpty ? instruction : instruction + "\n\n" + input), ("assistant", output)]
        }
        if let conversation {
            var values = conversation.map { Value.dict(Dict([("role", .string($0.role)), ("content", .string($0.content))])) }
            // Keep the line's own message objects (extra keys such as reasoning_content, in order)
            // when it is in role/content form.
            if let key = ["conversations", "messages"].first(where: { d[$0] != nil }),
               case .dict(let ordered)? = try? JSON.parse(text), case .array(let raw)? = ordered[key], raw.count == values.count,
               raw.allSatisfy({ if case .dict(let m) = $0 { return m["role"] != nil }; return false }) {
                values = raw
            }
            if let systemPrompt = options.systemPrompt, conversation.first?.role != "system" {
                values.insert(.dict(Dict([("role", .string("system")), ("content", .string(systemPrompt))])), at: 0)
            }
            let rendered: (text: String, spans: [Range<Int>])
            do {
                rendered = try chat.supervisedSpans(values, specialTokens: specialTokens, eosToken: tokenizer.eosToken)
            } catch let error as TemplateError {
                throw TrainingError.chatTemplate(file: file, line: line, detail: error.errorDescription ?? error.message)
            }
            let (tokens, weights) = tokenize(rendered.text, spans: rendered.spans, tokenizer: tokenizer)
            append(tokens, 0)
            for i in mask.indices { mask[i] = options.trainOnPrompt ? 1 : weights[i] }
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

    /// Tokens of the whole rendering (as transformers tokenizes it) and their loss weights: 1 for a
    /// token overlapping a supervised byte range. A tokenizer whose tokens do not spell the text
    /// byte for byte is given the pieces between span boundaries one by one instead.
    static func tokenize(_ text: String, spans: [Range<Int>], tokenizer: Tokenizer) -> ([Int32], [Float]) {
        if let (ids, ends) = tokenizer.encodeWithOffsets(text) {
            var weights = [Float](repeating: 0, count: ids.count)
            var start = 0
            for (t, end) in ends.enumerated() {
                if spans.contains(where: { $0.lowerBound < end && start < $0.upperBound }) { weights[t] = 1 }
                start = end
            }
            return (ids, weights)
        }
        let bytes = Array(text.utf8)
        var cuts = Set([0, bytes.count])
        for s in spans { cuts.insert(s.lowerBound); cuts.insert(s.upperBound) }
        let points = cuts.sorted()
        var ids: [Int32] = [], weights: [Float] = []
        for (a, b) in zip(points, points.dropFirst()) where b > a {
            let piece = tokenizer.encode(String(decoding: bytes[a..<b], as: UTF8.self))
            let supervised: Float = spans.contains { $0.lowerBound <= a && b <= $0.upperBound } ? 1 : 0
            ids += piece; weights += [Float](repeating: supervised, count: piece.count)
        }
        return (ids, weights)
    }
}

extension TokenizedExample {
    /// The example's text with its supervised tokens between ⟦ and ⟧, for the data audit.
    func marked(_ tokenizer: Tokenizer) -> String {
        var out = ""
        var inside = false
        for (id, w) in zip(ids, lossMask) {
            if (w > 0) != inside { out += inside ? "⟧" : "⟦"; inside.toggle() }
            out += tokenizer.decode([id])
        }
        if inside { out += "⟧" }
        return out
    }
}

extension TrainingDataset {
    /// Convenience for `DatasetLoader.load(url:tokenizer:options:)`.
    public static func load(url: URL, tokenizer: Tokenizer, options: DatasetOptions = DatasetOptions(), chat: ChatFormat? = nil) throws -> TrainingDataset {
        try DatasetLoader.load(url: url, tokenizer: tokenizer, options: options, chat: chat)
    }
}
