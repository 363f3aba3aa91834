import Foundation

/// The qlora-run command line, parsed by hand (no packages). The CLI target dispatches on
/// `Invocation` (Commands.swift); CLITests test the parser.
///
/// Grammar:
///   qlora-run [run] FILE | plan FILE | validate FILE [--schema S.json] | help [KIND]
///           | cache ls|verify|gc [FILE] [--dry-run] [--keep N] | tokenize DIR [--decode]
///           | chat render (DIR | --template FILE) [--add-generation-prompt] [--bos-token S] [--eos-token S] [--now ISO-8601]
///           | generate --model DIR [--adapter DIR] --prompt TEXT [--chat] [--max-new-tokens N]
///                      [--temperature T] [--top-k K] [--top-p P] [--seed S]
///           | bench [--quick] | --version | --help
///   pipeline options (run, plan, validate, cache): --set k=v (repeatable), --force STAGE, --only STAGE, --cache DIR
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

public enum ArgumentError: LocalizedError, Equatable {
    case unknownCommand(String, suggestion: String?)
    case unknownOption(String, suggestion: String?)
    case missingValue(option: String)
    case invalidValue(option: String, value: String, expected: String)
    case missingArgument(command: String, what: String)
    case unexpectedArgument(command: String, argument: String)
    case optionNotAllowed(option: String, command: String)

    public var errorDescription: String? {
        switch self {
        case .unknownCommand(let c, let s):
            return "unknown command '\(c)'" + (s.map { "; did you mean '\($0)'?" } ?? "; run 'qlora-run --help' for the list")
        case .unknownOption(let o, let s):
            return "unknown option '\(o)'" + (s.map { "; did you mean '\($0)'?" } ?? "; run 'qlora-run --help' for the list")
        case .missingValue(let o):
            return "option '\(o)' needs a value"
        case .invalidValue(let o, let v, let e):
            return "option '\(o)': expected \(e), found '\(v)'"
        case .missingArgument(let c, let w):
            return "'\(c)' needs \(w); run 'qlora-run --help' for usage"
        case .unexpectedArgument(let c, let a):
            return "'\(c)' takes no argument '\(a)'"
        case .optionNotAllowed(let o, let c):
            return "option '\(o)' does not apply to '\(c)'"
        }
    }
}

public enum ArgumentParser {
    public static let commands = ["run", "plan", "validate", "help", "cache", "tokenize", "chat", "generate", "bench", "runs", "reproduce"]
    static let valueOptions = ["--set", "--sweep", "--sort", "--last", "-o", "--force", "--only", "--cache", "--schema", "--keep", "--model", "--adapter",
                               "--prompt", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed",
                               "--template", "--bos-token", "--eos-token", "--now", "--stage"]
    static let flagOptions = ["--json", "--csv", "--decode", "--dry-run", "--quick", "--chat", "--add-generation-prompt", "--help", "-h", "--version"]

    /// Parses the arguments after the program name.
    public static func parse(_ arguments: [String]) throws(ArgumentError) -> Invocation {
        var positionals: [String] = []
        var values: [(String, String)] = []
        var flags: Set<String> = []
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" {
                positionals.append(argument); continue
            }
            if argument == "--" { onlyPositionals = true; continue }
            // --option=value
            var name = argument
            var inlineValue: String?
            if let eq = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                name = String(argument[..<eq]); inlineValue = String(argument[argument.index(after: eq)...])
            }
            if valueOptions.contains(name) {
                if let v = inlineValue { values.append((name, v)); continue }
                guard index < arguments.count else { throw .missingValue(option: name) }
                values.append((name, arguments[index])); index += 1
            } else if flagOptions.contains(name), inlineValue == nil {
                flags.insert(name)
            } else {
                throw .unknownOption(name, suggestion: closest(name, in: valueOptions + flagOptions))
            }
        }

        if flags.contains("--version") { return Invocation(command: .version) }
        if flags.contains("--help") || flags.contains("-h") { return Invocation(command: .help(kind: nil)) }
        guard let first = positionals.first else { return Invocation(command: .help(kind: nil)) }

        // Bare `qlora-run FILE`: anything that is not a command and looks like a file runs it.
        var name = first
        var rest = Array(positionals.dropFirst())
        if !commands.contains(first) {
            if first.hasSuffix(".yaml") || first.hasSuffix(".yml") || first.hasSuffix(".json") || first.contains("/") {
                name = "run"; rest = positionals
            } else {
                throw .unknownCommand(first, suggestion: closest(first, in: commands))
            }
        }

        func one(_ what: String) throws(ArgumentError) -> String {
            guard let v = rest.first else { throw .missingArgument(command: name, what: what) }
            if rest.count > 1 { throw .unexpectedArgument(command: name, argument: rest[1]) }
            return v
        }
        func atMostOne() throws(ArgumentError) -> String? {
            if rest.count > 1 { throw .unexpectedArgument(command: name, argument: rest[1]) }
            return rest.first
        }

        var invocation: Invocation
        var allowed: Set<String> = ["--set", "--force", "--only", "--cache"]
        switch name {
        case "run": invocation = Invocation(command: .run(file: try one("a pipeline FILE"))); allowed.formUnion(["--json", "--sweep"])
        case "plan": invocation = Invocation(command: .plan(file: try one("a pipeline FILE"))); allowed.insert("--sweep")
        case "runs":
            var r = Invocation.RunsOptions()
            if let first = rest.first, let action = Invocation.RunsOptions.Action(rawValue: first), action != .list {
                r.action = action; rest.removeFirst()
            }
            switch r.action {
            case .list, .plot: r.file = try atMostOne()
            case .show:
                r.ids = [try one("a run id")]
            case .diff:
                guard rest.count == 2 else { throw rest.count < 2 ? .missingArgument(command: "runs diff", what: "two run ids or point names") : .unexpectedArgument(command: "runs diff", argument: rest[2]) }
                r.ids = rest
            }
            r.csv = flags.contains("--csv")
            r.sort = values.last { $0.0 == "--sort" }?.1
            if let last = values.last(where: { $0.0 == "--last" })?.1 { r.last = try integer("--last", last, minimum: 1) }
            r.output = values.last { $0.0 == "-o" }?.1
            if r.action == .plot && r.output == nil { throw .missingArgument(command: "runs plot", what: "-o FILE.svg") }
            invocation = Invocation(command: .runs(r))
            allowed = ["--cache", "--json"]
            switch r.action {
            case .list: allowed.formUnion(["--csv", "--sort", "--last"])
            case .plot: allowed.formUnion(["--last", "-o"])
            case .diff, .show: break
            }
        case "reproduce":
            invocation = Invocation(command: .reproduce(id: try one("a run id")))
            allowed = ["--cache"]
        case "validate":
            let file = try one("a FILE to validate")
            invocation = Invocation(command: .validate(file: file, schema: values.last { $0.0 == "--schema" }?.1))
            allowed.insert("--schema")
        case "help": invocation = Invocation(command: .help(kind: try atMostOne())); allowed = []
        case "cache":
            guard let actionName = rest.first else { throw .missingArgument(command: "cache", what: "an action: ls, verify or gc") }
            guard let action = Invocation.CacheAction(rawValue: actionName) else {
                throw .invalidValue(option: "cache", value: actionName, expected: "ls, verify or gc")
            }
            rest.removeFirst()
            invocation = Invocation(command: .cache(action, file: try atMostOne()))
            allowed = ["--cache", "--set"]
            if action == .gc { allowed.formUnion(["--dry-run", "--keep"]) }
        case "tokenize":
            invocation = Invocation(command: .tokenize(directory: try one("a model or tokenizer DIR"), decode: flags.contains("--decode")))
            allowed = ["--decode"]
        case "chat":
            guard rest.first == "render" else {
                throw .invalidValue(option: "chat", value: rest.first ?? "", expected: "the action 'render'")
            }
            rest.removeFirst()
            var c = Invocation.ChatRenderOptions()
            c.directory = try atMostOne()
            c.template = values.last { $0.0 == "--template" }?.1
            if c.directory == nil && c.template == nil { throw .missingArgument(command: "chat render", what: "a checkpoint DIR or --template FILE") }
            if let directory = c.directory, c.template != nil { throw .unexpectedArgument(command: "chat render --template", argument: directory) }
            c.addGenerationPrompt = flags.contains("--add-generation-prompt")
            c.bosToken = values.last { $0.0 == "--bos-token" }?.1
            c.eosToken = values.last { $0.0 == "--eos-token" }?.1
            c.now = values.last { $0.0 == "--now" }?.1
            invocation = Invocation(command: .chatRender(c))
            allowed = ["--template", "--add-generation-prompt", "--bos-token", "--eos-token", "--now"]
        case "generate":
            var g = Invocation.GenerateOptions()
            g.pipeline = try atMostOne()
            g.stage = values.last { $0.0 == "--stage" }?.1
            let model = values.last(where: { $0.0 == "--model" })?.1
            if g.pipeline == nil && model == nil { throw .missingArgument(command: name, what: "--model DIR or a pipeline FILE") }
            if let file = g.pipeline, model != nil { throw .unexpectedArgument(command: "generate --model", argument: file) }
            guard let prompt = values.last(where: { $0.0 == "--prompt" })?.1 else { throw .missingArgument(command: name, what: "--prompt TEXT") }
            g.model = model ?? ""; g.prompt = prompt
            g.adapter = values.last { $0.0 == "--adapter" }?.1
            g.chat = flags.contains("--chat")
            for (option, value) in values {
                switch option {
                case "--max-new-tokens": g.maxNewTokens = try integer(option, value, minimum: 1)
                case "--top-k": g.topK = try integer(option, value, minimum: 0)
                case "--seed": g.seed = UInt64(try integer(option, value, minimum: 0))
                case "--temperature":
                    guard let t = Double(value), t >= 0, t.isFinite else { throw .invalidValue(option: option, value: value, expected: "a number >= 0") }
                    g.temperature = t
                case "--top-p":
                    guard let p = Double(value), p > 0, p <= 1 else { throw .invalidValue(option: option, value: value, expected: "a number in (0, 1]") }
                    g.topP = p
                default: break
                }
            }
            invocation = Invocation(command: .generate(g))
            allowed = ["--model", "--adapter", "--prompt", "--chat", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed"]
            if g.pipeline != nil { allowed.formUnion(["--stage", "--set", "--cache"]) }
        case "bench":
            if let extra = rest.first { throw .unexpectedArgument(command: name, argument: extra) }
            invocation = Invocation(command: .bench(quick: flags.contains("--quick"))); allowed = ["--quick"]
        default: throw .unknownCommand(name, suggestion: nil)
        }

        for option in values.map(\.0) + flags.sorted() where !allowed.contains(option) {
            throw .optionNotAllowed(option: option, command: name)
        }
        for (option, value) in values {
            switch option {
            case "--set":
                guard let eq = value.firstIndex(of: "="), eq != value.startIndex else {
                    throw .invalidValue(option: option, value: value, expected: "PATH=VALUE, e.g. stages.train.lr=1e-4")
                }
                invocation.sets.append(value)
            case "--sweep": invocation.sweeps.append(value)
            case "--force": invocation.force.append(value)
            case "--only": invocation.only.append(value)
            case "--cache": invocation.cacheDirectory = value
            case "--keep": invocation.keep = try integer(option, value, minimum: 1)
            default: break
            }
        }
        invocation.dryRun = flags.contains("--dry-run")
        invocation.json = flags.contains("--json")
        return invocation
    }

    static func integer(_ option: String, _ value: String, minimum: Int) throws(ArgumentError) -> Int {
        guard let n = Int(value), n >= minimum else {
            throw .invalidValue(option: option, value: value, expected: "an integer >= \(minimum)")
        }
        return n
    }

    /// The candidate within edit distance 2 (or a third of the word), for "did you mean" hints.
    public static func closest(_ word: String, in candidates: [String]) -> String? {
        var best: (String, Int)?
        for c in candidates {
            let d = editDistance(word, c)
            if d <= max(2, word.count / 3), d < (best?.1 ?? .max) { best = (c, d) }
        }
        return best?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
