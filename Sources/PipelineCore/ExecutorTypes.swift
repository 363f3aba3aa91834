import Foundation

public struct RunOptions: Sendable {
    /// `--force STAGE`: these stages and everything downstream re-run.
    public var force: [String]
    /// `--only STAGE`: run these stages and their upstream only.
    public var only: [String]
    /// Recorded in run records.
    public var toolVersion: String
    /// Written into the run record beside its stages (RunRecord.contextKeys): what the run was.
    public var context: [String: JSONValue]
    /// Key fields a stage kind gets beside its own, by kind: facts of the run that change a stage's
    /// result without being in the file (the rank count of a data-parallel `train`). They are part
    /// of the key, so a re-run with another value re-runs the stage and says why.
    public var extraKeyFields: [String: [String: JSONValue]] = [:]
    /// False: never write x-output-path destinations (the ranks after the first of an MPI job).
    public var publishes = true
    /// Stage kinds that several processes run together (data-parallel `train`): each process asks
    /// `agreeToRun` whether any of them must run the stage, and then all do, even one whose own cache
    /// holds it; otherwise one would wait forever for partners that took the cached result.
    public var collectiveKinds: Set<String> = []
    public var agreeToRun: (@Sendable (Bool) throws -> Bool)? = nil

    public init(force: [String] = [], only: [String] = [], toolVersion: String = "dev", context: [String: JSONValue] = [:]) {
        self.force = force; self.only = only; self.toolVersion = toolVersion; self.context = context
    }
}

/// The decision for one stage, shared by `plan` and `run`.
public struct PlannedStage: Sendable, Equatable {
    public enum Status: String, Sendable { case cached, willRun = "will run" }
    public var name: String
    public var kind: String
    public var index: Int          // 1-based position in execution order
    public var total: Int
    public var status: Status
    /// `new`, `forced`, `config: lr 0.0005 -> 0.0001`, `input: data changed`,
    /// `upstream: quantize will run`, `implementation changed`, `cache object missing/corrupt`.
    public var reasons: [String]
    /// nil while an upstream stage still has to run (its output digest is unknown).
    public var key: String?

    /// `[3/5] train: will run — config: lr 0.0005 -> 0.0001`
    public var line: String {
        let head = "[\(index)/\(total)] \(name): \(status.rawValue)"
        return reasons.isEmpty ? head : head + " — " + reasons.joined(separator: "; ")
    }
}

/// What happened to one stage in a run.
public struct StageOutcome: Sendable {
    public var name: String
    public var kind: String
    public var cached: Bool
    public var seconds: Double
    public var key: String
    public var outputDigest: String
    /// Read-only materialised artifact directory inside the cache.
    public var outputDirectory: URL
    /// x-output-path destinations written (or verified up to date).
    public var published: [URL]
    public var summary: [String: JSONValue]
    public var reasons: [String]
}

public struct RunSummary: Sendable {
    public var stages: [StageOutcome]
    public var runRecord: URL
    public var executedCount: Int { stages.filter { !$0.cached }.count }
}

/// Thread-safe append-only log file for one stage.
final class StageLogFile: @unchecked Sendable {  // all access under `lock`
    private let lock = NSLock()
    private let handle: FileHandle?

    init(url: URL) {
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
        handle = try? FileHandle(forWritingTo: url)
        _ = try? handle?.seekToEnd()
    }

    func write(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        try? handle?.write(contentsOf: Data((line + "\n").utf8))
    }

    deinit { try? handle?.close() }
}
