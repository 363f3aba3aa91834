import Foundation

/// A parsed qlora-run command line (ArgumentParser.parse): the command and its options. The
/// grammar is declared once, in CommandTable.swift; Commands.swift dispatches on this.
public struct Invocation: Equatable, Sendable {
    public enum Command: Equatable, Sendable {
        case run(file: String)
        case plan(file: String)
        case validate(file: String, schema: String?)
        case help(kind: String?)
        case cache(CacheAction, file: String?)
        case tokenize(directory: String, decode: Bool)
        case chatRender(ChatRenderOptions)
        case generate(GenerateOptions)
        case bench(quick: Bool)
        case runs(RunsOptions)
        case reproduce(id: String)
        case version
    }
    /// `runs [FILE]`, `runs diff A B`, `runs plot [FILE] -o SVG`, `runs show ID`.
    public struct RunsOptions: Equatable, Sendable {
        public enum Action: String, Equatable, Sendable { case list, diff, plot, show }
        public var action: Action = .list
        public var file: String?
        public var ids: [String] = []
        public var csv = false
        public var sort: String?
        public var last: Int?
        public var output: String?
    }
    public enum CacheAction: String, Equatable, Sendable { case ls, verify, gc }

    /// `chat render`: one JSON object on stdin (messages, tools, extra template variables) -> the rendering.
    public struct ChatRenderOptions: Equatable, Sendable {
        public var directory: String?
        public var template: String?
        public var addGenerationPrompt = false
        public var bosToken: String?
        public var eosToken: String?
        public var now: String?
        public init() {}
    }

    public struct GenerateOptions: Equatable, Sendable {
        public var model: String = ""
        /// `generate PIPELINE.yaml [--stage NAME]`: the model a (cached) stage produced.
        public var pipeline: String?
        public var stage: String?
        public var adapter: String?
        public var prompt: String = ""
        public var chat = false
        public var maxNewTokens = 64
        public var temperature = 0.0     // 0: greedy
        public var topK = 0              // 0: off
        public var topP = 1.0            // 1: off
        public var seed: UInt64 = 0
        public init() {}
    }

    public var command: Command
    public var sets: [String] = []       // --set k=v, in order
    public var force: [String] = []      // --force STAGE (repeatable)
    public var only: [String] = []    // --only STAGE (repeatable)
    public var cacheDirectory: String?
    public var dryRun = false            // cache gc
    public var keep = 5                  // cache gc: keep what the last N runs referenced
    public var json = false              // run: the run as one JSON document on stdout, the log on stderr
    public var sweeps: [String] = []     // --sweep PATH=V1,V2 (repeatable)

    public init(command: Command) { self.command = command }
}
