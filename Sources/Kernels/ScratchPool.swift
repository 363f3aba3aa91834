import Foundation

/// Reusable scratch memory for kernels called inside the training step loop (4-bit weight tiles,
/// attention per-head scratch): a fresh multi-megabyte allocation per call is returned to the
/// system on free and faulted and zeroed page by page on the next call — 3% of a SmolLM step in a
/// perf profile (clear_page). Buffers come back uninitialised: callers overwrite before reading.
///
/// Thread-safe; at most `maximumKept` buffers are retained (the largest ones), so memory stays
/// bounded by the largest concurrent use.
public enum ScratchPool {
    static let maximumKept = 16
    private static let lock = NSLock()
    nonisolated(unsafe) private static var kept: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

    /// Calls `body` with at least `count` floats of uninitialised scratch, returned to the pool after.
    public static func withBuffer<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = take(max(1, count))
        defer { give(buffer) }
        return try body(buffer.pointer)
    }

    /// The smallest kept buffer that is large enough, else a new one.
    private static func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.lock()
        defer { lock.unlock() }
        var best: Int? = nil
        for (i, b) in kept.enumerated() where b.capacity >= count && (best == nil || b.capacity < kept[best!].capacity) { best = i }
        if let best { return kept.remove(at: best) }
        return (.allocate(capacity: count), count)
    }

    private static func give(_ buffer: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        lock.lock()
        defer { lock.unlock() }
        kept.append(buffer)
        if kept.count > maximumKept {
            let smallest = kept.indices.min { kept[$0].capacity < kept[$1].capacity }!
            kept.remove(at: smallest).pointer.deallocate()
        }
    }

    /// Frees every kept buffer (tests; a long-lived process after a large model).
    public static func release() {
        lock.lock()
        defer { lock.unlock() }
        for b in kept { b.pointer.deallocate() }
        kept.removeAll()
    }

    /// Buffers and floats currently kept.
    public static var keptBuffers: (count: Int, floats: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (kept.count, kept.reduce(0) { $0 + $1.capacity })
    }
}
