import Foundation
import XCTest
import TestSupport

/// Real pipelines through the built CLI: run, cached re-run, plan reasons, cache commands.
final class PipelineRunTests: XCTestCase {
    var cache: URL!
    override func setUpWithError() throws { cache = try makeTemporaryDirectory("qlora-e2e-cache") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: cache) }

    func qlora(_ args: [String]) throws -> CLI.Result { try CLI.run(args + ["--cache", cache.path]) }

    /// The toy pipeline's base stage (a tiny Llama from the seed): runs, then is cached; a changed
    /// field re-runs it with the reason; the cache lists and verifies it.
    func testToyBaseRunCachedPlanAndCache() throws {
        let first = try qlora(["run", "pipelines/toy.yaml", "--only", "base"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("[1/1] base: running — new\n"), first.stdout)
        XCTAssertTrue(first.stdout.contains("  base: initialised llama: 2 layers, hidden 64, vocab 259, 108736 parameters (seed 0)\n"), first.stdout)
        XCTAssertTrue(first.stdout.contains("summary (1 ran, 0 cached, "), first.stdout)

        let second = try qlora(["pipelines/toy.yaml", "--only", "base"])   // bare `qlora-run FILE`
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("[1/1] base: cached ("), second.stdout)
        XCTAssertTrue(second.stdout.contains("summary (0 ran, 1 cached, "), second.stdout)
        XCTAssertFalse(second.stdout.contains("running"), second.stdout)

        let plan = try qlora(["plan", "pipelines/toy.yaml", "--set", "stages.train.lr=0.001"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        let lines = plan.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "[1/9] base: cached")
        XCTAssertEqual(lines[1], "[2/9] quantized: will run — new")
        XCTAssertEqual(lines[3], "[4/9] train: will run — upstream: adapted will run")

        let changed = try qlora(["plan", "pipelines/toy.yaml", "--only", "base", "--set", "stages.base.init.hidden_size=32"])
        XCTAssertEqual(changed.stdout, "[1/1] base: will run — config: init.hidden_size 64 -> 32\n")

        let ls = try qlora(["cache", "ls"])
        XCTAssertEqual(ls.status, 0)
        XCTAssertTrue(ls.stdout.contains("  base         load_checkpoint  "), ls.stdout)
        XCTAssertTrue(ls.stdout.hasSuffix("1 entries in \(cache.standardizedFileURL.path)\n"), ls.stdout)
        let verify = try qlora(["cache", "verify"])
        XCTAssertEqual(verify.status, 0)
        XCTAssertTrue(verify.stdout.hasPrefix("checked "), verify.stdout)
        XCTAssertTrue(verify.stdout.hasSuffix(" objects: all good\n"), verify.stdout)
    }

    /// NF4 + double quant of the toy model: the log's size line, then LoRA on every linear but the head.
    func testQuantizeAndAttach() throws {
        let r = try qlora(["run", "pipelines/toy.yaml", "--only", "adapted"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("  quantized: quantized 15 linear layers: 0.4 MB -> 0.1 MB (4.13 bits/param)\n"), r.stdout)
        // One grouped line on the terminal; the per-module list goes to the stage log only.
        XCTAssertTrue(r.stdout.contains("  adapted: adapters (rank 8) on 14 modules: q_proj x2, k_proj x2, v_proj x2, o_proj x2, gate_proj x2, up_proj x2, down_proj x2\n"), r.stdout)
        XCTAssertFalse(r.stdout.contains("adapter on "), r.stdout)
        XCTAssertTrue(r.stdout.contains("bits_per_param 4.13 · layers 15"), r.stdout)
    }

    /// The init checkpoint artifact is a real HF-style directory: config, weights, tokenizer.
    func testInitArtifactLayout() throws {
        let r = try qlora(["run", "pipelines/toy.yaml", "--only", "base"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let artifacts = try FileManager.default.contentsOfDirectory(at: cache.appendingPathComponent("artifacts"), includingPropertiesForKeys: nil)
        XCTAssertEqual(artifacts.count, 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: artifacts[0].path).sorted()
        XCTAssertEqual(files, ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        let tokenizer = try JSONSerialization.jsonObject(with: Data(contentsOf: artifacts[0].appendingPathComponent("tokenizer.json"))) as? [String: Any]
        let vocab = (tokenizer?["model"] as? [String: Any])?["vocab"] as? [String: Int]
        XCTAssertEqual(vocab?.count, 259)
        XCTAssertEqual(vocab?["<|im_start|>"], 1)
        XCTAssertEqual(vocab?["A"], 3 + 65)
        XCTAssertEqual(vocab?["Ġ"], 3 + 32)   // GPT-2 byte-to-unicode: space -> U+0120
    }

    /// A stage that cannot run fails with exit 1 and says which stage and why; earlier stages stay cached.
    func testUnknownStageNamesAreInvalidInput() throws {
        let r = try qlora(["run", "pipelines/toy.yaml", "--only", "bsae"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "error: no stage named 'bsae' in the pipeline\n")
    }
}
