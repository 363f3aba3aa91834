import XCTest
import Foundation
import TestSupport
import Model
import TensorIO
@testable import Training

final class LoRATests: XCTestCase {
    static func tinyConfig() -> ModelConfig {
        ModelConfig(vocabSize: 64, hiddenSize: 16, intermediateSize: 24, layers: 2, heads: 2, kvHeads: 1)
    }

    func testTargetSelection() throws {
        let model = LlamaModel.initialized(config: Self.tinyConfig(), layout: .huggingFace, seed: 1)
        let mods = LoRAAttacher.descriptors(model)
        XCTAssertEqual(try LoRATargets.square.select(mods),
                       ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj",
                        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.o_proj"])
        XCTAssertEqual(try LoRATargets.allLinear.select(mods).count, 14)
        XCTAssertEqual(try LoRATargets.names(["v_proj", "layers.1.mlp.down_proj"]).select(mods),
                       ["model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj"])
        XCTAssertEqual(try LoRATargets.regex(#".*\.0\..*(q|k)_proj"#).select(mods),
                       ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj"])
        // "proj" is not a dotted suffix of any name: PEFT semantics, no substring match
        XCTAssertThrowsError(try LoRATargets.names(["proj"]).select(mods)) { error in
            XCTAssertEqual(error.localizedDescription, "adapter targets [proj] match no module; available modules: " + mods.map(\.name).joined(separator: ", "))
        }
    }

    func testAttachIsPerModuleDeterministicAndLogs() throws {
        let m1 = LlamaModel.initialized(config: Self.tinyConfig(), layout: .huggingFace, seed: 1)
        let m2 = LlamaModel.initialized(config: Self.tinyConfig(), layout: .huggingFace, seed: 1)
        var lines: [String] = []
        var o = LoRAOptions(); o.rank = 4
        try LoRAAttacher.attach(to: m1, options: o, seed: 9) { lines.append($0) }
        o.targets = .names(["q_proj"])
        try LoRAAttacher.attach(to: m2, options: o, seed: 9)
        // adding o_proj adapters does not change the q_proj init
        XCTAssertEqual(m1.layers[1].q.adapter!.a, m2.layers[1].q.adapter!.a)
        XCTAssertNotEqual(m1.layers[0].q.adapter!.a, m1.layers[1].q.adapter!.a)
        XCTAssertEqual(m1.layers[0].q.adapter!.b, [Float](repeating: 0, count: 16 * 4))
        XCTAssertEqual(lines.first, "adapter on model.layers.0.self_attn.q_proj (16x16, rank 4)")
        let a = m1.layers[0].q.adapter!.a
        let std = (a.reduce(0) { $0 + Double($1 * $1) } / Double(a.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.006)
        o.dropout = 1
        XCTAssertThrowsError(try LoRAAttacher.attach(to: m2, options: o, seed: 9)) {
            XCTAssertEqual($0.localizedDescription, "lora dropout 1.0 is out of range; use a probability with 0 <= dropout < 1")
        }
        var k = LoRAOptions(); k.initialization = .kaiming; k.rank = 4
        try LoRAAttacher.attach(to: m2, options: k, seed: 9)
        XCTAssertLessThanOrEqual(m2.layers[0].q.adapter!.a.map(abs).max()!, 0.25)  // bound 1/√16
        var rs = LoRAOptions(); rs.rank = 4; rs.alpha = 8; rs.rslora = true
        XCTAssertEqual(rs.scale, 4)
    }

    /// The reference notebook's numbers: MiniMind (hidden 512, 2 layers, vocab 6400, intermediate
    /// 1408), every linear 4-bit, rank-16 square adapters → 7,801,344 total, 65,536 trainable (0.84%).
    func testParameterSummaryMatchesNotebook() throws {
        let c = ModelConfig(modelType: "minimind", vocabSize: 6400, hiddenSize: 512, intermediateSize: 1408, layers: 2,
                            heads: 8, kvHeads: 2, tieWordEmbeddings: true)
        let model = LlamaModel.initialized(config: c, layout: .miniMind, seed: 0)
        var o = LoRAOptions(); o.rank = 16
        let names = try LoRAAttacher.attach(to: model, options: o, seed: 0)
        XCTAssertEqual(names, ["layers.0.attention.wq", "layers.0.attention.wo", "layers.1.attention.wq", "layers.1.attention.wo"])
        // Count as if every linear were quantized (numel/2), the head untied, as the notebook did.
        var s = LoRAAttacher.summary(model, assumeQuantized: true)
        XCTAssertEqual(s.total, 7_801_344)
        XCTAssertEqual(s.trainable, 65_536)
        XCTAssertEqual(String(format: "%.2f", s.percent), "0.84")
        XCTAssertEqual(s.line, "trainable params: 65,536 || all params: 7,801,344 || trainable%: 0.84")
        s = LoRAAttacher.summary(model)
        XCTAssertEqual(s.total, 6400 * 512 + 512 * 5 + 2 * (2 * 512 * 512 + 2 * 512 * 128 + 3 * 512 * 1408) + 65_536)
    }

    /// Loading the golden adapter_final and saving it again gives the same tensors, key set,
    /// dtypes and shapes, and the same adapter_config.json field set and values.
    func testPEFTRoundTripAgainstGolden() throws {
        for kit in try Reference.kits() { try checkPEFTRoundTrip(kit) }
    }

    func checkPEFTRoundTrip(_ kit: ReferenceKit) throws {
        let golden = kit.file("golden/lora_train/adapter_final"), base = kit.file("tiny-llama")
        let model = try LlamaModel.load(directory: base)
        try PEFTAdapter.load(from: golden, into: model)
        let out = try makeTemporaryDirectory("peft"); defer { try? FileManager.default.removeItem(at: out) }
        try PEFTAdapter.save(model, to: out, baseModelNameOrPath: "tiny-llama")
        let g = try SafeTensorsFile(url: golden.appendingPathComponent("adapter_model.safetensors"))
        let mine = try SafeTensorsFile(url: out.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertEqual(mine.names, g.names, "\(kit)")
        for n in g.names {
            XCTAssertEqual(mine.info(n)?.shape, g.info(n)?.shape, "\(n) \(kit)")
            XCTAssertEqual(mine.info(n)?.dtype, g.info(n)?.dtype, "\(n) \(kit)")
            XCTAssertEqual(try mine.bytes(n), try g.bytes(n), "\(n) \(kit)")
        }
        XCTAssertEqual(mine.metadata, ["format": "pt"], "\(kit)")
        let gc = try JSONSerialization.jsonObject(with: Data(contentsOf: golden.appendingPathComponent("adapter_config.json"))) as! NSDictionary
        let mc = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("adapter_config.json"))) as! NSDictionary
        XCTAssertEqual(mc, gc, "\(kit)")
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("adapter_config.json"), encoding: .utf8),
                       try String(contentsOf: golden.appendingPathComponent("adapter_config.json"), encoding: .utf8), "\(kit)")
        // saving twice gives identical bytes
        let out2 = try makeTemporaryDirectory("peft2"); defer { try? FileManager.default.removeItem(at: out2) }
        try PEFTAdapter.save(model, to: out2, baseModelNameOrPath: "tiny-llama")
        XCTAssertEqual(try Data(contentsOf: out2.appendingPathComponent("adapter_model.safetensors")),
                       try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors")), "\(kit)")
    }
}
