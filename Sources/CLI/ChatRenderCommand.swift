import Foundation
import Jinja
import Tokenizer

/// `qlora-run chat render`: what a checkpoint's chat template makes of a conversation, byte for
/// byte as transformers' `apply_chat_template(..., tokenize=False)` would write it.
public enum ChatRenderCommand {
    public enum Failure: LocalizedError {
        case input(String)
        public var errorDescription: String? { if case .input(let m) = self { return m }; return nil }
    }

    /// Renders the JSON object `input` (`messages`, optional `tools`, any other key is a template
    /// variable such as `enable_thinking`).
    public static func render(_ options: Invocation.ChatRenderOptions, input: String) throws -> String {
        var bos: String? = nil, eos: String? = nil
        let source: String, name: String
        if let file = options.template {
            do { source = try String(contentsOf: URL(fileURLWithPath: file), encoding: .utf8) } catch {
                throw Failure.input("cannot read the template \(file): \((error as NSError).localizedFailureReason ?? "no such file or not UTF-8")")
            }
            name = file
        } else {
            let directory = URL(fileURLWithPath: options.directory ?? ".")
            let config = directory.appendingPathComponent("tokenizer_config.json")
            var object: [String: Any] = [:]
            if let data = try? Data(contentsOf: config) {
                guard let parsed = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                    throw Failure.input("\(config.path): not a JSON object")
                }
                object = parsed
            }
            bos = Tokenizer.specialToken("bos_token", in: object); eos = Tokenizer.specialToken("eos_token", in: object)
            guard let own = ChatFormat.checkpointTemplate(directory: directory, configTemplate: Tokenizer.chatTemplate(in: object)) else {
                throw Failure.input("\(directory.path) has no chat template (chat_template.jinja or tokenizer_config.json chat_template); give one with --template FILE")
            }
            source = own.source; name = own.name
        }
        if let b = options.bosToken { bos = b }
        if let e = options.eosToken { eos = e }
        var now = Date()
        var zone = TimeZone.current
        if let text = options.now {
            guard let date = parseDate(text) else {
                throw Failure.input("--now: expected an ISO-8601 date or time (2024-07-26 or 2024-07-26T12:00:00[Z]), found '\(text)'")
            }
            now = date; zone = TimeZone(identifier: "UTC") ?? .current
        }
        let value: Value
        do { value = try JSON.parse(input) } catch let error as JSON.ParseError {
            throw Failure.input("stdin: invalid JSON at byte \(error.offset): \(error.message)")
        }
        guard case .dict(let object) = value else { throw Failure.input("stdin: expected one JSON object {\"messages\": [...]}") }
        guard case .array(let messages)? = object["messages"] else { throw Failure.input("stdin: the object needs \"messages\": [{\"role\", \"content\"}, ...]") }
        var tools: [Value]? = nil
        if let t = object["tools"], !t.isNone {
            guard case .array(let list) = t else { throw Failure.input("stdin: \"tools\" must be a list") }
            tools = list
        }
        let extra = object.pairs.filter { $0.0 != "messages" && $0.0 != "tools" }
        let renderer = ChatRenderer(template: try Template(source, name: name), bosToken: bos, eosToken: eos, now: now, timeZone: zone)
        return try renderer.render(messages: messages, tools: tools, addGenerationPrompt: options.addGenerationPrompt, extra: extra)
    }

    /// 2024-07-26, 2024-07-26T12:00:00, with an optional Z or ±hh:mm (no zone: UTC).
    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        for (options, suffix) in [([.withInternetDateTime], ""), ([.withFullDate, .withFullTime, .withTimeZone], "Z"), ([.withFullDate], "")] as [(ISO8601DateFormatter.Options, String)] {
            formatter.formatOptions = options
            if let d = formatter.date(from: text) ?? formatter.date(from: text + suffix) { return d }
        }
        return nil
    }
}
