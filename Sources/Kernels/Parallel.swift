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
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks
            let hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }
}
