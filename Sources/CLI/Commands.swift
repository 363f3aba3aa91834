import Foundation
import PipelineCore
import Stages
import Distributed

let toolVersion = "qlora-run 0.1.0"

let usage = """
usage: qlora-run [run] FILE [--set PATH=VALUE]... [--sweep PATH=V1,V2]... [--force STAGE] [--only STAGE] [--cache DIR] [--json]
       qlora-run plan FILE [options]          show each stage: cached or will run, and why
       qlora-run validate FILE [--schema S]   check a pipeline (or any YAML/JSON against schema S)
       qlora-run help [KIND]                  this text, or a stage kind's fields from the schema
       qlora-run cache ls|verify|gc [FILE] [--cache DIR] [--dry-run] [--keep N]
       qlora-run tokenize DIR [--decode]      stdin lines -> JSON token ids (or ids -> text)
       qlora-run chat render (DIR | --template FILE) [--add-generation-prompt] [--bos-token S] [--eos-token S] [--now ISO-8601]
                                              stdin {"messages": [...], "tools"?, ...} -> the model's chat template, exactly
       qlora-run generate (--model DIR [--adapter DIR] | PIPELINE [--stage NAME]) --prompt TEXT [--chat] [--max-new-tokens N]
                          [--temperature T] [--top-k K] [--top-p P] [--seed S]
       qlora-run runs [FILE] [--json] [--csv] [--sort METRIC] [--last N]   the recorded runs: parameters that differ, metrics
       qlora-run runs diff A B | runs show ID | runs plot [FILE] -o curves.svg
       qlora-run reproduce ID                 run a recorded run again and compare its bytes
       qlora-run bench [--quick]              measure this machine (kernels, quantization, training)
       qlora-run --version | --help

stage kinds: \(StageKinds.names.joined(separator: ", "))
exit codes: 0 ok, 1 a stage failed, 2 invalid input, 130 interrupted
"""

/// Dispatch of parsed commands. Every command returns an ExitCode; errors propagate to QloraRun.main.
struct Commands {
    let console: Console
    /// The ranks of an MPI job, or one process (QloraRun.main starts it).
    var world: any Collective = SingleProcess()

    func run(_ invocation: Invocation) throws -> ExitCode {
        switch invocation.command {
        case .version:
            console.print(toolVersion); return .ok
        case .help(nil):
            console.print(usage); return .ok
        case .help(let kind?):
            let help = try SchemaHelp()
            guard let k = help.kind(kind) else {
                console.error(StageError.unknownKind(kind, suggestion: ArgumentParser.closest(kind, in: help.kinds.map(\.name))).localizedDescription)
                return .invalidInput
            }
            console.print(help.text(for: k)); return .ok
        default:
            return try PipelineCommands(console: console, world: world).run(invocation)
        }
    }
}
