import Foundation
import XCTest
import TestSupport

/// attach_adapters `dropout:` through the CLI: bounded by the schema, logged per module, used by
/// train (other losses than dropout 0) and written into the published PEFT adapter_config.json.
final class DropoutPipelineTests: XCTestCase {
    var cache: URL!, out: URL!
    override func setUpWithError() throws {
        cache = try makeTemporaryDirectory("qlora-e2e-dropout")
        out = try makeTemporaryDirectory("qlora-e2e-dropout-out")
    }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: cache); try? FileManager.default.removeItem(at: out)
    }

    func args(dropout: String, to name: String) -> [String] {
        ["pipelines/toy.yaml", "--cache", cache.path, "--only", "save",
         "--set", "stages.save.to=\(out.path)/\(name)", "--set", "stages.adapted.dropout=\(dropout)",
         "--set", "stages.train.max_steps=3", "--set", "stages.train.batch_size=2", "--set", "stages.train.log_every=1"]
    }

    func testDropoutOutOfRangeIsRejectedBeforeRunning() throws {
        for (value, message) in [("1", "must be < 1 (found 1)"), ("-0.1", "must be >= 0 (found -0.1)")] {
            let plan = try CLI.run(["plan"] + args(dropout: value, to: "a"))
            XCTAssertEqual(plan.status, 2, plan.stdout + plan.stderr)
            XCTAssertTrue(plan.stderr.contains("error: stages.adapted.dropout: \(message)\n"), plan.stderr)
            XCTAssertTrue(plan.stderr.contains("nothing was run"), plan.stderr)
        }
    }

    func testDropoutIsLoggedTrainedAndPublished() throws {
        let withDropout = try CLI.run(["run"] + args(dropout: "0.1", to: "dropped"))
        XCTAssertEqual(withDropout.status, 0, withDropout.stderr)
        let config = try String(contentsOf: out.appendingPathComponent("dropped/adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("  \"lora_dropout\": 0.1,\n"), config)
        let logs = try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("logs").path)
            .map { try String(contentsOf: cache.appendingPathComponent("logs/\($0)"), encoding: .utf8) }.joined()
        XCTAssertTrue(logs.contains("adapter on model.layers.0.self_attn.q_proj (64x64, rank 8, dropout 0.1)"), logs)

        let plain = try CLI.run(["run"] + args(dropout: "0", to: "plain"))
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let plainConfig = try String(contentsOf: out.appendingPathComponent("plain/adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(plainConfig.contains("  \"lora_dropout\": 0.0,\n"), plainConfig)
        // Same init, data and seed: only the dropout differs, so the trained adapters must differ.
        XCTAssertNotEqual(try Data(contentsOf: out.appendingPathComponent("dropped/adapter_model.safetensors")),
                          try Data(contentsOf: out.appendingPathComponent("plain/adapter_model.safetensors")))
        func losses(_ stdout: String) -> [Substring] {
            stdout.split(separator: "\n").filter { $0.hasPrefix("  train: step ") }.map { $0.split(separator: "·")[2] }
        }
        XCTAssertEqual(losses(withDropout.stdout).count, 3, withDropout.stdout)
        XCTAssertNotEqual(losses(withDropout.stdout), losses(plain.stdout))
    }
}
