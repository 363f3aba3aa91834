import Foundation
import XCTest
import TestSupport

/// The toy pipeline (seeded init -> NF4 double-quant -> LoRA -> train -> save), small: cached re-run,
/// plan reason on an lr change, Ctrl-C and resume.
final class TrainingRunTests: XCTestCase {
    var cache: URL!, out: URL!
    override func setUpWithError() throws {
        cache = try makeTemporaryDirectory("qlora-e2e-train")
        out = try makeTemporaryDirectory("qlora-e2e-out")
    }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: cache); try? FileManager.default.removeItem(at: out)
    }

    func args(_ extra: [String] = []) -> [String] {
        ["pipelines/toy.yaml", "--cache", cache.path, "--only", "save",
         "--set", "stages.save.to=\(out.path)/adapter",
         "--set", "stages.train.max_steps=8", "--set", "stages.train.batch_size=2",
         "--set", "stages.train.checkpoint_every=2", "--set", "stages.train.log_every=1"] + extra
    }

    func testTrainSaveCachedAndPlanReason() throws {
        let first = try CLI.run(["run"] + args())
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("[4/5] train: running — new\n"), first.stdout)
        XCTAssertTrue(first.stdout.contains("  train: step 8/8 · epoch 1 · loss "), first.stdout)
        XCTAssertTrue(first.stdout.contains("summary (5 ran, 0 cached, "), first.stdout)
        let adapter = out.appendingPathComponent("adapter")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: adapter.path).sorted(),
                       ["adapter_config.json", "adapter_model.safetensors"])

        // Second run: nothing executes; the published adapter is still there.
        let second = try CLI.run(["run"] + args())
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("summary (0 ran, 5 cached, "), second.stdout)
        for stage in ["base", "quantized", "adapted", "train", "save"] {
            XCTAssertTrue(second.stdout.contains("] \(stage): cached ("), "\(stage): \(second.stdout)")
        }

        // A changed learning rate re-runs train (and what depends on it) only.
        let plan = try CLI.run(["plan"] + args(["--set", "stages.train.lr=0.001"]))
        XCTAssertEqual(plan.stdout, """
        [1/5] base: cached
        [2/5] quantized: cached
        [3/5] adapted: cached
        [4/5] train: will run — config: lr 0.01 -> 0.001
        [5/5] save: will run — upstream: train will run

        """)
    }

    func testInterruptThenResume() throws {
        let interrupted = try CLI.run(["run"] + args(), interruptAfter: "train: step 3/8")
        XCTAssertEqual(interrupted.status, 130, interrupted.stdout + interrupted.stderr)
        XCTAssertTrue(interrupted.stderr.contains("error: stage 'train' was interrupted; its work directory is kept so the next run can resume\n"), interrupted.stderr)
        let resumed = try CLI.run(["run"] + args())
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("  train: resuming from checkpoint at step "), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("[1/5] base: cached ("), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("  train: step 8/8 · epoch 1 · loss "), resumed.stdout)

        // The resumed run ends with the same adapter bytes as an uninterrupted run in a fresh cache.
        let freshCache = try makeTemporaryDirectory("qlora-e2e-fresh"), freshOut = try makeTemporaryDirectory("qlora-e2e-fresh-out")
        defer { try? FileManager.default.removeItem(at: freshCache); try? FileManager.default.removeItem(at: freshOut) }
        var freshArgs = args(["--set", "stages.save.to=\(freshOut.path)/adapter"])
        freshArgs[2] = freshCache.path
        let fresh = try CLI.run(["run"] + freshArgs)
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        let resumedBytes = try Data(contentsOf: out.appendingPathComponent("adapter/adapter_model.safetensors"))
        let freshBytes = try Data(contentsOf: freshOut.appendingPathComponent("adapter/adapter_model.safetensors"))
        XCTAssertEqual(resumedBytes, freshBytes, "resumed training must give a byte-identical adapter")
    }
}
