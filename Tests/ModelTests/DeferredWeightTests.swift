import XCTest
import TestSupport
@testable import Model
@testable import TensorIO
import Quant

/// Deferred linear weights (`LinearModule.Weight.deferred`): merge and export read, dequantize and
/// merge one weight at a time while writing. The files must be the bytes of the in-memory path.
final class DeferredWeightTests: XCTestCase {
    let config = ModelConfig(vocabSize: 40, hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2, tieWordEmbeddings: false)

    /// Rank-2 adapters with fixed values on q, v and down of every layer.
    func attachAdapters(_ model: LlamaModel) {
        for (k, m) in model.linearModules.enumerated() where m.name.hasSuffix("q_proj") || m.name.hasSuffix("v_proj") || m.name.hasSuffix("down_proj") {
            let a = (0..<(2 * m.inFeatures)).map { Float(($0 * 7 + k) % 13) / 13 - 0.5 }
            let b = (0..<(m.outFeatures * 2)).map { Float(($0 * 5 + k) % 11) / 11 - 0.5 }
            m.adapter = LoRAAdapter(rank: 2, inFeatures: m.inFeatures, outFeatures: m.outFeatures, scale: 1.75, a: a, b: b)
        }
    }

    func files(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) { out[name] = try Data(contentsOf: dir.appendingPathComponent(name)) }
        return out
    }

    func testDeferredMergeWritesTheBytesOfTheInMemoryMerge() throws {
        let base = try makeTemporaryDirectory("qlora-deferred-base")
        defer { try? FileManager.default.removeItem(at: base) }
        try LlamaModel.initialized(config: config, layout: .huggingFace, seed: 5).save(to: base)
        for dtype in [DType.f32, .bf16, .f16] {
            var written: [[String: Data]] = []
            for deferred in [false, true] {
                let model = try LlamaModel.load(directory: base, deferLinearWeights: deferred)
                XCTAssertEqual(model.linearModules.filter { if case .deferred = $0.weight { return true } else { return false } }.count,
                               deferred ? 15 : 0, "2 layers × 7 linears and the untied head")
                attachAdapters(model)
                XCTAssertEqual(try model.mergeAdapters(deferred: deferred).count, 6)
                model.setStorageDType(dtype)
                let out = try makeTemporaryDirectory("qlora-deferred-out")
                defer { try? FileManager.default.removeItem(at: out) }
                try model.save(to: out, dtype: dtype)
                if deferred {   // shards hand deferred entries on: same tensors
                    let shards = try makeTemporaryDirectory("qlora-deferred-shards")
                    defer { try? FileManager.default.removeItem(at: shards) }
                    try model.save(to: shards, dtype: dtype, maxShardBytes: 20_000)
                    XCTAssertTrue(FileManager.default.fileExists(atPath: shards.appendingPathComponent(ShardedCheckpoint.indexFileName).path))
                    let one = try ShardedCheckpoint(directory: out), many = try ShardedCheckpoint(directory: shards)
                    XCTAssertEqual(one.names, many.names)
                    for name in one.names { XCTAssertEqual(try one.bytes(name), try many.bytes(name), name) }
                }
                written.append(try files(out))
            }
            XCTAssertEqual(written[0].keys.sorted(), ["config.json", "model.safetensors"])
            XCTAssertEqual(written[0], written[1], "deferred merge, \(dtype): same files")
        }
    }

    func testDeferredDequantizeAndMergeOfA4BitModelMatchesInMemory() throws {
        var written: [Data] = []
        for deferred in [false, true] {
            let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 6)
            for m in model.linearModules where m !== model.head {
                try LlamaModel.quantize(m, type: .nf4, blockSize: 64, doubleQuant: true)
            }
            attachAdapters(model)
            model.dequantizeAll(deferred: deferred)
            try model.mergeAdapters(deferred: deferred)
            let out = try makeTemporaryDirectory("qlora-deferred-q")
            defer { try? FileManager.default.removeItem(at: out) }
            try model.save(to: out)
            written.append(try Data(contentsOf: out.appendingPathComponent("model.safetensors")))
        }
        XCTAssertEqual(written[0], written[1])
    }

    func testANonFiniteDeferredWeightFailsTheWriteAndLeavesNoFile() throws {
        let base = try makeTemporaryDirectory("qlora-deferred-nan")
        defer { try? FileManager.default.removeItem(at: base) }
        let model = LlamaModel.initialized(config: config, layout: .huggingFace, seed: 7)
        if case .dense(var w) = model.layers[1].projection(.up).weight { w[3] = .infinity; model.layers[1].projection(.up).weight = .dense(w) }
        try model.save(to: base)
        let lazy = try LlamaModel.load(directory: base, deferLinearWeights: true)   // presence and shapes only
        let out = try makeTemporaryDirectory("qlora-deferred-nan-out")
        defer { try? FileManager.default.removeItem(at: out) }
        XCTAssertThrowsError(try lazy.save(to: out)) { error in
            XCTAssertEqual(error.localizedDescription, ModelError.nonFiniteWeight(directory: base.path, tensor: "model.layers.1.mlp.up_proj.weight", index: 3, value: .infinity).localizedDescription)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path), "no partial file")
        XCTAssertThrowsError(try LlamaModel.load(directory: base), "the in-memory load refuses it up front")
    }
}
