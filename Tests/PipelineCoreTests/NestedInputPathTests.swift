import XCTest
@testable import PipelineCore
import TestSupport

/// An x-input-path inside a field's object alternative (attach_adapters' `init: {from: DIR}`) is an
/// input like a top-level one: checked at load, digested into the key, reported as `input: init.from`.
final class NestedInputPathTests: XCTestCase {
    static let schema = #"""
    {"$defs": {"adapt": {"type": "object", "x-output": "adapted", "properties": {
      "kind": {"const": "adapt"},
      "init": {"oneOf": [{"enum": ["gaussian"]},
                         {"type": "object", "properties": {"from": {"type": "string", "x-input-path": "directory"}}}],
               "default": "gaussian"}}}}}
    """#

    func testNestedInputIsCheckedKeyedAndExplained() throws {
        let schema = try CanonicalJSONParser.parse(Data(Self.schema.utf8))
        XCTAssertEqual(StageKindInfo.all(in: schema)["adapt"]?.inputPaths, ["init.from": "directory"])

        let dir = try makeTemporaryDirectory("qlora-nested-input")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("adapter"), withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("p.yaml")
        func load(_ from: String) -> (pipeline: Pipeline?, issues: [PipelineIssue]) {
            let value: JSONValue = .object(["stages": .object(["a": .object(["kind": .string("adapt"), "init": .object(["from": .string(from)])])])])
            return Pipeline.load(value: value, schema: schema, file: file, displayName: "p.yaml")
        }
        XCTAssertEqual(load("missing").issues.map(\.description), ["stages.a.init.from: file not found: missing (relative to ./)"])
        let stage = try XCTUnwrap(load("adapter").pipeline?.stage(named: "a"))
        XCTAssertEqual(stage.inputPaths, ["init.from": "adapter"])

        // The digest replaces the path in place; the flattened material names it as an input.
        let material = StageKey.material(for: stage, seed: 0, upstreamDigests: [:], inputDigests: ["init.from": "d1"])
        XCTAssertEqual(material["fields"]?["init"], .object(["from": .string("d1")]))
        let one = StageKey.flatten(material, stage: stage)
        XCTAssertEqual(one["input.init.from"], "\"d1\"")
        XCTAssertNil(one["config.init.from"])
        let two = StageKey.flatten(StageKey.material(for: stage, seed: 0, upstreamDigests: [:], inputDigests: ["init.from": "d2"]), stage: stage)
        XCTAssertEqual(StageKey.reasons(current: two, previous: one, stage: stage), ["input: init.from changed"])
        XCTAssertNotEqual(StageKey.key(material),
                          StageKey.key(StageKey.material(for: stage, seed: 0, upstreamDigests: [:], inputDigests: ["init.from": "d2"])))
    }
}
