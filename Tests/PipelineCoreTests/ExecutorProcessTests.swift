import XCTest
@testable import PipelineCore
#if canImport(Glibc)
import Glibc
#endif

/// Crash safety and cross-process locking, tested with real processes: the test bundle
/// re-launches itself (`CommandLine.arguments[0]`, which XCTest on Linux runs directly) with
/// only `testChildProcessEntry` selected; that test acts only when QLORA_TEST_CHILD_DIR is set.
final class ExecutorProcessTests: XCTestCase {
    static let pipelineJSON = #"""
    {"version": 1, "name": "proc", "stages": {
      "base": {"kind": "source", "text": "hi"},
      "hang": {"kind": "hang", "model": "base"},
      "after": {"kind": "concat", "model": "hang"}}}
    """#
    static let order = ["base", "hang", "after"]

    func testChildProcessEntry() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment["QLORA_TEST_CHILD_DIR"] else {
            throw XCTSkip("entry point for subprocesses of ExecutorProcessTests; does nothing on its own")
        }
        let dir = URL(fileURLWithPath: path)
        let pipeline = try TestStages.pipeline(Self.pipelineJSON, in: dir, order: Self.order)
        let registry = TestStages.registry(TestStages.Recorder(), counterFile: environment["QLORA_TEST_COUNTER"].map(URL.init(fileURLWithPath:)))
        _ = try PipelineRunner(pipeline: pipeline, registry: registry, log: { _ in }).run()
    }

    func launchChild(_ dir: URL, environment extra: [String: String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["PipelineCoreTests.ExecutorProcessTests/testChildProcessEntry"]
        var environment = ProcessInfo.processInfo.environment
        environment["QLORA_TEST_CHILD_DIR"] = dir.path
        environment.merge(extra) { $1 }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Polls for a file (no timing assertion: the limit only stops a broken test from hanging).
    func waitForFile(_ url: URL, process: Process) -> Bool {
        for _ in 0..<6000 {
            if FileManager.default.fileExists(atPath: url.path) { return true }
            if !process.isRunning { return FileManager.default.fileExists(atPath: url.path) }
            usleep(10_000)
        }
        return false
    }

    func testSIGKILLMidStageLeavesNoRecordAndOnlyThatStageReRuns() throws {
        let dir = try TestStages.makeDirectory()
        defer { CacheStore.removeTree(dir) }
        let signals = dir.appendingPathComponent("signals")
        try FileManager.default.createDirectory(at: signals, withIntermediateDirectories: true)
        let child = try launchChild(dir, environment: ["QLORA_TEST_HANG": signals.path])
        let started = signals.appendingPathComponent("started")
        XCTAssertTrue(waitForFile(started, process: child), "child never reached the hanging stage")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)

        let recorder = TestStages.Recorder()
        let pipeline = try TestStages.pipeline(Self.pipelineJSON, in: dir, order: Self.order)
        let runner = PipelineRunner(pipeline: pipeline, registry: TestStages.registry(recorder), log: { _ in })
        let plan = try runner.plan()
        XCTAssertEqual(plan.map(\.line), ["[1/3] base: cached", "[2/3] hang: will run — new", "[3/3] after: will run — upstream: hang will run"])
        XCTAssertNil(try runner.store.actionRecord(try XCTUnwrap(plan[1].key)))
        // The killed stage's work directory survives (training would resume from it); its scratch is left over.
        let workPath = try String(contentsOf: started, encoding: .utf8)
        XCTAssertTrue(FileManager.default.fileExists(atPath: workPath))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: runner.store.scratch.path).count, 1)

        let summary = try runner.run()
        XCTAssertEqual(recorder.executed, ["hang", "after"])
        XCTAssertEqual(summary.stages.map(\.cached), [true, false, false])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: runner.store.scratch.path), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: workPath))  // removed after publish
        XCTAssertEqual(try String(contentsOf: summary.stages[2].outputDirectory.appendingPathComponent("out.txt"), encoding: .utf8), "hi!")
    }

    func testTwoConcurrentProcessesRunEachStageOnce() throws {
        let dir = try TestStages.makeDirectory()
        defer { CacheStore.removeTree(dir) }
        let counter = dir.appendingPathComponent("executions.txt")
        XCTAssertTrue(FileManager.default.createFile(atPath: counter.path, contents: nil))
        let children = try (0..<2).map { _ in try launchChild(dir, environment: ["QLORA_TEST_COUNTER": counter.path]) }
        for child in children { child.waitUntilExit() }
        XCTAssertEqual(children.map(\.terminationStatus), [0, 0])
        let lines = try String(contentsOf: counter, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ")[0] }
        XCTAssertEqual(lines.sorted(), ["after", "base", "hang"])
        let store = CacheStore(root: dir.appendingPathComponent(".qlora"))
        XCTAssertEqual(try store.list().map(\.stage), ["after", "base", "hang"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.runs.path).count, 2)
    }
}
