// qlora-run entry point: parse, dispatch, map every outcome to an exit code (Stages/ExitCode.swift).
import Foundation
import PipelineCore
import Stages

let console = Console()
let arguments = Array(CommandLine.arguments.dropFirst())
let code: ExitCode
do {
    let invocation = try ArgumentParser.parse(arguments)
    code = try Commands(console: console).run(invocation)
} catch let error as ArgumentError {
    console.error(error.localizedDescription)
    code = .invalidInput
} catch {
    console.error(error.localizedDescription)
    code = .stageFailed
}
exit(code.rawValue)
