import Foundation
import Distributed

/// Terminal output: results on stdout, errors on stderr; colour only on a TTY and never with NO_COLOR
/// (https://no-color.org).
struct Console: Sendable {
    let colourOut: Bool
    let colourErr: Bool
    /// The live status line when stdout (where the log goes) is a terminal; nil otherwise, and then
    /// progress appears only as the stages' periodic log lines.
    let status: StatusLine?
    /// Where `print` writes: stdout, or stderr while stdout carries a JSON document (`run --json`).
    let log: FileHandle
    /// Ranks after the first of an MPI job print nothing but their errors and warnings (named by
    /// rank): rank 0's log is the job's log, as if one process ran.
    let rank: Int

    init(environment: [String: String] = ProcessInfo.processInfo.environment, logToStandardError: Bool = false) {
        rank = World.rank(environment)
        // Open MPI gives every rank a pseudo-terminal whatever mpirun's own output is (often a log
        // file): under a launcher, plain lines, no colour and no live bar.
        let launched = World.launcher(environment) != nil
        let noColour = launched || (environment["NO_COLOR"].map { !$0.isEmpty } ?? false)
        let logDescriptor = logToStandardError ? STDERR_FILENO : STDOUT_FILENO
        colourOut = !noColour && isatty(logDescriptor) == 1
        colourErr = !noColour && isatty(STDERR_FILENO) == 1
        status = !launched && isatty(logDescriptor) == 1 ? StatusLine(handle: logToStandardError ? .standardError : .standardOutput) : nil
        log = logToStandardError ? .standardError : .standardOutput
    }

    func print(_ line: String) {
        guard rank == 0 else { return }
        status?.finish()
        log.write(Data((line + "\n").utf8))
    }

    /// The one document of `run --json`, on stdout.
    func document(_ text: String) {
        guard rank == 0 else { return }
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
    func error(_ message: String) {
        status?.finish()
        let prefix = (colourErr ? "\u{1B}[1;31merror:\u{1B}[0m " : "error: ") + (rank > 0 ? "rank \(rank): " : "")
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
    }
    func warning(_ message: String) {
        status?.finish()
        let prefix = (colourErr ? "\u{1B}[1;33mwarning:\u{1B}[0m " : "warning: ") + (rank > 0 ? "rank \(rank): " : "")
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
    }
    /// Bold/green/yellow only when colour is on.
    func styled(_ text: String, _ code: String) -> String { colourOut ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
}

/// One line on a terminal redrawn in place (`\r` + text + clear to end of line), at most 10 times a
/// second; `finish()` draws the newest text and ends the line, so the next log line starts clean.
final class StatusLine: @unchecked Sendable {  // all state under `lock`
    private let lock = NSLock()
    private let handle: FileHandle
    init(handle: FileHandle) { self.handle = handle }
    private var shown = false          // a line is on screen without its newline
    private var pending: String?       // newest text not drawn yet (throttled)
    private var lastDraw: UInt64 = 0
    static let interval: UInt64 = 100_000_000  // ns between redraws

    func update(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        let now = DispatchTime.now().uptimeNanoseconds
        guard !shown || now - lastDraw >= Self.interval else { pending = text; return }
        draw(text, at: now)
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if let text = pending { draw(text, at: DispatchTime.now().uptimeNanoseconds) }
        guard shown else { return }
        handle.write(Data("\n".utf8))
        shown = false
    }

    private func draw(_ text: String, at now: UInt64) {
        handle.write(Data(("\r" + text + "\u{1B}[K").utf8))
        shown = true; pending = nil; lastDraw = now
    }
}
