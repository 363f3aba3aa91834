import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import PipelineCore

/// Publishing never destroys what qlora-run did not create (issue 11 §1): unsafe `to:` paths are
/// refused when the pipeline loads, a killed publish is repaired on the next run, and system
/// errors name the stage and the path.
final class PublishSafetyTests: XCTestCase {
    var dir: URL!
    let recorder = TestStages.Recorder()

    override func setUpWithError() throws { dir = try TestStages.makeDirectory() }
    override func tearDownWithError() throws { CacheStore.removeTree(dir) }

    func chain(to destination: String) -> String {
        TestStages.chain.replacingOccurrences(of: #""to": "out/adapter""#, with: "\"to\": \"\(destination)\"")
    }

    /// The load issues for `to: destination`, as `path: message` lines.
    func issues(to destination: String) throws -> [String] {
        let value = try CanonicalJSONParser.parse(Data(chain(to: destination).utf8))
        let (pipeline, issues) = Pipeline.load(value: value, schema: TestStages.schema, file: dir.appendingPathComponent("pipeline.yaml"),
                                               displayName: "pipelines/pipeline.yaml", stageOrder: TestStages.chainOrder)
        XCTAssertEqual(pipeline == nil, !issues.isEmpty)
        return issues.map(\.description)
    }

    func runner(_ json: String = TestStages.chain, lines: LineSink = LineSink()) throws -> PipelineRunner {
        let pipeline = try TestStages.pipeline(json, in: dir, order: TestStages.chainOrder)
        return PipelineRunner(pipeline: pipeline, registry: TestStages.registry(recorder), log: { lines.append($0) })
    }

    func testRefusesDestinationsThatWouldDestroyWhatIsThere() throws {
        let manager = FileManager.default
        try manager.createDirectory(at: dir.appendingPathComponent("notes"), withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: dir.appendingPathComponent("notes/todo.txt"))
        try Data("mine".utf8).write(to: dir.appendingPathComponent("report.txt"))
        try manager.createSymbolicLink(atPath: dir.appendingPathComponent("link").path, withDestinationPath: "notes")
        let reportPath = dir.appendingPathComponent("report.txt").standardizedFileURL.path
        let expected: [(String, String)] = [
            (".", "'.' (relative to pipelines/) is or contains the pipeline file's directory; publishing there would delete it. Choose a path below or beside it"),
            ("..", "'..' (relative to pipelines/) is or contains the pipeline file's directory; publishing there would delete it. Choose a path below or beside it"),
            (".qlora", "'.qlora' (relative to pipelines/) is or contains the cache directory; publishing there would delete the cache. Choose a path outside it"),
            (".qlora/objects", "'.qlora/objects' (relative to pipelines/) is inside the cache directory, which only qlora-run may write. Choose a path outside it"),
            ("out/../data.txt", "'out/../data.txt' (relative to pipelines/) is an input of the pipeline (stages.base.data: 'data.txt'); publishing there would overwrite it. Choose another path"),
            ("notes", "cannot publish to 'notes' (relative to pipelines/): a directory with 1 entry is there that qlora-run did not publish (no .qlora-published marker). Remove it or choose another path"),
            ("report.txt", "cannot publish to 'report.txt' (relative to pipelines/): a file is there, which publishing would replace by a directory. Remove the file or choose another path"),
            ("report.txt/adapter", "cannot publish to 'report.txt/adapter' (relative to pipelines/): \(reportPath) is a file, so no directory can be created below it. Remove the file or choose another path"),
            ("link", "cannot publish to 'link' (relative to pipelines/): a symbolic link is there; qlora-run publishes only into a path it owns. Remove the link or choose another path"),
        ]
        for (destination, message) in expected {
            XCTAssertEqual(try issues(to: destination), ["stages.save.to: " + message], destination)
        }
        // A symlink to the data directory is the data directory.
        try manager.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: dir.appendingPathComponent("data/train.txt"))
        try manager.createSymbolicLink(atPath: dir.appendingPathComponent("alias").path, withDestinationPath: "data")
        let aliased = chain(to: "alias/adapter").replacingOccurrences(of: #""data": "data.txt""#, with: #""data": "data/train.txt""#)
        let value = try CanonicalJSONParser.parse(Data(aliased.utf8))
        let loaded = Pipeline.load(value: value, schema: TestStages.schema, file: dir.appendingPathComponent("pipeline.yaml"),
                                   displayName: "pipelines/pipeline.yaml", stageOrder: TestStages.chainOrder)
        XCTAssertEqual(loaded.issues.map(\.description), [])  // alias/adapter is beside the input, not over it
        let over = chain(to: "alias/train.txt").replacingOccurrences(of: #""data": "data.txt""#, with: #""data": "data/train.txt""#)
        let refused = Pipeline.load(value: try CanonicalJSONParser.parse(Data(over.utf8)), schema: TestStages.schema,
                                    file: dir.appendingPathComponent("pipeline.yaml"), displayName: "pipelines/pipeline.yaml", stageOrder: TestStages.chainOrder)
        XCTAssertEqual(refused.issues.map(\.description), ["stages.save.to: 'alias/train.txt' (relative to pipelines/) is an input of the pipeline (stages.base.data: 'data/train.txt'); publishing there would overwrite it. Choose another path"])
        // Nothing was touched.
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("notes/todo.txt"), encoding: .utf8), "mine")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("report.txt"), encoding: .utf8), "mine")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("data.txt"), encoding: .utf8), "data-v1\n")
    }

    func testOverlappingDestinationsAndACacheOverrideAreRefused() throws {
        let two = TestStages.chain.replacingOccurrences(of: #""to": "out/adapter"}"#,
                                                        with: #""to": "out/adapter"}, "again": {"kind": "save", "model": "adapt", "to": "out/adapter/copy"}"#)
        let value = try CanonicalJSONParser.parse(Data(two.utf8))
        let loaded = Pipeline.load(value: value, schema: TestStages.schema, file: dir.appendingPathComponent("pipeline.yaml"),
                                   displayName: "pipelines/pipeline.yaml", stageOrder: TestStages.chainOrder + ["again"])
        XCTAssertEqual(loaded.issues.map(\.description), [
            "stages.save.to: 'out/adapter' (relative to pipelines/) overlaps the destination of stages.again.to ('out/adapter/copy'); give each its own path",
            "stages.again.to: 'out/adapter/copy' (relative to pipelines/) overlaps the destination of stages.save.to ('out/adapter'); give each its own path",
        ])
        // `--cache out` moves the cache onto the destination.
        let chainValue = try CanonicalJSONParser.parse(Data(TestStages.chain.utf8))
        let moved = Pipeline.load(value: chainValue, schema: TestStages.schema, file: dir.appendingPathComponent("pipeline.yaml"),
                                  displayName: "pipelines/pipeline.yaml", stageOrder: TestStages.chainOrder,
                                  cacheOverride: dir.appendingPathComponent("out"))
        XCTAssertEqual(moved.issues.map(\.description), ["stages.save.to: 'out/adapter' (relative to pipelines/) is inside the cache directory, which only qlora-run may write. Choose a path outside it"])
        // A runner given that cache refuses before running anything.
        let pipeline = try TestStages.pipeline(TestStages.chain, in: dir, order: TestStages.chainOrder)
        let runner = PipelineRunner(pipeline: pipeline, registry: TestStages.registry(recorder), cacheDirectory: dir.appendingPathComponent("out/adapter/.."), log: { _ in })
        XCTAssertThrowsError(try runner.run()) {
            XCTAssertEqual($0 as? CacheError, .unsafeDestination(field: "stages.save.to", message:
                "'out/adapter' (relative to \(dir.standardizedFileURL.path)/) is inside the cache directory, which only qlora-run may write. Choose a path outside it"))
        }
        XCTAssertEqual(recorder.executed, [])
    }

    func testPublishesIntoEmptyDirectoryThenOverItsOwnMarker() throws {
        let out = dir.appendingPathComponent("out/adapter")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let first = try runner().run()
        let key = try XCTUnwrap(first.stages.last?.key)
        let marker = try XCTUnwrap(AtomicFile.readJSON(out.appendingPathComponent(".qlora-published")))
        XCTAssertEqual(CanonicalJSON.string(marker), #"{"key":"\#(key)","output_digest":"\#(first.stages[3].outputDigest)","pipeline":"chain","stage":"save","tool":"qlora-run"}"#)
        // A new configuration replaces the directory it published itself.
        let changed = TestStages.chain.replacingOccurrences(of: #""model": "base"}"#, with: #""model": "base", "suffix": "?"}"#)
        XCTAssertEqual(try issues(to: "out/adapter"), [])
        _ = try runner(changed).run()
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("out.txt"), encoding: .utf8), "hidata-v1\n?+lora")
        // A directory published by a version that wrote no marker is recognised by its content.
        try FileManager.default.removeItem(at: out.appendingPathComponent(".qlora-published"))
        let lines = LineSink()
        _ = try runner(changed, lines: lines).run()
        XCTAssertFalse(lines.all.contains { $0.contains("published") }, "\(lines.all)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(".qlora-published").path))
    }

    /// `to: FILE.bin` (x-output-file-suffix): the artifact's one file, renamed into place, with its
    /// marker beside it; a foreign file or a directory there is refused; its own file is replaced.
    func testAFileDestinationIsOneFileWithItsMarkerBeside() throws {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out"), withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: dir.appendingPathComponent("out/notes.bin"))
        XCTAssertEqual(try issues(to: "out/notes.bin"), ["stages.save.to: cannot publish to 'out/notes.bin' (relative to pipelines/): a file is there "
                                                          + "that qlora-run did not publish (no .notes.bin.qlora-published beside it). Remove it or choose another path"])
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out/folder.bin"), withIntermediateDirectories: true)
        XCTAssertEqual(try issues(to: "out/folder.bin"), ["stages.save.to: cannot publish to 'out/folder.bin' (relative to pipelines/): a directory is there, "
                                                           + "and this destination names a file. Remove the directory or choose another path"])
        let lines = LineSink()
        let file = dir.appendingPathComponent("out/adapter.bin")
        _ = try runner(chain(to: "out/adapter.bin"), lines: lines).run()
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "hidata-v1\n!+lora")
        let marker = try XCTUnwrap(try AtomicFile.readJSON(dir.appendingPathComponent("out/.adapter.bin.qlora-published")))
        XCTAssertEqual(marker["stage"]?.stringValue, "save")
        XCTAssertEqual(lines.all.filter { $0.contains("published") }.count, 1, "\(lines.all)")
        // Its digest is memoized as it is copied (mtime set back by the racy window): the next run's
        // check is a stat, not a hash of the file.
        var st = stat()
        XCTAssertEqual(stat(file.path, &st), 0)
        XCTAssertLessThanOrEqual(Int64(st.st_mtim.tv_sec), Int64(time(nil)) - ContentDigest.racyWindow / 1_000_000_000)
        let memos = (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String] ?? []).filter { $0.contains("digests/") }
        let fileDigest = SHA256.hex(try Data(contentsOf: file))
        XCTAssertTrue(memos.contains { (try? String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8)) == fileDigest }, "\(memos)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out").path).sorted(),
                       [".adapter.bin.qlora-published", "adapter.bin", "folder.bin", "notes.bin"], "no temp file left")
        // Same bytes: nothing copied. Another result: its own file replaced.
        let again = LineSink()
        _ = try runner(chain(to: "out/adapter.bin"), lines: again).run()
        XCTAssertEqual(again.all.filter { $0.contains("published") }, [])
        let changed = chain(to: "out/adapter.bin").replacingOccurrences(of: #""text": "hi""#, with: #""text": "ho""#)
        _ = try runner(changed).run()
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "hodata-v1\n!+lora")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("out/notes.bin"), encoding: .utf8), "mine")
    }

    func testKilledPublishIsRepairedOnTheNextRun() throws {
        _ = try runner().run()
        let outDir = dir.appendingPathComponent("out")
        // A kill between the two renames: the destination moved aside, the new copy not yet in place.
        XCTAssertEqual(rename(outDir.appendingPathComponent("adapter").path, outDir.appendingPathComponent(".adapter.old-999999999").path), 0)
        try FileManager.default.createDirectory(at: outDir.appendingPathComponent(".adapter.tmp-999999998"), withIntermediateDirectories: true)
        // A live process's leftovers (ours) are not touched.
        try FileManager.default.createDirectory(at: outDir.appendingPathComponent(".adapter.tmp-\(getpid())"), withIntermediateDirectories: true)
        let lines = LineSink()
        _ = try runner(lines: lines).run()
        let shown = outDir.standardizedFileURL.path
        XCTAssertEqual(lines.all.filter { $0.hasPrefix("note: ") }, [
            "note: save: restored \(shown)/adapter from an interrupted publish",
            "note: save: removed \(shown)/.adapter.tmp-999999998, left by an interrupted publish",
        ])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path).sorted(), [".adapter.tmp-\(getpid())", "adapter"])
        XCTAssertEqual(try String(contentsOf: outDir.appendingPathComponent("adapter/out.txt"), encoding: .utf8), "hidata-v1\n!+lora")
    }

    func testPublishFailuresNameTheStageAndPath() throws {
        let summary = try runner().run()
        let store = CacheStore(root: dir.appendingPathComponent(".qlora"))
        let record = try XCTUnwrap(try store.actionRecord(try XCTUnwrap(summary.stages.last?.key)))
        let publisher = Publisher(store: store, pipelineName: "chain")
        // The file system changed after the pipeline was validated: still refused, nothing touched.
        let foreign = dir.appendingPathComponent("theirs")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: foreign.appendingPathComponent("a.txt"))
        XCTAssertThrowsError(try publisher.publish(stage: "save", key: record.key, record: record, to: foreign)) {
            XCTAssertEqual($0.localizedDescription, "stage 'save': not publishing to \(foreign.path): a directory with 1 entry is there that qlora-run did not publish (no .qlora-published marker). Remove it or choose another path")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: foreign.path), ["a.txt"])
        let blocked = dir.appendingPathComponent("theirs/a.txt/adapter")
        XCTAssertThrowsError(try publisher.publish(stage: "save", key: record.key, record: record, to: blocked)) {
            XCTAssertEqual($0.localizedDescription, "stage 'save': not publishing to \(blocked.path): \(foreign.path)/a.txt is a file, so no directory can be created below it. Remove the file or choose another path")
        }
        // A system error (a name over NAME_MAX: ENAMETOOLONG, whoever runs the test), reported with the destination.
        let long = dir.appendingPathComponent(String(repeating: "n", count: 300))
        XCTAssertThrowsError(try publisher.publish(stage: "save", key: record.key, record: record, to: long)) {
            XCTAssertEqual($0 as? CacheError, .publishFailed(stage: "save", path: long.path, reason: "file name too long"))
            XCTAssertEqual($0.localizedDescription, "stage 'save': cannot write \(long.path): file name too long")
        }
        XCTAssertEqual(Publisher.reason(EACCES), "permission denied")
        XCTAssertEqual(Publisher.reason(ENOSPC), "no space left on device")
        if getuid() != 0 {  // root ignores permission bits
            let locked = dir.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
            chmod(locked.path, 0o555)
            defer { chmod(locked.path, 0o755) }
            XCTAssertThrowsError(try publisher.publish(stage: "save", key: record.key, record: record, to: locked.appendingPathComponent("x"))) {
                XCTAssertEqual($0.localizedDescription, "stage 'save': cannot write \(locked.path)/x: permission denied")
            }
        }
    }

    func testGarbageCollectionKeepsResumableWorkAndSurvivesAGarbageRecord() throws {
        let store = CacheStore(root: dir.appendingPathComponent(".qlora"))
        // An interrupted run: its record names the incomplete stage, whose work/ is kept.
        Interrupt.set(true)
        XCTAssertThrowsError(try runner().run())
        Interrupt.set(false)
        let runs = try FileManager.default.contentsOfDirectory(atPath: store.runs.path).sorted()
        XCTAssertEqual(runs.count, 1)
        let interrupted = try XCTUnwrap(RunRecord(json: try XCTUnwrap(AtomicFile.readJSON(store.runs.appendingPathComponent(runs[0])))))
        let key = try XCTUnwrap(interrupted.incomplete?.key)
        XCTAssertEqual(interrupted.incomplete?.stage, "base")
        try FileManager.default.createDirectory(at: store.workURL("abandoned"), withIntermediateDirectories: true)
        try Data("garbage".utf8).write(to: store.runs.appendingPathComponent("9999999999999-1.json"))
        let report = try store.gc(keepRuns: 1, dryRun: false)
        XCTAssertEqual(report.unreadableRuns, ["9999999999999-1.json"])
        XCTAssertEqual(report.removedWork, 1)
        XCTAssertEqual(report.removedRuns, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.work.path), [key])
        // A completed run: its stages are kept although a garbage record is newer.
        _ = try runner().run()
        let kept = try store.gc(keepRuns: 1, dryRun: false)
        XCTAssertEqual(kept.removedActions, [])
        XCTAssertEqual(kept.removedRuns, 1)
        XCTAssertEqual(try store.list().count, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.runs.appendingPathComponent("9999999999999-1.json").path))
    }
}

/// Issue 11 §3: the same number spelled differently is one configuration; plan reasons compare
/// with this pipeline's own previous run of a stage, not another pipeline's in a shared cache.
final class KeyCanonicalisationTests: XCTestCase {
    var dir: URL!
    let recorder = TestStages.Recorder()

    override func setUpWithError() throws { dir = try TestStages.makeDirectory() }
    override func tearDownWithError() throws { CacheStore.removeTree(dir) }

    /// The chain validated like a user's file (defaults and canonicalisation by the validator).
    func runner(_ json: String, lines: LineSink = LineSink()) throws -> PipelineRunner {
        let schema = try JSONSchema(TestStages.schema)
        let (value, failures) = schema.validate(try CanonicalJSONParser.parse(Data(json.utf8)))
        XCTAssertEqual(failures.count, 0, "\(failures)")
        let (pipeline, issues) = Pipeline.load(value: value, schema: TestStages.schema, file: dir.appendingPathComponent("pipeline.yaml"),
                                               stageOrder: TestStages.chainOrder)
        guard let pipeline else { throw CacheError.io("invalid: \(issues)") }
        return PipelineRunner(pipeline: pipeline, registry: TestStages.registry(recorder), log: { lines.append($0) })
    }

    func testIntegerAndFloatSpellingsOfANumberGiveOneKey() throws {
        func key(_ lr: String?) throws -> String {
            let fields = lr.map { #""model": "base", "lr": \#($0)}"# } ?? #""model": "base"}"#
            return try runner(TestStages.chain.replacingOccurrences(of: #""model": "base"}"#, with: fields)).run().stages[1].key
        }
        XCTAssertEqual(try key("1"), try key("1.0"))
        XCTAssertEqual(try key("0.0005"), try key(nil))  // the default, as written or left out
        XCTAssertNotEqual(try key("1"), try key("2"))
    }

    func testPlanReasonsComeFromThisPipelinesOwnHistory() throws {
        _ = try runner(TestStages.chain).run()
        // Another pipeline in the same cache, with a stage of the same name configured differently.
        let other = TestStages.chain.replacingOccurrences(of: #""name": "chain""#, with: #""name": "other""#)
            .replacingOccurrences(of: #""model": "base"}"#, with: #""model": "base", "suffix": "?"}"#)
        XCTAssertEqual(try runner(other).plan()[1].line, "[2/4] quantize: will run — new")
        _ = try runner(other).run()
        // The first pipeline's own previous run is still what its reasons compare with.
        let changed = TestStages.chain.replacingOccurrences(of: #""model": "base"}"#, with: #""model": "base", "suffix": "%"}"#)
        XCTAssertEqual(try runner(changed).plan()[1].line, "[2/4] quantize: will run — config: suffix \"!\" -> \"%\"")
    }
}
