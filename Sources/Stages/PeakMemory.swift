import Foundation
#if canImport(Glibc)
import Glibc
import CMalloc
#endif

/// Peak resident memory of this process: what `train` reports in its summary (and `qlora-run
/// bench` prints, CLI/Bench.swift).
public enum PeakMemory {
    /// Peak resident set size of this process (getrusage: KiB on Linux).
    public static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// Returns the pages malloc holds free to the system (glibc: malloc_trim, every arena, not only
    /// the heap's top). Freed memory otherwise stays in the process: after `train` the SmolLM2
    /// pipeline kept 322 MB resident, and `evaluate` grew from there.
    public static func returnFreedMemory() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }

    /// Resets the kernel's peak-RSS mark of this process (Linux ≥ 4.0: "5" to /proc/self/clear_refs).
    public static func resetPeakRSS() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// VmHWM of /proc/self/status (the peak RSS since the last reset), in MB.
    public static func currentPeakRSSMegabytes() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }
}
