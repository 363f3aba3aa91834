import XCTest
import Foundation
import TestSupport
import Model
import Tokenizer
@testable import Training

final class EvaluatorTests: XCTestCase {
    /// The golden's final_loss_all4 (the trained fp32 LoRA model on all 4 samples) is reproduced by
    /// the evaluator from adapter_final; the base differs; the gate trips with a clear message.
    func testEvaluatorAgainstGolden() throws {
        for kit in try Reference.kits() { try check(kit) }
    }

    func check(_ kit: ReferenceKit) throws {
        let dir = kit.file("golden/lora_train"), base = kit.file("tiny-llama"), tokURL = kit.file("tokenizer/tokenizer.json")
        let steps = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("steps.json"))) as! [String: Any]
        let want = steps["final_loss_all4"] as! Double
        let model = try LlamaModel.load(directory: base)
        try PEFTAdapter.load(from: dir.appendingPathComponent("adapter_final"), into: model)
        let data = TrainerGoldenTests.dataset(try GoldenTensors(dir.appendingPathComponent("data.safetensors")))
        var o = EvaluationOptions(); o.compareBase = true; o.prompts = ["What is 2+2?"]; o.maxNewTokens = 4; o.perplexityAbove = 10
        let report = Evaluator.run(model: model, tokenizer: try Tokenizer(contentsOf: tokURL), dataset: data, options: o)
        assertClose(report.metrics.loss, want, rtol: 1e-5, atol: 0, "final_loss_all4 \(kit)")
        XCTAssertEqual(report.metrics.perplexity, exp(report.metrics.loss), "\(kit)")
        // Supervised targets: the mask without position 0 of each row (shared kit: 13 + 5 + 11 + 14).
        let supervised = data.examples.reduce(0) { $0 + $1.lossMask.dropFirst().filter { $0 > 0 }.count }
        if kit.isShared { XCTAssertEqual(supervised, 13 + 5 + 11 + 14, "\(kit)") }
        XCTAssertEqual(report.metrics.supervisedTokens, supervised, "\(kit)")
        XCTAssertNotEqual(report.baseMetrics!.loss, report.metrics.loss, "\(kit)")
        XCTAssertEqual(report.generations.count, 1, "\(kit)")
        XCTAssertNotNil(report.generations[0].base, "\(kit)")
        XCTAssertTrue(model.linearModules.contains { $0.adapter != nil }, "adapters re-attached after compare_base \(kit)")
        XCTAssertEqual(report.gateFailure, String(format: "perplexity %.4f is above the limit 10.0000 (fail_if.perplexity_above)", report.metrics.perplexity), "\(kit)")
        let out = try makeTemporaryDirectory("eval"); defer { try? FileManager.default.removeItem(at: out) }
        try report.write(to: out, lossPlotFile: "loss.svg")
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("| metric | base | adapted | Δ |") && md.contains("![training loss](loss.svg)") && md.contains("**Gate failed:**"), "\(kit)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
        XCTAssertEqual(Set(json.keys), ["adapted", "base", "delta"], "\(kit)")
    }
}
