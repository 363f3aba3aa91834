import CParallel
import Foundation
import XCTest
@testable import Kernels

/// Kernels' Parallel over CParallel's helper threads: every chunk runs exactly once per job, jobs
/// follow each other back to back (the helpers' claim race), nested and concurrent calls complete.
final class ParallelTests: XCTestCase {
    /// Runs `chunks` chunks that each add their index + 1 to their own slot; returns the slots.
    private func slots(_ chunks: Int) -> [Int] {
        var out = [Int](repeating: 0, count: chunks)
        out.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            Parallel.run(chunks) { c in p[c] += c + 1 }
        }
        return out
    }

    func testEveryChunkRunsOnceInEveryJob() {
        XCTAssertEqual(Parallel.helpers, max(0, Parallel.workers - 1))
        for chunks in [1, 2, 3, 7, 64, 1000] {
            XCTAssertEqual(slots(chunks), (0..<chunks).map { $0 + 1 }, "\(chunks) chunks")
        }
        // 20,000 small jobs back to back: a helper still finishing job g while g + 1 is published
        // must take nothing of g + 1 with g's function.
        var total = 0
        for j in 0..<20_000 { let s = slots(2 + j % 5); total += s.reduce(0, +) }
        XCTAssertEqual(total, (0..<20_000).reduce(0) { acc, j in let n = 2 + j % 5; return acc + n * (n + 1) / 2 })
    }

    func testNestedAndConcurrentJobsComplete() {
        // A chunk that parallelises again runs the inner job on its own thread.
        var inner = [Int](repeating: 0, count: 4 * 8)
        inner.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            Parallel.run(4) { outer in Parallel.run(8) { i in p[outer * 8 + i] += 1 } }
        }
        XCTAssertEqual(inner, [Int](repeating: 1, count: 32))
        // Two threads submitting at once: one gets the pool, the other runs its chunks itself.
        let group = DispatchGroup()
        nonisolated(unsafe) let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)   // one slot per thread
        defer { sums.deallocate() }
        for t in 0..<2 {
            DispatchQueue.global().async(group: group) {
                var s = 0
                for _ in 0..<2_000 { s += self.slots(3 + t).reduce(0, +) }
                sums[t] = s
            }
        }
        group.wait()
        XCTAssertEqual(Array(sums), [2_000 * 6, 2_000 * 10])
    }

    func testForEachChunkCoversTheRangeInContiguousChunks() {
        let count = 100_003
        var hits = [UInt8](repeating: 0, count: count)
        hits.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            Parallel.forEachChunk(count) { r in for i in r { p[i] &+= 1 } }
        }
        XCTAssertEqual(hits.firstIndex { $0 != 1 }, nil)
    }
}
