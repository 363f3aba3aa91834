import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import PipelineCore

/// Issue 11 §2: a damaged cache object (same size, different bytes) is found where it is used —
/// before a stage reads it, and while publishing — quarantined and recomputed; `cache verify`
/// removes the records built on a repaired output.
final class CorruptObjectTests: XCTestCase {
    var dir: URL!
    let recorder = TestStages.Recorder()
    var store: CacheStore { CacheStore(root: dir.appendingPathComponent(".qlora")) }

    override func setUpWithError() throws { dir = try TestStages.makeDirectory() }
    override func tearDownWithError() throws { CacheStore.removeTree(dir) }

    func runner(options: RunOptions = RunOptions(), lines: LineSink = LineSink()) throws -> PipelineRunner {
        let pipeline = try TestStages.pipeline(TestStages.chain, in: dir, order: TestStages.chainOrder)
        return PipelineRunner(pipeline: pipeline, registry: TestStages.registry(recorder), options: options, log: { lines.append($0) })
    }

    /// Flips the first byte of the object holding `text`, keeping its size (what a size check misses).
    func corrupt(objectOf text: String) throws -> String {
        let digest = SHA256.hex(Data(text.utf8))
        let url = store.objectURL(digest)
        chmod(url.path, 0o644)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[0] ^= 0x20
        try Data(bytes).write(to: url)
        chmod(url.path, 0o444)
        return digest
    }

    func testDamagedInputIsRecomputedBeforeAStageReadsIt() throws {
        _ = try runner().run()
        let digest = try corrupt(objectOf: "hidata-v1\n!")  // quantize's output, adapt's input
        recorder.reset()
        let lines = LineSink()
        let summary = try runner(options: RunOptions(force: ["adapt"]), lines: lines).run()
        XCTAssertEqual(recorder.executed, ["quantize", "adapt", "save"])
        XCTAssertTrue(lines.all.contains("warning: quantize: cached object \(digest.prefix(12))… is missing or does not match its SHA-256 (quarantined); running 'quantize' again"), "\(lines.all)")
        XCTAssertEqual(try String(contentsOf: summary.stages[2].outputDirectory.appendingPathComponent("out.txt"), encoding: .utf8), "hidata-v1\n!+lora")
        XCTAssertEqual(try String(contentsOf: summary.stages[1].outputDirectory.appendingPathComponent("out.txt"), encoding: .utf8), "hidata-v1\n!")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.quarantine.path).count, 1)
        XCTAssertTrue(try store.verify().isClean)
    }

    func testDamagedAdapterIsNeverPublished() throws {
        _ = try runner().run()
        let digest = try corrupt(objectOf: "hidata-v1\n!+lora")  // adapt's and save's output (one object)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("out/adapter"))
        recorder.reset()
        let lines = LineSink()
        _ = try runner(lines: lines).run()
        XCTAssertEqual(recorder.executed, ["adapt", "save"])
        XCTAssertEqual(lines.all.filter { $0.hasPrefix("warning: ") }, [
            "warning: save: cached object \(digest.prefix(12))… is missing or does not match its SHA-256 (quarantined); running 'save' again",
            "warning: adapt: cached object \(digest.prefix(12))… is missing or does not match its SHA-256 (quarantined); running 'adapt' again",
        ])
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("out/adapter/out.txt"), encoding: .utf8), "hidata-v1\n!+lora")
        XCTAssertTrue(try store.verify().isClean)
    }

    func testVerifyRemovesRecordsBuiltOnARepairedOutput() throws {
        let first = try runner().run()
        let digest = try corrupt(objectOf: "hidata-v1\n!")
        let report = try store.verify()
        XCTAssertEqual(report.quarantined, [digest])
        XCTAssertEqual(report.incompleteActions, [first.stages[1].key])
        XCTAssertEqual(report.staleActions, [first.stages[2].key, first.stages[3].key].sorted())
        XCTAssertFalse(report.isClean)
        recorder.reset()
        _ = try runner().run()
        XCTAssertEqual(recorder.executed, ["quantize", "adapt", "save"])
        XCTAssertTrue(try store.verify().isClean)
    }
}
