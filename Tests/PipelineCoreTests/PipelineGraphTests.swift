import XCTest
@testable import PipelineCore

/// Graph diagnostics with exact messages and positions, through the YAML reader.
final class PipelineGraphTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try TestStages.makeDirectory() }
    override func tearDownWithError() throws { CacheStore.removeTree(dir) }

    func load(_ yaml: String) throws -> (Pipeline?, [String]) {
        let document = try YAMLReader.read(text: yaml, displayName: "pipelines/x.yaml")
        let (pipeline, diagnostics) = Pipeline.load(document: document, schema: TestStages.schema,
                                                    file: dir.appendingPathComponent("x.yaml"), phrases: TestStages.phrases)
        return (pipeline, diagnostics.map(\.description))
    }

    func testUnknownReferenceWrongTypeMissingFile() throws {
        let (pipeline, messages) = try load("""
        version: 1
        name: graph
        stages:
          base:
            kind: source
            data: toydata/x.jsonl
          quantized:
            kind: concat
            model: base
          train:
            kind: train
            model: quantised
            data: data.txt
          train2:
            kind: train
            model: base
        """)
        XCTAssertNil(pipeline)
        XCTAssertEqual(messages, [
            "pipelines/x.yaml:6:11: error: stages.base.data: file not found: toydata/x.jsonl (relative to pipelines/)",
            "pipelines/x.yaml:12:12: error: stages.train.model: unknown stage 'quantised'; did you mean 'quantized'?",
            "pipelines/x.yaml:16:12: error: stages.train2.model: stage 'base' outputs a checkpoint, but this field needs a model with adapters (adapted or trained)",
        ])
    }

    func testCycleReportedOnceAtStagesKey() throws {
        let (pipeline, messages) = try load("""
        version: 1
        stages:
          base:
            kind: source
          train:
            kind: concat
            model: eval
          eval:
            kind: concat
            model: train
          other:
            kind: concat
            model: train
        """)
        XCTAssertNil(pipeline)
        XCTAssertEqual(messages, ["pipelines/x.yaml:2:1: error: stages: cycle: train -> eval -> train"])
    }

    func testDeterministicOrderDefaultsAndCacheDirectory() throws {
        let (pipeline, messages) = try load("""
        version: 1
        name: order
        seed: 7
        stages:
          z_late:
            kind: concat
            model: b
          b:
            kind: source
          a:
            kind: source
          y:
            kind: concat
            model: a
        """)
        XCTAssertEqual(messages, [])
        let p = try XCTUnwrap(pipeline)
        XCTAssertEqual(p.stages.map(\.name), ["b", "z_late", "a", "y"])
        XCTAssertEqual(p.seed, 7)
        XCTAssertEqual(p.name, "order")
        XCTAssertEqual(p.cacheDirectory.path, dir.appendingPathComponent(".qlora").path)
        XCTAssertEqual(p.stages[0].fields["text"], .string("hello"))
        XCTAssertEqual(p.stages[1].references, ["model": "b"])
    }

    /// The product schema's annotations drive the same checks (kinds, x-stage-ref types, x-input-path).
    func testProductSchemaAnnotations() throws {
        let schemaURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../schemas/pipeline.schema.json")
        guard let data = FileManager.default.contents(atPath: schemaURL.path) else { throw XCTSkip("schemas/pipeline.schema.json not present") }
        let schema = try CanonicalJSONParser.parse(data)
        let kinds = StageKindInfo.all(in: schema)
        XCTAssertEqual(kinds["train"]?.stageRefs["model"], ["adapted", "trained"])
        XCTAssertEqual(kinds["save_adapter"]?.outputPaths, ["to"])
        XCTAssertEqual(kinds["load_checkpoint"]?.inputPaths, ["path": "any"])
        let document = try YAMLReader.read(text: """
        version: 1
        name: real
        stages:
          base:
            kind: load_checkpoint
            path: .
          train:
            kind: train
            model: base
            data: data.txt
        """, displayName: "pipelines/real.yaml")
        let (_, diagnostics) = Pipeline.load(document: document, schema: schema, file: dir.appendingPathComponent("real.yaml"),
                                             phrases: TestStages.phrases)
        XCTAssertEqual(diagnostics.map(\.description), [
            "pipelines/real.yaml:9:12: error: stages.train.model: stage 'base' outputs a checkpoint, but this field needs a model with adapters (adapted or trained)",
        ])
    }

    /// Schema errors first (graph checks skipped while the schema fails), then a valid pipeline
    /// whose stage fields carry the schema defaults.
    func testValidateWithProductSchema() throws {
        let schemaURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../schemas/pipeline.schema.json")
        guard let data = FileManager.default.contents(atPath: schemaURL.path) else { throw XCTSkip("schemas/pipeline.schema.json not present") }
        let schemaValue = try CanonicalJSONParser.parse(data)
        let schema = try JSONSchema(schemaValue)
        let bad = try YAMLReader.read(text: "version: 1\nname: v\nstages:\n  q:\n    kind: quantize\n    model: nowhere\n    block_size: fast\n",
                                      displayName: "p.yaml")
        let (none, schemaErrors) = Pipeline.validate(document: bad, schema: schema, schemaValue: schemaValue, file: dir.appendingPathComponent("p.yaml"))
        XCTAssertNil(none)
        XCTAssertEqual(schemaErrors.count, 1, "\(schemaErrors)")
        XCTAssertEqual(schemaErrors.first?.path, "stages.q.block_size")
        let good = try YAMLReader.read(text: "version: 1\nname: v\nstages:\n  base:\n    kind: load_checkpoint\n    path: .\n  q:\n    kind: quantize\n    model: base\n",
                                       displayName: "p.yaml")
        let (pipeline, diagnostics) = Pipeline.validate(document: good, schema: schema, schemaValue: schemaValue, file: dir.appendingPathComponent("p.yaml"))
        XCTAssertEqual(diagnostics, [])
        let q = try XCTUnwrap(pipeline?.stage(named: "q"))
        XCTAssertEqual(q.fields["block_size"], .integer(64))
        XCTAssertEqual(q.references, ["model": "base"])
        XCTAssertEqual(pipeline?.stage(named: "base")?.inputPaths, ["path": "."])
    }

    func testDAGOrderAndCycle() {
        let (order, cycle) = DAG.order(["a", "b", "c"], dependencies: ["a": ["c"], "b": [], "c": []])
        XCTAssertEqual(order, ["b", "c", "a"])
        XCTAssertNil(cycle)
        XCTAssertEqual(DAG.order(["x", "a", "b"], dependencies: ["a": ["b"], "b": ["a"], "x": []]).cycle, ["a", "b", "a"])
    }

    func testSuggestionsAndPhrases() {
        XCTAssertEqual(EditDistance.suggestion(for: "quantised", among: ["base", "quantized"]), "quantized")
        XCTAssertNil(EditDistance.suggestion(for: "zzz", among: ["base", "quantized"]))
        // The product's words are Stages' (StagesTests/ArtifactPhrasesTests); without words a type is named as written.
        XCTAssertEqual(ArtifactPhrasing().needs(["quantized"]), "a 'quantized' artifact (quantized)")
        XCTAssertEqual(TestStages.phrases.needs(["trained", "adapted"]), "a model with adapters (adapted or trained)")
    }
}
