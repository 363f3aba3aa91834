import Foundation
import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS (DYNAMIC_ARCH builds such as Debian's) picks its kernels from the CPU model when the
/// library loads. A CPU newer than the library (Debian 12's 0.3.21 does not know Intel family 6
/// model 207, Emerald Rapids) falls back to "Prescott", SSE3 kernels: sgemm at 64 GFLOP/s on the
/// 2-core VM instead of 310 with the AVX-512 ones, and training 3.5x slower. The only switch is the
/// `OPENBLAS_CORETYPE` variable, read at load time, so the command line re-executes itself once
/// with it set from the CPU's features (never when the user set it).
/// The same library also predates AVX-512 on AMD: it gives Zen 4 and Zen 5 (family 25 model ≥ 0x10,
/// family 26) its AVX2 "Haswell"/"Zen" kernels. On a Zen 5 VM the SkylakeX set runs sgemm at
/// 445 GFLOP/s instead of 254 and a MiniMind train step 1.67x faster, so an AVX2 set on a CPU with
/// AVX-512 is corrected too.
public enum BLASCoreType {
    /// The kernel set OpenBLAS is using.
    public static var current: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Kernel sets OpenBLAS falls back to for a CPU model it does not recognise.
    static let fallbacks: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Katmai", "Coppermine", "Northwood", "Banias", "Atom", "generic", "unknown"]

    /// The kernel set this CPU's features allow (x86-64 Linux: /proc/cpuinfo flags), or nil.
    public static func suited(flags: Set<String>) -> String? {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The flags of the first processor in /proc/cpuinfo (empty elsewhere).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// AVX2 kernel sets: right for an AVX2 CPU, half speed on one with AVX-512.
    static let avx2Sets: Set<String> = ["Haswell", "Zen", "SkylakeX_AVX2"]

    /// What to re-execute with: the kernel set to ask for, when OpenBLAS fell back to a generic one
    /// on a CPU that has AVX2/AVX-512, or to an AVX2 one on a CPU with AVX-512, and nobody chose a
    /// core type by hand.
    public static func correction(environment: [String: String], current: String, flags: Set<String>) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, environment[marker] == nil,
              let better = suited(flags: flags) else { return nil }
        if fallbacks.contains(current) { return better }
        if avx2Sets.contains(current) && better != "Haswell" { return better }
        return nil
    }

    /// What `bench` adds to its sgemm line: which kernels qlora-run asked for, or that the
    /// environment's OPENBLAS_CORETYPE holds back a CPU that could run better ones.
    public static func benchNote(environment: [String: String]) -> String {
        if let chose = environment[marker] { return "; OpenBLAS chose \(chose) for this CPU, qlora-run asked for these" }
        if let set = environment["OPENBLAS_CORETYPE"],
           let better = correction(environment: [:], current: set, flags: cpuFlags()) {
            return "; OPENBLAS_CORETYPE=\(set) is set: this CPU runs \(better) kernels (unset it to use them)"
        }
        return ""
    }

    /// Set on the re-executed process, so a failed correction never loops.
    public static let marker = "QLORA_BLAS_CORETYPE_SET"

    /// Re-executes this program with OPENBLAS_CORETYPE set when `correction` says so; returns (and
    /// the program goes on with the kernels it has) when not needed or when exec fails.
    public static func reexecuteIfMisdetected() {
        #if os(Linux)
        guard let coreType = correction(environment: ProcessInfo.processInfo.environment, current: current, flags: cpuFlags()) else { return }
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        setenv(marker, current, 1)
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        // exec failed: carry on with the fallback kernels, and leave the environment as it was.
        unsetenv("OPENBLAS_CORETYPE"); unsetenv(marker)
        for p in argv { free(p) }
        #endif
    }
}
