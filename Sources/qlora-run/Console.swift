import Foundation

/// Terminal output: results on stdout, errors on stderr; colour only on a TTY and never with NO_COLOR
/// (https://no-color.org).
struct Console: Sendable {
    let colourOut: Bool
    let colourErr: Bool

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let noColour = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        colourOut = !noColour && isatty(STDOUT_FILENO) == 1
        colourErr = !noColour && isatty(STDERR_FILENO) == 1
    }

    func print(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
    func error(_ message: String) {
        let prefix = colourErr ? "\u{1B}[1;31merror:\u{1B}[0m " : "error: "
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
    }
    func warning(_ message: String) {
        let prefix = colourErr ? "\u{1B}[1;33mwarning:\u{1B}[0m " : "warning: "
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
    }
    /// Bold/green/yellow only when colour is on.
    func styled(_ text: String, _ code: String) -> String { colourOut ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
}
