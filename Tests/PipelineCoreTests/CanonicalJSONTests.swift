import XCTest
@testable import PipelineCore

final class CanonicalJSONTests: XCTestCase {
    func testSortedKeysNoWhitespaceIntegersAndFloats() {
        let v: JSONValue = .object([
            "b": .integer(3), "a": .number(3.0), "lr": .number(0.0005), "tiny": .number(1e-05),
            "big": .number(1e20), "neg": .integer(-7), "list": .array([.null, .bool(true), .bool(false)]),
            "nested": .object(["z": .string("x"), "Z": .string("y")]),
        ])
        XCTAssertEqual(CanonicalJSON.string(v),
            #"{"a":3.0,"b":3,"big":1e20,"list":[null,true,false],"lr":0.0005,"neg":-7,"nested":{"Z":"y","z":"x"},"tiny":1e-5}"#)
    }

    func testNumbersShortestRoundTrip() {
        XCTAssertEqual(CanonicalJSON.number(0.1), "0.1")
        XCTAssertEqual(CanonicalJSON.number(1e-4), "0.0001")
        XCTAssertEqual(CanonicalJSON.number(2.5e-7), "2.5e-7")
        XCTAssertEqual(CanonicalJSON.number(-0.0), "0.0")
        XCTAssertEqual(CanonicalJSON.number(1.0 / 3.0), "0.3333333333333333")
        XCTAssertEqual(CanonicalJSON.number(Double.infinity), "null")
    }

    func testStringEscaping() {
        let s: JSONValue = .string("q\"b\\n\n\t\u{01}é€😀")
        XCTAssertEqual(CanonicalJSON.string(s), "\"q\\\"b\\\\n\\n\\t\\u0001é€😀\"")
    }

    func testKeysSortByCodePointNotUTF16() {
        // U+FF61 (BMP) sorts before U+1F600 by code point, but after it in UTF-16 code units.
        let v: JSONValue = .object(["\u{1F600}": .integer(1), "\u{FF61}": .integer(2)])
        XCTAssertEqual(CanonicalJSON.string(v), "{\"\u{FF61}\":2,\"\u{1F600}\":1}")
    }
}
