import XCTest
import Quant
import TensorIO
import CNF4
import TestSupport

final class Linear4bitTests: XCTestCase {
    func values(_ n: Int, seed: Int) -> [Float] {
        (0..<n).map { i in Float(sin(Double(i * 31 + seed) * 0.731) * 0.1) }
    }

    func check(out O: Int, in I: Int, rows N: Int, tileRows: Int?, type: QuantType, dq: Bool) throws {
        let q = try Quantizer.quantize(values(O * I, seed: 1), shape: [O, I], type: type, blockSize: 64, doubleQuant: dq)
        let layer = try Linear4bit(q, tileRows: tileRows)
        let w = Quantizer.dequantize(q)
        let x = values(N * I, seed: 2)
        var y = [Float](repeating: .nan, count: N * O)   // overwritten
        layer.forward(input: x, output: &y, rows: N)
        let yRef = Linear4bit.naiveForward(weight: w, input: x, rows: N, inFeatures: I, outFeatures: O)
        for k in 0..<y.count where abs(y[k] - yRef[k]) > 1e-5 { XCTFail("forward \(O)x\(I) [\(k)]: \(y[k]) vs \(yRef[k])"); return }
        let dy = values(N * O, seed: 3)
        var dx = [Float](repeating: 1, count: N * I)     // accumulates onto 1
        layer.backwardInput(gradOutput: dy, gradInput: &dx, rows: N)
        let dxRef = Linear4bit.naiveBackwardInput(weight: w, gradOutput: dy, rows: N, inFeatures: I, outFeatures: O)
        for k in 0..<dx.count where abs(dx[k] - (1 + dxRef[k])) > 1e-5 { XCTFail("backward \(O)x\(I) [\(k)]: \(dx[k]) vs \(1 + dxRef[k])"); return }
    }

    func testMatchesNaiveOracle() throws {
        try check(out: 176, in: 64, rows: 7, tileRows: nil, type: .nf4, dq: true)
        try check(out: 64, in: 176, rows: 5, tileRows: 3, type: .nf4, dq: true)      // blocks cross rows, 22 tiles
        try check(out: 37, in: 33, rows: 4, tileRows: 5, type: .fp4, dq: false)      // odd in_features: rows start mid-byte
        try check(out: 300, in: 128, rows: 3, tileRows: 64, type: .nf4, dq: false)   // short last tile
    }

    /// bf16 compute against an oracle built from TensorIO's independent bf16 conversion: operands
    /// rounded to bf16, exact sums in Double, the sum rounded to bf16. Our fp32 accumulation may land
    /// on the other side of a bf16 rounding midpoint, so a value may be one bf16 ulp off — rarely.
    func testBF16ComputeMatchesRoundedOracle() throws {
        func bf16(_ x: Float) -> Float { BFloat16.toFloat(BFloat16.fromFloat(x)) }
        func ulp(_ x: Float) -> Float { Float(bitPattern: (bf16(x).bitPattern & 0x7F80_0000)) / 128 }
        // 9 rows: the fused kernels; 37: the tiles (by AVX512-BF16 products where the CPU has them).
        for N in [9, 37] { try checkBF16Compute(rows: N, bf16: bf16, ulp: ulp) }
    }

    private func checkBF16Compute(rows N: Int, bf16: (Float) -> Float, ulp: (Float) -> Float) throws {
        let (O, I) = (96, 160)
        let q = try Quantizer.quantize(values(O * I, seed: 1), shape: [O, I], type: .nf4, blockSize: 64, doubleQuant: true)
        let layer = try Linear4bit(q, tileRows: 40, compute: .bf16)   // 3 tiles
        let w = Quantizer.dequantize(q).map(bf16)
        let x = values(N * I, seed: 2).map { $0 * 7 }, bias = values(O, seed: 4)
        var y = [Float](repeating: .nan, count: N * O)
        layer.forward(input: x, output: &y, rows: N, bias: bias)
        let xr = x.map(bf16)
        var exact = 0
        for n in 0..<N { for o in 0..<O {
            var sum = Double(bf16(bias[o]))
            for i in 0..<I { sum += Double(xr[n * I + i]) * Double(w[o * I + i]) }
            let want = bf16(Float(sum)), got = y[n * O + o]
            XCTAssertEqual(got.bitPattern & 0xFFFF, 0, "output is a bf16 value")
            XCTAssertLessThanOrEqual(abs(got - want), ulp(want), "forward \(N) rows [\(n), \(o)]: \(got) vs \(want)")
            if got == want { exact += 1 }
        } }
        XCTAssertGreaterThanOrEqual(exact, N * O * 99 / 100)

        let dy = values(N * O, seed: 3)
        var dx = [Float](repeating: 1, count: N * I)     // accumulates onto 1, in fp32
        layer.backwardInput(gradOutput: dy, gradInput: &dx, rows: N)
        let dyr = dy.map(bf16)
        exact = 0
        for n in 0..<N { for i in 0..<I {
            var sum = 0.0
            for o in 0..<O { sum += Double(dyr[n * O + o]) * Double(w[o * I + i]) }
            let want = bf16(Float(sum)), got = dx[n * I + i] - 1
            XCTAssertLessThanOrEqual(abs(got - want), ulp(want) + 1.2e-7, "backward \(N) rows [\(n), \(i)]: \(got) vs \(want)")
            if abs(got - want) <= 1.2e-7 { exact += 1 }
        } }
        XCTAssertGreaterThanOrEqual(exact, N * I * 99 / 100)
    }

    /// CNF4's bf16 GEMM (AVX512-BF16) against sums in Double of the same bf16 values: both B layouts, sizes
    /// off the 8 × 32 kernel and odd depths, the columns split in two calls, accumulating onto C.
    /// Tolerance: fp32 sums of `depth` exact products of magnitude ≤ 1, a few ulp of 2^-24 per term.
    func testBF16GemmMatchesExactSums() throws {
        guard qlora_bf16_gemm_available() == 1 else { throw XCTSkip("no AVX512-BF16 on this CPU (or QLORA_NF4_ISA < 3)") }
        func bf16(_ x: Float) -> Float { BFloat16.toFloat(BFloat16.fromFloat(x)) }
        for (M, N, K) in [(13, 45, 37), (8, 32, 2), (1, 1, 1), (17, 70, 576), (40, 33, 129)] {
            let a = (0..<(M * K)).map { bf16(Float(sin(Double($0) * 0.37))) }
            let bt = (0..<(N * K)).map { bf16(Float(cos(Double($0) * 0.11))) }   // (N, K)
            var b = [Float](repeating: 0, count: K * N)                        // (K, N)
            for n in 0..<N { for k in 0..<K { b[k * N + n] = bt[n * K + k] } }
            var packed = [UInt16](repeating: 0xFFFF, count: Int(qlora_bf16_packed_rows_size(Int32(M), Int32(K))))
            var panel = [UInt16](repeating: 0xFFFF, count: Int(qlora_bf16_panel_size(Int32(K))))
            qlora_bf16_pack_rows(a, Int32(K), Int32(M), Int32(K), &packed)
            for transposed in [true, false] {
                var c = [Float](repeating: 1, count: M * N)
                let split = N / 3
                for (n0, n1) in [(0, split), (split, N)] {
                    qlora_bf16_gemm(packed, Int32(M), Int32(K), transposed ? bt : b, Int32(transposed ? K : N), transposed ? 1 : 0,
                                    Int32(n0), Int32(n1), &c, Int32(N), 1, &panel)
                }
                for m in 0..<M { for n in 0..<N {
                    var want = 1.0
                    for k in 0..<K { want += Double(a[m * K + k]) * Double(bt[n * K + k]) }
                    XCTAssertEqual(Double(c[m * N + n]), want, accuracy: Double(K + 1) * 4 * 0x1p-24,
                                   "\(M)x\(N)x\(K) transposed \(transposed) [\(m), \(n)]")
                } }
            }
        }
    }

    /// The fused few-row kernels (CNF4) against the naive oracle and the tiled sgemm path, for rows up to
    /// the limit, both compute dtypes, NF4 and FP4, blocks of 64 and 128, one row and many.
    func testFusedFewRowKernelsMatchTheOracleAndTheTiledPath() throws {
        XCTAssertGreaterThanOrEqual(qlora_nf4_isa(), 0)
        // The detection: the best set this CPU has (x86-64 Linux), unless QLORA_NF4_ISA caps it.
        if ProcessInfo.processInfo.environment["QLORA_NF4_ISA"] == nil,
           let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
            let flags = Set(line.split(separator: " ").map(String.init))
            let expected: Int32 = ["avx512f", "avx512bw", "avx512vl"].allSatisfy(flags.contains) ? (flags.contains("avx512_bf16") ? 3 : 2)
                : flags.contains("avx2") && flags.contains("fma") ? 1 : 0
            XCTAssertEqual(qlora_nf4_isa(), expected, "fused kernel set for this CPU's flags")
        }
        for (O, I, bs, type) in [(96, 128, 64, QuantType.nf4), (40, 256, 128, .fp4), (1, 64, 64, .nf4), (300, 192, 64, .nf4)] {
            let q = try Quantizer.quantize(values(O * I, seed: 7), shape: [O, I], type: type, blockSize: bs, doubleQuant: true)
            let w = Quantizer.dequantize(q)
            for compute in [ComputeDType.fp32, .bf16] {
                let fused = try Linear4bit(q, tileRows: nil, compute: compute, fusedRowLimit: 16, fusedGradientRowLimit: 16)
                let tiled = try Linear4bit(q, tileRows: nil, compute: compute, fusedRowLimit: 0, fusedGradientRowLimit: 0)
                XCTAssertEqual(try Linear4bit(q).fusedRowLimit, Linear4bit.defaultFusedRowLimit)
                for N in [1, 3, 16] {
                    let x = values(N * I, seed: 8 + N)
                    var a = [Float](repeating: .nan, count: N * O), b = a
                    fused.forward(input: x, output: &a, rows: N)
                    tiled.forward(input: x, output: &b, rows: N)
                    let dy = values(N * O, seed: 9 + N)
                    var da = [Float](repeating: 0.5, count: N * I), db = da
                    fused.backwardInput(gradOutput: dy, gradInput: &da, rows: N)
                    tiled.backwardInput(gradOutput: dy, gradInput: &db, rows: N)
                    let tag = "\(O)x\(I) bs \(bs) \(type) \(compute) N \(N)"
                    if compute == .fp32 {
                        // Sums of I (or O) products of O(0.1) values in another order: fp32 rounding.
                        assertClose(a, Linear4bit.naiveForward(weight: w, input: x, rows: N, inFeatures: I, outFeatures: O), rtol: 0, atol: 1e-5, "forward " + tag)
                        assertClose(da, Linear4bit.naiveBackwardInput(weight: w, gradOutput: dy, rows: N, inFeatures: I, outFeatures: O).map { $0 + 0.5 },
                                    rtol: 0, atol: 1e-5, "backward " + tag)
                    }
                    // Against the tiled path: fp32 rounding, or under bf16 one bf16 ulp where a rounding flips.
                    let bf16 = compute == .bf16
                    assertClose(a, b, rtol: bf16 ? 4e-3 : 0, atol: bf16 ? 1e-6 : 1e-5, "fused vs tiled forward " + tag)
                    assertClose(da, db, rtol: bf16 ? 4e-3 : 0, atol: bf16 ? 1e-5 : 1e-5, "fused vs tiled backward " + tag)
                }
            }
        }
    }

    func testDequantizeRangeAgreesWithFullDequantize() throws {
        let q = try Quantizer.quantize(values(33 * 37, seed: 5), shape: [33, 37], type: .nf4, blockSize: 32, doubleQuant: true)
        let full = Quantizer.dequantize(q)
        for (lo, hi) in [(0, 1), (1, 2), (3, 70), (31, 33), (64, 1221), (1220, 1221)] {
            var part = [Float](repeating: .nan, count: hi - lo)
            part.withUnsafeMutableBufferPointer { Quantizer.dequantize(q, elements: lo..<hi, into: $0.baseAddress!) }
            XCTAssertEqual(part.map(\.bitPattern), full[lo..<hi].map(\.bitPattern), "\(lo)..<\(hi)")
        }
    }

    /// The tiled path's C decoder (CNF4, this machine's instruction set; CI also runs it capped to
    /// AVX-512, AVX2 and portable) gives the Swift decoder's values bit for bit, fp32 and bf16-rounded,
    /// from any block-aligned start. Scales span 1e-30..1e4 and one block is all zero.
    func testVectorDequantizeMatchesTheSwiftDecoderBitForBit() throws {
        for (type, bs, dq) in [(QuantType.nf4, 64, true), (.nf4, 64, false), (.fp4, 128, true), (.nf4, 32, false)] {
            let O = 12, I = 256
            var v = values(O * I, seed: 11).enumerated().map { i, x in x * Float(pow(10.0, Double(i % 35) - 30)) }
            for i in 0..<bs { v[3 * bs + i] = 0 }
            let q = try Quantizer.quantize(v, shape: [O, I], type: type, blockSize: bs, doubleQuant: dq)
            let scales = q.effectiveAbsmax, table = QuantTables.table(type)
            for (round, expected) in [(Int32(0), Quantizer.dequantize(q)), (1, bf16Values(q))] {
                for (e0, count) in [(0, O * I), (bs, 5 * bs), (O * I - bs, bs)] {
                    var out = [Float](repeating: .nan, count: count)
                    qlora_nf4_dequantize(q.packed, scales, table, Int32(bs), Int64(e0), Int64(count), round, &out)
                    XCTAssertEqual(out.map(\.bitPattern), expected[e0..<(e0 + count)].map(\.bitPattern),
                                   "\(type) bs \(bs) dq \(dq) bf16 \(round) at \(e0), ISA \(qlora_nf4_isa())")
                }
            }
        }
    }

    private func bf16Values(_ q: QuantizedTensor) -> [Float] {
        var out = [Float](repeating: .nan, count: q.count)
        out.withUnsafeMutableBufferPointer { Quantizer.dequantizeBF16(q, elements: 0..<q.count, into: $0.baseAddress!) }
        return out
    }

    func testRejectsNon2DWeights() throws {
        let q = try Quantizer.quantize([1, 2, 3, 4], shape: [4], type: .nf4, blockSize: 64, doubleQuant: false)
        XCTAssertThrowsError(try Linear4bit(q)) { e in
            XCTAssertEqual((e as? LocalizedError)?.errorDescription, "inconsistent 4-bit quantized tensor: a 4-bit linear weight must be 2-D [out, in], got shape [4]")
        }
    }
}
