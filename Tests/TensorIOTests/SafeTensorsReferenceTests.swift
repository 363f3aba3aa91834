import XCTest
import TensorIO
import TestSupport

/// Parity with files written by the Python `safetensors` 0.8.0 library (every reference kit).
final class SafeTensorsReferenceTests: XCTestCase {
    static let referenceFiles = [
        "golden/logits.safetensors",
        "golden/quant.safetensors",
        "golden/lora_train/data.safetensors",
        "golden/lora_train/lora_params.safetensors",
        "golden/lora_train/adapter_final/adapter_model.safetensors",
        "golden/qlora_train/quantized_base.safetensors",
        "golden/qlora_train/logits_step0.safetensors",
        "golden/qlora_train/base-nf4-dq/model.safetensors",
        "tiny-llama/model.safetensors",
        "tiny-llama-bf16/model.safetensors",
    ]

    /// The strongest writer test: re-serialising every tensor and the metadata of a reference
    /// file reproduces it byte for byte (tensor order, header JSON, escaping, padding).
    func testReserialisingReferenceFilesGivesIdenticalBytes() throws {
        for kit in try Reference.kits() {
            for relative in Self.referenceFiles {
                let url = kit.file(relative)
                let original = try [UInt8](Data(contentsOf: url))
                let file = try SafeTensorsFile(url: url)
                var writer = SafeTensorsWriter(metadata: file.metadata)
                try writer.add(contentsOf: file)
                let bytes = try writer.serialized()
                XCTAssertEqual(bytes.count, original.count, "\(relative) \(kit)")
                XCTAssertTrue(bytes == original, "\(relative) \(kit): re-serialised bytes differ")
            }
        }
    }

    /// Both kits hold the same architecture, saved by transformers' save_pretrained: same layout.
    func testTinyLlamaContents() throws {
        for kit in try Reference.kits() {
            let file = try SafeTensorsFile(url: kit.file("tiny-llama/model.safetensors"))
            XCTAssertEqual(file.metadata, ["format": "pt"], "\(kit)")
            XCTAssertEqual(file.names.count, 21, "\(kit)")
            XCTAssertEqual(file.names.first, "lm_head.weight", "\(kit)")
            let info = try XCTUnwrap(file.info("model.layers.0.mlp.down_proj.weight"))
            XCTAssertEqual(info.dtype, .f32, "\(kit)")
            XCTAssertEqual(info.shape, [64, 176], "\(kit)")
            XCTAssertEqual(info.count, 64 * 176, "\(kit)")
            XCTAssertEqual(info.dataOffsets, 262400..<307456, "\(kit)")
            let w = try file.floats("model.layers.0.mlp.down_proj.weight")
            XCTAssertEqual(w.count, 64 * 176, "\(kit)")
            let raw = try file.bytes("model.layers.0.mlp.down_proj.weight")
            XCTAssertEqual(raw.count, 64 * 176 * 4, "\(kit)")
            XCTAssertEqual(w[5].bitPattern, UInt32(raw[20]) | UInt32(raw[21]) << 8 | UInt32(raw[22]) << 16 | UInt32(raw[23]) << 24, "\(kit)")
        }
    }

    /// tiny-llama-bf16 holds tiny-llama's weights rounded to bf16: our RNE rounding must agree
    /// with torch's on every weight, and reading BF16 must upcast exactly.
    func testBFloat16MatchesTorchRounding() throws {
        for kit in try Reference.kits() {
            let f32 = try SafeTensorsFile(url: kit.file("tiny-llama/model.safetensors"))
            let bf16 = try SafeTensorsFile(url: kit.file("tiny-llama-bf16/model.safetensors"))
            XCTAssertEqual(f32.names, bf16.names, "\(kit)")
            weights: for name in f32.names {
                XCTAssertEqual(bf16.info(name)?.dtype, .bf16, "\(name) \(kit)")
                let full = try f32.floats(name)
                let raw = try bf16.bytes(name)
                let up = try bf16.floats(name)
                for k in 0..<full.count {
                    let bits = UInt16(raw[2 * k]) | UInt16(raw[2 * k + 1]) << 8
                    XCTAssertEqual(BFloat16.fromFloat(full[k]), bits, "\(name)[\(k)] \(kit)")
                    XCTAssertEqual(up[k], BFloat16.toFloat(bits), "\(name)[\(k)] \(kit)")
                    if BFloat16.fromFloat(full[k]) != bits { break weights }
                }
            }
        }
    }

    func testIntegerTensorsWiden() throws {
        for kit in try Reference.kits() {
            let file = try SafeTensorsFile(url: kit.file("golden/lora_train/data.safetensors"))
            let ids = try file.int64s("input_ids")
            XCTAssertEqual(file.info("input_ids")?.shape, [4, 48], "\(kit)")
            XCTAssertEqual(ids.count, 4 * 48, "\(kit)")
            XCTAssertEqual(ids[0], 1, "every conversation starts with <|im_start|> \(kit)")
            let quant = try SafeTensorsFile(url: kit.file("golden/quant.safetensors"))
            XCTAssertEqual(try quant.int64s("t0.nf4.b64.dq.state2_blocksize"), [256], "\(kit)")
            let codes = try quant.int64s("t0.nf4.b64.codes")
            let count = try XCTUnwrap(quant.info("t0.input")).shape.reduce(1, *)
            if kit.isShared { XCTAssertEqual(count, 128 * 64, "\(kit)") }
            XCTAssertEqual(codes.count, (count + 1) / 2, "\(kit)")
            XCTAssertEqual(codes.map { UInt8($0) }, try quant.bytes("t0.nf4.b64.codes"), "\(kit)")
            XCTAssertThrowsError(try quant.floats("t0.nf4.b64.codes")) { error in
                XCTAssertTrue((error as? LocalizedError)?.errorDescription?.hasSuffix(
                    "tensor 't0.nf4.b64.codes' has dtype U8, expected a float type (F32, F16, BF16, F64)") ?? false, "\(error) \(kit)")
            }
        }
    }
}
