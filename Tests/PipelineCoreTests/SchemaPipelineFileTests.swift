import Foundation
import XCTest
@testable import PipelineCore
import TestSupport

/// The real manifest schema (schemas/pipeline.schema.json) through this validator: it must load
/// (no unsupported keyword), accept the shipped example pipelines, and explain typical mistakes.
final class SchemaPipelineFileTests: XCTestCase {
    func loadSchema() throws -> JSONSchema {
        let url = Reference.projectRoot.appendingPathComponent("schemas/pipeline.schema.json")
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("schemas/pipeline.schema.json not present yet") }
        return try JSONSchema(JSONReader.read(contentsOf: url, displayName: "pipeline.schema.json"))
    }

    func testShippedPipelinesAreValid() throws {
        let schema = try loadSchema()
        let directory = Reference.projectRoot.appendingPathComponent("pipelines")
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        for file in files {
            let doc = try YAMLReader.read(contentsOf: directory.appendingPathComponent(file), displayName: "pipelines/" + file)
            let result = schema.validate(doc)
            XCTAssertEqual(result.diagnostics.map(\.description), [], file)
            XCTAssertEqual(result.value["seed"]?.intValue != nil, true, "\(file): seed default filled")
        }
    }

    func testTypicalMistakesAgainstRealSchema() throws {
        let schema = try loadSchema()
        let doc = try YAMLReader.read(text: """
        version: 1
        name: demo
        stages:
          base:
            kind: load_chekpoint
          q:
            kind: quantize
          t:
            kind: train
            lr: fast
        """, displayName: "p.yaml")
        let messages = schema.validate(doc).diagnostics.map(\.description)
        XCTAssertEqual(messages, [
            "p.yaml:5:11: error: stages.base.kind: unknown stage kind 'load_chekpoint'; did you mean 'load_checkpoint'?",
            "p.yaml:7:5: error: stages.q: missing required field 'model'",
            "p.yaml:9:5: error: stages.t: missing required field 'model'",
            "p.yaml:9:5: error: stages.t: missing required field 'data'",
            "p.yaml:10:9: error: stages.t.lr: expected a number, found the string \"fast\"",
        ])
    }
}
