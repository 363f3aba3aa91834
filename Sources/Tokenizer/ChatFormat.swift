import Foundation
import Jinja

/// How conversations become text: the model's own chat template, rendered as transformers'
/// `apply_chat_template` renders it, and which parts of that text a trainer supervises.
///
/// The template is the checkpoint's `chat_template.jinja`, else tokenizer_config.json's
/// `chat_template` (a string, or the named list's `default`), else ChatML.
public struct ChatFormat: Sendable {
    public let renderer: ChatRenderer
    /// Where the template came from, for logs: "chat_template.jinja", "tokenizer_config.json", "ChatML (built in)", a path.
    public let origin: String
    /// The template text, for the stage key.
    public let source: String

    /// What `strftime_now` sees in training and evaluation: fixed, so the same data gives the same
    /// tokens on any day (transformers would use the current date).
    public static let fixedNow = Date(timeIntervalSince1970: 1_721_995_200)   // 2024-07-26 12:00:00 UTC

    public init(source: String, name: String, origin: String, bosToken: String?, eosToken: String?) throws {
        let template = try Template(source, name: name)
        renderer = ChatRenderer(template: template, bosToken: bosToken, eosToken: eosToken,
                                now: ChatFormat.fixedNow, timeZone: TimeZone(identifier: "UTC") ?? .current)
        self.origin = origin
        self.source = source
    }

    public static func chatML(tokenizer: Tokenizer?) throws -> ChatFormat {
        try ChatFormat(source: ByteLevelTokenizerFile.chatMLTemplate, name: "ChatML", origin: "ChatML (built in)",
                       bosToken: tokenizer?.bosToken, eosToken: tokenizer?.eosToken)
    }

    /// The template `choice` names for the checkpoint in `directory`: "model" (the checkpoint's own,
    /// ChatML when it has none), "chatml", or the path of a .jinja file.
    public static func load(directory: URL, tokenizer: Tokenizer, choice: String = "model") throws -> ChatFormat {
        switch choice {
        case "chatml":
            return try chatML(tokenizer: tokenizer)
        case "model":
            guard let own = checkpointTemplate(directory: directory, configTemplate: tokenizer.chatTemplate) else {
                return try chatML(tokenizer: tokenizer)
            }
            return try ChatFormat(source: own.source, name: own.name, origin: own.origin,
                                  bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        default:
            let file = URL(fileURLWithPath: choice)
            let text: String
            do { text = try String(contentsOf: file, encoding: .utf8) } catch {
                throw TokenizerError.invalidJSON(file: choice, reason: "cannot read the chat template: \((error as NSError).localizedFailureReason ?? error.localizedDescription)")
            }
            return try ChatFormat(source: text, name: choice, origin: choice, bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        }
    }

    /// The checkpoint's own template: `chat_template.jinja` in `directory`, else `configTemplate`
    /// (tokenizer_config.json's, see `Tokenizer.chatTemplate(in:)`); nil when it has neither.
    public static func checkpointTemplate(directory: URL, configTemplate: String?) -> (source: String, name: String, origin: String)? {
        let file = directory.appendingPathComponent("chat_template.jinja")
        if let text = try? String(contentsOf: file, encoding: .utf8) { return (text, file.path, "chat_template.jinja") }
        guard let text = configTemplate else { return nil }
        return (text, directory.appendingPathComponent("tokenizer_config.json").path + " (chat_template)", "tokenizer_config.json")
    }

    public func render(_ messages: [Value], addGenerationPrompt: Bool) throws -> String {
        try renderer.render(messages: messages, addGenerationPrompt: addGenerationPrompt)
    }

    /// A user prompt as the model expects it: rendered with the generation prompt.
    public func prompt(_ text: String, systemPrompt: String? = nil) throws -> String {
        var messages: [Value] = []
        if let systemPrompt { messages.append(.dict(Dict([("role", .string("system")), ("content", .string(systemPrompt))]))) }
        messages.append(.dict(Dict([("role", .string("user")), ("content", .string(text))])))
        return try render(messages, addGenerationPrompt: true)
    }

    static let sentinel = "\u{E000}qlora-turn\u{E001}"

    /// The conversation's rendering and the UTF-8 byte ranges a trainer supervises: for each
    /// assistant message, the text its content became, plus the special token the template writes
    /// right after it (`<|im_end|>`, `<|eot_id|>`, `</s>`...; or the EOS token after whitespace).
    /// Reasoning the message carries (`reasoning_content`, or `<think>` in its content) is
    /// supervised with it where the template writes it.
    ///
    /// The content's place is found in the full rendering itself: the same conversation is
    /// rendered again with only that message's content replaced by a sentinel, and the differing
    /// region is where the content sits. Unlike "render messages[:i] and take the suffix", this is
    /// right for templates whose earlier turns change with later ones (Mistral/Nemo put the system
    /// text in the last user turn, Qwen3 drops earlier reasoning, Phi-3 ends with EOS).
    public func supervisedSpans(_ messages: [Value], specialTokens: [String], eosToken: String?) throws -> (text: String, spans: [Range<Int>]) {
        let full = try render(messages, addGenerationPrompt: false)
        let fullScalars = Array(full.unicodeScalars)
        var utf8Offset = [0]
        utf8Offset.reserveCapacity(fullScalars.count + 1)
        for s in fullScalars { utf8Offset.append(utf8Offset.last! + UTF8.width(s)) }
        var spans: [Range<Int>] = []
        for (i, message) in messages.enumerated() {
            guard case .dict(var d) = message, case .string("assistant")? = d["role"] else { continue }
            // A tool-call turn: what the model learns to write is the calls as the template renders
            // them (with any content), so the probe drops them along with the content.
            var hasToolCalls = false
            if case .array(let calls)? = d["tool_calls"], !calls.isEmpty { hasToolCalls = true }
            guard hasToolCalls || d["content"].map({ if case .string = $0 { return true }; return false }) == true else { continue }
            d["content"] = .string(ChatFormat.sentinel)
            if hasToolCalls { d["tool_calls"] = nil }
            // Reasoning given in its own field is part of what the model learns to write.
            for field in ["reasoning_content", "thinking", "reasoning"] { d[field] = nil }
            var probe = messages
            probe[i] = .dict(d)
            // A template may refuse a call-less probe of a tool turn (Mistral checks that tool results
            // follow calls): then the turn is what rendering it adds after the generation prompt.
            guard let probeText = hasToolCalls ? try? render(probe, addGenerationPrompt: false) : try render(probe, addGenerationPrompt: false) else {
                if let span = try generationPromptSpan(messages, turn: i, full: fullScalars) { spans.append(utf8Offset[span.lowerBound]..<utf8Offset[span.upperBound]) }
                continue
            }
            let other = Array(probeText.unicodeScalars)
            var prefix = 0
            while prefix < fullScalars.count, prefix < other.count, fullScalars[prefix] == other[prefix] { prefix += 1 }
            var suffix = 0
            while suffix < fullScalars.count - prefix, suffix < other.count - prefix,
                  fullScalars[fullScalars.count - 1 - suffix] == other[other.count - 1 - suffix] { suffix += 1 }
            let start = prefix, contentEnd = fullScalars.count - suffix
            guard contentEnd >= start else { continue }
            let end = contentEnd + endOfTurnLength(after: contentEnd, in: fullScalars, specialTokens: specialTokens, eosToken: eosToken)
            spans.append(utf8Offset[start]..<utf8Offset[end])
        }
        return (full, spans)
    }

    /// Scalars of turn `i` as "render messages[:i] with the generation prompt, then messages[:i+1]":
    /// what the second adds, trailing whitespace left out; nil where the renderings are not prefixes
    /// of each other and of the full one.
    func generationPromptSpan(_ messages: [Value], turn i: Int, full: [Unicode.Scalar]) throws -> Range<Int>? {
        let prompt = Array(try render(Array(messages[..<i]), addGenerationPrompt: true).unicodeScalars)
        var upto = Array(try render(Array(messages[...i]), addGenerationPrompt: false).unicodeScalars)
        guard upto.starts(with: prompt), full.starts(with: upto) else { return nil }
        while let last = upto.last, upto.count > prompt.count, last.properties.isWhitespace { upto.removeLast() }
        return upto.count > prompt.count ? prompt.count..<upto.count : nil
    }

    /// Length in scalars of the end-of-turn token at `position`: a special token right there, or
    /// whitespace followed by the EOS token (Llama 2 style " </s>"); 0 when there is none.
    func endOfTurnLength(after position: Int, in text: [Unicode.Scalar], specialTokens: [String], eosToken: String?) -> Int {
        func matches(_ token: String, at p: Int) -> Bool {
            let t = Array(token.unicodeScalars)
            return !t.isEmpty && p + t.count <= text.count && Array(text[p..<p + t.count]) == t
        }
        for token in specialTokens where matches(token, at: position) { return token.unicodeScalars.count }
        if let eosToken {
            var p = position
            while p < text.count, text[p] == " " || text[p] == "\n" { p += 1 }
            if p > position, matches(eosToken, at: p) { return p - position + eosToken.unicodeScalars.count }
        }
        return 0
    }

    /// The special token that closes an assistant turn, found by rendering a probe exchange
    /// (generation stops there). nil when the template writes none.
    public func endOfTurnToken(specialTokens: [String], eosToken: String?) -> String? {
        let probe: [Value] = [
            .dict(Dict([("role", .string("user")), ("content", .string("Hi"))])),
            .dict(Dict([("role", .string("assistant")), ("content", .string("Hello"))])),
        ]
        guard let (text, spans) = try? supervisedSpans(probe, specialTokens: specialTokens, eosToken: eosToken),
              let span = spans.first else { return nil }
        let bytes = Array(text.utf8)[span]
        let tail = String(decoding: bytes, as: UTF8.self)
        guard tail.hasPrefix("Hello") else { return nil }
        let rest = tail.dropFirst("Hello".count).trimmingCharacters(in: .whitespaces)
        return rest.isEmpty ? nil : rest
    }
}
