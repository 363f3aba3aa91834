import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C handling. `install()` sets a SIGINT handler that only raises a flag (the only
/// async-signal-safe thing to do); stages poll `StageContext.isInterrupted` at safe points and
/// throw `StageInterrupted`. A second Ctrl-C restores the default action and kills the process.
/// Exit status 130 is the CLI's business.
public enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    public static func install() {
        signal(SIGINT) { _ in
            Interrupt.flag = 1
            signal(SIGINT, SIG_DFL)
        }
    }

    public static var isInterrupted: Bool { flag != 0 }

    /// For tests: raise or clear the flag without a signal.
    public static func set(_ interrupted: Bool) { flag = interrupted ? 1 : 0 }
}
