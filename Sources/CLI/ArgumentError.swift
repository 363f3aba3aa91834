import Foundation

/// What is wrong with a command line; always exit status 2 (ExitCode.swift).
public enum ArgumentError: LocalizedError, Equatable {
    case unknownCommand(String, suggestion: String?)
    case unknownOption(String, suggestion: String?)
    case missingValue(option: String)
    case invalidValue(option: String, value: String, expected: String)
    case missingArgument(command: String, what: String)
    case unexpectedArgument(command: String, argument: String)
    case optionNotAllowed(option: String, command: String)

    public var errorDescription: String? {
        switch self {
        case .unknownCommand(let c, let s):
            return "unknown command '\(c)'" + (s.map { "; did you mean '\($0)'?" } ?? "; run 'qlora-run --help' for the list")
        case .unknownOption(let o, let s):
            return "unknown option '\(o)'" + (s.map { "; did you mean '\($0)'?" } ?? "; run 'qlora-run --help' for the list")
        case .missingValue(let o):
            return "option '\(o)' needs a value"
        case .invalidValue(let o, let v, let e):
            return "option '\(o)': expected \(e), found '\(v)'"
        case .missingArgument(let c, let w):
            return "'\(c)' needs \(w); run 'qlora-run --help' for usage"
        case .unexpectedArgument(let c, let a):
            return "'\(c)' takes no argument '\(a)'"
        case .optionNotAllowed(let o, let c):
            return "option '\(o)' does not apply to '\(c)'"
        }
    }
}
