import Foundation

/// Machine calibration for `qlora-run bench`: what OpenBLAS sgemm reaches here, all cores.
public enum KernelBenchmark {
    /// Median GFLOP/s of 5 timed square sgemms (size × size × size, 2·size³ FLOPs each) after a warm-up.
    public static func sgemmGFLOPS(size: Int) -> Double {
        let n = max(1, size)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        var rng = RandomStream(seed: 0, stream: "bench/sgemm")
        for i in 0..<(n * n) { a[i] = Float(rng.nextUniform()) - 0.5; b[i] = Float(rng.nextUniform()) - 0.5 }
        func run() { BLAS.sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: c, ldc: n) }
        run()
        var rates: [Double] = []
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            run()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            rates.append(2 * Double(n) * Double(n) * Double(n) / max(dt, 1e-9) / 1e9)
        }
        return rates.sorted()[rates.count / 2]
    }
}
