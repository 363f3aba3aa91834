import XCTest
import Foundation
import TensorIO
import TestSupport

final class SafeTensorsTests: XCTestCase {
    /// Re-serialising a reference file (written by Python safetensors 0.8.0) must give identical bytes.
    func testReserialisationIsByteIdenticalToReferenceFiles() throws {
        let files = ["tiny-llama/model.safetensors", "golden/quant.safetensors", "golden/lora_train/data.safetensors",
                     "golden/lora_train/adapter_final/adapter_model.safetensors", "golden/qlora_train/base-nf4-dq/model.safetensors",
                     "golden/logits.safetensors"]
        for path in files {
            guard let url = Reference.file(path) else { throw XCTSkip(Reference.skipMessage) }
            let original = try [UInt8](Data(contentsOf: url))
            let file = try SafeTensorsFile(url: url)
            var writer = SafeTensorsWriter(metadata: file.metadata)
            for name in file.names {
                let info = try XCTUnwrap(file.info(name))
                writer.add(name, dtype: info.dtype, shape: info.shape, bytes: try file.bytes(name))
            }
            let bytes = writer.serialized()
            XCTAssertEqual(bytes.count, original.count, path)
            XCTAssertTrue(bytes == original, "\(path): re-serialised bytes differ")
        }
    }

    func testReadsKnownValues() throws {
        guard let url = Reference.file("golden/lora_train/data.safetensors") else { throw XCTSkip(Reference.skipMessage) }
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names, ["attention_mask", "input_ids", "labels_hf", "loss_mask"])
        XCTAssertEqual(file.info("input_ids"), TensorInfo(name: "input_ids", dtype: .i64, shape: [4, 48]))
        let ids = try file.int64s("input_ids")
        XCTAssertEqual(ids.count, 192)
        XCTAssertEqual(ids[0], 1, "conversations start with <|im_start|>")
        XCTAssertThrowsError(try file.floats("input_ids")) { error in
            XCTAssertTrue(error.localizedDescription.hasSuffix("tensor 'input_ids' has dtype I64, expected a floating-point type (F32, F16, BF16, F64)"))
        }
    }

    func testBFloat16CheckpointUpcastsExactly() throws {
        guard let a = Reference.file("tiny-llama-bf16/model.safetensors"), let b = Reference.file("tiny-llama/model.safetensors") else {
            throw XCTSkip(Reference.skipMessage)
        }
        let bf = try SafeTensorsFile(url: a), fp = try SafeTensorsFile(url: b)
        let name = "model.layers.0.self_attn.q_proj.weight"
        let x = try bf.floats(name), y = try fp.floats(name)
        XCTAssertEqual(x.count, y.count)
        for i in 0..<x.count { XCTAssertEqual(x[i].bitPattern, UInt32(BFloat16.fromFloat(y[i])) << 16, "element \(i)") }
    }

    func testRoundTripAndDeterminism() throws {
        var w = SafeTensorsWriter(metadata: ["format": "pt", "note": "a \"quoted\" \\ value"])
        w.add("b.weight", floats: [1, -2.5, .pi], shape: [3])
        w.add("a.ids", int64s: [7, -1], shape: [2])
        w.add("c.codes", dtype: .u8, shape: [2, 2], bytes: [0x12, 0x34, 0x56, 0x78])
        let bytes = w.serialized()
        XCTAssertEqual(bytes, w.serialized())
        XCTAssertEqual((8 + Int(bytes[0])) % 8, 0, "header padded to 8 bytes")
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.safetensors")
        try w.write(to: url)
        let r = try SafeTensorsFile(url: url)
        XCTAssertEqual(r.metadata, ["format": "pt", "note": "a \"quoted\" \\ value"])
        XCTAssertEqual(try r.floats("b.weight"), [1, -2.5, .pi])
        XCTAssertEqual(try r.int64s("a.ids"), [7, -1])
        XCTAssertEqual(try r.bytes("c.codes"), [0x12, 0x34, 0x56, 0x78])
        let header = String(decoding: bytes[8..<(8 + Int(bytes[0]) + 256 * Int(bytes[1]))], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"a \\\"quoted\\\" \\\\ value\"},\"a.ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},\"b.weight\":{\"dtype\":\"F32\""), header)
    }

    // MARK: malformed files: each a clear error, never a crash.

    private func header(_ json: String, data: [UInt8] = []) -> Data {
        var n = UInt64(json.utf8.count).littleEndian
        var d = Data(bytes: &n, count: 8)
        d.append(contentsOf: Array(json.utf8)); d.append(contentsOf: data)
        return d
    }

    private func expectError(_ data: Data, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(data: data, url: URL(fileURLWithPath: "/x/bad.safetensors")), file: file, line: line) { error in
            XCTAssertEqual(error.localizedDescription, message, file: file, line: line)
        }
    }

    func testMalformedFiles() {
        expectError(Data([1, 2, 3]), "/x/bad.safetensors: not a valid safetensors file: file is 3 bytes, shorter than the 8-byte header length")
        var big = Data(count: 16); big[0] = 0xFF; big[1] = 0xFF; big[2] = 0xFF; big[3] = 0x7F
        expectError(big, "/x/bad.safetensors: not a valid safetensors file: header length 2147483647 exceeds the 100000000-byte limit")
        var past = Data(count: 16); past[0] = 100
        expectError(past, "/x/bad.safetensors: not a valid safetensors file: header length 100 runs past the end of the file (16 bytes)")
        expectError(header("{not json"), "/x/bad.safetensors: not a valid safetensors file: header is not a JSON object")
        expectError(header(#"{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                    "/x/bad.safetensors: tensor 'w': unsupported dtype 'Q7'")
        expectError(header(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                    "/x/bad.safetensors: tensor 'w': shape [2] × F32 is 8 bytes but its data offsets span 4")
        expectError(header(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]),
                    "/x/bad.safetensors: tensor 'w': data offsets [0, 8] outside the 4-byte data buffer")
        expectError(header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                    "/x/bad.safetensors: tensor 'b': data overlaps another tensor's data")
        expectError(header(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                    "/x/bad.safetensors: tensor 'w': shape must be a list of non-negative integers")
        expectError(header(#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                    "/x/bad.safetensors: tensor 'w': shape [4611686018427387904, 4] is too large")
    }

    func testShardedCheckpointFollowsIndex() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var a = SafeTensorsWriter(); a.add("x", floats: [1, 2], shape: [2]); try a.write(to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        var b = SafeTensorsWriter(); b.add("y", floats: [3], shape: [1]); try b.write(to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        try Data(#"{"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}}"#.utf8)
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let c = try ShardedCheckpoint(directory: dir)
        XCTAssertEqual(c.names, ["x", "y"])
        XCTAssertEqual(try c.floats("y"), [3])
        XCTAssertThrowsError(try c.floats("z")) { XCTAssertEqual($0.localizedDescription, "\(dir.path): no tensor named 'z'") }
    }
}
