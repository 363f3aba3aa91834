import Foundation

/// `tokenizer.apply_chat_template(messages, tokenize=False, ...)` as transformers does it
/// (chat_template_utils.render_jinja_template): the template sees `messages`, `tools` (None when
/// not given), `documents` (None), `add_generation_prompt`, the special tokens that exist, and
/// any extra keyword arguments (`enable_thinking`...). A message's reasoning, under any of
/// `reasoning_content`/`thinking`/`reasoning`, is copied to both `thinking` and
/// `reasoning_content` first (transformers' `_alias_reasoning_fields`).
public struct ChatRenderer: Sendable {
    public let template: Template
    public var bosToken: String?
    public var eosToken: String?
    /// What `strftime_now` returns: fixed for reproducible renderings.
    public var now: Date
    public var timeZone: TimeZone

    public init(template: Template, bosToken: String?, eosToken: String?, now: Date = Date(), timeZone: TimeZone = .current) {
        self.template = template; self.bosToken = bosToken; self.eosToken = eosToken
        self.now = now; self.timeZone = timeZone
    }

    public func render(messages: [Value], tools: [Value]? = nil, addGenerationPrompt: Bool, extra: [(String, Value)] = []) throws -> String {
        var context: [String: Value] = [
            "messages": .array(messages.map(ChatRenderer.aliasReasoning)),
            "tools": tools.map(Value.array) ?? .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (k, v) in extra { context[k] = v }
        return try template.render(context, now: now, timeZone: timeZone)
    }

    static let reasoningFields = ["reasoning_content", "thinking", "reasoning"]

    /// `{"thinking": r, **message, "reasoning_content": r}` for the first non-null reasoning field.
    static func aliasReasoning(_ message: Value) -> Value {
        guard case .dict(let d) = message else { return message }
        guard let reasoning = reasoningFields.lazy.compactMap({ key -> Value? in
            guard let v = d[key], !v.isNone else { return nil }
            return v
        }).first else { return message }
        var out = Dict()
        out["thinking"] = reasoning
        for (k, v) in d.pairs { out[k] = v }
        out["reasoning_content"] = reasoning
        return .dict(out)
    }
}
