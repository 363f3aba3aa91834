import Foundation
import COpenBLAS

/// The only place in the project that calls OpenBLAS.
///
/// All matrices are row-major. `sgemm` computes `C = alpha * op(A) * op(B) + beta * C`
/// where op(A) is (M, K), op(B) is (K, N) and C is (M, N).
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
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// Runs `body` with OpenBLAS limited to one thread, restoring the previous count afterwards.
    /// For BLAS calls made from inside our own `Parallel.forEachChunk` loops (attention per head):
    /// two thread pools on the same cores would oversubscribe them. Nesting and concurrent callers
    /// (stages running side by side) are counted, so the first entrant saves the count and the last
    /// one out restores it — an interleaving can never leave OpenBLAS stuck at one thread.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        singleThreadLock.lock()
        if singleThreadDepth == 0 {
            savedThreads = threads
            if savedThreads != 1 { threads = 1 }
        }
        singleThreadDepth += 1
        singleThreadLock.unlock()
        defer {
            singleThreadLock.lock()
            singleThreadDepth -= 1
            if singleThreadDepth == 0 && savedThreads != 1 { threads = savedThreads }
            singleThreadLock.unlock()
        }
        return try body()
    }

    private static let singleThreadLock = NSLock()
    private static var singleThreadDepth = 0
    private static var savedThreads = 1
}
