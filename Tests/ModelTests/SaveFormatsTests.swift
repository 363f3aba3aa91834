import XCTest
import TestSupport
@testable import Model
@testable import TensorIO

/// `LlamaModel.save` storage dtypes and sharding (the merge stage's output), and the GGUF q/k
/// permutation as an exact inverse pair.
final class SaveFormatsTests: XCTestCase {
    let config = ModelConfig(vocabSize: 40, hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2, tieWordEmbeddings: false)

    func testShardedSaveWritesAnIndexAndLoadsBackBitForBit() throws {
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 3)
        let dir = try makeTemporaryDirectory("qlora-shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir, maxShardBytes: 20_000)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let shards = names.filter { $0.hasPrefix("model-") }
        XCTAssertGreaterThan(shards.count, 1, "\(names)")
        XCTAssertEqual(shards.first, String(format: "model-00001-of-%05d.safetensors", shards.count))
        XCTAssertTrue(names.contains("model.safetensors.index.json"))
        XCTAssertFalse(names.contains("model.safetensors"))
        let index = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("model.safetensors.index.json"))) as? [String: Any])
        let total = try XCTUnwrap((index["metadata"] as? [String: Any])?["total_size"] as? Int)
        // 4 bytes per fp32 parameter: embedding + head (40·32 each), 2 layers of 2 norms, q/o (32·32), k/v (16·32), 3 MLP (48·32), final norm.
        XCTAssertEqual(total, 4 * (2 * 40 * 32 + 2 * (2 * 32 + 2 * 32 * 32 + 2 * 16 * 32 + 3 * 48 * 32) + 32))
        let back = try LlamaModel.load(directory: dir)
        XCTAssertEqual(back.embedding, model.embedding)
        for (a, b) in zip(back.linearModules, model.linearModules) { XCTAssertEqual(try a.fullPrecisionWeight(), try b.fullPrecisionWeight(), a.name) }
    }

    func testBF16AndF16SavesRoundToNearestEvenAndNameTheirDType() throws {
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 3)
        for (dtype, name) in [(DType.bf16, "bfloat16"), (.f16, "float16")] {
            let dir = try makeTemporaryDirectory("qlora-dtype")
            defer { try? FileManager.default.removeItem(at: dir) }
            model.setStorageDType(dtype)
            try model.save(to: dir, dtype: dtype)
            let file = try SafeTensorsFile(url: dir.appendingPathComponent("model.safetensors"))
            XCTAssertEqual(file.info("model.layers.0.self_attn.q_proj.weight")?.dtype, dtype)
            let config = try String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
            XCTAssertTrue(config.contains("\"torch_dtype\" : \"\(name)\""), config)
            let w = try model.layers[0].q.fullPrecisionWeight()
            let expected = w.map { dtype == .bf16 ? BFloat16.toFloat(BFloat16.fromFloat($0)) : Float16Bits.toFloat(Float16Bits.fromFloat($0)) }
            XCTAssertEqual(try file.floats("model.layers.0.self_attn.q_proj.weight"), expected)
        }
    }

    func testQueryKeyPermutationPairsRotateHalfElementsAndInverts() {
        // 2 heads of 4 rows, 3 columns: row r holds 10·r + c.
        let w = (0..<8).flatMap { r in (0..<3).map { Float(10 * r + $0) } }
        let permuted = GGUFLlama.permuteRows(w, heads: 2, columns: 3)
        // Per head rows (0, 1, 2, 3) = (t0 j0, t0 j1, t1 j0, t1 j1) are stored as (t0 j0, t1 j0, t0 j1, t1 j1).
        XCTAssertEqual(stride(from: 0, to: 24, by: 3).map { permuted[$0] }, [0, 20, 10, 30, 40, 60, 50, 70])
        XCTAssertEqual(GGUFLlama.unpermuteRows(permuted, heads: 2, columns: 3), w)
    }
}
