import Foundation
import PipelineCore
import Stages
import Distributed

let toolVersion = "qlora-run 0.1.0"

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
            console.print(CommandTable.usage); return .ok
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
