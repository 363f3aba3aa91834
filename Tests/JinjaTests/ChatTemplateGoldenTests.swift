import XCTest
import Foundation
import Jinja
import TestSupport

/// Every rendering in a golden set (templates/, cases.json, renders.jsonl as made by
/// transformers' apply_chat_template) must be byte-exact, and every error must be an error
/// with the same message.
/// The project's own set (Tests/Fixtures/chat_templates) always; the shared kit's chat_templates when present.
final class ChatTemplateGoldenTests: XCTestCase {
    func testProjectFixtureRenderingsAreExact() throws {
        let dir = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/chat_templates")
        let checked = try GoldenRenderings.check(dir)
        XCTAssertGreaterThan(checked, 100)
        if let shared = Reference.shared() {
            XCTAssertEqual(try GoldenRenderings.check(shared.file("chat_templates")), 238, "\(shared)")
        }
    }
}

enum GoldenRenderings {
    /// 2024-07-26 12:00:00, the frozen `strftime_now` of the golden sets.
    static let frozenNow = Date(timeIntervalSince1970: 1_721_995_200)

    static func check(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        guard case .dict(let root) = try JSON.parse(String(contentsOf: dir.appendingPathComponent("cases.json"), encoding: .utf8)),
              case .array(let cases)? = root["cases"] else { XCTFail("cases.json has no cases", file: file, line: line); return 0 }
        var byId: [String: Dict] = [:]
        for case .dict(let c) in cases { if case .string(let id)? = c["id"] { byId[id] = c } }
        var templates: [String: Result<Template, Error>] = [:]
        var checked = 0
        var failures: [String] = []
        let lines = try String(contentsOf: dir.appendingPathComponent("renders.jsonl"), encoding: .utf8).split(separator: "\n")
        for text in lines {
            guard case .dict(let record) = try JSON.parse(String(text)),
                  case .string(let templateName)? = record["template"], case .string(let caseId)? = record["case"],
                  let conversation = byId[caseId], case .array(let messages)? = conversation["messages"] else {
                failures.append("unreadable record: \(text.prefix(80))"); continue
            }
            let template = templates[templateName] ?? Result {
                try Template(String(contentsOf: dir.appendingPathComponent("templates/\(templateName).jinja"), encoding: .utf8), name: "\(templateName).jinja")
            }
            templates[templateName] = template
            let addGenerationPrompt = record["add_generation_prompt"]?.truthy ?? false
            var tools: [Value]? = nil
            if record["tools_passed"]?.truthy == true, case .array(let t)? = conversation["tools"] { tools = t }
            var extra: [(String, Value)] = []
            if case .dict(let kwargs)? = record["extra_kwargs"] { extra = kwargs.pairs }
            func token(_ key: String) -> String? { if case .string(let s)? = record[key] { return s }; return nil }
            let label = "\(templateName) / \(caseId) / add_generation_prompt=\(addGenerationPrompt)"
            checked += 1
            do {
                let renderer = ChatRenderer(template: try template.get(), bosToken: token("bos_token"), eosToken: token("eos_token"),
                                            now: frozenNow, timeZone: TimeZone(identifier: "UTC")!)
                let rendered = try renderer.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt, extra: extra)
                if case .string(let expected)? = record["rendered"] {
                    if !rendered.unicodeScalars.elementsEqual(expected.unicodeScalars) {
                        failures.append("\(label): rendering differs\n  got:      \(rendered.debugDescription)\n  expected: \(expected.debugDescription)")
                    }
                } else {
                    failures.append("\(label): rendered, but transformers raised \(record["error"].map { "\($0)" } ?? "?")")
                }
            } catch let error as TemplateError {
                if case .dict(let expected)? = record["error"], case .string(let message)? = expected["message"] {
                    if error.message != message { failures.append("\(label): error \(error.message.debugDescription), expected \(message.debugDescription)") }
                } else {
                    failures.append("\(label): \(error.localizedDescription)")
                }
            }
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(checked) renderings wrong:\n" + failures.prefix(8).joined(separator: "\n"), file: file, line: line)
        return checked
    }
}
