import Foundation
import XCTest
import TestSupport

/// Issue 11: kill -9 at each publish and commit point (QLORA_CRASH_AT), over a destination that
/// already holds an earlier publish: the next run ends byte-identical to an uninterrupted one, the
/// cache verifies, and no temporary or set-aside copy is left beside the destination.
final class CrashPointTests: XCTestCase {
    static func args(cache: URL, out: URL, lr: String) -> [String] {
        ["run", "pipelines/toy.yaml", "--cache", cache.path, "--only", "save", "--set", "stages.save.to=\(out.path)/adapter",
         "--set", "stages.train.max_steps=6", "--set", "stages.train.checkpoint_every=2", "--set", "stages.train.lr=\(lr)"]
    }

    func testKillNineAtEachPublishAndCommitPoint() throws {
        let reference = try makeTemporaryDirectory("qlora-crash-ref"), referenceOut = try makeTemporaryDirectory("qlora-crash-ref-out")
        defer { try? FileManager.default.removeItem(at: reference); try? FileManager.default.removeItem(at: referenceOut) }
        let straight = try CLI.run(Self.args(cache: reference, out: referenceOut, lr: "0.005"))
        XCTAssertEqual(straight.status, 0, straight.stderr)
        let expected = try Data(contentsOf: referenceOut.appendingPathComponent("adapter/adapter_model.safetensors"))

        // base, quantized and adapted are cached from the earlier run, so the first ingest and commit are
        // train's and the second ones save's; atomic-write:9 falls among train's records.
        for point in ["ingest:1", "commit:1", "ingest:2", "commit:2", "atomic-write:9", "publish-temp", "publish-swap", "publish-done"] {
            let cache = try makeTemporaryDirectory("qlora-crash"), out = try makeTemporaryDirectory("qlora-crash-out")
            defer { try? FileManager.default.removeItem(at: cache); try? FileManager.default.removeItem(at: out) }
            let earlier = try CLI.run(Self.args(cache: cache, out: out, lr: "0.01"))   // the destination holds an earlier publish
            XCTAssertEqual(earlier.status, 0, earlier.stderr)
            let killed = try CLI.run(Self.args(cache: cache, out: out, lr: "0.005"), environment: ["QLORA_CRASH_AT": point])
            XCTAssertEqual(killed.status, SIGKILL, "\(point): the run must have been killed\n" + killed.stdout + killed.stderr)
            XCTAssertTrue(killed.stderr.contains("QLORA_CRASH_AT: killed at \(point.contains(":") ? point : point + ":1")"), killed.stderr)
            // Whatever the moment, the destination holds a complete adapter (the old or the new one).
            let during = out.appendingPathComponent("adapter/adapter_model.safetensors")
            if point == "publish-swap" {
                XCTAssertFalse(FileManager.default.fileExists(atPath: during.path), "\(point): the old copy is set aside")
            } else {
                XCTAssertTrue(FileManager.default.fileExists(atPath: during.path), point)
            }
            let again = try CLI.run(Self.args(cache: cache, out: out, lr: "0.005"))
            XCTAssertEqual(again.status, 0, "\(point): " + again.stderr)
            XCTAssertEqual(try Data(contentsOf: during), expected, "\(point): the re-run must publish the uninterrupted bytes")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["adapter"], "\(point): leftovers beside the destination")
            let verify = try CLI.run(["cache", "verify", "--cache", cache.path])
            XCTAssertEqual(verify.status, 0, "\(point): " + verify.stdout + verify.stderr)
            XCTAssertTrue(verify.stdout.hasSuffix("all good\n"), "\(point): " + verify.stdout)
        }
    }
}
