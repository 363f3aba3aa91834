import XCTest
import Foundation
import Jinja
import TestSupport
@testable import Tokenizer

/// The supervised spans the trainer builds from the full rendering agree with the golden
/// assistant spans made with transformers (dummy-content diff): the assistant content as the
/// template wrote it, followed by the end-of-turn special token and nothing else.
final class ChatFormatSpanTests: XCTestCase {
    static let specials = ["<|im_end|>", "<|eot_id|>", "</s>", "<|end|>", "<|endoftext|>", "<end_of_turn>", "<eos>"]

    /// The project's own set always; the shared kit's chat_templates (with the dummy-content diff) when present.
    func testProjectFixtureSpans() throws {
        XCTAssertEqual(try check(Reference.projectRoot.appendingPathComponent("Tests/Fixtures/chat_templates"), dummyDiff: false), 110)
        if let shared = Reference.shared() {
            // 121 turns with string content (no tools, no extra kwargs) + 3 tool-call turns (Qwen2.5, Llama 3.2, Mistral Nemo)
            XCTAssertEqual(try check(shared.file("chat_templates")), 124, "\(shared)")
        }
    }

    /// Returns the number of assistant turns checked.
    func check(_ dir: URL, dummyDiff: Bool = true) throws -> Int {
        guard case .dict(let root) = try JSON.parse(String(contentsOf: dir.appendingPathComponent("cases.json"), encoding: .utf8)),
              case .array(let cases)? = root["cases"] else { XCTFail("no cases"); return 0 }
        var byId: [String: Dict] = [:]
        for case .dict(let c) in cases { if case .string(let id)? = c["id"] { byId[id] = c } }
        var failures: [String] = []
        var checked = 0
        for text in try String(contentsOf: dir.appendingPathComponent("renders.jsonl"), encoding: .utf8).split(separator: "\n") {
            guard case .dict(let r) = try JSON.parse(String(text)), case .string(let name)? = r["template"], case .string(let caseId)? = r["case"],
                  r["add_generation_prompt"]?.truthy == false, case .string(let rendered)? = r["rendered"],
                  case .array(let goldenSpans)? = r["assistant_spans"], let conversation = byId[caseId],
                  case .array(let messages)? = conversation["messages"] else { continue }
            let tools = r["tools_passed"]?.truthy == true
            func token(_ key: String) -> String? { if case .string(let s)? = r[key] { return s }; return nil }
            let source = try String(contentsOf: dir.appendingPathComponent("templates/\(name).jinja"), encoding: .utf8)
            let format = try ChatFormat(source: source, name: name, origin: name, bosToken: token("bos_token"), eosToken: token("eos_token"))
            var extra: [(String, Value)] = []
            if case .dict(let kwargs)? = r["extra_kwargs"] { extra = kwargs.pairs }
            guard extra.isEmpty else { continue }   // ChatFormat renders data rows without extra kwargs
            // Tools are passed to the template by the trainer only through the data row; these cases
            // check the tool-call turns' spans on the rendering without the tools preamble.
            let (full, spans) = try format.supervisedSpans(messages, specialTokens: Self.specials, eosToken: token("eos_token"))
            if !tools { XCTAssertEqual(full, rendered, "\(name)/\(caseId)") }
            let bytes = Array(full.utf8)
            let assistantIndices = messages.enumerated().compactMap { i, m -> Int? in
                guard case .dict(let d) = m, case .string("assistant")? = d["role"] else { return nil }
                if case .array(let calls)? = d["tool_calls"], !calls.isEmpty { return i }
                if case .string? = d["content"] { return i }
                return nil
            }
            guard spans.count == assistantIndices.count else { failures.append("\(name)/\(caseId): \(spans.count) spans for \(assistantIndices.count) assistant turns"); continue }
            for (span, index) in zip(spans, assistantIndices) {
                guard let golden = goldenSpans.lazy.compactMap({ v -> Dict? in
                    if case .dict(let d) = v, d["message_index"]?.integer == index { return d }; return nil
                }).first else { continue }
                let mine = String(decoding: bytes[span], as: UTF8.self)
                checked += 1
                var toolTurn = false
                if tools, case .dict(let d) = messages[index], case .array(let calls)? = d["tool_calls"], !calls.isEmpty { toolTurn = true }
                // Content turns of a tools case render here without the tools preamble: their offsets differ.
                if tools && !toolTurn { checked -= 1; continue }
                if toolTurn {
                    // A tool-call turn: the calls as rendered and the end of turn, i.e. the generation-prompt
                    // span up to trailing whitespace (its dummy-diff span depends on the dummy text).
                    guard case .dict(let method)? = golden["gen_prompt_method"], case .dict(let g)? = method["span"],
                          case .string(let turn)? = g["text"] else { checked -= 1; continue }
                    if !(turn.hasPrefix(mine) && turn.dropFirst(mine.count).allSatisfy(\.isWhitespace)) || mine.isEmpty {
                        failures.append("\(name)/\(caseId)#\(index) (tool call): supervised \(mine.debugDescription), turn \(turn.debugDescription)")
                    }
                } else if dummyDiff {
                    // The reference's dummy-diff span: the content's own characters, in messages[:i+1]'s rendering.
                    guard case .dict(let method)? = golden["dummy_diff_method"], case .dict(let g)? = method["span"],
                          case .string(let content)? = g["text"] else { checked -= 1; continue }
                    let rest = mine.hasPrefix(content) ? String(mine.dropFirst(content.count)) : nil
                    if let rest, rest.isEmpty || Self.specials.contains(rest.trimmingCharacters(in: .whitespaces)) {
                        if method["upto_is_prefix_of_full"]?.truthy == true, case .array(let utf8)? = g["utf8"], utf8.first?.integer != span.lowerBound {
                            failures.append("\(name)/\(caseId)#\(index): starts at byte \(span.lowerBound), golden \(utf8.first?.integer ?? -1)")
                        }
                    } else {
                        failures.append("\(name)/\(caseId)#\(index): supervised \(mine.debugDescription), golden content \(content.debugDescription)")
                    }
                } else if case .string(let turn)? = golden["text"], golden["upto_is_prefix_of_full"]?.truthy == true {
                    // Own fixtures: the generation-prompt span (content + end of turn + what follows).
                    if !turn.contains(mine) || mine.isEmpty { failures.append("\(name)/\(caseId)#\(index): supervised \(mine.debugDescription), turn \(turn.debugDescription)") }
                } else { checked -= 1 }
            }
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) spans wrong:\n" + failures.prefix(10).joined(separator: "\n"))
        return checked
    }
}
