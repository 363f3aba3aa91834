import PipelineCore

/// Every exit status of qlora-run, in one place (README "Exit codes" lists the same table; `--help`
/// prints the summaries).
public enum ExitCode: Int32, Sendable, CaseIterable {
    case ok = 0            // success
    case stageFailed = 1   // a stage threw (training diverged, a gate failed, a model error)
    case invalidInput = 2  // bad arguments, invalid pipeline, missing files
    case interrupted = 130 // SIGINT (Ctrl-C): 128 + 2, as shells report it

    /// Its words in `--help` ("exit codes: 0 ok, 1 a stage failed, ...").
    var summary: String {
        switch self {
        case .ok: return "ok"
        case .stageFailed: return "a stage failed"
        case .invalidInput: return "invalid input"
        case .interrupted: return "interrupted"
        }
    }

    /// The one mapping of errors to exit statuses: the command line, an invalid pipeline, an unsafe
    /// destination and other input the user must fix are 2, an interrupted stage is 130, and anything
    /// else (a stage, the cache, the engine) failed: 1.
    init(for error: any Error) {
        switch error {
        case is ArgumentError, is InputError, is PipelineCommands.Invalid:
            self = .invalidInput
        case let error as CacheError:
            switch error {
            case .unknownStage, .unsafeDestination: self = .invalidInput
            case .interrupted: self = .interrupted
            default: self = .stageFailed
            }
        default:
            self = .stageFailed
        }
    }
}
