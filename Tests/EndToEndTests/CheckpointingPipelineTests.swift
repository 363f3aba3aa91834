import Foundation
import XCTest
import TestSupport

/// train `gradient_checkpointing:` through the CLI: true, false and auto are each logged with the
/// activation memory they keep, and checkpointing changes memory and speed only — the published
/// adapters are byte-identical.
final class CheckpointingPipelineTests: XCTestCase {
    var cache: URL!, out: URL!
    override func setUpWithError() throws {
        cache = try makeTemporaryDirectory("qlora-e2e-checkpointing")
        out = try makeTemporaryDirectory("qlora-e2e-checkpointing-out")
    }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: cache); try? FileManager.default.removeItem(at: out)
    }

    func run(_ setting: String?, to name: String) throws -> String {
        var args = ["run", "pipelines/toy.yaml", "--cache", cache.path, "--only", "save",
                    "--set", "stages.save.to=\(out.path)/\(name)", "--set", "stages.train.max_steps=2", "--set", "stages.train.batch_size=2"]
        if let setting { args += ["--set", "stages.train.gradient_checkpointing=\(setting)"] }
        let result = try CLI.run(args)
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout
    }

    func testEachSettingIsLoggedAndGivesTheSameAdapterBytes() throws {
        let on = try run("true", to: "on")
        XCTAssertTrue(on.contains("  train: gradient checkpointing on: layer activations up to 0.1 MB per micro-batch of 2 × 64 tokens\n"), on)
        // The run's own summary: steps, time, throughput, and the stage's own peak memory apart from the
        // process's (which includes the fp32 model the load stage held), the latter never below the former.
        let summary = try XCTUnwrap(on.split(separator: "\n").first { $0.hasPrefix("  train: 2 steps in ") }, on)
        let peaks = try XCTUnwrap(summary.range(of: " tokens/s), peak RSS of this stage ").map { summary[$0.upperBound...] }, String(summary))
        let parts = peaks.components(separatedBy: " MB, of the process ")
        XCTAssertEqual(parts.count, 2, String(summary))
        let stage = try XCTUnwrap(Double(parts[0])), process = try XCTUnwrap(Double(parts[1].dropLast(" MB".count)))
        XCTAssertTrue(parts[1].hasSuffix(" MB"), String(summary))
        XCTAssertGreaterThan(stage, 0)
        XCTAssertGreaterThanOrEqual(process, stage, String(summary))
        let off = try run("false", to: "off")
        XCTAssertTrue(off.contains("  train: gradient checkpointing off: layer activations up to 0.8 MB per micro-batch of 2 × 64 tokens\n"), off)
        let auto = try run(nil, to: "auto")
        XCTAssertTrue(auto.contains("  train: gradient checkpointing off (auto): layer activations up to 0.8 MB per micro-batch of 2 × 64 tokens\n"), auto)
        let bytes = try ["on", "off", "auto"].map { try Data(contentsOf: out.appendingPathComponent("\($0)/adapter_model.safetensors")) }
        XCTAssertEqual(bytes[0], bytes[1])
        XCTAssertEqual(bytes[1], bytes[2])
    }
}
