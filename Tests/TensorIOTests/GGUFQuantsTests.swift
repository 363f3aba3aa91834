import XCTest
import TestSupport
@testable import TensorIO

/// ggml block formats against gguf-py (Tests/Fixtures/gguf/quants.json, written by
/// Tests/Fixtures/generate_gguf.py): encoding must give the same bytes, decoding the same floats.
final class GGUFQuantsTests: XCTestCase {
    struct Fixture: Decodable {
        struct Decoded: Decodable { let bytes: String; let values: [Float] }
        let values: [Float]
        let encode: [String: String]
        let decode: [String: Decoded]
    }

    func fixture() throws -> Fixture {
        let url = Reference.projectRoot.appendingPathComponent("Tests/Fixtures/gguf/quants.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = [], chars = Array(hex.utf8)
        for i in stride(from: 0, to: chars.count, by: 2) { out.append(UInt8(String(bytes: chars[i..<i + 2], encoding: .ascii)!, radix: 16)!) }
        return out
    }

    func testEncodingMatchesGGUFPyByteForByte() throws {
        let f = try fixture()
        let types: [String: GGMLType] = ["Q8_0": .q8_0, "Q4_0": .q4_0, "F16": .f16, "BF16": .bf16]
        XCTAssertEqual(Set(f.encode.keys), Set(types.keys))
        for (name, type) in types {
            XCTAssertEqual(Self.hex(GGMLQuants.quantize(f.values, type: type)), f.encode[name], name)
        }
    }

    /// Dequantization follows ggml's reference element for element, so the floats are identical
    /// (each value is one or two float multiply/adds of the same operands in the same order).
    func testDecodingMatchesGGUFPyExactly() throws {
        let f = try fixture()
        let types: [String: GGMLType] = ["Q4_0": .q4_0, "Q4_1": .q4_1, "Q5_0": .q5_0, "Q5_1": .q5_1, "Q8_0": .q8_0,
                                         "Q4_K": .q4_K, "Q5_K": .q5_K, "Q6_K": .q6_K]
        XCTAssertEqual(Set(f.decode.keys), Set(types.keys))
        for (name, type) in types {
            let raw = Self.bytes(f.decode[name]!.bytes)
            XCTAssertEqual(raw.count, type.byteCount(elements: 2 * type.blockSize), name)
            let values = raw.withUnsafeBytes { GGMLQuants.dequantize($0, type: type, count: 2 * type.blockSize) }
            XCTAssertEqual(values, f.decode[name]!.values, name)
        }
    }

    /// Decoding a q8_0 encoding and encoding it again gives the same blocks (the scale is exact:
    /// 127 · d of an f16 d is representable), which is what makes export → load → export stable.
    func testQ8RoundTripIsAFixedPoint() throws {
        let f = try fixture()
        let once = GGMLQuants.quantize(f.values, type: .q8_0)
        let decoded = once.withUnsafeBytes { GGMLQuants.dequantize($0, type: .q8_0, count: f.values.count) }
        XCTAssertEqual(GGMLQuants.quantize(decoded, type: .q8_0), once)
        assertClose(decoded, f.values, rtol: 0, atol: 3.75 / 127 / 2 * 1.01, "q8_0 error is at most half a step of the largest block")
    }
}
