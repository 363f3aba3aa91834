import Foundation
import COpenBLAS

/// The only place in the project that calls OpenBLAS.
///
/// All matrices are row-major. `sgemm` computes `C = alpha * op(A) * op(B) + beta * C`
/// where op(A) is (M, K), op(B) is (K, N) and C is (M, N).
///
/// Threading: OpenBLAS itself runs single-threaded, and a large product is split here into
/// `Parallel.workers` blocks of C (rows or columns, whichever dimension is larger) computed side by
/// side on `Parallel`'s threads. Why not OpenBLAS's own threads: they spin-wait (sched_yield) between
/// calls while our elementwise kernels run on the same cores — 13–20% of a training step's samples in
/// a perf profile; one pool for both means the thread that waits is the one that gets the next job. A split of C never splits the K reduction, but OpenBLAS picks its kernel by the
/// block's shape, so the last bits can depend on the block count. That count depends only on the
/// sizes and `Parallel.workers`, never on timing: the same run gives the same bits.
public enum BLAS {
    public static func sgemm(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        _ = singleThreadedLibrary
        let parts = blocks(m: m, n: n, k: k)
        if parts <= 1 {
            call(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let splitRows = m >= n
        let extent = splitRows ? m : n
        Parallel.run(parts) { part in
            // Block boundaries on multiples of 16 (the kernels' register-tile widths divide 16).
            let lo = min(extent, (extent * part / parts + 15) / 16 * 16)
            let hi = part == parts - 1 ? extent : min(extent, (extent * (part + 1) / parts + 15) / 16 * 16)
            if lo >= hi { return }
            if splitRows {
                // Rows lo..<hi of op(A): A (M, K) row lo, or Aᵀ stored (K, M) column lo.
                call(transposeA, transposeB, hi - lo, n, k, alpha, transposeA ? a + lo : a + lo * lda, lda,
                     b, ldb, beta, c + lo * ldc, ldc)
            } else {
                // Columns lo..<hi of op(B): B (K, N) column lo, or Bᵀ stored (N, K) row lo.
                call(transposeA, transposeB, m, hi - lo, k, alpha, a, lda,
                     transposeB ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc)
            }
        }
    }

    /// How many blocks to compute side by side: one per worker for products of at least 2^20
    /// multiply-adds (smaller ones do not repay the dispatch), never inside `singleThreaded`.
    static func blocks(m: Int, n: Int, k: Int) -> Int {
        let workers = Parallel.workers
        if workers <= 1 || m * n * k < (1 << 20) || max(m, n) < 32 * workers { return 1 }
        singleThreadLock.lock()
        defer { singleThreadLock.unlock() }
        return singleThreadDepth > 0 ? 1 : workers
    }

    @inline(__always)
    private static func call(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                             _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                             _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Set once, before the first product: OpenBLAS computes on the calling thread only.
    private static let singleThreadedLibrary: Void = { openblas_set_num_threads(1) }()

    /// Number of threads OpenBLAS uses for one call (1 once `sgemm` has run).
    public static var threads: Int {
        _ = singleThreadedLibrary
        return Int(openblas_get_num_threads())
    }

    /// Runs `body` with every `sgemm` on the calling thread, unsplit. For BLAS calls made from
    /// inside our own `Parallel.forEachChunk` loops (attention per head), which already keep every
    /// core busy. Nesting and concurrent callers (stages side by side) are counted.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        singleThreadLock.lock()
        singleThreadDepth += 1
        singleThreadLock.unlock()
        defer {
            singleThreadLock.lock()
            singleThreadDepth -= 1
            singleThreadLock.unlock()
        }
        return try body()
    }

    /// true inside `singleThreaded` (on any thread).
    public static var isSingleThreaded: Bool {
        singleThreadLock.lock()
        defer { singleThreadLock.unlock() }
        return singleThreadDepth > 0
    }

    private static let singleThreadLock = NSLock()
    nonisolated(unsafe) private static var singleThreadDepth = 0
}
