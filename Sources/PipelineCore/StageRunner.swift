import Foundation

/// A stage plug-in. Writes its artifacts into `context.outputDirectory` (a fresh scratch dir).
public protocol StageRunner: Sendable {
    func run(_ context: StageContext) throws -> StageResult
}

public struct StageResult: Sendable {
    /// Headline values for the run summary (e.g. "final_loss": 1.23).
    public var summary: [String: JSONValue]
    /// Log lines worth reading again when the stage is served from the cache (evaluate's
    /// comparison and generations): kept in the action record and printed on a cached re-run.
    public var report: [String]
    public init(summary: [String: JSONValue] = [:], report: [String] = []) { self.summary = summary; self.report = report }
}

/// Thrown by a stage that noticed `isInterrupted` and stopped at a safe point.
public struct StageInterrupted: Error, LocalizedError {
    public init() {}
    public var errorDescription: String? { "interrupted" }
}

public struct StageContext: Sendable {
    public let stageName: String
    public let kind: String
    /// The stage's fields, defaults filled (references are still stage names).
    public let fields: JSONValue
    /// field name -> upstream artifact directory (read-only), for x-stage-ref fields.
    public let inputs: [String: URL]
    /// field name -> absolute external file/dir, for x-input-path fields.
    public let inputPaths: [String: URL]
    /// Write artifacts here; published only if run() returns normally.
    public let outputDirectory: URL
    /// Persistent per-stage-key scratch (training checkpoints); survives a crash, removed after publish.
    public let workDirectory: URL
    public let pipelineDirectory: URL
    public let seed: UInt64
    /// One line to the terminal and the stage log.
    public let log: @Sendable (String) -> Void
    /// One line to the stage log only: periodic progress lines while `progress` shows a live bar
    /// (the terminal gets the bar, the log keeps the record).
    public let record: @Sendable (String) -> Void
    /// The stage log's file in the cache (nil outside the executor).
    public let logFile: URL?

    /// A file beside the stage log (`logs/<key>.<name>`) for run facts that must not enter the
    /// artifact because they differ between runs (wall-clock timings): the artifact stays
    /// byte-identical, so its digest and everything downstream do too.
    public func sideFile(_ name: String) -> URL? {
        logFile.map { $0.deletingPathExtension().appendingPathExtension(name) }
    }
    /// True after SIGINT: stop at the next safe point and throw StageInterrupted.
    public let isInterrupted: @Sendable () -> Bool
    /// A live status line (redrawn in place on a terminal), or nil when the output is not a TTY.
    /// Never written to the stage log; stages fall back to `log` lines every so often.
    public let progress: (@Sendable (String) -> Void)?

    public init(stageName: String, kind: String, fields: JSONValue, inputs: [String: URL], inputPaths: [String: URL],
                outputDirectory: URL, workDirectory: URL, pipelineDirectory: URL, seed: UInt64,
                log: @escaping @Sendable (String) -> Void, isInterrupted: @escaping @Sendable () -> Bool,
                progress: (@Sendable (String) -> Void)? = nil, record: (@Sendable (String) -> Void)? = nil,
                logFile: URL? = nil) {
        self.stageName = stageName; self.kind = kind; self.fields = fields; self.inputs = inputs
        self.inputPaths = inputPaths; self.outputDirectory = outputDirectory; self.workDirectory = workDirectory
        self.pipelineDirectory = pipelineDirectory; self.seed = seed; self.log = log; self.isInterrupted = isInterrupted
        self.progress = progress
        self.record = record ?? log
        self.logFile = logFile
    }
}

/// Stage kind -> runner.
public struct StageRegistry: Sendable {
    private var runners: [String: any StageRunner] = [:]
    public init() {}
    public mutating func register(kind: String, runner: any StageRunner) { runners[kind] = runner }
    public func runner(for kind: String) -> (any StageRunner)? { runners[kind] }
    public var kinds: [String] { runners.keys.sorted() }
}
