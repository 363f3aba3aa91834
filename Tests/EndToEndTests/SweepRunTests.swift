import Foundation
import XCTest
import TestSupport

/// Issue 20 on the toy pipeline: a 2×2 sweep, the table of its runs, their differences, and a
/// point reproduced from its record; bad sweeps refused with their line:col; a failing point.
final class SweepRunTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = try CLI.projectCopy("qlora-e2e-sweep")
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let grid = ["pipelines/toy.yaml", "--set", "stages.train.max_steps=20", "--set", "stages.train.eval_every=10",
                       "--sweep", "stages.adapted.rank=4,8", "--sweep", "stages.train.lr=0.005,0.01"]
    static let points = ["rank=4,lr=0.005", "rank=4,lr=0.01", "rank=8,lr=0.005", "rank=8,lr=0.01"]

    func testGridRunsFourPointsSharingUpstreamStagesThenTableDiffAndReproduce() throws {
        let plan = try CLI.run(["plan"] + Self.grid, in: dir)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.hasSuffix("4 points: 28 stage runs, 8 shared with an earlier point\n"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("point 4/4: rank=8,lr=0.01\n  [1/9] base: shared with point 1 (runs once)\n  [2/9] quantized: shared with point 1 (runs once)\n  [3/9] adapted: shared with point 3 (runs once)\n"), plan.stdout)

        let run = try CLI.run(["run"] + Self.grid, in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        for (i, point) in Self.points.enumerated() { XCTAssertTrue(run.stdout.contains("point \(i + 1)/4: \(point)\n"), run.stdout) }
        // load_checkpoint and quantize ran once; the adapters for each rank once; train per point.
        XCTAssertEqual(run.stdout.components(separatedBy: "[1/9] base: running").count - 1, 1, run.stdout)
        XCTAssertEqual(run.stdout.components(separatedBy: "[2/9] quantized: running").count - 1, 1)
        XCTAssertEqual(run.stdout.components(separatedBy: "[3/9] adapted: running").count - 1, 2)
        XCTAssertEqual(run.stdout.components(separatedBy: "[4/9] train: running").count - 1, 4)
        XCTAssertTrue(run.stdout.contains("\nsweep (4 points, 4 ok, 0 failed, "), run.stdout)
        // Four adapters, one directory per point, no collision.
        let published = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out/toy-adapter").path).sorted()
        XCTAssertEqual(published, Self.points.sorted())
        let adapters = try Self.points.map { try Data(contentsOf: dir.appendingPathComponent("out/toy-adapter/\($0)/adapter_model.safetensors")) }
        XCTAssertEqual(Set(adapters).count, 4)

        let table = try CLI.run(["runs", "pipelines/toy.yaml", "--json"], in: dir)
        XCTAssertEqual(table.status, 0, table.stderr)
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(table.stdout.utf8)) as? [String: Any])
        let runs = try XCTUnwrap(document["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["point"] as? String }, Self.points)
        for entry in runs {
            let parameters = try XCTUnwrap(entry["parameters"] as? [String: Any])
            XCTAssertEqual(Set(parameters.keys), ["stages.adapted.rank", "stages.train.lr"])
            let metrics = try XCTUnwrap(entry["metrics"] as? [String: Double])
            for m in ["train_loss", "val_loss", "eval_loss", "perplexity", "token_accuracy", "exact_match", "tokens_per_s", "seconds"] {
                XCTAssertNotNil(metrics[m], "\(m) in \(metrics)")
            }
        }
        XCTAssertEqual((runs[2]["parameters"] as? [String: String])?["stages.adapted.rank"], "8")
        XCTAssertEqual((runs[2]["parameters"] as? [String: String])?["stages.train.lr"], "0.005")
        let text = try CLI.run(["runs", "pipelines/toy.yaml"], in: dir)
        let lines = text.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 5, text.stdout)
        XCTAssertEqual(lines[0].split(separator: " "), ["run", "started", "point", "train", "val", "eval", "ppl", "tok_acc", "exact", "tok/s", "time"])
        for (line, point) in zip(lines.dropFirst(), Self.points) { XCTAssertTrue(line.contains("  \(point)  "), String(line)) }
        for line in lines { XCTAssertLessThanOrEqual(line.count, 120, String(line)) }

        let diff = try CLI.run(["runs", "diff", "rank=4,lr=0.005", "rank=8,lr=0.01"], in: dir)
        XCTAssertEqual(diff.status, 0, diff.stderr)
        XCTAssertTrue(diff.stdout.contains("parameters:\n  stages.adapted.rank: 4 -> 8\n  stages.train.lr: 0.005 -> 0.01\nmetrics:\n  train_loss: "), diff.stdout)

        let plotted = try CLI.run(["runs", "plot", "pipelines/toy.yaml", "-o", "curves.svg"], in: dir)
        XCTAssertEqual(plotted.stdout, "wrote curves.svg: 4 runs\n", plotted.stderr)
        let svg = try String(contentsOf: dir.appendingPathComponent("curves.svg"), encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 8)  // a train and a validation curve per run
        for point in Self.points { XCTAssertTrue(svg.contains(">\(point)</text>"), point) }

        // Reproduce a point from its record: training forced, every output the recorded bytes.
        let before = adapters[1]
        let reproduced = try CLI.run(["reproduce", "rank=4,lr=0.01"], in: dir)
        XCTAssertEqual(reproduced.status, 0, reproduced.stderr)
        XCTAssertTrue(reproduced.stdout.contains("[4/9] train: running — forced"), reproduced.stdout)
        XCTAssertTrue(reproduced.stdout.contains("  train: identical ("), reproduced.stdout)
        XCTAssertTrue(reproduced.stdout.hasSuffix("reproduced: every stage output is byte-identical to run \(runs[1]["id"] as? String ?? "")\n"), reproduced.stdout)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("out/toy-adapter/rank=4,lr=0.01/adapter_model.safetensors")), before)
        // The recorded manifest runs on its own: JSON with absolute paths.
        let shown = try CLI.run(["runs", "show", "rank=4,lr=0.01"], in: dir)
        let body = shown.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let stages = try XCTUnwrap(manifest["stages"] as? [String: [String: Any]])
        XCTAssertEqual(stages["adapted"]?["rank"] as? Int, 4)
        XCTAssertEqual(stages["save"]?["to"] as? String, dir.appendingPathComponent("out/toy-adapter/rank=4,lr=0.01").standardizedFileURL.path)
        XCTAssertEqual(stages["train"]?["data"] as? String, dir.appendingPathComponent("toydata/lora_data.jsonl").standardizedFileURL.path)
    }

    func testBadSweepsAreRefusedWithTheirLocation() throws {
        let file = dir.appendingPathComponent("pipelines/toy.yaml")
        let original = try String(contentsOf: file, encoding: .utf8)
        func refused(_ sweep: String, _ extra: [String] = []) throws -> String {
            try (original.replacingOccurrences(of: "stages:\n", with: sweep + "stages:\n")).write(to: file, atomically: true, encoding: .utf8)
            let result = try CLI.run(["run", "pipelines/toy.yaml"] + extra, in: dir)
            XCTAssertEqual(result.status, 2, result.stdout)
            XCTAssertTrue(result.stdout.isEmpty, result.stdout)
            return result.stderr
        }
        XCTAssertEqual(try refused("sweep:\n  stages.adaptd.rank: [4, 8]\n"),
                       "pipelines/toy.yaml:9:3: error: sweep: 'stages.adaptd.rank': there is no stage 'adaptd'; did you mean 'adapted'?\nerror: 1 problem found; nothing was run\n")
        XCTAssertEqual(try refused("sweep:\n  stages.train.lr: []\n"),
                       "pipelines/toy.yaml:9:20: error: sweep.stages.train.lr: must have at least 1 item (found 0)\nerror: 1 problem found; nothing was run\n")
        XCTAssertEqual(try refused("sweep:\n  stages.train.lr: [0.01, fast]\n  stages.adapted.rank: [4, 8]\n"),
                       "pipelines/toy.yaml:9:27: error: stages.train.lr: expected a number, found the string \"fast\"\nerror: 1 problem found; nothing was run\n")
        XCTAssertEqual(try refused("sweep:\n  stages.train.nope: [1]\n"),
                       "pipelines/toy.yaml:9:23: error: stages.train: unknown field 'nope'\nerror: 1 problem found; nothing was run\n")
        XCTAssertEqual(try refused("max_points: 3\nsweep:\n  stages.train.lr: [0.01, 0.02]\n  stages.adapted.rank: [4, 8]\n"),
                       "pipelines/toy.yaml:9:1: error: sweep: 2 × 2 = 4 points, more than max_points (3); sweep fewer values or raise max_points\nerror: 1 problem found; nothing was run\n")
        XCTAssertEqual(try refused("sweep_mode: zip\nsweep:\n  stages.train.lr: [0.01, 0.02]\n  stages.adapted.rank: [4]\n"),
                       "pipelines/toy.yaml:8:13: error: sweep_mode: zip pairs the lists element by element, so they must have equal lengths: stages.train.lr has 2, stages.adapted.rank has 1\nerror: 1 problem found; nothing was run\n")
        XCTAssertEqual(try refused("", ["--sweep", "stages.train.lr=0.01,-1"]),
                       "--sweep stages.train.lr=0.01,-1: error: stages.train.lr: must be > 0 (found -1)\nerror: 1 problem found; nothing was run\n")
    }

    func testAFailingPointDoesNotStopTheOthers() throws {
        // The second point's data has a conversation without an assistant reply: that train fails at run time.
        let bad = dir.appendingPathComponent("toydata/bad.jsonl")
        try #"{"messages": [{"role": "user", "content": "hi"}]}"#.appending("\n").write(to: bad, atomically: true, encoding: .utf8)
        let run = try CLI.run(["run", "pipelines/toy.yaml", "--set", "stages.train.max_steps=5", "--only", "save",
                               "--sweep", "stages.train.data=../toydata/lora_data.jsonl,../toydata/bad.jsonl,../toydata/eval.jsonl"], in: dir)
        XCTAssertEqual(run.status, 1, run.stdout)
        XCTAssertTrue(run.stdout.contains("\nsweep (3 points, 2 ok, 1 failed, "), run.stdout)
        XCTAssertTrue(run.stdout.contains("  data=../toydata/bad.jsonl        FAILED  stage 'train' failed: "), run.stdout)
        XCTAssertTrue(run.stdout.contains("  data=../toydata/eval.jsonl       ok      train loss "), run.stdout)
        XCTAssertTrue(run.stderr.contains("error: stage 'train' failed: "), run.stderr)
        // The run records say which point failed; the table gives it a status column.
        let table = try CLI.run(["runs", "pipelines/toy.yaml", "--json"], in: dir)
        let runs = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(table.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["status"] as? String }, ["ok", "failed", "ok"])
        let text = try CLI.run(["runs", "pipelines/toy.yaml"], in: dir)
        XCTAssertTrue(text.stdout.split(separator: "\n").first?.hasSuffix("  status") ?? false, text.stdout)
        XCTAssertTrue(text.stdout.contains("data=../toydata/bad.jsonl") && text.stdout.contains("  failed\n"), text.stdout)
    }

    func testCtrlCStopsTheSweepAndTheSameCommandResumesIt() throws {
        let args = ["run", "pipelines/toy.yaml", "--set", "stages.train.max_steps=6", "--set", "stages.train.log_every=1",
                    "--sweep", "stages.train.lr=0.005,0.01,0.02"]
        let stopped = try CLI.run(args, in: dir, interruptAfter: "point 2/3: lr=0.01")
        XCTAssertEqual(stopped.status, 130, stopped.stdout + stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("error: sweep stopped at point 2 of 3 (lr=0.01); run the same command again to resume"), stopped.stderr)
        XCTAssertFalse(stopped.stdout.contains("point 3/3"), stopped.stdout)
        let resumed = try CLI.run(args, in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        // Point 1 finished before the stop: all cached now.
        let first = try XCTUnwrap(resumed.stdout.components(separatedBy: "point 2/3").first)
        XCTAssertTrue(first.contains("summary (0 ran, 9 cached, "), first)
        XCTAssertTrue(resumed.stdout.contains("\nsweep (3 points, 3 ok, 0 failed, "), resumed.stdout)
    }

    /// A sweep's points may not be published inside a plain run's published adapter (the next plain
    /// run would replace that directory and the points with it); `{point}` in `to:` gives them their own.
    func testPointsAreNotPublishedInsideAnEarlierPublish() throws {
        let plain = try CLI.run(["run", "pipelines/toy.yaml", "--set", "stages.train.max_steps=3", "--only", "save"], in: dir)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let refused = try CLI.run(["run", "pipelines/toy.yaml", "--set", "stages.train.max_steps=3", "--only", "save", "--sweep", "stages.adapted.rank=4"], in: dir)
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr, "pipelines/toy.yaml:55:9: error: stages.save.to: cannot publish to '../out/toy-adapter/rank=4' (relative to pipelines/): "
                       + "it is inside 'out/toy-adapter', which qlora-run published, and would be lost when that is published again. Remove 'out/toy-adapter' "
                       + "or choose another path (a sweep can use {point}, e.g. to: out/sweep/{point})\nerror: 1 problem found; nothing was run\n")
        let own = try CLI.run(["run", "pipelines/toy.yaml", "--set", "stages.train.max_steps=3", "--only", "save", "--sweep", "stages.adapted.rank=4",
                               "--set", "stages.save.to=../out/sweep/{point}/adapter"], in: dir)
        XCTAssertEqual(own.status, 0, own.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/sweep/rank=4/adapter/adapter_model.safetensors").path))
    }
}
