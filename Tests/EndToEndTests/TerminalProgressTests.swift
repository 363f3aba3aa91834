import Foundation
import XCTest
import TestSupport

/// On a terminal, training shows a live bar and its `log_every` lines go to the stage log only;
/// through a pipe (every other CLI test) the lines are printed. The terminal is a pseudo-terminal
/// from util-linux `script`.
final class TerminalProgressTests: XCTestCase {
    func testTerminalShowsTheBarAndTheStageLogKeepsTheStepLines() throws {
        let script = URL(fileURLWithPath: "/usr/bin/script")
        guard FileManager.default.isExecutableFile(atPath: script.path) else { throw XCTSkip("util-linux `script` is not installed") }
        guard FileManager.default.isExecutableFile(atPath: CLI.binary.path) else { throw XCTSkip("qlora-run is not built at \(CLI.binary.path)") }
        let cache = try makeTemporaryDirectory("qlora-e2e-tty"), out = try makeTemporaryDirectory("qlora-e2e-tty-out")
        defer { try? FileManager.default.removeItem(at: cache); try? FileManager.default.removeItem(at: out) }
        let command = [CLI.binary.path, "run", "pipelines/toy.yaml", "--cache", cache.path, "--only", "save",
                       "--set", "stages.save.to=\(out.path)/adapter", "--set", "stages.train.max_steps=3", "--set", "stages.train.log_every=1"]
            .map { "'\($0)'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = script
        process.arguments = ["-qec", command, "/dev/null"]
        process.currentDirectoryURL = Reference.projectRoot
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let terminal = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, terminal)

        XCTAssertTrue(terminal.contains("\r  train: [####################] 3/3 · epoch 1 · loss "), terminal)
        XCTAssertFalse(terminal.contains("  train: step 1/3 · "), "step lines belong to the stage log on a terminal:\n\(terminal)")
        let logs = try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("logs").path)
            .map { try String(contentsOf: cache.appendingPathComponent("logs/\($0)"), encoding: .utf8) }.joined()
        for step in 1...3 { XCTAssertTrue(logs.contains("step \(step)/3 · epoch 1 · loss "), logs) }
        XCTAssertFalse(logs.contains("[####"), "the bar never reaches the stage log")
    }
}
