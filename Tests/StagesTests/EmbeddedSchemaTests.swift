import XCTest
import Foundation
@testable import Stages

/// The CLI embeds the schema at build time (Plugins/EmbedSchemaPlugin); this checks the generated
/// bytes are the file users read, so a broken plugin cannot ship a different schema.
final class EmbeddedSchemaTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testEmbeddedSchemaEqualsFileByteForByte() throws {
        let file = try Data(contentsOf: Self.root.appendingPathComponent("schemas/pipeline.schema.json"))
        XCTAssertEqual(EmbeddedSchema.bytes, Array(file), "the embed-schema plugin's output differs from schemas/pipeline.schema.json")
        XCTAssertEqual(EmbeddedSchema.text, String(decoding: file, as: UTF8.self))
    }

    func testSchemaShape() throws {
        let json = try JSONSerialization.jsonObject(with: Data(EmbeddedSchema.text.utf8)) as? [String: Any]
        let defs = json?["$defs"] as? [String: Any] ?? [:]
        let kinds = defs.keys.filter { $0 != "stage" }.sorted()
        XCTAssertEqual(kinds, ["attach_adapters", "evaluate", "export", "load_checkpoint", "merge", "quantize", "save_adapter", "train"])
        let outputs = kinds.map { (defs[$0] as? [String: Any])?["x-output"] as? String ?? "?" }
        XCTAssertEqual(outputs, ["adapted", "report", "gguf", "checkpoint", "checkpoint", "quantized", "adapter", "trained"])
        // Every field has a description; every optional field has a default.
        for kind in kinds {
            let def = defs[kind] as? [String: Any] ?? [:]
            XCTAssertEqual(def["additionalProperties"] as? Bool, false, kind)
            let required = Set(def["required"] as? [String] ?? [])
            for (field, schema) in def["properties"] as? [String: Any] ?? [:] {
                let s = schema as? [String: Any] ?? [:]
                XCTAssertNotNil(s["description"], "\(kind).\(field) has no description")
                let documentedDefault = (s["description"] as? String ?? "").contains("Default:")
                // exclusive pair / default computed from rank / from the adapter file with init.from
                let optionalWithoutDefault = ["path", "init", "alpha", "dropout", "eval_data", "early_stopping"]
                // merge/export: a default that depends on the upstream checkpoint, said in words ("Omitted: ...").
                let derived = ["merge.base", "merge.dtype", "merge.to", "export.type", "train.batch_tokens"]
                if derived.contains("\(kind).\(field)") {
                    let text = s["description"] as? String ?? ""
                    XCTAssertTrue(text.contains("Omitted:") || text.contains("Optional."), "\(kind).\(field) must say what omitting it means")
                } else if !required.contains(field) && !optionalWithoutDefault.contains(field) {
                    XCTAssertNotNil(s["default"], "\(kind).\(field) has no default")
                }
                if field == "alpha" || field == "dropout" { XCTAssertTrue(documentedDefault, "\(kind).\(field)") }
            }
        }
    }
}
