import CParallel
import Foundation

/// Deterministic data parallelism for elementwise kernels.
///
/// Work is split into a fixed number of contiguous chunks that depends only on the problem
/// size and `Parallel.workers` (never on timing), so every reduction done per chunk and
/// combined in chunk order gives the same bits on every run with the same thread count.
public enum Parallel {
    /// Worker count: `QLORA_THREADS` if set, else the active cores divided among this node's MPI ranks.
    public static let workers: Int = {
        let environment = ProcessInfo.processInfo.environment
        if let s = environment["QLORA_THREADS"], let n = Int(s), n > 0 { return n }
        // Ranks of an MPI job on one node (Open MPI, MPICH/Hydra, Slurm say how many) share its cores.
        let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"].lazy
            .compactMap { environment[$0].flatMap { Int($0) } }.first ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local))
    }()

    /// Calls `body(range)` for contiguous ranges covering `0..<count`, in parallel when the
    /// work is large enough (`count * costPerItem` above a threshold) to repay the dispatch.
    public static func forEachChunk(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(workers, count)
        if chunks <= 1 || count * costPerItem < 32_768 {
            body(0..<count)
            return
        }
        run(chunks) { c in
            let lo = count * c / chunks
            let hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Calls `body(c)` for every c in `0..<chunks` on this thread and the pool's `workers − 1` helper
    /// threads (CParallel), returning when all are done. A call from inside a chunk, or while another
    /// thread's job runs, runs its chunks here in order. Chunk c is the same work whichever thread
    /// takes it, so results depend on `chunks` only.
    public static func run(_ chunks: Int, _ body: (Int) -> Void) {
        if chunks <= 0 { return }
        if chunks == 1 || helpers == 0 { for c in 0..<chunks { body(c) }; return }
        withoutActuallyEscaping(body) { body in
            var job = body
            withUnsafeMutablePointer(to: &job) { pointer in
                qlora_pool_run(Int64(chunks), { context, chunk in
                    guard let context else { return }
                    context.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(chunk))
                }, pointer)
            }
        }
    }

    /// The pool's helper threads, started on first use: one per further core at most, even when
    /// QLORA_THREADS asks for more chunks than there are cores (chunks are claimed, not assigned, so
    /// the chunk count alone fixes the results; spinning threads beyond the cores would only compete).
    static let helpers: Int = {
        let threads = min(workers, max(1, ProcessInfo.processInfo.activeProcessorCount))
        return Int(qlora_pool_start(Int32(threads - 1)))
    }()
}
