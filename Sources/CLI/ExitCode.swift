/// Every exit status of qlora-run, in one place (README "Exit codes" lists the same table).
public enum ExitCode: Int32, Sendable, CaseIterable {
    case ok = 0            // success
    case stageFailed = 1   // a stage threw (training diverged, a gate failed, a model error)
    case invalidInput = 2  // bad arguments, invalid pipeline, missing files
    case interrupted = 130 // SIGINT (Ctrl-C): 128 + 2, as shells report it
}
