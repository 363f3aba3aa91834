import Foundation

/// Test seam for crash consistency: with `QLORA_CRASH_AT=NAME[:N]` in the environment the process
/// kills itself with SIGKILL the N-th time (default 1) it passes the point NAME, exactly as a
/// `kill -9` or a power cut at that instant would. Unset, a point costs one comparison.
///
/// Points (in the order a stage passes them): `ingest` (outputs stored as objects, action record
/// not yet written), `commit` (action record written: the commit point), `publish-temp` (the new
/// copy complete beside the destination), `publish-swap` (old destination moved aside, new not yet in
/// place), `publish-done` (new in place, old not yet removed), `atomic-write` (any record's temp file
/// written and synced, not yet renamed).
public enum CrashPoint {
    static let target: (name: String, count: Int)? = {
        guard let text = ProcessInfo.processInfo.environment["QLORA_CRASH_AT"], !text.isEmpty else { return nil }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        return (parts[0], parts.count > 1 ? max(1, Int(parts[1]) ?? 1) : 1)
    }()
    private static let counter = Counter()

    public static func here(_ name: String) {
        guard let target, target.name == name else { return }
        if counter.increment() == target.count {
            FileHandle.standardError.write(Data("QLORA_CRASH_AT: killed at \(name):\(target.count)\n".utf8))
            kill(getpid(), SIGKILL)
        }
    }

    private final class Counter: @unchecked Sendable {  // value under `lock`
        private let lock = NSLock()
        private var value = 0
        func increment() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    }
}
