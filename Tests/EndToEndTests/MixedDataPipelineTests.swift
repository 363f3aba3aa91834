import Foundation
import XCTest
import TestSupport

/// Issue 16 §3 through the CLI: `data` as a weighted list of files on the toy pipeline.
final class MixedDataPipelineTests: XCTestCase {
    func testMixedDataIsAuditedPerFileAndEachFileIsAnInput() throws {
        let dir = try makeTemporaryDirectory("qlora-e2e-mix")
        defer { try? FileManager.default.removeItem(at: dir) }
        let lines = try String(contentsOf: Reference.projectRoot.appendingPathComponent("toydata/lora_data.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        let a = dir.appendingPathComponent("a.jsonl"), b = dir.appendingPathComponent("b.jsonl")
        try (lines.prefix(40).joined(separator: "\n") + "\n").write(to: a, atomically: true, encoding: .utf8)
        try (lines.suffix(20).joined(separator: "\n") + "\n").write(to: b, atomically: true, encoding: .utf8)
        let data = "stages.train.data=[{path: \(a.path)}, {path: \(b.path), weight: 3, max_examples: 10}]"
        let args = ["pipelines/toy.yaml", "--cache", dir.appendingPathComponent("cache").path, "--only", "train",
                    "--set", data, "--set", "stages.train.epochs=1", "--set", "stages.train.eval_split=0.1"]
        let run = try CLI.run(["run"] + args)
        XCTAssertEqual(run.status, 0, run.stderr)
        for expected in [
            "train: data[0] \(a.path): 40 examples, ",
            "train: data[1] \(b.path): 20 examples, ",
            "; first 10 used (max_examples)",
            "train: data: mix of 2 files, 50 examples, ",
            "train: eval_split 0.1: 5 of 50 examples held out for validation",
        ] { XCTAssertTrue(run.stdout.contains(expected), "missing '\(expected)' in:\n\(run.stdout)") }
        // 45 training examples: 11.25 and 33.75 slots -> 11 and 34 by largest remainder.
        let shares = run.stdout.split(separator: "\n").filter { $0.contains("examples per epoch") }
        XCTAssertEqual(shares.count, 2, run.stdout)
        XCTAssertTrue(shares[0].contains("weight 1 -> 11 of 45 examples per epoch (24.4%, "), String(shares[0]))
        XCTAssertTrue(shares[1].contains("weight 3 -> 34 of 45 examples per epoch (75.6%, "), String(shares[1]))

        let cached = try CLI.run(["plan"] + args)
        XCTAssertTrue(cached.stdout.contains("train: cached"), cached.stdout)
        try (lines.suffix(21).joined(separator: "\n") + "\n").write(to: b, atomically: true, encoding: .utf8)
        let changed = try CLI.run(["plan"] + args)
        XCTAssertTrue(changed.stdout.contains("train: will run — input: data[1].path changed"), changed.stdout)

        // A missing file is reported at its list element before anything runs.
        let missing = try CLI.run(["run"] + args.dropLast(6) + ["--set", "stages.train.data=[{path: \(a.path)}, {path: /nonexistent/x.jsonl}]"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("error: stages.train.data[1].path: file not found: /nonexistent/x.jsonl"), missing.stderr)
    }
}
