import XCTest
import TestSupport
@testable import TensorIO

final class GGUFFileTests: XCTestCase {
    func sample() -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", string: "llama")
        w.set("llama.block_count", uint32: 2)
        w.set("llama.rope.freq_base", float32: 10000)
        w.set("some.bool", .bool(true))
        w.set("some.i64", .int64(-5))
        w.set("some.f64", .float64(0.25))
        w.set("tokenizer.ggml.tokens", strings: ["a", "b", "ü"])
        w.set("tokenizer.ggml.token_type", int32s: [1, 3, 4])
        w.add("norm.weight", floats: [1, 2, 3], shape: [3], type: .f32)
        w.add("w.weight", floats: (0..<64).map { Float($0) / 8 - 4 }, shape: [2, 32], type: .q8_0)
        return w
    }

    func testWriterAndReaderAgreeOnEveryField() throws {
        let bytes = try sample().serialized()
        let file = try GGUFFile(data: Data(bytes), url: URL(fileURLWithPath: "sample.gguf"))
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadataKeys, ["general.architecture", "llama.block_count", "llama.rope.freq_base", "some.bool", "some.i64",
                                           "some.f64", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type"])
        XCTAssertEqual(file.metadata["llama.block_count"], .uint32(2))
        XCTAssertEqual(file.metadata["llama.rope.freq_base"], .float32(10000))
        XCTAssertEqual(file.metadata["some.bool"], .bool(true))
        XCTAssertEqual(file.metadata["some.i64"], .int64(-5))
        XCTAssertEqual(file.metadata["some.f64"], .float64(0.25))
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.array?.compactMap(\.string), ["a", "b", "ü"])
        XCTAssertEqual(file.metadata["tokenizer.ggml.token_type"], .array(.int32, [.int32(1), .int32(3), .int32(4)]))
        XCTAssertEqual(file.tensors.map(\.name), ["norm.weight", "w.weight"])
        XCTAssertEqual(file.info("w.weight")?.dimensions, [32, 2], "ggml order: innermost first")
        XCTAssertEqual(file.info("w.weight")?.shape, [2, 32])
        XCTAssertEqual(file.info("w.weight")?.offset, 32, "the 12-byte f32 tensor is padded to the 32-byte alignment")
        XCTAssertEqual(try file.floats("norm.weight"), [1, 2, 3])
        // Values k/8 - 4 on a block with amax 4 (step 4/127): q8_0 returns them within half a step.
        assertClose(try file.floats("w.weight"), (0..<64).map { Float($0) / 8 - 4 }, rtol: 0, atol: 4.0 / 127 / 2 * 1.01)
        XCTAssertEqual(bytes.count % 32, 0)
        XCTAssertEqual(try sample().serialized(), bytes, "same inputs, same bytes")
    }

    func testBadFilesAreNamedErrors() throws {
        let url = URL(fileURLWithPath: "/data/m.gguf")
        let good = try sample().serialized()
        func error(_ bytes: [UInt8]) -> String {
            do { _ = try GGUFFile(data: Data(bytes), url: url); return "no error" } catch { return error.localizedDescription }
        }
        XCTAssertEqual(error(Array("GGML".utf8) + good.dropFirst(4)), "/data/m.gguf: not a GGUF file (it does not start with the magic bytes \"GGUF\")")
        var v1 = good; v1[4] = 1
        XCTAssertEqual(error(v1), "/data/m.gguf: GGUF version 1 is not supported (versions 2 and 3 are); re-convert it with a current llama.cpp")
        XCTAssertEqual(error(Array(good.prefix(good.count - 40))),
                       "/data/m.gguf: corrupt GGUF file: tensor 'w.weight' (68 bytes at 32) runs past the end of the \(good.count - 40)-byte file; the file is truncated")
        XCTAssertEqual(error(Array(good.prefix(30))), "/data/m.gguf: corrupt GGUF file: unexpected end of file at byte 24: needs 8 bytes, 6 remain; the file is truncated")
        XCTAssertThrowsError(try GGUFFile(url: URL(fileURLWithPath: "/nonexistent/x.gguf"))) {
            XCTAssertTrue($0.localizedDescription.hasPrefix("/nonexistent/x.gguf: cannot open GGUF file: "), $0.localizedDescription)
        }
    }
}
