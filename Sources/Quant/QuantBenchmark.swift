import Foundation
import Kernels

/// Measurements for the CLI's bench command (issue 4, "Performance"): medians of several runs.
/// Keys: quantize_mb_per_s, dequantize_mb_per_s (MB of fp32 weights per second, NF4 block 64 +
/// double quant; dequantization into a reused buffer), and for each linear shape "linear4bit_<in>x<out>_ms", "sgemm_<in>x<out>_ms",
/// "linear4bit_<in>x<out>_ratio" (4-bit forward time / fp32 sgemm time, M = 1024 rows),
/// plus bits_per_param.
public enum QuantBenchmark {
    public static let linearShapes = [(512, 1408), (576, 1536)]

    static func median(_ runs: Int, _ body: () -> Void) -> Double {
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }

    public static func run(runs: Int = 7) -> [String: Double] {
        var result: [String: Double] = [:]
        var rng = RandomStream(seed: 7, stream: "quant-bench")
        // 16 M weights (64 MB of fp32).
        let n = 4096 * 4096
        let w = (0..<n).map { _ in Float(rng.nextUniform() - 0.5) * 0.04 }
        var q: QuantizedTensor? = nil
        let tq = median(max(3, runs / 2)) { q = try? Quantizer.quantize(w, shape: [4096, 4096], type: .nf4, blockSize: 64, doubleQuant: true) }
        result["quantize_mb_per_s"] = Double(n * 4) / 1e6 / tq
        if let q {
            // Into one reused buffer, as the 4-bit linear layer does: the kernel's rate, not the
            // page faults of a fresh 64 MB array (which made this figure swing between 1.7 and 18 GB/s).
            var out = [Float](repeating: 0, count: n)
            let td = out.withUnsafeMutableBufferPointer { o in median(max(3, runs / 2)) { Quantizer.dequantize(q, into: o.baseAddress!) } }
            result["dequantize_mb_per_s"] = Double(n * 4) / 1e6 / td
            result["bits_per_param"] = q.bitsPerParameter
        }
        let M = 1024
        for (inF, outF) in linearShapes {
            let weight = (0..<(inF * outF)).map { _ in Float(rng.nextUniform() - 0.5) * 0.04 }
            let x = (0..<(M * inF)).map { _ in Float(rng.nextUniform() - 0.5) }
            var y = [Float](repeating: 0, count: M * outF)
            guard let qw = try? Quantizer.quantize(weight, shape: [outF, inF], type: .nf4, blockSize: 64, doubleQuant: true),
                  let layer = try? Linear4bit(qw) else { continue }
            let dense = Quantizer.dequantize(qw)
            let ts = median(runs) {
                BLAS.sgemm(transposeA: false, transposeB: true, m: M, n: outF, k: inF, a: x, lda: inF, b: dense, ldb: inF, beta: 0, c: &y, ldc: outF)
            }
            let tl = median(runs) { layer.forward(input: x, output: &y, rows: M) }
            let key = "\(inF)x\(outF)"
            result["sgemm_\(key)_ms"] = ts * 1000
            result["linear4bit_\(key)_ms"] = tl * 1000
            result["linear4bit_\(key)_ratio"] = tl / ts
        }
        smallRows(into: &result, runs: runs, rng: &rng)
        return result
    }

    /// Issue 15 §2: for M = 1 … 1024 rows through a SmolLM-shaped 576 -> 1536 layer, forward and input
    /// gradient by fp32 sgemm, by tiles + sgemm, and by the fused kernels (forced on at every M), in
    /// microseconds: keys "rows_<M>_<sgemm|tiled|fused>_<forward|backward>_us"; up to the fused limit
    /// also the fused bf16-compute forward, "rows_<M>_fused_bf16_forward_us"; at every M the tiled bf16-compute
    /// forward and input gradient, "rows_<M>_tiled_bf16_<forward|backward>_us".
    static func smallRows(into result: inout [String: Double], runs: Int, rng: inout RandomStream) {
        let (inF, outF) = (576, 1536)
        let weight = (0..<(inF * outF)).map { _ in Float(rng.nextUniform() - 0.5) * 0.04 }
        guard let qw = try? Quantizer.quantize(weight, shape: [outF, inF], type: .nf4, blockSize: 64, doubleQuant: true),
              let tiled = try? Linear4bit(qw, tileRows: nil, fusedRowLimit: 0, fusedGradientRowLimit: 0) else { return }
        let dense = Quantizer.dequantize(qw)
        for M in [1, 2, 4, 8, 16, 64, 256, 1024] {
            guard let fused = try? Linear4bit(qw, tileRows: nil, fusedRowLimit: M, fusedGradientRowLimit: M) else { continue }
            let x = (0..<(M * inF)).map { _ in Float(rng.nextUniform() - 0.5) }
            let dy = (0..<(M * outF)).map { _ in Float(rng.nextUniform() - 0.5) }
            var y = [Float](repeating: 0, count: M * outF), dx = [Float](repeating: 0, count: M * inF)
            let key = "rows_\(M)_"
            result[key + "sgemm_forward_us"] = 1e6 * median(runs) {
                BLAS.sgemm(transposeA: false, transposeB: true, m: M, n: outF, k: inF, a: x, lda: inF, b: dense, ldb: inF, beta: 0, c: &y, ldc: outF)
            }
            result[key + "sgemm_backward_us"] = 1e6 * median(runs) {
                BLAS.sgemm(transposeA: false, transposeB: false, m: M, n: inF, k: outF, a: dy, lda: outF, b: dense, ldb: inF, beta: 1, c: &dx, ldc: inF)
            }
            for (name, layer) in [("tiled", tiled), ("fused", fused)] {
                result[key + name + "_forward_us"] = 1e6 * median(runs) { layer.forward(input: x, output: &y, rows: M) }
                result[key + name + "_backward_us"] = 1e6 * median(runs) { layer.backwardInput(gradOutput: dy, gradInput: &dx, rows: M) }
            }
            // bf16 compute (bnb_4bit_compute_dtype=bfloat16): the fused forward and the tiles' products use
            // AVX512-BF16 where present (rounding the operands included in the times).
            if let tiledBF16 = try? Linear4bit(qw, tileRows: nil, compute: .bf16, fusedRowLimit: 0, fusedGradientRowLimit: 0) {
                result[key + "tiled_bf16_forward_us"] = 1e6 * median(runs) { tiledBF16.forward(input: x, output: &y, rows: M) }
                result[key + "tiled_bf16_backward_us"] = 1e6 * median(runs) { tiledBF16.backwardInput(gradOutput: dy, gradInput: &dx, rows: M) }
            }
            if M <= Linear4bit.defaultFusedRowLimit,
               let fusedBF16 = try? Linear4bit(qw, tileRows: nil, compute: .bf16, fusedRowLimit: M, fusedGradientRowLimit: M) {
                result[key + "fused_bf16_forward_us"] = 1e6 * median(runs) { fusedBF16.forward(input: x, output: &y, rows: M) }
            }
        }
    }
}
