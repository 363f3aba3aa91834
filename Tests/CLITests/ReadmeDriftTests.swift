import XCTest
import Foundation
import TestSupport
import Stages
@testable import CLI

/// README's stage-kind reference is generated from the schema: this fails when they drift apart.
final class ReadmeDriftTests: XCTestCase {
    static let begin = "<!-- BEGIN stage kinds: generated from schemas/pipeline.schema.json (SchemaHelp.markdown) -->\n"
    static let end = "<!-- END stage kinds -->"

    func testReadmeStageKindsMatchSchema() throws {
        let readme = try String(contentsOf: Reference.projectRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let expected = try SchemaHelp().markdown()
        guard let b = readme.range(of: Self.begin), let e = readme.range(of: Self.end, range: b.upperBound..<readme.endIndex) else {
            return XCTFail("README.md lacks the generated stage-kind block markers")
        }
        let block = String(readme[b.upperBound..<e.lowerBound])
        if block != expected {
            try? expected.write(toFile: NSTemporaryDirectory() + "readme-stage-kinds.md", atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(block, expected, "README stage kinds drifted from the schema; the current text is in \(NSTemporaryDirectory())readme-stage-kinds.md")
    }

    /// README's CLI reference is `--help` without its margin, from the command table.
    func testReadmeCLIReferenceIsTheHelpText() throws {
        let readme = try String(contentsOf: Reference.projectRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = "<!-- BEGIN CLI reference: generated from Sources/CLI/CommandTable.swift (CommandTable.usageLines) -->\n"
        guard let b = readme.range(of: begin), let e = readme.range(of: "<!-- END CLI reference -->", range: b.upperBound..<readme.endIndex) else {
            return XCTFail("README.md lacks the generated CLI reference markers")
        }
        let expected = "```\n" + CommandTable.usageLines.joined(separator: "\n") + "\n```\n"
        XCTAssertEqual(String(readme[b.upperBound..<e.lowerBound]), expected, "README's CLI reference drifted from CommandTable; it should read:\n\(expected)")
    }

    func testHelpTextOfQuantize() throws {
        let help = try SchemaHelp()
        let quantize = try XCTUnwrap(help.kind("quantize"))
        XCTAssertEqual(quantize.fields.map(\.name), ["kind", "model", "type", "block_size", "double_quant", "compute_dtype", "skip"])
        XCTAssertEqual(quantize.fields[3], .init(name: "block_size", type: "32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096", defaultValue: "64",
                                                 description: "Weights per absmax block: a power of two from 32 to 4096."))
        let attach = try XCTUnwrap(help.kind("attach_adapters"))
        XCTAssertEqual(attach.fields.first { $0.name == "alpha" }?.defaultValue, "rank")
        XCTAssertEqual(help.kind("load_checkpoint")?.fields.map(\.name).prefix(4), ["kind", "path", "init", "init.arch"])
        XCTAssertEqual(help.kinds.map(\.name), ["load_checkpoint", "quantize", "attach_adapters", "train", "save_adapter", "evaluate", "merge", "export"])
        XCTAssertEqual(StageKinds.names, help.kinds.map(\.name), "the registry's kinds are the schema's, in its order")
    }
}
