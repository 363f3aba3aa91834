import Foundation

/// A problem of what the user gave (a file, the environment) found outside the parser and the
/// pipeline checks: exit status 2 (ExitCode.swift), its message as written.
struct InputError: LocalizedError {
    var message: String

    var errorDescription: String? { message }
}
