import Foundation

/// The qlora-run command line, parsed by hand (no packages): which options exist, take a value
/// and apply to which command comes from CommandTable; this turns the words into an `Invocation`.
public enum ArgumentParser {
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
            switch CommandTable.option(name)?.takesValue {
            case true?:
                if let v = inlineValue { values.append((name, v)); continue }
                guard index < arguments.count else { throw .missingValue(option: name) }
                values.append((name, arguments[index])); index += 1
            case false? where inlineValue == nil:
                flags.insert(name)
            default:
                throw .unknownOption(name, suggestion: closest(name, in: CommandTable.options.map(\.name)))
            }
        }

        if flags.contains("--version") { return Invocation(command: .version) }
        if flags.contains("--help") || flags.contains("-h") { return Invocation(command: .help(kind: nil)) }
        guard let first = positionals.first else { return Invocation(command: .help(kind: nil)) }

        // Bare `qlora-run FILE`: anything that is not a command and looks like a file runs it.
        var name = first
        var rest = Array(positionals.dropFirst())
        if CommandTable.command(first) == nil {
            if first.hasSuffix(".yaml") || first.hasSuffix(".yml") || first.hasSuffix(".json") || first.contains("/") {
                name = "run"; rest = positionals
            } else {
                throw .unknownCommand(first, suggestion: closest(first, in: CommandTable.suggestionOrder))
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
        var form: String?   // the form whose own options apply (CommandTable.Command.formOptions)
        switch name {
        case "run": invocation = Invocation(command: .run(file: try one("a pipeline FILE")))
        case "plan": invocation = Invocation(command: .plan(file: try one("a pipeline FILE")))
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
            form = r.action.rawValue
        case "reproduce":
            invocation = Invocation(command: .reproduce(id: try one("a run id")))
        case "validate":
            let file = try one("a FILE to validate")
            invocation = Invocation(command: .validate(file: file, schema: values.last { $0.0 == "--schema" }?.1))
        case "help": invocation = Invocation(command: .help(kind: try atMostOne()))
        case "cache":
            guard let actionName = rest.first else { throw .missingArgument(command: "cache", what: "an action: ls, verify or gc") }
            guard let action = Invocation.CacheAction(rawValue: actionName) else {
                throw .invalidValue(option: "cache", value: actionName, expected: "ls, verify or gc")
            }
            rest.removeFirst()
            invocation = Invocation(command: .cache(action, file: try atMostOne()))
            form = action.rawValue
        case "tokenize":
            invocation = Invocation(command: .tokenize(directory: try one("a model or tokenizer DIR"), decode: flags.contains("--decode")))
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
            if g.pipeline != nil { form = "PIPELINE" }
        case "bench":
            if let extra = rest.first { throw .unexpectedArgument(command: name, argument: extra) }
            invocation = Invocation(command: .bench(quick: flags.contains("--quick")))
        default: throw .unknownCommand(name, suggestion: nil)
        }

        let allowed = CommandTable.accepted(by: name, form: form)
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
