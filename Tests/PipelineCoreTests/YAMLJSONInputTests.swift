import Foundation
import XCTest
@testable import PipelineCore

/// JSON input: the strict JSON reader (used for .json files and schemas) and JSON text through libyaml.
final class YAMLJSONInputTests: XCTestCase {
    func jsonErrors(_ text: String) -> [String] {
        do {
            _ = try JSONReader.document(bytes: Array(text.utf8), displayName: "d.json")
            XCTFail("expected an error")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    func testValuesAndLocations() throws {
        let text = "{\n  \"i\": 3, \"f\": 3.0, \"e\": 1e-4, \"big\": 123456789012345678901,\n  \"s\": \"a\\u00e9\\ud83d\\ude00\\n\\\"\", \"l\": [true, false, null], \"o\": {}\n}"
        let doc = try JSONReader.document(bytes: Array(text.utf8), displayName: "d.json")
        XCTAssertEqual(doc.value["i"], .integer(3))
        XCTAssertEqual(doc.value["f"], .number(3))
        XCTAssertEqual(doc.value["e"], .number(1e-4))
        XCTAssertEqual(doc.value["big"], .number(123456789012345678901))
        XCTAssertEqual(doc.value["s"], .string("aé😀\n\""))
        XCTAssertEqual(doc.value["l"], .array([.bool(true), .bool(false), .null]))
        XCTAssertEqual(doc.value["o"], .object([:]))
        XCTAssertEqual(doc.location(of: ["f"])?.description, "d.json:2:16")
        XCTAssertEqual(doc.keyLocation(of: ["f"])?.description, "d.json:2:11")
        XCTAssertEqual(doc.location(of: ["l", "2"])?.description, "d.json:3:54")
        XCTAssertEqual(doc.node(at: [])?.entries?.map(\.key), ["i", "f", "e", "big", "s", "l", "o"])
    }

    func testSyntaxErrors() {
        XCTAssertEqual(jsonErrors("{\"a\": 1,}"), ["d.json:1:9: error: syntax error: expected a string key, found '}'"])
        XCTAssertEqual(jsonErrors("{\"a\" 1}"), ["d.json:1:6: error: syntax error: expected ':', found '1'"])
        XCTAssertEqual(jsonErrors("[1, 2"), ["d.json:1:6: error: syntax error: expected ']', found the end of the file"])
        XCTAssertEqual(jsonErrors("{\"a\": 01}"), ["d.json:1:7: error: syntax error: a JSON number cannot have a leading zero"])
        XCTAssertEqual(jsonErrors("{\"a\": 'x'}"), ["d.json:1:7: error: syntax error: expected a value, found '''"])
        XCTAssertEqual(jsonErrors("\"\\q\""), ["d.json:1:4: error: syntax error: invalid escape '\\q'"])
        XCTAssertEqual(jsonErrors("{} x"), ["d.json:1:4: error: syntax error: unexpected text after the JSON value"])
        XCTAssertEqual(jsonErrors(""), ["d.json:1:1: error: syntax error: expected a value, found the end of the file"])
        XCTAssertEqual(jsonErrors("{\"a\": 1,\n \"a\": 2}"), ["d.json:2:2: error: duplicate key 'a' (first defined at 1:2)"])
        XCTAssertEqual(jsonErrors(String(repeating: "[", count: 1000)), ["d.json:1:513: error: syntax error: nesting deeper than 512 levels"])
    }

    /// JSON is YAML flow syntax: through libyaml, integers stay integers and floats floats.
    func testJSONTextThroughLibyamlKeepsNumberKinds() throws {
        let doc = try XCTUnwrap(parseYAML("{\"a\": 1, \"b\": 1.0, \"c\": \"1\", \"d\": [true, null], \"e\": -2.5e3}"))
        XCTAssertEqual(doc.value, .object(["a": .integer(1), "b": .number(1), "c": .string("1"),
                                           "d": .array([.bool(true), .null]), "e": .number(-2500)]))
    }

    /// Large documents parse and validate in linear-ish time (no per-key scans): 10 000 keys, 30 000 nodes.
    func testLargeDocument() throws {
        var text = "items:\n"
        for i in 0..<10_000 { text += "  k\(i): [\(i), \(i + 1)]\n" }
        let doc = try XCTUnwrap(parseYAML(text))
        XCTAssertEqual(doc.location(of: ["items", "k9999", "1"])?.lineColumn, "10001:17")
        let s = try XCTUnwrap(schema(#"{"properties": {"items": {"additionalProperties": {"type": "array", "items": {"type": "integer"}, "uniqueItems": true}}}}"#))
        XCTAssertEqual(s.validate(doc).diagnostics, [])
    }
}
