import Foundation
import Stages

/// tokenize / generate / bench.
struct EngineCommands {
    let console: Console

    func run(_ invocation: Invocation) throws -> ExitCode {
        switch invocation.command {
        case .bench(let quick):
            console.print("qlora-run bench\(quick ? " --quick" : "") — medians; \(ProcessInfo.processInfo.activeProcessorCount) cores")
            _ = Bench.run(quick: quick) { console.print($0) }
            return .ok
        case .tokenize, .generate:
            console.error("this command needs the Tokenizer target, which is not integrated in this build yet")
            return .stageFailed
        default:
            return .invalidInput
        }
    }
}
