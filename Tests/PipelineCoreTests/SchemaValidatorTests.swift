import Foundation
import XCTest
@testable import PipelineCore

/// A schema written as JSON text in tests.
func schema(_ json: String, line: UInt = #line) -> JSONSchema? {
    do {
        return try JSONSchema(JSONReader.read(text: json, displayName: "schema.json"))
    } catch {
        XCTFail("bad test schema: \(error)", line: line)
        return nil
    }
}

/// Validates YAML text against a schema and returns the diagnostics' descriptions.
func check(_ yaml: String, _ schema: JSONSchema?, line: UInt = #line) -> [String] {
    guard let schema, let doc = parseYAML(yaml, line: line) else { return ["<setup failed>"] }
    return schema.validate(doc).diagnostics.map(\.description)
}

final class SchemaValidatorTests: XCTestCase {
    /// A miniature pipeline schema: top level, stages selected by `kind`.
    static let pipeline = """
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "type": "object",
      "additionalProperties": false,
      "required": ["version", "stages"],
      "properties": {
        "version": {"const": 1, "description": "format version"},
        "name": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z][a-z0-9_]*$"},
        "seed": {"type": "integer", "default": 0, "minimum": 0},
        "cache": {"type": "string", "default": ".qlora"},
        "stages": {"type": "object", "additionalProperties": {"oneOf": [{"$ref": "#/$defs/train"}, {"$ref": "#/$defs/quantize"}]}}
      },
      "$defs": {
        "train": {
          "type": "object", "additionalProperties": false, "required": ["kind", "model"], "x-output": "trained",
          "properties": {
            "kind": {"const": "train"},
            "model": {"type": "string", "x-stage-ref": ["adapted"]},
            "learning_rate": {"type": "number", "exclusiveMinimum": 0, "default": 0.0002},
            "epochs": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
            "packing": {"type": "boolean", "default": false},
            "optimizer": {"type": "object", "additionalProperties": false,
                          "properties": {"name": {"enum": ["adamw", "sgd"], "default": "adamw"}, "beta2": {"type": "number", "exclusiveMaximum": 1, "default": 0.999}},
                          "default": {}}
          }
        },
        "quantize": {
          "type": "object", "additionalProperties": false, "required": ["kind"],
          "properties": {
            "kind": {"const": "quantize"},
            "type": {"enum": ["nf4", "fp4"], "default": "nf4"},
            "skip": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 3, "default": ["lm_head"]}
          }
        }
      }
    }
    """

    var pipeline: JSONSchema? { schema(SchemaValidatorTests.pipeline) }

    func testValidDocumentGetsDefaultsFilled() throws {
        let doc = try XCTUnwrap(parseYAML("""
        version: 1
        stages:
          q: {kind: quantize}
          train:
            kind: train
            model: q
            optimizer: {name: sgd}
        """))
        let (value, diagnostics) = try XCTUnwrap(pipeline).validate(doc)
        XCTAssertEqual(diagnostics, [])
        XCTAssertEqual(value["seed"], .integer(0))
        XCTAssertEqual(value["cache"], .string(".qlora"))
        XCTAssertEqual(value["stages"]?["q"], .object(["kind": .string("quantize"), "type": .string("nf4"), "skip": .array([.string("lm_head")])]))
        XCTAssertEqual(value["stages"]?["train"], .object([
            "kind": .string("train"), "model": .string("q"), "learning_rate": .number(0.0002), "epochs": .integer(1),
            "packing": .bool(false), "optimizer": .object(["name": .string("sgd"), "beta2": .number(0.999)]),
        ]))
        // Omitted default and explicit default give the same value.
        let explicit = try XCTUnwrap(parseYAML("version: 1\nseed: 0\ncache: .qlora\nstages: {q: {kind: quantize, type: nf4, skip: [lm_head]}}"))
        let implicit = try XCTUnwrap(parseYAML("version: 1\nstages: {q: {kind: quantize}}"))
        XCTAssertEqual(try XCTUnwrap(pipeline).validate(explicit).value, try XCTUnwrap(pipeline).validate(implicit).value)
    }

    func testTypeMessages() {
        let text = """
        version: 1
        stages:
          train:
            kind: train
            model: 3
            learning_rate: fast
            epochs: 1.5
            packing: "yes"
            optimizer: [a]
        """
        XCTAssertEqual(check(text, pipeline), [
            "x.yaml:5:12: error: stages.train.model: expected a string, found the integer 3",
            "x.yaml:6:20: error: stages.train.learning_rate: expected a number, found the string \"fast\"",
            "x.yaml:7:13: error: stages.train.epochs: expected an integer, found the number 1.5",
            "x.yaml:8:14: error: stages.train.packing: expected a boolean, found the string \"yes\"",
            "x.yaml:9:16: error: stages.train.optimizer: expected a mapping, found a list",
        ])
        XCTAssertEqual(check("version: 1\nstages: ~", pipeline), ["x.yaml:2:9: error: stages: expected a mapping, found null"])
        XCTAssertEqual(check("", pipeline), ["x.yaml:1:1: error: expected a mapping, found null"])
        XCTAssertEqual(check("- 1", pipeline), ["x.yaml:1:1: error: expected a mapping, found a list"])
    }

    func testIntegerAcceptsIntegralFloatAndNonFiniteIsRejected() {
        let base = "version: 1\nstages:\n  t:\n    kind: train\n    model: m\n"
        XCTAssertEqual(check(base + "    epochs: 2.0\n", pipeline), [])
        // ... and is returned as the integer, so 2.0 and 2 give the same field values.
        let two = parseYAML(base + "    epochs: 2.0\n").map { pipeline?.validate($0).value["stages"]?["t"]?["epochs"] }
        XCTAssertEqual(two, .integer(2))
        XCTAssertEqual(check(base + "    learning_rate: .nan\n", pipeline),
                       ["x.yaml:6:20: error: stages.t.learning_rate: expected a finite number, found .nan"])
        XCTAssertEqual(check(base + "    learning_rate: -.inf\n", pipeline),
                       ["x.yaml:6:20: error: stages.t.learning_rate: expected a finite number, found -.inf"])
        XCTAssertEqual(check(base + "    epochs: .inf\n", pipeline),
                       ["x.yaml:6:13: error: stages.t.epochs: expected a finite number, found .inf"])
        XCTAssertEqual(check(base + "    learning_rate: \"1e-4\"\n", pipeline),
                       ["x.yaml:6:20: error: stages.t.learning_rate: expected a number, found the string \"1e-4\""])
    }

    /// JSON Schema compares strings by code point: "é" (U+00E9) is not "e" + U+0301, although
    /// Swift's String == says they are equal (the official suite's const/enum case).
    func testConstAndEnumCompareStringsByUnicodeScalars() {
        let precomposed = JSONValue.string("\u{E9}"), decomposed = JSONValue.string("e\u{301}")
        XCTAssertEqual(precomposed, decomposed, "Swift's canonical equivalence, the trap")
        XCTAssertFalse(SchemaValidator.equal(precomposed, decomposed))
        XCTAssertTrue(SchemaValidator.equal(.array([precomposed, .integer(1)]), .array([.string("\u{E9}"), .number(1.0)])))
        XCTAssertFalse(SchemaValidator.equal(.object(["\u{E9}": .integer(1)]), .object(["e\u{301}": .integer(1)])))
        let schema = try? JSONSchema(.object(["enum": .array([precomposed])]))
        XCTAssertEqual(schema?.validate(decomposed).diagnostics.count, 1)
        XCTAssertEqual(schema?.validate(precomposed).diagnostics.count, 0)
    }

    func testUnknownFieldPointsAtKeyWithSuggestion() {
        let text = """
        version: 1
        stages:
          train:
            kind: train
            model: q
            learnig_rate: 0.1
            colour: red
        """
        XCTAssertEqual(check(text, pipeline), [
            "x.yaml:6:5: error: stages.train: unknown field 'learnig_rate'; did you mean 'learning_rate'?",
            "x.yaml:7:5: error: stages.train: unknown field 'colour'",
        ])
        XCTAssertEqual(check("version: 1\nstages: {}\nsed: 3", pipeline), ["x.yaml:3:1: error: unknown field 'sed'; did you mean 'seed'?"])
    }

    func testMissingRequiredPointsAtParentMapping() {
        XCTAssertEqual(check("version: 1\nstages:\n  t:\n    kind: train\n", pipeline),
                       ["x.yaml:4:5: error: stages.t: missing required field 'model'"])
        XCTAssertEqual(check("name: ab\n", pipeline), [
            "x.yaml:1:1: error: missing required field 'version'",
            "x.yaml:1:1: error: missing required field 'stages'",
        ])
    }

    func testEnumConstWithSuggestion() {
        XCTAssertEqual(check("version: 1\nstages: {q: {kind: quantize, type: nf5}}", pipeline),
                       ["x.yaml:2:36: error: stages.q.type: must be one of: nf4, fp4 (found \"nf5\"); did you mean 'nf4'?"])
        XCTAssertEqual(check("version: 1\nstages: {q: {kind: quantize, type: int8}}", pipeline),
                       ["x.yaml:2:36: error: stages.q.type: must be one of: nf4, fp4 (found \"int8\")"])
        XCTAssertEqual(check("version: 2\nstages: {}", pipeline), ["x.yaml:1:10: error: version: must be 1 (found 2)"])
        XCTAssertEqual(check("version: 1.0\nstages: {}", pipeline), [])  // 1.0 == 1 numerically
    }

    func testNumericBounds() {
        let base = "version: 1\nstages:\n  t:\n    kind: train\n    model: m\n"
        XCTAssertEqual(check(base + "    learning_rate: 0\n", pipeline),
                       ["x.yaml:6:20: error: stages.t.learning_rate: must be > 0 (found 0)"])
        XCTAssertEqual(check(base + "    epochs: 0\n", pipeline), ["x.yaml:6:13: error: stages.t.epochs: must be >= 1 (found 0)"])
        XCTAssertEqual(check(base + "    epochs: 500\n", pipeline), ["x.yaml:6:13: error: stages.t.epochs: must be <= 100 (found 500)"])
        XCTAssertEqual(check(base + "    optimizer: {beta2: 1}\n", pipeline),
                       ["x.yaml:6:24: error: stages.t.optimizer.beta2: must be < 1 (found 1)"])
        XCTAssertEqual(check("version: 1\nseed: -1\nstages: {}", pipeline), ["x.yaml:2:7: error: seed: must be >= 0 (found -1)"])
        let multiple = schema(#"{"multipleOf": 8}"#)
        XCTAssertEqual(check("12", multiple), ["x.yaml:1:1: error: must be a multiple of 8 (found 12)"])
        XCTAssertEqual(check("16", multiple), [])
    }

    func testStringKeywords() {
        XCTAssertEqual(check("version: 1\nname: ''\nstages: {}", pipeline), [
            "x.yaml:2:7: error: name: must be at least 1 character long (found 0)",
            "x.yaml:2:7: error: name: must match the pattern '^[a-z][a-z0-9_]*$' (found \"\")",
        ])
        XCTAssertEqual(check("version: 1\nname: abcdefghij\nstages: {}", pipeline),
                       ["x.yaml:2:7: error: name: must be at most 8 characters long (found 10)"])
        XCTAssertEqual(check("version: 1\nname: Run1\nstages: {}", pipeline),
                       ["x.yaml:2:7: error: name: must match the pattern '^[a-z][a-z0-9_]*$' (found \"Run1\")"])
        // Length counts code points, not bytes.
        XCTAssertEqual(check("\"héé\"", schema(#"{"maxLength": 3}"#)), [])
    }

    func testArrayKeywords() {
        XCTAssertEqual(check("version: 1\nstages:\n  q:\n    kind: quantize\n    skip: [a, 1, a, b]\n", pipeline), [
            "x.yaml:5:11: error: stages.q.skip: must have at most 3 items (found 4)",
            "x.yaml:5:15: error: stages.q.skip[1]: expected a string, found the integer 1",
            "x.yaml:5:18: error: stages.q.skip[2]: duplicates item 0 (items must be unique)",
        ])
        let s = schema(#"{"type": "array", "minItems": 2, "prefixItems": [{"type": "integer"}], "items": {"type": "string"}}"#)
        XCTAssertEqual(check("[1]", s), ["x.yaml:1:1: error: must have at least 2 items (found 1)"])
        XCTAssertEqual(check("[1, x, y]", s), [])
        XCTAssertEqual(check("[x, 2]", s), [
            "x.yaml:1:2: error: [0]: expected an integer, found the string \"x\"",
            "x.yaml:1:5: error: [1]: expected a string, found the integer 2",
        ])
        XCTAssertEqual(check("[1, 1.0]", schema(#"{"uniqueItems": true}"#)), ["x.yaml:1:5: error: [1]: duplicates item 0 (items must be unique)"])
    }
}
