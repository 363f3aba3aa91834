import Foundation
import PipelineCore
import Stages

/// run / plan / validate / cache / tokenize / generate / bench. Bound to PipelineCore's executor and
/// the engine as those land (see the report): until then these say so and exit 2.
struct PipelineCommands {
    let console: Console

    func run(_ invocation: Invocation) throws -> ExitCode {
        console.error("this command is not available in this build yet (the pipeline engine is being integrated)")
        return .invalidInput
    }
}
