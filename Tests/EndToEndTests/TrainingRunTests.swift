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

    func args(_ extra: [String] = [], steps: Int = 8, cache: URL? = nil, out: URL? = nil) -> [String] {
        ["pipelines/toy.yaml", "--cache", (cache ?? self.cache).path, "--only", "save",
         "--set", "stages.save.to=\((out ?? self.out).path)/adapter",
         "--set", "stages.train.max_steps=\(steps)", "--set", "stages.train.batch_size=2",
         "--set", "stages.train.checkpoint_every=2", "--set", "stages.train.log_every=1"] + extra
    }

    /// The train stage's artifact directory, from the run summary line `  train  ran  …  <path>`.
    func trainArtifact(_ stdout: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try CLI.artifact(of: "train", in: stdout)
    }

    /// Runs the same pipeline uninterrupted in a fresh cache and checks that the resumed run (whose
    /// stdout is `resumedStdout`, adapter published under `out`) ended with the same adapter and
    /// metrics.jsonl bytes.
    func assertIdenticalToUninterruptedRun(_ resumedStdout: String, steps: Int,
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        let freshCache = try makeTemporaryDirectory("qlora-e2e-fresh"), freshOut = try makeTemporaryDirectory("qlora-e2e-fresh-out")
        defer { try? FileManager.default.removeItem(at: freshCache); try? FileManager.default.removeItem(at: freshOut) }
        let fresh = try CLI.run(["run"] + args(steps: steps, cache: freshCache, out: freshOut))
        XCTAssertEqual(fresh.status, 0, fresh.stderr, file: file, line: line)
        XCTAssertFalse(fresh.stdout.contains("resuming"), fresh.stdout, file: file, line: line)
        let adapter = "adapter/adapter_model.safetensors"
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(adapter)), try Data(contentsOf: freshOut.appendingPathComponent(adapter)),
                       "resumed training must give a byte-identical adapter", file: file, line: line)
        let resumedMetrics = try Data(contentsOf: trainArtifact(resumedStdout).appendingPathComponent("metrics.jsonl"))
        let freshMetrics = try Data(contentsOf: trainArtifact(fresh.stdout).appendingPathComponent("metrics.jsonl"))
        // One row per step, plus the toy pipeline's final validation pass (eval_split, keep: best).
        let rows = String(decoding: resumedMetrics, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(rows.filter { !$0.contains("\"eval_loss\"") }.count, steps, file: file, line: line)
        XCTAssertEqual(rows.filter { $0.contains("\"eval_loss\"") }.count, 1, file: file, line: line)
        XCTAssertEqual(resumedMetrics, freshMetrics, "resumed training must give byte-identical metrics.jsonl", file: file, line: line)
    }

    /// Names in `directory`, sorted (empty when it does not exist).
    func names(_ directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    /// The newest `checkpoint-<step>` step in any work directory of `cache`.
    func newestCheckpoint(in cache: URL) -> Int? {
        let work = cache.appendingPathComponent("work")
        return names(work).flatMap { key in
            names(work.appendingPathComponent(key)).compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst("checkpoint-".count)) : nil }
        }.max()
    }

    func testTrainSaveCachedAndPlanReason() throws {
        let first = try CLI.run(["run"] + args())
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("[4/5] train: running — new\n"), first.stdout)
        XCTAssertTrue(first.stdout.contains("  train: step 8/8 · epoch 1 · loss "), first.stdout)
        XCTAssertTrue(first.stdout.contains("summary (5 ran, 0 cached, "), first.stdout)
        // Not a terminal: one line per log_every step, no live bar, no carriage returns (nor in the stage logs).
        XCTAssertEqual(first.stdout.components(separatedBy: "\n  train: step ").count - 1, 8, first.stdout)
        XCTAssertFalse(first.stdout.contains("\r") || first.stdout.contains("] 1/8 · "), first.stdout)
        for log in names(cache.appendingPathComponent("logs")) {
            let text = try String(contentsOf: cache.appendingPathComponent("logs/\(log)"), encoding: .utf8)
            XCTAssertFalse(text.contains("\r"), log)
        }
        let adapter = out.appendingPathComponent("adapter")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: adapter.path).sorted(),
                       [".qlora-published", "adapter_config.json", "adapter_model.safetensors"])

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
        [4/5] train: will run — config: lr 0.005 -> 0.001
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

        // The resumed run ends with the same adapter and metrics bytes as an uninterrupted run in a fresh cache.
        try assertIdenticalToUninterruptedRun(resumed.stdout, steps: 8)
    }

    /// kill -9 in the middle of training (no chance to clean up or checkpoint on the way out): nothing
    /// is published, the next run resumes from the last periodic checkpoint and ends byte-identical.
    func testKillNineThenResume() throws {
        let steps = 16
        let cacheDirectory = cache!
        // SIGKILL as soon as a periodic checkpoint (every 2 steps) exists; the log prints a line per
        // step, so the condition is re-checked every step, long before step 16.
        let killed = try CLI.run(["run"] + args(steps: steps), signal: SIGKILL, when: { _ in
            let work = cacheDirectory.appendingPathComponent("work")
            let keys = (try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? []
            return keys.contains { key in
                ((try? FileManager.default.contentsOfDirectory(atPath: work.appendingPathComponent(key).path)) ?? [])
                    .contains { $0.hasPrefix("checkpoint-") }
            }
        })
        XCTAssertEqual(killed.status, SIGKILL, "the run must have been killed, not have finished:\n" + killed.stdout)
        XCTAssertFalse(killed.stdout.contains("[4/5] train: done"), killed.stdout)
        let step = try XCTUnwrap(newestCheckpoint(in: cache), "no checkpoint survived the kill")
        XCTAssertGreaterThan(step, 0); XCTAssertLessThan(step, steps)

        // Nothing of the killed stage was committed or published: no action/stage record for train or
        // save (only the three upstream stages that finished), no adapter, not even a temporary one.
        XCTAssertEqual(names(cache.appendingPathComponent("stages/toy")), ["adapted.json", "base.json", "quantized.json"])
        XCTAssertEqual(names(cache.appendingPathComponent("actions")).count, 3)
        XCTAssertEqual(names(out), [])

        let resumed = try CLI.run(["run"] + args(steps: steps))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("[3/5] adapted: cached ("), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("\n  train: resuming from checkpoint at step \(step) (epoch 1)\n  train: step \(step + 1)/\(steps) · epoch 1 · loss "), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("  train: step \(steps)/\(steps) · epoch 1 · loss "), resumed.stdout)
        XCTAssertEqual(names(cache.appendingPathComponent("work")), [], "the work directory is removed once the stage is committed")
        try assertIdenticalToUninterruptedRun(resumed.stdout, steps: steps)
    }
}
