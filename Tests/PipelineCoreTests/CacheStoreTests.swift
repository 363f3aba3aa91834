import XCTest
import Glibc
@testable import PipelineCore

final class CacheStoreTests: XCTestCase {
    var dir: URL!
    let recorder = TestStages.Recorder()
    override func setUpWithError() throws { dir = try TestStages.makeDirectory() }
    override func tearDownWithError() throws { CacheStore.removeTree(dir) }

    var store: CacheStore { CacheStore(root: dir.appendingPathComponent(".qlora")) }

    func runner(_ lines: LineSink = LineSink()) throws -> PipelineRunner {
        PipelineRunner(pipeline: try TestStages.pipeline(TestStages.chain, in: dir, order: TestStages.chainOrder),
                       registry: TestStages.registry(recorder), log: { lines.append($0) })
    }

    /// The object holding `base`'s out.txt ("hidata-v1\n").
    var baseObject: URL { store.objectURL(SHA256.hex(Data("hidata-v1\n".utf8))) }

    func overwrite(_ url: URL, with text: String) throws {
        chmod(url.path, 0o644)
        try Data(text.utf8).write(to: url)
    }

    func testObjectsAreReadOnlyAndRecordsListed() throws {
        _ = try runner().run()
        let attributes = try FileManager.default.attributesOfItem(atPath: baseObject.path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o444)
        let entries = try store.list()
        XCTAssertEqual(entries.map(\.stage), ["adapt", "base", "quantize", "save"])
        XCTAssertEqual(entries.first { $0.stage == "base" }?.bytes, 10)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.runs.path).count, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.work.path), [])
    }

    func testTruncatedObjectIsAMissAndRecomputed() throws {
        _ = try runner().run()
        recorder.reset()
        try overwrite(baseObject, with: "short")
        XCTAssertEqual(try runner().plan().first?.line, "[1/4] base: will run — cache object missing/corrupt")
        let lines = LineSink()
        _ = try runner(lines).run()
        XCTAssertTrue(lines.all.contains { $0.hasPrefix("warning: base: the cached output is missing or corrupt (") }, "\(lines.all)")
        XCTAssertEqual(recorder.executed, ["base"])  // same output digest: downstream stays cached
        XCTAssertEqual(try String(contentsOf: baseObject, encoding: .utf8), "hidata-v1\n")
    }

    func testVerifyQuarantinesSameSizeCorruption() throws {
        _ = try runner().run()
        recorder.reset()
        try overwrite(baseObject, with: "XXdata-v1\n")  // same size: only re-hashing finds it
        XCTAssertEqual(try runner().plan().first?.status, .cached)
        let report = try store.verify()
        XCTAssertEqual(report.objectsChecked, 3)  // adapt and save output the same bytes: one object
        XCTAssertEqual(report.quarantined, [SHA256.hex(Data("hidata-v1\n".utf8))])
        XCTAssertEqual(report.incompleteActions, [try XCTUnwrap(try store.list().first { $0.stage == "base" }?.key)])
        // Everything downstream may have been computed from the damaged bytes: removed, re-run.
        XCTAssertEqual(report.staleActions.count, 3)
        let summary = try runner().run()
        XCTAssertEqual(recorder.executed, ["base", "quantize", "adapt", "save"])
        XCTAssertEqual(try String(contentsOf: summary.stages[0].outputDirectory.appendingPathComponent("out.txt"), encoding: .utf8), "hidata-v1\n")
        XCTAssertTrue(try store.verify().isClean)
    }

    func testGarbageCollectionKeepsLastRuns() throws {
        _ = try runner().run()
        try Data("data-v2\n".utf8).write(to: dir.appendingPathComponent("data.txt"))
        _ = try runner().run()
        XCTAssertEqual(try store.list().count, 8)
        let dry = try store.gc(keepRuns: 1, dryRun: true)
        XCTAssertEqual(dry.removedActions.count, 4)
        XCTAssertEqual(dry.removedObjects, 3)  // adapt and save share one object
        XCTAssertEqual(dry.removedRuns, 1)
        XCTAssertEqual(try store.list().count, 8)
        let real = try store.gc(keepRuns: 1, dryRun: false)
        XCTAssertEqual(real, dry)
        XCTAssertEqual(try store.list().count, 4)
        recorder.reset()
        _ = try runner().run()
        XCTAssertEqual(recorder.executed, [])
        XCTAssertTrue(try store.verify().isClean)
    }

    func testContentDigestMemoAndDirectoryManifest() throws {
        let tree = dir.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data("a".utf8).write(to: tree.appendingPathComponent("b.txt"))
        try Data("bc".utf8).write(to: tree.appendingPathComponent("sub/a.txt"))
        let digests = ContentDigest(memoDirectory: dir.appendingPathComponent("memo"))
        let expectedManifest = "b.txt\t1\t\(SHA256.hex(Data("a".utf8)))\nsub/a.txt\t2\t\(SHA256.hex(Data("bc".utf8)))\n"
        XCTAssertEqual(ContentDigest.manifestText(try digests.manifest(of: tree)), expectedManifest)
        XCTAssertEqual(try digests.digest(of: tree), SHA256.hex(Data(expectedManifest.utf8)))
        XCTAssertEqual(try digests.digest(of: tree.appendingPathComponent("b.txt")), SHA256.hex(Data("a".utf8)))
        // The memo is keyed by stat identity: rewriting the file changes it, so the new content is hashed.
        try Data("z".utf8).write(to: tree.appendingPathComponent("b.txt"))
        XCTAssertEqual(try digests.digest(of: tree.appendingPathComponent("b.txt")), SHA256.hex(Data("z".utf8)))
        XCTAssertThrowsError(try digests.digest(of: dir.appendingPathComponent("missing")))
    }

    /// Entries in a digest memo directory (its files sit two levels down: shard/entry).
    private func memoEntries(in memo: URL) -> Int {
        (FileManager.default.enumerator(atPath: memo.path)?.allObjects as? [String] ?? [])
            .filter { $0.split(separator: "/").count == 2 }.count
    }

    /// The memo survives what does not change the bytes (a hard link made and removed, as stages do
    /// when they link a checkpoint into an artifact), and never memoizes a file written just now.
    func testDigestMemoIgnoresLinksAndSkipsRacyFiles() throws {
        let file = dir.appendingPathComponent("weights.bin")
        let memo = dir.appendingPathComponent("memo2")
        let digests = ContentDigest(memoDirectory: memo)
        try Data("fresh".utf8).write(to: file)
        XCTAssertEqual(try digests.digest(of: file), SHA256.hex(Data("fresh".utf8)))
        XCTAssertEqual(memoEntries(in: memo), 0, "a file modified within the racy window is not memoized")
        // Age the file by ten seconds, as any file written before the run is.
        var times = [timeval(tv_sec: time(nil) - 10, tv_usec: 0), timeval(tv_sec: time(nil) - 10, tv_usec: 0)]
        XCTAssertEqual(utimes(file.path, &times), 0)
        XCTAssertEqual(try digests.digest(of: file), SHA256.hex(Data("fresh".utf8)))
        XCTAssertEqual(memoEntries(in: memo), 1)
        let link = dir.appendingPathComponent("weights-link.bin")
        XCTAssertEqual(Glibc.link(file.path, link.path), 0)
        XCTAssertEqual(unlink(link.path), 0)  // ctime changed, bytes and mtime did not
        XCTAssertEqual(try digests.digest(of: file), SHA256.hex(Data("fresh".utf8)))
        XCTAssertEqual(memoEntries(in: memo), 1, "the link changed ctime only: the memo entry is reused")
    }

    /// A file this process writes privately (a publish's temp copy) is backdated by the racy window
    /// and memoized at once; a later write, even of the same size, gets a new mtime and is hashed.
    func testBackdatedFileIsMemoizedAtOnceAndALaterWriteIsHashed() throws {
        let file = dir.appendingPathComponent("published.bin")
        let memo = dir.appendingPathComponent("memo3")
        let digests = ContentDigest(memoDirectory: memo)
        let fd = open(file.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(Array("fresh".utf8).withUnsafeBytes { write(fd, $0.baseAddress, 5) }, 5)
        XCTAssertTrue(ContentDigest.backdate(fd))
        close(fd)
        var st = stat()
        XCTAssertEqual(stat(file.path, &st), 0)
        XCTAssertLessThanOrEqual(Int64(st.st_mtim.tv_sec), Int64(time(nil)) - ContentDigest.racyWindow / 1_000_000_000)
        // A memoized digest is what the next lookup returns, without reading the file: a planted
        // wrong one shows it.
        digests.remember(String(repeating: "0", count: 64), for: file)
        XCTAssertEqual(memoEntries(in: memo), 1)
        XCTAssertEqual(try digests.digest(of: file), String(repeating: "0", count: 64))
        digests.remember(SHA256.hex(Data("fresh".utf8)), for: file)
        XCTAssertEqual(try digests.digest(of: file), SHA256.hex(Data("fresh".utf8)))
        try Data("FRESH".utf8).write(to: file)   // same size, written now
        XCTAssertEqual(try digests.digest(of: file), SHA256.hex(Data("FRESH".utf8)))
        XCTAssertEqual(memoEntries(in: memo), 1, "the rewritten file is within the racy window: not memoized")
        digests.remember(SHA256.hex(Data("FRESH".utf8)), for: file)
        XCTAssertEqual(memoEntries(in: memo), 1, "remember refuses a file modified within the racy window")
    }

    func testRecordsRoundTripThroughCanonicalJSON() throws {
        let record = ActionRecord(stage: "s", kind: "k", key: "abc", outputDigest: "def",
                                  files: [.init(path: "a/b.txt", size: 3, digest: "0123")], material: ["config.lr": "0.0005"],
                                  summary: ["loss": .number(1.25), "steps": .integer(10), "note": .string("q\"\n")], seconds: 0.5)
        let text = CanonicalJSON.string(record.json)
        XCTAssertEqual(ActionRecord(json: try CanonicalJSONParser.parse(Data(text.utf8))), record)
        XCTAssertThrowsError(try CanonicalJSONParser.parse(Data("{\"a\":".utf8)))
    }

    func testScratchOfDeadProcessIsSwept() throws {
        try store.prepare()
        let leftover = store.scratch.appendingPathComponent("deadbeef.99999.1")
        try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: true)
        let held = store.scratch.appendingPathComponent("cafe.1.2")
        try FileManager.default.createDirectory(at: held, withIntermediateDirectories: true)
        let lock = try store.lockKey("cafe")
        store.sweepScratch()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.scratch.path), ["cafe.1.2"])
        withExtendedLifetime(lock) {}
    }
}
