import XCTest
@testable import PipelineCore

final class ExecutorTests: XCTestCase {
    var dir: URL!
    let recorder = TestStages.Recorder()

    override func setUpWithError() throws { dir = try TestStages.makeDirectory() }
    override func tearDownWithError() throws { CacheStore.removeTree(dir) }

    func runner(_ json: String = TestStages.chain, order: [String] = TestStages.chainOrder, options: RunOptions = RunOptions(),
                lines: LineSink? = nil) throws -> PipelineRunner {
        let pipeline = try TestStages.pipeline(json, in: dir, order: order)
        let sink = lines ?? LineSink()
        return PipelineRunner(pipeline: pipeline, registry: TestStages.registry(recorder), options: options, log: { sink.append($0) })
    }

    func testFirstRunExecutesAllThenSecondRunNothing() throws {
        let lines = LineSink()
        let first = try runner(lines: lines).run()
        XCTAssertEqual(recorder.executed, ["base", "quantize", "adapt", "save"])
        XCTAssertEqual(first.stages.map(\.cached), [false, false, false, false])
        XCTAssertTrue(lines.all.contains("[2/4] quantize: running — new"), "\(lines.all)")
        XCTAssertTrue(lines.all.contains("  base: writing 10 characters"), "\(lines.all)")
        // Outputs: materialised read-only artifacts and the published copy.
        let saved = first.stages[3]
        XCTAssertEqual(try String(contentsOf: saved.outputDirectory.appendingPathComponent("out.txt"), encoding: .utf8), "hidata-v1\n!+lora")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("out/adapter/out.txt"), encoding: .utf8), "hidata-v1\n!+lora")
        XCTAssertEqual(first.stages[0].summary["length"], .integer(10))

        recorder.reset()
        let secondLines = LineSink()
        let second = try runner(lines: secondLines).run()
        XCTAssertEqual(recorder.executed, [])
        XCTAssertEqual(second.stages.map(\.cached), [true, true, true, true])
        XCTAssertEqual(second.stages[0].summary["length"], .integer(10))
        XCTAssertTrue(secondLines.all.first?.hasPrefix("[1/4] base: cached (") ?? false, "\(secondLines.all)")
        XCTAssertEqual(try runner().plan().map(\.line), ["[1/4] base: cached", "[2/4] quantize: cached", "[3/4] adapt: cached", "[4/4] save: cached"])

        // A deleted published destination is re-published on a hit.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("out/adapter"))
        _ = try runner().run()
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("out/adapter/out.txt"), encoding: .utf8), "hidata-v1\n!+lora")
        XCTAssertEqual(recorder.executed, [])
    }

    func testConfigChangeReRunsWithReason() throws {
        _ = try runner().run()
        recorder.reset()
        let changed = TestStages.chain.replacingOccurrences(of: #""model": "base"}"#, with: #""model": "base", "lr": 0.0001, "suffix": "?"}"#)
        let plan = try runner(changed).plan()
        XCTAssertEqual(plan.map(\.line), [
            "[1/4] base: cached",
            "[2/4] quantize: will run — config: lr 0.0005 -> 0.0001, suffix \"!\" -> \"?\"",
            "[3/4] adapt: will run — upstream: quantize will run",
            "[4/4] save: will run — upstream: adapt will run",
        ])
        let lines = LineSink()
        _ = try runner(changed, lines: lines).run()
        XCTAssertEqual(recorder.executed, ["quantize", "adapt", "save"])
        XCTAssertTrue(lines.all.contains("[2/4] quantize: running — config: lr 0.0005 -> 0.0001, suffix \"!\" -> \"?\""), "\(lines.all)")
        XCTAssertTrue(lines.all.contains("[3/4] adapt: running — upstream: quantize changed"), "\(lines.all)")
    }

    func testInputContentChangeReRuns() throws {
        _ = try runner().run()
        recorder.reset()
        try Data("data-v2\n".utf8).write(to: dir.appendingPathComponent("data.txt"))
        XCTAssertEqual(try runner().plan().first?.line, "[1/4] base: will run — input: data changed")
        _ = try runner().run()
        XCTAssertEqual(recorder.executed, ["base", "quantize", "adapt", "save"])
    }

    func testIdenticalUpstreamOutputKeepsDownstreamCached() throws {
        _ = try runner().run()
        recorder.reset()
        let changed = TestStages.chain.replacingOccurrences(of: #""text": "hi""#, with: #""text": "hi", "comment": "same bytes""#)
        XCTAssertEqual(try runner(changed).plan().map(\.line)[0...1], [
            "[1/4] base: will run — config: comment \"\" -> \"same bytes\"", "[2/4] quantize: will run — upstream: base will run"])
        let summary = try runner(changed).run()
        XCTAssertEqual(recorder.executed, ["base"])
        XCTAssertEqual(summary.stages.map(\.cached), [false, true, true, true])
    }

    func testDefaultsFilledGiveSameKey() throws {
        let explicit = TestStages.chain.replacingOccurrences(of: #""model": "base"}"#, with: #""model": "base", "suffix": "!", "lr": 0.0005}"#)
        XCTAssertEqual(try runner().plan().map(\.key), try runner(explicit).plan().map(\.key))
        // Output destinations and input PATHS are not part of keys; input CONTENT is.
        _ = try runner().run()
        try FileManager.default.copyItem(at: dir.appendingPathComponent("data.txt"), to: dir.appendingPathComponent("copy.txt"))
        let moved = TestStages.chain.replacingOccurrences(of: "out/adapter", with: "elsewhere/adapter")
            .replacingOccurrences(of: "data.txt", with: "copy.txt")
        XCTAssertEqual(try runner(moved).plan().map(\.status), [.cached, .cached, .cached, .cached])
    }

    func testPinnedGoldenKeys() throws {
        let pipeline = try TestStages.pipeline(TestStages.chain, in: dir, order: TestStages.chainOrder)
        let base = try XCTUnwrap(pipeline.stage(named: "base"))
        let material = StageKey.material(for: base, seed: 0, upstreamDigests: [:], inputDigests: ["data": SHA256.hex(Data("data-v1\n".utf8))])
        XCTAssertEqual(CanonicalJSON.string(material),
            #"{"fields":{"comment":"","data":"7c7218e1feeb42fc02a0408bb815d9d2ab038657313349d775e585389e026b6f","kind":"source","options":{"mode":"plain"},"repeat":1,"text":"hi"},"format":"qlora-run/key/v1","implementation_version":1,"kind":"source","seed":0}"#)
        XCTAssertEqual(StageKey.key(material), "5e57e1a0aa63b55e39d81cee9b045997dfd6f5c37d13306fdfc85051844c4dd8")
        XCTAssertEqual(try runner().plan().map(\.key), [StageKey.key(material), nil, nil, nil])
        // After a run every key is known; downstream keys include upstream OUTPUT digests.
        let summary = try runner().run()
        XCTAssertEqual(summary.stages[0].outputDigest,
                       ContentDigest.manifestDigest([.init(path: "out.txt", size: 10, digest: SHA256.hex(Data("hidata-v1\n".utf8)))]))
        XCTAssertEqual(summary.stages.map(\.key), ["5e57e1a0aa63b55e39d81cee9b045997dfd6f5c37d13306fdfc85051844c4dd8", "07d48dba4b4e5e3011886cdd03a4a477b12ce8cb15b9421df02015f44ae386d7",
                       "352f5b3e924fae89eb27d1fda92abed0fbf93d4be0306c9b19553351c55ac348", "11f4ec67ef7b6e47fe191bdca91a3440fbdd4771288a6e7381579eb5d5dd0266"])
    }

    func testThrowingStageLeavesNoRecordAndOnlyItReRuns() throws {
        recorder.setFailing(["adapt"])
        XCTAssertThrowsError(try runner().run()) { error in
            XCTAssertEqual(error as? CacheError, .stageFailed(stage: "adapt", message: "boom"))
        }
        XCTAssertEqual(recorder.executed, ["base", "quantize", "adapt"])
        let plan = try runner().plan()
        XCTAssertEqual(plan.map(\.status), [.cached, .cached, .willRun, .willRun])
        XCTAssertEqual(plan[2].line, "[3/4] adapt: will run — new")
        let store = CacheStore(root: dir.appendingPathComponent(".qlora"))
        XCTAssertNil(try store.actionRecord(try XCTUnwrap(plan[2].key)))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.scratch.path), [])
        recorder.reset(); recorder.setFailing([])
        _ = try runner().run()
        XCTAssertEqual(recorder.executed, ["adapt", "save"])
    }

    func testInterruptedStagePublishesNothingAndKeepsWorkDirectory() throws {
        Interrupt.set(true)
        defer { Interrupt.set(false) }
        XCTAssertThrowsError(try runner().run()) { XCTAssertEqual($0 as? CacheError, .interrupted(stage: "base")) }
        Interrupt.set(false)
        let plan = try runner().plan()
        XCTAssertEqual(plan[0].line, "[1/4] base: will run — new")
        let store = CacheStore(root: dir.appendingPathComponent(".qlora"))
        let work = store.workURL(try XCTUnwrap(plan[0].key))
        XCTAssertEqual(try String(contentsOf: work.appendingPathComponent("checkpoint"), encoding: .utf8), "step 1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/adapter").path))
        _ = try runner().run()
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.path))
    }

    func testPublishedDestinationRewrittenWhenItDiffers() throws {
        _ = try runner().run()
        let published = dir.appendingPathComponent("out/adapter/out.txt")
        try Data("edited by hand".utf8).write(to: published)
        try Data("stray".utf8).write(to: dir.appendingPathComponent("out/adapter/extra.txt"))
        recorder.reset()
        let lines = LineSink()
        _ = try runner(lines: lines).run()
        XCTAssertEqual(recorder.executed, [])
        XCTAssertEqual(try String(contentsOf: published, encoding: .utf8), "hidata-v1\n!+lora")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out/adapter").path).sorted(),
                       [".qlora-published", "out.txt"])
        XCTAssertTrue(lines.all.contains("  save: published \(dir.appendingPathComponent("out/adapter").standardizedFileURL.path)"), "\(lines.all)")
    }

    func testUnregisteredKindIsAnError() throws {
        let pipeline = try TestStages.pipeline(TestStages.chain, in: dir, order: TestStages.chainOrder)
        let runner = PipelineRunner(pipeline: pipeline, registry: StageRegistry(), log: { _ in })
        XCTAssertThrowsError(try runner.run()) {
            XCTAssertEqual(($0 as? LocalizedError)?.errorDescription, "stage 'base': no runner registered for kind 'source'")
        }
    }

    func testForceAndOnly() throws {
        _ = try runner().run()
        recorder.reset()
        let forced = try runner(options: RunOptions(force: ["adapt"])).plan()
        XCTAssertEqual(forced.map(\.line).suffix(2), ["[3/4] adapt: will run — forced", "[4/4] save: will run — upstream: adapt will run"])
        _ = try runner(options: RunOptions(force: ["quantize"])).run()
        XCTAssertEqual(recorder.executed, ["quantize", "adapt", "save"])
        recorder.reset()
        let only = try runner(options: RunOptions(force: ["base"], only: ["quantize"])).run()
        XCTAssertEqual(only.stages.map(\.name), ["base", "quantize"])
        XCTAssertEqual(recorder.executed, ["base", "quantize"])
        XCTAssertThrowsError(try runner(options: RunOptions(only: ["nope"])).plan()) {
            XCTAssertEqual($0 as? CacheError, .unknownStage("nope"))
        }
    }
}

/// Collects log lines from the executor.
final class LineSink: @unchecked Sendable {  // all state under `lock`
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
