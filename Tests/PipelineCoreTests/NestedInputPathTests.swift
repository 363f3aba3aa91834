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

    static let listSchema = #"""
    {"$defs": {"train": {"type": "object", "x-output": "trained", "properties": {
      "kind": {"const": "train"},
      "data": {"oneOf": [{"type": "string", "x-input-path": "file"},
                         {"type": "array", "items": {"type": "object", "properties": {
                            "path": {"type": "string", "x-input-path": "file"}, "weight": {"type": "number", "default": 1}}}}]}}}}}
    """#

    /// `data: [{path, weight}]` (issue 16 §3): each list element's file is an input of its own,
    /// checked at load (located and shown as `data[1].path`), digested in place into the key, and
    /// named when it changes; a weight change is a config change of that element.
    func testListOfInputsIsCheckedKeyedAndExplainedPerElement() throws {
        let schema = try CanonicalJSONParser.parse(Data(Self.listSchema.utf8))
        XCTAssertEqual(StageKindInfo.all(in: schema)["train"]?.inputPaths, ["data": "file", "data.*.path": "file"])
        let dir = try makeTemporaryDirectory("qlora-list-input")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["a.jsonl", "b.jsonl"] { try Data("{}\n".utf8).write(to: dir.appendingPathComponent(name)) }
        let file = dir.appendingPathComponent("p.yaml")
        func load(_ entries: [(String, Double)]) -> (pipeline: Pipeline?, issues: [PipelineIssue]) {
            let list: JSONValue = .array(entries.map { .object(["path": .string($0.0), "weight": .number($0.1)]) })
            let value: JSONValue = .object(["stages": .object(["t": .object(["kind": .string("train"), "data": list])])])
            return Pipeline.load(value: value, schema: schema, file: file, displayName: "p.yaml")
        }
        XCTAssertEqual(load([("a.jsonl", 1), ("missing.jsonl", 1)]).issues.map(\.description),
                       ["stages.t.data[1].path: file not found: missing.jsonl (relative to ./)"])
        let stage = try XCTUnwrap(load([("a.jsonl", 1), ("b.jsonl", 2)]).pipeline?.stage(named: "t"))
        XCTAssertEqual(stage.inputPaths, ["data.0.path": "a.jsonl", "data.1.path": "b.jsonl"])

        func flat(_ digests: [String: String], stage: PipelineStage) -> (key: String, flat: [String: String]) {
            let material = StageKey.material(for: stage, seed: 0, upstreamDigests: [:], inputDigests: digests)
            return (StageKey.key(material), StageKey.flatten(material, stage: stage))
        }
        let digests = ["data.0.path": "da", "data.1.path": "db"]
        let material = StageKey.material(for: stage, seed: 0, upstreamDigests: [:], inputDigests: digests)
        XCTAssertEqual(material["fields"]?["data"], .array([.object(["path": .string("da"), "weight": .number(1)]),
                                                           .object(["path": .string("db"), "weight": .number(2)])]))
        let one = flat(digests, stage: stage)
        XCTAssertEqual(one.flat["input.data.1.path"], "\"db\"")
        XCTAssertEqual(one.flat["config.data.1.weight"], "2.0")
        let changed = flat(["data.0.path": "da", "data.1.path": "db2"], stage: stage)
        XCTAssertNotEqual(changed.key, one.key)
        XCTAssertEqual(StageKey.reasons(current: changed.flat, previous: one.flat, stage: stage), ["input: data[1].path changed"])
        let reweighted = try XCTUnwrap(load([("a.jsonl", 1), ("b.jsonl", 3)]).pipeline?.stage(named: "t"))
        XCTAssertEqual(StageKey.reasons(current: flat(digests, stage: reweighted).flat, previous: one.flat, stage: reweighted),
                       ["config: data[1].weight 2.0 -> 3.0"])
    }
}
