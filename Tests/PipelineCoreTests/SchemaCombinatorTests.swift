import Foundation
import XCTest
@testable import PipelineCore

final class SchemaCombinatorTests: XCTestCase {
    var pipeline: JSONSchema? { schema(SchemaValidatorTests.pipeline) }

    func testDiscriminatorSelectsBranchByKind() {
        // Only the train branch's errors, not the quantize branch's.
        XCTAssertEqual(check("version: 1\nstages:\n  t:\n    kind: train\n    model: m\n    type: nf4\n", pipeline),
                       ["x.yaml:6:5: error: stages.t: unknown field 'type'"])
        XCTAssertEqual(check("version: 1\nstages:\n  t:\n    kind: trian\n    model: m\n", pipeline),
                       ["x.yaml:4:11: error: stages.t.kind: unknown stage kind 'trian'; did you mean 'train'?"])
        XCTAssertEqual(check("version: 1\nstages:\n  t:\n    kind: evaluate\n", pipeline),
                       ["x.yaml:4:11: error: stages.t.kind: unknown stage kind 'evaluate'; expected one of: quantize, train"])
        XCTAssertEqual(check("version: 1\nstages:\n  t:\n    model: m\n", pipeline),
                       ["x.yaml:4:5: error: stages.t: missing required field 'kind'"])
        XCTAssertEqual(check("version: 1\nstages:\n  t: train\n", pipeline),
                       ["x.yaml:3:6: error: stages.t: expected a mapping, found the string \"train\""])
    }

    func testGenericOneOf() {
        let s = schema(#"{"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}, {"type": "integer", "minimum": 5}]}"#)
        XCTAssertEqual(check("abc", s), [])
        XCTAssertEqual(check("[1, 2]", s), [])
        XCTAssertEqual(check("true", s), ["x.yaml:1:1: error: expected a string, a list or an integer, found the boolean true"])
        // Only one branch is about this type: its errors are reported.
        XCTAssertEqual(check("[1, x]", s), ["x.yaml:1:5: error: [1]: expected an integer, found the string \"x\""])
        XCTAssertEqual(check("3", s), ["x.yaml:1:1: error: must be >= 5 (found 3)"])
        let overlap = schema(#"{"oneOf": [{"type": "integer"}, {"type": "number"}]}"#)
        XCTAssertEqual(check("2", overlap), ["x.yaml:1:1: error: matches more than one alternative (#1, #2); it must match exactly one"])
        XCTAssertEqual(check("2.5", overlap), [])
        let tie = schema(#"{"oneOf": [{"type": "object", "required": ["a"]}, {"type": "object", "required": ["b"]}]}"#)
        XCTAssertEqual(check("{c: 1}", tie), ["x.yaml:1:1: error: matches none of the 2 alternatives"])
    }

    func testAnyOfUsesMatchingBranchForDefaults() throws {
        let s = try XCTUnwrap(schema("""
        {"anyOf": [
          {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}, "x": {"default": "from-a"}}},
          {"type": "object", "required": ["b"], "properties": {"b": {"type": "integer"}, "y": {"default": "from-b"}}}
        ]}
        """))
        XCTAssertEqual(s.validate(.object(["b": .integer(1)])).value, .object(["b": .integer(1), "y": .string("from-b")]))
        XCTAssertEqual(s.validate(.object(["a": .integer(1)])).value, .object(["a": .integer(1), "x": .string("from-a")]))
        let failed = s.validate(.object(["a": .string("s")]))
        XCTAssertEqual(failed.diagnostics.map(\.description), ["error: a: expected an integer, found the string \"s\""])
    }

    func testAllOfNotAndBooleanSchemas() {
        let s = schema(#"{"allOf": [{"type": "integer"}, {"minimum": 0}, {"maximum": 10}], "not": {"const": 5}}"#)
        XCTAssertEqual(check("3", s), [])
        XCTAssertEqual(check("11", s), ["x.yaml:1:1: error: must be <= 10 (found 11)"])
        XCTAssertEqual(check("5", s), ["x.yaml:1:1: error: must not match the schema under 'not'"])
        XCTAssertEqual(check("{a: 1, b: 2}", schema(#"{"properties": {"a": true, "b": false}}"#)),
                       ["x.yaml:1:11: error: b: no value is allowed here"])
    }

    func testIfThenElse() {
        let s = schema("""
        {"type": "object",
         "if": {"properties": {"type": {"const": "lora"}}, "required": ["type"]},
         "then": {"required": ["rank"], "properties": {"alpha": {"default": 16}}},
         "else": {"properties": {"rank": false}}}
        """)
        XCTAssertEqual(check("type: lora\n", s), ["x.yaml:1:1: error: missing required field 'rank'"])
        XCTAssertEqual(check("type: full\nrank: 8\n", s), ["x.yaml:2:7: error: rank: no value is allowed here"])
        XCTAssertEqual(check("type: full\n", s), [])
        XCTAssertEqual(s?.validate(.object(["type": .string("lora"), "rank": .integer(8)])).value["alpha"], .integer(16))
    }

    func testRefToDefinitionsAndPatternProperties() {
        let s = schema("""
        {"definitions": {"pos": {"type": "integer", "exclusiveMinimum": 0}},
         "type": "object",
         "patternProperties": {"^n_": {"$ref": "#/definitions/pos"}},
         "additionalProperties": {"type": "string"},
         "minProperties": 1, "maxProperties": 3,
         "dependentRequired": {"a": ["b"]}}
        """)
        XCTAssertEqual(check("n_x: 0\nother: 1\n", s), [
            "x.yaml:1:6: error: n_x: must be > 0 (found 0)",
            "x.yaml:2:8: error: other: expected a string, found the integer 1",
        ])
        XCTAssertEqual(check("{}", s), ["x.yaml:1:1: error: must have at least 1 field (found 0)"])
        XCTAssertEqual(check("{a: x, c: y, d: z, e: w}", s), [
            "x.yaml:1:1: error: missing field 'b' (required when 'a' is present)",
            "x.yaml:1:1: error: must have at most 3 fields (found 4)",
        ])
    }

    func testRecursiveRefIsBounded() throws {
        // A list of lists of ... validates recursively; a self-referencing schema does not hang.
        let tree = try XCTUnwrap(schema(##"{"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"}"##))
        XCTAssertEqual(check("[[], [[]]]", tree), [])
        XCTAssertEqual(check("[[], [3]]", tree), ["x.yaml:1:7: error: [1][0]: expected a list, found the integer 3"])
        let loop = try XCTUnwrap(schema(##"{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##))
        XCTAssertEqual(loop.validate(.integer(1)).diagnostics.map(\.message),
                       ["schema nesting deeper than 300 levels (a $ref cycle?)"])
    }

    func testInvalidSchemasAreRejected() {
        func reason(_ json: String) -> String? {
            do {
                _ = try JSONSchema(JSONReader.read(text: json, displayName: "s.json"))
                return nil
            } catch {
                return (error as? LocalizedError)?.errorDescription
            }
        }
        XCTAssertEqual(reason(##"{"$ref": "#/$defs/missing"}"##), "invalid schema at '/$ref': '#/$defs/missing' does not point at anything in this schema")
        XCTAssertEqual(reason(#"{"$ref": "other.json#/x"}"#), "invalid schema at '/$ref': only local references ('#/$defs/...') are supported, not 'other.json#/x'")
        XCTAssertEqual(reason(#"{"properties": {"a": {"contains": {}}}}"#), "invalid schema at '/properties/a/contains': the keyword 'contains' is not supported by this validator")
        XCTAssertEqual(reason(#"{"pattern": "(["}"#), "invalid schema at '/pattern': '([' is not a valid regular expression")
        XCTAssertEqual(reason(#"{"type": "float"}"#), "invalid schema at '/type': unknown type \"float\"")
        XCTAssertEqual(reason(#"{"x-anything": {"type": 3}, "description": "ok"}"#), nil)
    }

    /// The `validate DOC --schema OTHER.json` use: a JSON document against an arbitrary schema.
    func testJSONDocumentAgainstArbitrarySchema() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yaml-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let schemaURL = dir.appendingPathComponent("person.schema.json")
        try Data("""
        {"type": "object", "required": ["name", "age"], "additionalProperties": false,
         "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                        "ratio": {"type": "number"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}}}}
        """.utf8).write(to: schemaURL)
        let docURL = dir.appendingPathComponent("doc.json")
        try Data("""
        {
          "name": "Ada",
          "age": 36.5,
          "ratio": 2,
          "tags": ["a", "c"],
          "agee": 1
        }
        """.utf8).write(to: docURL)
        let s = try JSONSchema(JSONReader.read(contentsOf: schemaURL, displayName: "person.schema.json"))
        let doc = try YAMLReader.read(contentsOf: docURL, displayName: "doc.json")
        XCTAssertEqual(doc.value["ratio"], .integer(2))
        XCTAssertEqual(doc.value["age"], .number(36.5))
        XCTAssertEqual(s.validate(doc).diagnostics.map(\.description), [
            "doc.json:3:10: error: age: expected an integer, found the number 36.5",
            "doc.json:5:17: error: tags[1]: must be one of: a, b (found \"c\")",
            "doc.json:6:3: error: unknown field 'agee'; did you mean 'age'?",
        ])
    }
}
