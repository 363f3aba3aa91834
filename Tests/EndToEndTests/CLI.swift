import Foundation
import XCTest
import TestSupport

/// Runs the built `qlora-run` binary (next to the test bundle's build products) as a subprocess.
enum CLI {
    #if DEBUG
    static let configuration = "debug"
    #else
    static let configuration = "release"
    #endif

    static var binary: URL { Reference.projectRoot.appendingPathComponent(".build/\(configuration)/qlora-run") }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// A temporary directory holding copies of pipelines/ and toydata/, to run the toy in (its
    /// default cache and out/ then land there).
    static func projectCopy(_ name: String) throws -> URL {
        let dir = try makeTemporaryDirectory(name)
        for folder in ["pipelines", "toydata"] {
            try FileManager.default.copyItem(at: Reference.projectRoot.appendingPathComponent(folder), to: dir.appendingPathComponent(folder))
        }
        return dir
    }

    /// The artifact directory of `stage` from a run's summary row `  NAME  ran  0.12s  DIR/<12 hex>…`
    /// (DIR relative to `directory`, where the run was): the one artifact whose digest starts so.
    static func artifact(of stage: String, in stdout: String, directory: URL = Reference.projectRoot) throws -> URL {
        let row = try XCTUnwrap(stdout.split(separator: "\n").first { $0.hasPrefix("  \(stage) ") && $0.hasSuffix("…") },
                                "no summary row for \(stage) in:\n\(stdout)")
        let shown = String(try XCTUnwrap(row.components(separatedBy: "  ").last).dropLast())
        let url = shown.hasPrefix("/") ? URL(fileURLWithPath: shown) : directory.appendingPathComponent(shown)
        let parent = url.deletingLastPathComponent(), prefix = url.lastPathComponent
        XCTAssertEqual(prefix.count, 12, String(row))
        let matches = try FileManager.default.contentsOfDirectory(atPath: parent.path).filter { $0.hasPrefix(prefix) }
        XCTAssertEqual(matches.count, 1, "\(matches)")
        return parent.appendingPathComponent(try XCTUnwrap(matches.first))
    }

    /// Runs `qlora-run arguments` in `directory` (default: the project root) with NO_COLOR set.
    /// With `interruptAfter`, sends SIGINT (like Ctrl-C) once that text appears on stdout.
    @discardableResult
    static func run(_ arguments: [String], in directory: URL = Reference.projectRoot,
                    interruptAfter marker: String? = nil, input: String? = nil, environment extra: [String: String] = [:]) throws -> Result {
        var condition: (@Sendable (String) -> Bool)? = nil
        if let marker { condition = { (text: String) -> Bool in text.contains(marker) } }
        return try run(arguments, in: directory, signal: SIGINT, when: condition, input: input, environment: extra)
    }

    /// Runs `qlora-run arguments` and sends `signal` once, the first time `condition` holds; `condition`
    /// sees the stdout collected so far and is checked after every chunk of output (the training log
    /// prints a line per step with `log_every: 1`, so it is checked at least once per step).
    static func run(_ arguments: [String], in directory: URL = Reference.projectRoot,
                    signal: Int32, when condition: (@Sendable (String) -> Bool)?, input: String? = nil,
                    environment extra: [String: String] = [:]) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("qlora-run is not built at \(binary.path); run `swift build` first")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out; process.standardError = err
        let stdin = Pipe()
        process.standardInput = stdin
        let collected = OutputCollector()
        out.fileHandleForReading.readabilityHandler = { h in
            if collected.append(h.availableData, condition: condition) { kill(process.processIdentifier, signal) }
        }
        try process.run()
        stdin.fileHandleForWriting.write(Data((input ?? "").utf8))
        try? stdin.fileHandleForWriting.close()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        _ = collected.append(out.fileHandleForReading.readDataToEndOfFile(), condition: nil)
        return Result(status: process.terminationStatus, stdout: collected.text, stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Thread-safe stdout accumulator; `append` returns true once, when `condition` first holds.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var fired = false
    func append(_ chunk: Data, condition: ((String) -> Bool)?) -> Bool {
        lock.lock(); defer { lock.unlock() }
        data.append(chunk)
        guard let condition, !fired, condition(String(decoding: data, as: UTF8.self)) else { return false }
        fired = true
        return true
    }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
