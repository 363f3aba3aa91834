import Foundation
import Stages

/// The one declaration of the qlora-run command line: every option (does it take a value?), every
/// command with its lines of `--help` and the options it accepts. The parser (ArgumentParser.swift),
/// `--help` and the usage text, and the errors ("unknown option '--frce'; did you mean '--force'?",
/// "option '--dry-run' does not apply to 'cache'") all read this table; CLITests check that the
/// usage names only options its command accepts.
enum CommandTable {
    struct Option: Sendable {
        var name: String
        var takesValue: Bool
    }

    /// One line of `--help`: `qlora-run SYNOPSIS` with its summary from column 39. A line that
    /// `continues` the one above starts under that line's arguments.
    struct UsageLine: Sendable {
        var synopsis: String
        var summary = ""
        var continues = false
    }

    struct Command: Sendable {
        var name: String
        var usage: [UsageLine]
        /// The options every form of the command accepts (`--help`, `-h` and `--version` go anywhere).
        var options: [String]
        /// Options only one form accepts, by form: `cache gc`, `runs plot`, `generate PIPELINE`.
        var formOptions: [String: [String]] = [:]

        func accepts(form: String?) -> Set<String> { Set(options + (form.flatMap { formOptions[$0] } ?? [])) }
    }

    /// Every option, in the order "did you mean" prefers on a tie: those with a value, then flags.
    static let options: [Option] =
        ["--set", "--sweep", "--sort", "--last", "-o", "--force", "--only", "--cache", "--schema", "--keep", "--model", "--adapter",
         "--prompt", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed",
         "--template", "--bos-token", "--eos-token", "--now", "--stage"].map { Option(name: $0, takesValue: true) }
        + ["--json", "--csv", "--decode", "--dry-run", "--quick", "--chat", "--add-generation-prompt", "--help", "-h", "--version"]
        .map { Option(name: $0, takesValue: false) }

    /// What run, plan and validate take to load a pipeline.
    static let pipelineOptions = ["--set", "--force", "--only", "--cache"]

    /// The commands, in the order `--help` lists them.
    static let commands: [Command] = [
        Command(name: "run", usage: [UsageLine(synopsis: "[run] FILE [--set PATH=VALUE]... [--sweep PATH=V1,V2]... [--force STAGE] [--only STAGE] [--cache DIR] [--json]")],
                options: pipelineOptions + ["--json", "--sweep"]),
        Command(name: "plan", usage: [UsageLine(synopsis: "plan FILE [options]", summary: "show each stage: cached or will run, and why")],
                options: pipelineOptions + ["--sweep"]),
        Command(name: "validate", usage: [UsageLine(synopsis: "validate FILE [--schema S]", summary: "check a pipeline (or any YAML/JSON against schema S)")],
                options: pipelineOptions + ["--schema"]),
        Command(name: "help", usage: [UsageLine(synopsis: "help [KIND]", summary: "this text, or a stage kind's fields from the schema")],
                options: []),
        Command(name: "cache", usage: [UsageLine(synopsis: "cache ls|verify|gc [FILE] [--cache DIR] [--dry-run] [--keep N]")],
                options: ["--cache", "--set"], formOptions: ["gc": ["--dry-run", "--keep"]]),
        Command(name: "tokenize", usage: [UsageLine(synopsis: "tokenize DIR [--decode]", summary: "stdin lines -> JSON token ids (or ids -> text)")],
                options: ["--decode"]),
        Command(name: "chat", usage: [
                    UsageLine(synopsis: "chat render (DIR | --template FILE) [--add-generation-prompt] [--bos-token S] [--eos-token S] [--now ISO-8601]"),
                    UsageLine(synopsis: "", summary: #"stdin {"messages": [...], "tools"?, ...} -> the model's chat template, exactly"#, continues: true),
                ],
                options: ["--template", "--add-generation-prompt", "--bos-token", "--eos-token", "--now"]),
        Command(name: "generate", usage: [
                    UsageLine(synopsis: "generate (--model DIR [--adapter DIR] | PIPELINE [--stage NAME]) --prompt TEXT [--chat] [--max-new-tokens N]"),
                    UsageLine(synopsis: "[--temperature T] [--top-k K] [--top-p P] [--seed S]", continues: true),
                ],
                options: ["--model", "--adapter", "--prompt", "--chat", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed"],
                formOptions: ["PIPELINE": ["--stage", "--set", "--cache"]]),
        Command(name: "runs", usage: [
                    UsageLine(synopsis: "runs [FILE] [--json] [--csv] [--sort METRIC] [--last N]", summary: "the recorded runs: parameters that differ, metrics"),
                    UsageLine(synopsis: "runs diff A B | runs show ID | runs plot [FILE] -o curves.svg"),
                ],
                options: ["--cache", "--json"], formOptions: ["list": ["--csv", "--sort", "--last"], "plot": ["--last", "-o"]]),
        Command(name: "reproduce", usage: [UsageLine(synopsis: "reproduce ID", summary: "run a recorded run again and compare its bytes")],
                options: ["--cache"]),
        Command(name: "bench", usage: [UsageLine(synopsis: "bench [--quick]", summary: "measure this machine (kernels, quantization, training)")],
                options: ["--quick"]),
    ]

    /// The last line of `--help`: the options that go without a command.
    static let globalUsage = UsageLine(synopsis: "--version | --help")

    /// Command names for "did you mean", whose ties go to the earlier name. `bench` keeps the place
    /// it had before runs and reproduce existed, so a misspelling gets the suggestion it always got
    /// ("bens": bench, not runs); a test keeps this a permutation of `commands`.
    static let suggestionOrder = ["run", "plan", "validate", "help", "cache", "tokenize", "chat", "generate", "bench", "runs", "reproduce"]

    static func option(_ name: String) -> Option? { options.first { $0.name == name } }
    static func command(_ name: String) -> Command? { commands.first { $0.name == name } }

    /// The options `command` (in `form`) accepts.
    static func accepted(by command: String, form: String? = nil) -> Set<String> {
        self.command(command)?.accepts(form: form) ?? []
    }

    static let summaryColumn = 39

    /// The lines of the usage, without the left margin (README's CLI reference shows them so).
    static var usageLines: [String] {
        commands.flatMap { command in command.usage.map { text($0, under: command.name) } } + [text(globalUsage, under: nil)]
    }

    static func text(_ line: UsageLine, under command: String?) -> String {
        let program = "qlora-run "
        let left = line.continues ? String(repeating: " ", count: program.count + (command.map { $0.count + 1 } ?? 0)) + line.synopsis
                                  : program + line.synopsis
        guard !line.summary.isEmpty else { return left }
        return left.padding(toLength: max(summaryColumn, left.count + 3), withPad: " ", startingAt: 0) + line.summary
    }

    /// `qlora-run --help`: the usage, the stage kinds and the exit codes.
    static var usage: String {
        "usage: " + usageLines.joined(separator: "\n       ") + "\n\n"
            + "stage kinds: \(StageKinds.names.joined(separator: ", "))\n"
            + "exit codes: " + ExitCode.allCases.map { "\($0.rawValue) \($0.summary)" }.joined(separator: ", ")
    }
}
