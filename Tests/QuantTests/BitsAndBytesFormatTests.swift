import XCTest
import Quant
import TensorIO
import TestSupport

/// golden/qlora_train/base-nf4-dq of every reference kit: tiny-llama saved by transformers with bnb NF4 + double quant.
final class BitsAndBytesFormatTests: XCTestCase {
    static let modules = (0..<2).flatMap { l in
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
            .map { "model.layers.\(l).\($0)" }
    }

    func inputs(_ kit: ReferenceKit) throws -> (ShardedCheckpoint, SafeTensorsFile, URL) {
        let dir = kit.file("golden/qlora_train/base-nf4-dq"), qb = kit.file("golden/qlora_train/quantized_base.safetensors")
        return (try ShardedCheckpoint(directory: dir), try SafeTensorsFile(url: qb), dir)
    }

    func testLoadsGoldenCheckpointBitExactly() throws {
        for kit in try Reference.kits() {
            let (ckpt, golden, _) = try inputs(kit)
            XCTAssertFalse(BitsAndBytesFormat.isQuantized(module: "lm_head", in: ckpt), "\(kit)")
            for m in Self.modules {
                let where_ = "\(m) \(kit)"
                XCTAssertTrue(BitsAndBytesFormat.isQuantized(module: m, in: ckpt), where_)
                let q = try BitsAndBytesFormat.read(module: m, from: ckpt)
                XCTAssertEqual(q.type, .nf4, where_); XCTAssertEqual(q.blockSize, 64, where_)
                XCTAssertEqual(q.shape, golden.info("\(m).weight.dequant")?.shape, where_)
                XCTAssertEqual(Quantizer.dequantize(q).map(\.bitPattern), try golden.floats("\(m).weight.dequant").map(\.bitPattern), where_)
                // Our quantizer reproduces transformers' quantization of the fp32 weight exactly.
                let ours = try Quantizer.quantize(try golden.floats("\(m).weight.fp32"), shape: q.shape, type: .nf4, blockSize: 64, doubleQuant: true)
                XCTAssertEqual(ours, q, where_)
                XCTAssertEqual(ours.packed, try golden.bytes("\(m).weight.codes"), where_)
                XCTAssertEqual(ours.doubleQuant?.codes, try golden.bytes("\(m).weight.absmax_codes"), where_)
                XCTAssertEqual(ours.doubleQuant?.offset.bitPattern, try golden.floats("\(m).weight.offset")[0].bitPattern, where_)
            }
        }
    }

    /// Re-serialising the golden checkpoint (plain tensors copied, quantized modules through
    /// `add`) reproduces transformers' file byte for byte.
    func testReserialisationIsByteIdentical() throws {
        for kit in try Reference.kits() {
            let (ckpt, _, dir) = try inputs(kit)
            let file = try XCTUnwrap(ckpt.file(containing: "lm_head.weight"))
            var writer = SafeTensorsWriter(metadata: file.metadata)
            let quantizedPrefixes = Self.modules.map { "\($0).weight" }
            for name in file.names where !quantizedPrefixes.contains(where: { name == $0 || name.hasPrefix($0 + ".") }) {
                let info = try XCTUnwrap(file.info(name))
                writer.add(name, dtype: info.dtype, shape: info.shape, bytes: try file.bytes(name))
            }
            for m in Self.modules { BitsAndBytesFormat.add(try BitsAndBytesFormat.read(module: m, from: ckpt), module: m, to: &writer) }
            XCTAssertEqual(writer.names, file.names, "\(kit)")
            for name in file.names {
                let e = try XCTUnwrap(writer.orderedEntries.first { $0.name == name })
                XCTAssertEqual(e.dtype, file.info(name)?.dtype, "\(name) \(kit)")
                XCTAssertEqual(e.shape, file.info(name)?.shape, "\(name) \(kit)")
                XCTAssertEqual(try e.bytes(), try file.bytes(name), "\(name) \(kit)")
            }
            XCTAssertTrue(try writer.serialized() == (try [UInt8](Data(contentsOf: dir.appendingPathComponent("model.safetensors")))), "\(kit)")
        }
    }

    func testNonDoubleQuantRoundTripAndSummary() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = (0..<(96 * 40)).map { Float(cos(Double($0) * 0.1)) }
        let q = try Quantizer.quantize(w, shape: [96, 40], type: .fp4, blockSize: 128, doubleQuant: false)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        BitsAndBytesFormat.add(q, module: "m", to: &writer)
        XCTAssertEqual(writer.names, ["m.weight", "m.weight.absmax", "m.weight.quant_map", "m.weight.quant_state.bitsandbytes__fp4"])
        let blob = try XCTUnwrap(writer.orderedEntries.first { $0.name == "m.weight.quant_state.bitsandbytes__fp4" })
        XCTAssertEqual(String(decoding: try blob.bytes(), as: UTF8.self), #"{"quant_type": "fp4", "blocksize": 128, "dtype": "float32", "shape": [96, 40]}"#)
        try writer.write(to: dir.appendingPathComponent("model.safetensors"))
        let back = try BitsAndBytesFormat.read(module: "m", from: try ShardedCheckpoint(directory: dir))
        XCTAssertEqual(back, q)
        XCTAssertEqual(BitsAndBytesFormat.serializedBytes(q), writer.orderedEntries.reduce(0) { $0 + $1.byteCount })
        XCTAssertThrowsError(try BitsAndBytesFormat.read(module: "other", from: try ShardedCheckpoint(directory: dir))) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription,
                           "\(dir.path): 4-bit weight 'other': no other.weight.quant_state.bitsandbytes__nf4 (or __fp4) tensor: not a bitsandbytes 4-bit weight")
        }
        // 14 layers of tiny-llama-like size at block 64 + double quant.
        let dq = try Quantizer.quantize([Float](repeating: 0.5, count: 64 * 176), shape: [64, 176], type: .nf4, blockSize: 64, doubleQuant: true)
        XCTAssertEqual(QuantizationSummary.line([dq, dq]), "quantized 2 linear layers: 0.1 MB -> 0.0 MB (4.13 bits/param)")
    }
}
