import XCTest
import TensorIO
import TestSupport

final class SafeTensorsRoundTripTests: XCTestCase {
    func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }

    func testRoundTripEveryDType() throws {
        var w = SafeTensorsWriter(metadata: ["format": "pt", "note": "quote \" back\\slash \n tab\t ctl\u{01} ü"])
        w.add("f32", floats: [1.5, -2, 0, .infinity], shape: [2, 2])
        w.add("f64", dtype: .f64, shape: [2], bytes: [1.0, -0.25].flatMap { (d: Double) in withUnsafeBytes(of: d) { Array($0) } })
        w.add("bf16", bfloat16: [1, -3.5, 65504], shape: [3])
        w.add("f16", dtype: .f16, shape: [3], bytes: le([UInt16(0x3C00), 0xC000, 0x0001]))
        w.add("i64", int64s: [-5, 1 << 40], shape: [2])
        w.add("i32", dtype: .i32, shape: [2], bytes: le([Int32(-7), 9]))
        w.add("i16", dtype: .i16, shape: [1], bytes: le([Int16(-300)]))
        w.add("i8", dtype: .i8, shape: [2], bytes: [0xFF, 0x7F])
        w.add("u8", dtype: .u8, shape: [2], bytes: [0xFF, 0x01])
        w.add("bool", dtype: .bool, shape: [3], bytes: [1, 0, 1])
        w.add("scalar", floats: [42], shape: [])
        w.add("empty", floats: [], shape: [0, 3])
        let bytes = try w.serialized()
        // Header length prefix is a multiple of 8 and the header is space padded.
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        XCTAssertEqual(n % 8, 0)
        let f = try SafeTensorsFile(bytes: bytes)
        XCTAssertEqual(f.metadata, w.metadata)
        XCTAssertEqual(f.names, ["bf16", "bool", "empty", "f16", "f32", "f64", "i16", "i32", "i64", "i8", "scalar", "u8"])
        XCTAssertEqual(try f.floats("f32"), [1.5, -2, 0, .infinity])
        XCTAssertEqual(f.info("f32")?.shape, [2, 2])
        XCTAssertEqual(try f.floats("f64"), [1.0, -0.25])
        XCTAssertEqual(try f.floats("bf16"), [1, -3.5, 65536])   // 65504 rounds to 65536 in bf16
        XCTAssertEqual(try f.floats("f16"), [1, -2, Float(bitPattern: 0x3380_0000)])
        XCTAssertEqual(try f.int64s("i64"), [-5, 1 << 40])
        XCTAssertEqual(try f.int64s("i32"), [-7, 9])
        XCTAssertEqual(try f.int64s("i16"), [-300])
        XCTAssertEqual(try f.int64s("i8"), [-1, 127])
        XCTAssertEqual(try f.int64s("u8"), [255, 1])
        XCTAssertEqual(try f.int64s("bool"), [1, 0, 1])
        XCTAssertEqual(try f.floats("scalar"), [42])
        XCTAssertEqual(f.info("scalar")?.count, 1)
        XCTAssertEqual(try f.floats("empty"), [])
        // Deterministic: same tensors added in another order -> same bytes.
        var w2 = SafeTensorsWriter(metadata: w.metadata)
        for e in w.orderedEntries.reversed() { w2.add(e.name, dtype: e.dtype, shape: e.shape, bytes: try e.bytes()) }
        XCTAssertEqual(try w2.serialized(), bytes)
    }

    func testOrderIsDTypeRankDescendingThenName() throws {
        var w = SafeTensorsWriter()
        w.add("a", dtype: .u8, shape: [1], bytes: [1])
        w.add("b", floats: [1], shape: [1])
        w.add("c", int64s: [1], shape: [1])
        w.add("d", bfloat16: [1], shape: [1])
        w.add("e", dtype: .f16, shape: [1], bytes: [0, 0x3C])
        w.add("f", dtype: .i32, shape: [1], bytes: [0, 0, 0, 0])
        w.add("g", dtype: .f64, shape: [1], bytes: [UInt8](repeating: 0, count: 8))
        w.add("B", floats: [1], shape: [1])
        XCTAssertEqual(w.orderedEntries.map(\.name), ["c", "g", "B", "b", "f", "d", "e", "a"])
        let header = String(decoding: w.headerBytes().dropFirst(8), as: UTF8.self)
        XCTAssertEqual(header, #"{"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"g":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"B":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},"f":{"dtype":"I32","shape":[1],"data_offsets":[24,28]},"d":{"dtype":"BF16","shape":[1],"data_offsets":[28,30]},"e":{"dtype":"F16","shape":[1],"data_offsets":[30,32]},"a":{"dtype":"U8","shape":[1],"data_offsets":[32,33]}}"# + "  ")
    }

    func testWriteIsAtomicAndReadable() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        w.add("x", floats: [1, 2, 3], shape: [3])
        try w.write(to: url)
        XCTAssertEqual(try [UInt8](Data(contentsOf: url)), try w.serialized())
        w.add("x", floats: [4, 5], shape: [2])      // replaces
        try w.write(to: url)
        XCTAssertEqual(try SafeTensorsFile(url: url).floats("x"), [4, 5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
        // A size mismatch is refused before anything is written.
        var bad = SafeTensorsWriter()
        bad.add("y", dtype: .f32, shape: [2], bytes: [0, 0, 0])
        XCTAssertThrowsError(try bad.write(to: dir.appendingPathComponent("bad.safetensors"))) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription,
                           dir.appendingPathComponent("bad.safetensors").path + ": tensor 'y': shape [2] of F32 needs 8 bytes but data_offsets span 3")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad.safetensors").path))
    }

    func testShardedCheckpoint() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var a = SafeTensorsWriter(metadata: ["format": "pt"]); a.add("w1", floats: [1, 2], shape: [2]); a.add("w2", floats: [3], shape: [1])
        var b = SafeTensorsWriter(metadata: ["format": "pt"]); b.add("w3", int64s: [7], shape: [1])
        try a.write(to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try b.write(to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = #"{"metadata": {"total_size": 20}, "weight_map": {"w1": "model-00001-of-00002.safetensors", "w2": "model-00001-of-00002.safetensors", "w3": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let ckpt = try ShardedCheckpoint(directory: dir)
        XCTAssertEqual(ckpt.names, ["w1", "w2", "w3"])
        XCTAssertEqual(try ckpt.floats("w1"), [1, 2])
        XCTAssertEqual(try ckpt.int64s("w3"), [7])
        XCTAssertEqual(ckpt.info("w2")?.shape, [1])
        XCTAssertThrowsError(try ckpt.floats("nope")) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription, "\(dir.path): no tensor named 'nope'")
        }
        // Index naming a tensor its shard lacks.
        let broken = #"{"weight_map": {"w1": "model-00001-of-00002.safetensors", "w9": "model-00002-of-00002.safetensors"}}"#
        try Data(broken.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try ShardedCheckpoint(directory: dir)) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription,
                           "\(dir.path)/model.safetensors.index.json: invalid sharded checkpoint index: tensor 'w9' is mapped to model-00002-of-00002.safetensors but that shard does not contain it")
        }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try ShardedCheckpoint(directory: dir)) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription,
                           "\(dir.path): cannot open safetensors file: neither model.safetensors nor model.safetensors.index.json exists in this directory")
        }
        try a.write(to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try ShardedCheckpoint(directory: dir).names, ["w1", "w2"])
    }

    func testHalfPrecisionConversions() {
        XCTAssertEqual(BFloat16.fromFloat(1.0), 0x3F80)
        XCTAssertEqual(BFloat16.fromFloat(Float(bitPattern: 0x3F80_8000)), 0x3F80)   // tie -> even
        XCTAssertEqual(BFloat16.fromFloat(Float(bitPattern: 0x3F81_8000)), 0x3F82)   // tie -> even (up)
        XCTAssertEqual(BFloat16.fromFloat(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(BFloat16.fromFloat(.infinity), 0x7F80)
        XCTAssertTrue(BFloat16.toFloat(BFloat16.fromFloat(.nan)).isNaN)
        XCTAssertEqual(BFloat16.toFloat(0xC040), -3)
        XCTAssertEqual(Float16Bits.fromFloat(1), 0x3C00)
        XCTAssertEqual(Float16Bits.fromFloat(65504), 0x7BFF)
        XCTAssertEqual(Float16Bits.fromFloat(65520), 0x7C00)
        XCTAssertEqual(Float16Bits.fromFloat(-0.0), 0x8000)
        XCTAssertEqual(Float16Bits.fromFloat(Float(bitPattern: 0x3380_0000)), 0x0001)  // 2^-24
        XCTAssertEqual(Float16Bits.fromFloat(Float(bitPattern: 0x3300_0000)), 0x0000)  // 2^-25 tie -> 0
        XCTAssertEqual(Float16Bits.fromFloat(1 + 1.0 / 2048), 0x3C00)                   // tie -> even
        XCTAssertEqual(Float16Bits.fromFloat(1 + 3.0 / 2048), 0x3C02)
        // Every finite half round-trips exactly through Float.
        for h in 0...UInt16.max where (h & 0x7C00) != 0x7C00 {
            if Float16Bits.fromFloat(Float16Bits.toFloat(h)) != h { XCTFail("half \(h) does not round-trip"); return }
        }
    }
}
