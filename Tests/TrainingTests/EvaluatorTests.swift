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
        guard let dir = Reference.file("golden/lora_train"), let base = Reference.file("tiny-llama"),
              let tokURL = Reference.file("tokenizer/tokenizer.json") else { throw Reference.missing() }
        let steps = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("steps.json"))) as! [String: Any]
        let want = steps["final_loss_all4"] as! Double
        let model = try LlamaModel.load(directory: base)
        try PEFTAdapter.load(from: dir.appendingPathComponent("adapter_final"), into: model)
        let data = TrainerGoldenTests.dataset(try GoldenTensors(dir.appendingPathComponent("data.safetensors")))
        var o = EvaluationOptions(); o.compareBase = true; o.prompts = ["What is 2+2?"]; o.maxNewTokens = 4; o.perplexityAbove = 10
        let report = Evaluator.run(model: model, tokenizer: try Tokenizer(contentsOf: tokURL), dataset: data, options: o)
        XCTAssertEqual(report.metrics.loss, want, accuracy: 1e-5 * want)
        XCTAssertEqual(report.metrics.perplexity, exp(report.metrics.loss))
        XCTAssertEqual(report.metrics.supervisedTokens, 13 + 5 + 11 + 14)
        XCTAssertNotEqual(report.baseMetrics!.loss, report.metrics.loss)
        XCTAssertEqual(report.generations.count, 1)
        XCTAssertNotNil(report.generations[0].base)
        XCTAssertTrue(model.linearModules.contains { $0.adapter != nil }, "adapters re-attached after compare_base")
        XCTAssertEqual(report.gateFailure, String(format: "perplexity %.4f is above the limit 10.0000 (fail_if.perplexity_above)", report.metrics.perplexity))
        let out = try makeTemporaryDirectory("eval"); defer { try? FileManager.default.removeItem(at: out) }
        try report.write(to: out, lossPlotFile: "loss.svg")
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("| metric | base | adapted | Δ |") && md.contains("![training loss](loss.svg)") && md.contains("**Gate failed:**"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
        XCTAssertEqual(Set(json.keys), ["adapted", "base", "delta"])
    }
}
