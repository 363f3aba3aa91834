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

    /// One section of an evaluate stage's metrics.json ("adapted": the model it evaluated; "base" with
    /// compare_base), found through the run's summary row like `artifact(of:in:directory:)`.
    static func evaluation(of stage: String, in stdout: String, directory: URL = Reference.projectRoot, section: String = "adapted") throws -> [String: Any] {
        let file = try artifact(of: stage, in: stdout, directory: directory).appendingPathComponent("metrics.json")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any], file.path)
        return try XCTUnwrap(object[section] as? [String: Any], "\(object)")
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
                    environment extra: [String: String] = [:], launcher: [String] = [], killingTree: Bool = false) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("qlora-run is not built at \(binary.path); run `swift build` first")
        }
        let process = Process()
        // `launcher`: a command that starts the binary, e.g. `mpirun -np 2` (its path first).
        process.executableURL = launcher.first.map { URL(fileURLWithPath: $0) } ?? binary
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [binary.path] + arguments
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
            guard collected.append(h.availableData, condition: condition) else { return }
            if killingTree { ProcessTree.kill(process.processIdentifier, signal: signal) } else { kill(process.processIdentifier, signal) }
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

/// A process and all its descendants, from /proc (an MPI launcher's ranks sit in their own process
/// groups, so a group kill would miss them).
enum ProcessTree {
    static func descendants(of root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // `pid (comm) state ppid ...`: comm may hold spaces, so fields are read after the last ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { children[parent, default: []].append(pid) }
        }
        var found: [pid_t] = [], queue = [root]
        while let next = queue.popLast() {
            for child in children[next] ?? [] { found.append(child); queue.append(child) }
        }
        return found
    }

    /// Signals the descendants, then the process itself: with SIGKILL, the whole job at once.
    static func kill(_ root: pid_t, signal: Int32) {
        for pid in descendants(of: root) { Glibc.kill(pid, signal) }
        Glibc.kill(root, signal)
    }
}
