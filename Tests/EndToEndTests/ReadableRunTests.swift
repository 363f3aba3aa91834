import Foundation
import XCTest
import TestSupport

/// Issue 18: the run as a person reads it — a summary that fits 120 columns with relative paths and
/// short digests, published outputs first, one time per stage, the evaluation repeated on a cached
/// re-run, and `run --json` for scripts.
final class ReadableRunTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = try CLI.projectCopy("qlora-e2e-readable")
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let args = ["pipelines/toy.yaml", "--set", "stages.train.max_steps=30"]

    func testSummaryFitsAndTimesAgreeAndCachedRunRepeatsTheEvaluation() throws {
        let first = try CLI.run(["run"] + Self.args, in: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let lines = first.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("summary (9 ran, 0 cached, ") }, first.stdout)
        let summary = Array(lines[start...])
        XCTAssertEqual(summary[1], "  published out/toy-adapter (save)")
        for line in summary { XCTAssertLessThanOrEqual(line.count, 120, line) }
        // Each stage row: name, status, the time of its `done` line, a relative path with 12 hex.
        for (i, stage) in ["base", "quantized", "adapted", "train", "save", "evaluate"].enumerated() {
            let done = try XCTUnwrap(lines.first { $0.hasPrefix("[\(i + 1)/9] \(stage): done (") }, first.stdout)
            let seconds = String(done.dropFirst("[\(i + 1)/9] \(stage): done (".count).prefix { $0 != "s" })
            let row = try XCTUnwrap(summary.first { $0.hasPrefix("  \(stage) ") }, first.stdout)
            let fields = row.split(separator: " ").map(String.init)
            XCTAssertEqual(fields[1], "ran", row)
            XCTAssertEqual(fields[2], seconds + "s", "the summary and the stage line give one time: \(row) vs \(done)")
            if stage == "save" {
                XCTAssertEqual(fields[3], "out/toy-adapter", row)
            } else {
                XCTAssertTrue(fields[3].hasPrefix(".qlora/artifacts/") && fields[3].hasSuffix("…"), row)
                let digest = fields[3].dropFirst(".qlora/artifacts/".count).dropLast()
                XCTAssertEqual(digest.count, 12, row)
                XCTAssertTrue(digest.allSatisfy(\.isHexDigit), row)
            }
        }
        XCTAssertTrue(summary.last?.isEmpty ?? false)
        XCTAssertTrue(summary[summary.count - 2].hasPrefix("run record: .qlora/runs/"), summary.joined(separator: "\n"))

        // `cache ls` keeps the full artifact paths.
        let ls = try CLI.run(["cache", "ls", "pipelines/toy.yaml"], in: dir)
        let evaluate = try CLI.artifact(of: "evaluate", in: first.stdout, directory: dir)
        XCTAssertTrue(ls.stdout.contains("  " + evaluate.resolvingSymlinksInPath().path + "\n") || ls.stdout.contains("  " + evaluate.path + "\n"), ls.stdout)

        // A fully cached re-run shows the evaluation headline and the generations again, after its stage line.
        let evaluation = lines.filter { $0.hasPrefix("  evaluate: loss ") || $0.contains(" -> \"") }
        XCTAssertEqual(evaluation.count, 4, first.stdout)
        let again = try CLI.run(["run"] + Self.args, in: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("[6/9] evaluate: cached (") , again.stdout)
        let cachedLines = again.stdout.split(separator: "\n").map(String.init)
        let cachedLine = try XCTUnwrap(cachedLines.firstIndex { $0.hasPrefix("[6/9] evaluate: cached (") })
        XCTAssertEqual(Array(cachedLines[(cachedLine + 1)...].prefix(4)), evaluation)
        XCTAssertTrue(again.stdout.contains("  train: completed; kept the adapter of step 30 (the best validation pass"), again.stdout)
    }

    func testJSONDocumentOnStdoutAndTheLogOnStderr() throws {
        let run = try CLI.run(["run"] + Self.args + ["--json"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout)
        XCTAssertEqual(Set(document.keys), ["pipeline", "status", "seconds", "ran", "cached", "run_record", "stages"])
        XCTAssertEqual(document["pipeline"] as? String, "toy")
        XCTAssertEqual(document["status"] as? String, "ok")
        XCTAssertEqual(document["ran"] as? Int, 9)
        let stages = try XCTUnwrap(document["stages"] as? [[String: Any]])
        XCTAssertEqual(stages.map { $0["name"] as? String }, ["base", "quantized", "adapted", "train", "save", "evaluate", "merged", "gguf", "gguf_adapter"])
        for stage in stages {
            XCTAssertEqual(Set(stage.keys), ["name", "kind", "status", "seconds", "key", "output_digest", "artifact", "published", "metrics", "reasons"])
            XCTAssertEqual((stage["key"] as? String)?.count, 64)
            XCTAssertTrue((stage["artifact"] as? String)?.hasSuffix("/artifacts/" + (stage["output_digest"] as? String ?? "")) ?? false, "\(stage)")
        }
        XCTAssertEqual(stages[4]["published"] as? [String], [dir.appendingPathComponent("out/toy-adapter").standardizedFileURL.path])
        let metrics = try XCTUnwrap(stages[5]["metrics"] as? [String: Any])
        XCTAssertEqual(Set(metrics.keys), ["loss", "perplexity", "token_accuracy", "base_loss", "exact_match"])
        XCTAssertEqual(stages[0]["reasons"] as? [String], ["new"])
        // The human log went to stderr, summary included.
        XCTAssertTrue(run.stderr.contains("[6/9] evaluate: done ("), run.stderr)
        XCTAssertTrue(run.stderr.contains("\nsummary (9 ran, 0 cached, "), run.stderr)

        // A bad value: still one document, with the exit code.
        let bad = try CLI.run(["run", "pipelines/toy.yaml", "--json", "--set", "stages.train.lr=-1"], in: dir)
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(bad.stdout, #"{"error":"--set stages.train.lr=-1: error: stages.train.lr: must be > 0 (found -1)","exit_code":2,"pipeline_file":"pipelines/toy.yaml","status":"invalid"}"# + "\n")
        XCTAssertTrue(bad.stderr.contains("error: 1 problem found; nothing was run"), bad.stderr)
    }
}
