import Foundation
import XCTest
import TestSupport

/// attach_adapters with `init: {from: DIR}`: the directory's content (not its path) is part of the
/// stage key, so editing the adapter re-runs the stage with a reason; a missing DIR is a located error.
final class AdapterInitKeyTests: XCTestCase {
    func testInitFromContentIsInTheKey() throws {
        let cache = try makeTemporaryDirectory("qlora-e2e-init-cache"), adapter = try makeTemporaryDirectory("qlora-e2e-init-from")
        defer { try? FileManager.default.removeItem(at: cache); try? FileManager.default.removeItem(at: adapter) }
        let base = ["pipelines/toy.yaml", "--cache", cache.path, "--only", "adapted"]
        // A PEFT adapter that fits the toy model: the freshly attached one.
        let seeded = try CLI.run(["run"] + base)
        XCTAssertEqual(seeded.status, 0, seeded.stderr)
        let artifact = try CLI.artifact(of: "adapted", in: seeded.stdout)
        for name in ["adapter_config.json", "adapter_model.safetensors"] {
            try FileManager.default.copyItem(at: artifact.appendingPathComponent(name), to: adapter.appendingPathComponent(name))
        }

        let fromArgs = base + ["--set", "stages.adapted.init={from: \(adapter.path)}"]
        let first = try CLI.run(["run"] + fromArgs)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("[3/3] adapted: running — input: init.from changed; config: init gaussian -> (unset)\n"), first.stdout)
        XCTAssertEqual(try CLI.run(["plan"] + fromArgs).stdout, "[1/3] base: cached\n[2/3] quantized: cached\n[3/3] adapted: cached\n")

        // One byte of the adapter weights changes: same path, new content -> the stage runs again.
        let weights = adapter.appendingPathComponent("adapter_model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: weights)
        XCTAssertEqual(try CLI.run(["plan"] + fromArgs).stdout,
                       "[1/3] base: cached\n[2/3] quantized: cached\n[3/3] adapted: will run — input: init.from changed\n")
        let rerun = try CLI.run(["run"] + fromArgs)
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        XCTAssertTrue(rerun.stdout.contains("[3/3] adapted: running — input: init.from changed\n"), rerun.stdout)
        XCTAssertEqual(try CLI.run(["plan"] + fromArgs).stdout, "[1/3] base: cached\n[2/3] quantized: cached\n[3/3] adapted: cached\n")
    }

    func testMissingInitFromDirectoryIsALocatedError() throws {
        let dir = try makeTemporaryDirectory("qlora-e2e-init-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
        version: 1
        name: p
        stages:
          base:
            kind: load_checkpoint
            init: {arch: llama, hidden_size: 64, intermediate_size: 176, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 259}
          adapted:
            kind: attach_adapters
            model: base
            init:
              from: no-such-adapter

        """.write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        for command in ["validate", "plan"] {
            let result = try CLI.run([command, "p.yaml"], in: dir)
            XCTAssertEqual(result.status, 2, result.stdout)
            XCTAssertEqual(result.stderr, """
            p.yaml:11:13: error: stages.adapted.init.from: file not found: no-such-adapter (relative to ./)
            error: 1 problem found; nothing was run

            """)
        }
    }
}
