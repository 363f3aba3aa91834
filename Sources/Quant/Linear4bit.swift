import Foundation
import Kernels
import CNF4

/// Frozen 4-bit linear layer (QLoRA): y = x · dequant(W)ᵀ, dx += dy · dequant(W); no weight gradient.
///
/// Legend: N rows of the input (B*T), I in_features, O out_features, R rows of W per tile.
/// W (O, I) is never dequantized whole: a tile of R output rows (R·I floats, ≤ `tileElements`)
/// is dequantized into a scratch buffer (in parallel over its rows, from `ScratchPool`), then one
/// sgemm split over the cores uses it. Peak extra memory: one tile per call, independent of the model size.
/// The result is bit-identical to the naive oracle "dequantize everything, then multiply" up to
/// sgemm's own summation order (the dequantized values are exactly bitsandbytes').
///
/// `compute: .bf16` is bitsandbytes' `bnb_4bit_compute_dtype=torch.bfloat16` (MatMul4Bit): the layer
/// input and the dequantized weight are rounded to bf16, multiplied with fp32 accumulation, and the
/// product rounded to bf16; backward rounds the incoming gradient, the weight and the input gradient
/// the same way (autograd through the bf16 casts). Emulated exactly with rounded fp32 operands.
/// The precision of a 4-bit layer's base product; the raw value is the pipeline's spelling.
public enum ComputeDType: String, Sendable {
    case fp32, bf16
    /// transformers' `bnb_4bit_compute_dtype` spelling.
    public var torchName: String { self == .fp32 ? "float32" : "bfloat16" }
}

public final class Linear4bit {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: QuantizedTensor
    /// Rows of W per tile: about 1 M floats (4 MB; a whole SmolLM-135M projection) — large enough
    /// for sgemm efficiency and few parallel dispatches. Measured on SmolLM training steps (2 cores,
    /// interleaved runs): 256 K floats 193–215 tok/s, 1 M 242–251, 4 M 215–235.
    public let tileRows: Int
    public static let tileElements = 1024 * 1024
    /// Precision of the base product (the LoRA path outside this layer stays fp32).
    public let compute: ComputeDType
    /// Forward passes of at most this many rows use the fused kernel (CNF4: codes decoded row by row
    /// into L1 and used at once); larger ones dequantize tiles for sgemm. 0: never fused.
    public let fusedRowLimit: Int
    /// The same for the input gradient, whose fused form (an axpy per weight row) wins only for one row.
    public let fusedGradientRowLimit: Int
    /// Rows up to which the fused kernels beat tile + sgemm on a 576 -> 1536 layer (BENCHMARKS.md,
    /// "small-M 4-bit linear": forward 5.5x faster at 1 row, 1.6x at 8, even at 16; gradient 2.6x at 1 row, even at 2).
    public static let defaultFusedRowLimit = 16
    public static let defaultFusedGradientRowLimit = 1
    /// Each block's absmax as fp32 (double quantization resolved once), for the C kernels (fused products
    /// and tile dequantization); empty when rows do not start on block boundaries.
    let blockScales: [Float]

    public convenience init(_ weight: QuantizedTensor, compute: ComputeDType = .fp32) throws {
        try self.init(weight, tileRows: nil, compute: compute)
    }

    /// `tileRows` overrides the tile height (tests use tiny tiles to exercise tile edges).
    public init(_ weight: QuantizedTensor, tileRows requested: Int?, compute: ComputeDType = .fp32,
                fusedRowLimit: Int = Linear4bit.defaultFusedRowLimit,
                fusedGradientRowLimit: Int = Linear4bit.defaultFusedGradientRowLimit) throws {
        guard weight.shape.count == 2 else {
            throw QuantError.inconsistent("a 4-bit linear weight must be 2-D [out, in], got shape \(weight.shape)")
        }
        self.weight = weight
        self.compute = compute
        // The fused kernels need rows that start on a block boundary and blocks of whole 16-code groups.
        let fusible = weight.shape[1] % weight.blockSize == 0 && weight.blockSize % 16 == 0
        self.fusedRowLimit = fusible ? fusedRowLimit : 0
        self.fusedGradientRowLimit = fusible ? fusedGradientRowLimit : 0
        self.blockScales = fusible ? weight.effectiveAbsmax : []
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        if let requested {
            self.tileRows = max(1, min(outFeatures, requested))
        } else {
            // Equal tiles (a short last tile wastes sgemm efficiency), rows a multiple of 16.
            let tiles = max(1, (outFeatures * inFeatures + Linear4bit.tileElements - 1) / Linear4bit.tileElements)
            let rows = ((outFeatures + tiles - 1) / tiles + 15) / 16 * 16
            self.tileRows = max(1, min(outFeatures, rows))
        }
    }

    /// Dequantizes rows r0..<r1 of W into `tile` (r1-r0, I).
    /// Block-aligned rows go through CNF4's vector decoder (AVX-512 / AVX2 chosen at run time; the Swift
    /// decoder compiles to baseline SSE2): the same values bit for bit, 2-3x faster.
    func dequantizeRows(_ r0: Int, _ r1: Int, into tile: UnsafeMutablePointer<Float>) {
        let I = inFeatures
        let w = weight
        let bf16 = compute == .bf16
        if !blockScales.isEmpty {
            let bs = Int32(w.blockSize)
            withKernelOperands { packed, scales, t in
                Parallel.forEachChunk(r1 - r0, costPerItem: I) { rows in
                    qlora_nf4_dequantize(packed, scales, t, bs, Int64((r0 + rows.lowerBound) * I), Int64(rows.count * I),
                                         bf16 ? 1 : 0, tile + rows.lowerBound * I)
                }
            }
            return
        }
        Parallel.forEachChunk(r1 - r0, costPerItem: I) { rows in
            let lo = (r0 + rows.lowerBound) * I, hi = (r0 + rows.upperBound) * I
            if bf16 { Quantizer.dequantizeBF16(w, elements: lo..<hi, into: tile + rows.lowerBound * I) }
            else { Quantizer.dequantize(w, elements: lo..<hi, into: tile + rows.lowerBound * I) }
        }
    }

    /// The codes, the blocks' fp32 scales and the code table as the CNF4 kernels take them.
    private func withKernelOperands(_ body: (UnsafePointer<UInt8>?, UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void) {
        let table = QuantTables.table(weight.type)
        weight.packed.withUnsafeBufferPointer { packed in
            blockScales.withUnsafeBufferPointer { scales in
                table.withUnsafeBufferPointer { t in body(packed.baseAddress, scales.baseAddress, t.baseAddress) }
            }
        }
    }

    /// Walks W in tiles of `tileRows` output rows: each tile is dequantized into one bounded
    /// scratch buffer (R, I) and handed to `body(r0, r1, tile)`; the whole matrix is never
    /// dequantized at once.
    private func forEachTile(_ body: (_ r0: Int, _ r1: Int, _ tile: UnsafeMutablePointer<Float>) -> Void) {
        let I = inFeatures, O = outFeatures, R = tileRows
        ScratchPool.withBuffer(R * I) { tile in   // (R, I)
            var r0 = 0
            while r0 < O {
                let r1 = min(O, r0 + R)
                dequantizeRows(r0, r1, into: tile)
                body(r0, r1, tile)
                r0 = r1
            }
        }
    }

    /// input (N, I) -> output (N, O) + bias (O), overwritten. Under bf16 compute the bias, rounded to
    /// bf16, joins the sum before its rounding, as in bitsandbytes' `linear(x, W, bias)`.
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows N: Int, bias: [Float]? = nil) {
        let I = inFeatures, O = outFeatures
        if N == 0 || O == 0 { return }
        guard compute == .bf16 else {
            product(input: input, output: output, rows: N)
            if let bias { Elementwise.addBias(output, bias: bias, rows: N, channels: O) }
            return
        }
        ScratchPool.withBuffer(N * I) { x in   // (N, I) the input rounded to bf16
            BFloat16Rounding.round(input, into: x, count: N * I)
            product(input: x, output: output, rows: N)
        }
        guard let bias else { return BFloat16Rounding.round(output, count: N * O) }
        let b = bias.map(BFloat16Rounding.round)
        BFloat16Rounding.roundAddingBias(output, bias: b, rows: N, channels: O)
    }

    /// output (N, O) = input (N, I) · Wᵀ over the (compute-dtype) tiles.
    private func product(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows N: Int) {
        let I = inFeatures, O = outFeatures
        if N <= fusedRowLimit { return fusedProduct(input: input, output: output, rows: N) }
        if usesBF16Products { return bf16Product(input: input, output: output, rows: N) }
        forEachTile { r0, r1, tile in
            // output[:, r0..<r1] = input (N, I) · tileᵀ (I, r1-r0)
            BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: r1 - r0, k: I,
                       a: input, lda: I, b: tile, ldb: I, beta: 0, c: output + r0, ldc: O)
        }
    }

    /// gradInput (N, I) += gradOutput (N, O) · W (O, I).
    public func backwardInput(gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>, rows N: Int) {
        let I = inFeatures, O = outFeatures
        if N == 0 || O == 0 { return }
        guard compute == .bf16 else { return gradientProduct(gradOutput: gradOutput, into: gradInput, beta: 1, rows: N) }
        // bf16: the whole sum over O is rounded once, then accumulated in fp32 like the LoRA path's.
        ScratchPool.withBuffer(N * O) { dy in   // (N, O) the gradient rounded to bf16
            BFloat16Rounding.round(gradOutput, into: dy, count: N * O)
            ScratchPool.withBuffer(N * I) { dx in   // (N, I) this layer's input gradient
                gradientProduct(gradOutput: dy, into: dx, beta: 0, rows: N)
                BFloat16Rounding.round(dx, count: N * I)
                Elementwise.add(into: gradInput, dx, count: N * I)
            }
        }
    }

    /// into (N, I) = beta · into + gradOutput (N, O) · W (O, I) over the tiles.
    private func gradientProduct(gradOutput: UnsafePointer<Float>, into: UnsafeMutablePointer<Float>, beta: Float, rows N: Int) {
        let I = inFeatures, O = outFeatures
        if N <= fusedGradientRowLimit {
            if beta == 0 { Elementwise.zero(into, count: N * I) }
            return fusedGradient(gradOutput: gradOutput, into: into, rows: N)
        }
        if usesBF16Products { return bf16Gradient(gradOutput: gradOutput, into: into, beta: beta, rows: N) }
        var first = true
        forEachTile { r0, r1, tile in
            // into += gradOutput[:, r0..<r1] (N, r1-r0) · tile (r1-r0, I)
            BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: I, k: r1 - r0,
                       a: gradOutput + r0, lda: O, b: tile, ldb: I, beta: first ? beta : 1, c: into, ldc: I)
            first = false
        }
    }

    /// bf16 compute on a CPU with AVX512-BF16: the tiles' products by vdpbf16ps (CNF4's bf16 GEMM, about
    /// twice sgemm's rate) instead of fp32 sgemm over the rounded values — the same exact products,
    /// summed in fp32 in another order (and denormals flushed to zero, as the instruction does).
    var usesBF16Products: Bool { compute == .bf16 && Self.hasBF16Products }
    /// True when this CPU runs bf16 compute's products with AVX512-BF16 (else the exact fp32 emulation).
    public static var hasBF16Products: Bool { qlora_bf16_gemm_available() == 1 }

    /// Calls `body(c0, c1, panel)` for column ranges of `0..<columns` in whole kernel panels, over the
    /// cores, each with its own scratch for one packed panel of B at this depth.
    private func forEachPanelRange(_ columns: Int, rows N: Int, depth K: Int,
                                   _ body: (Int, Int, UnsafeMutablePointer<UInt16>) -> Void) {
        let panelSize = Int(qlora_bf16_panel_size(Int32(K))), width = panelSize / ((K + 1) / 2 * 2)
        Parallel.forEachChunk((columns + width - 1) / width, costPerItem: width * N * K / 2) { range in
            ScratchPool.withBuffer((panelSize + 1) / 2) { raw in   // one packed B panel (bf16)
                body(range.lowerBound * width, min(columns, range.upperBound * width),
                     UnsafeMutableRawPointer(raw).assumingMemoryBound(to: UInt16.self))   // only C reads it
            }
        }
    }

    /// bf16 bits of `rows` rows of `a` (depth values each, stride lda) in the kernel's packed layout, for `body`.
    private func withPackedRows<R>(_ a: UnsafePointer<Float>, lda: Int, rows: Int, depth: Int,
                                   _ body: (UnsafePointer<UInt16>) -> R) -> R {
        let count = Int(qlora_bf16_packed_rows_size(Int32(rows), Int32(depth)))
        let paddedDepth = (depth + 1) / 2 * 2, groupRows = Int(qlora_bf16_packed_rows_size(1, Int32(depth))) / paddedDepth
        return ScratchPool.withBuffer((count + 1) / 2) { raw in   // (rows padded, depth padded) bf16
            let packed = UnsafeMutableRawPointer(raw).assumingMemoryBound(to: UInt16.self)   // only C reads it
            // Whole kernel-height groups per core; the last group gets the zero padding.
            Parallel.forEachChunk((rows + groupRows - 1) / groupRows, costPerItem: groupRows * depth) { groups in
                let r0 = groups.lowerBound * groupRows, r1 = min(rows, groups.upperBound * groupRows)
                qlora_bf16_pack_rows(a + r0 * lda, Int32(lda), Int32(r1 - r0), Int32(depth), packed + r0 * paddedDepth)
            }
            return body(packed)
        }
    }

    /// output (N, O) = input (N, I) · Wᵀ, input already bf16 values; each tile's output columns over the cores.
    private func bf16Product(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows N: Int) {
        let I = inFeatures, O = outFeatures
        withPackedRows(input, lda: I, rows: N, depth: I) { x in
            forEachTile { r0, r1, tile in
                forEachPanelRange(r1 - r0, rows: N, depth: I) { c0, c1, panel in
                    qlora_bf16_gemm(x, Int32(N), Int32(I), tile, Int32(I), 1, Int32(c0), Int32(c1), output + r0, Int32(O), 0, panel)
                }
            }
        }
    }

    /// into (N, I) = beta · into + gradOutput (N, O) · W, gradOutput already bf16 values: per tile of W's rows,
    /// that slice of gradOutput packed, the input columns over the cores.
    private func bf16Gradient(gradOutput: UnsafePointer<Float>, into: UnsafeMutablePointer<Float>, beta: Float, rows N: Int) {
        let I = inFeatures, O = outFeatures
        if beta == 0 { Elementwise.zero(into, count: N * I) }
        forEachTile { r0, r1, tile in
            let K = r1 - r0
            withPackedRows(gradOutput + r0, lda: O, rows: N, depth: K) { dy in
                forEachPanelRange(I, rows: N, depth: K) { c0, c1, panel in
                    qlora_bf16_gemm(dy, Int32(N), Int32(K), tile, Int32(I), 0, Int32(c0), Int32(c1), into, Int32(I), 1, panel)
                }
            }
        }
    }

    /// output (N, O) = input (N, I) · Wᵀ by the fused kernel, output rows split over the cores.
    private func fusedProduct(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows N: Int) {
        let I = inFeatures, O = outFeatures, bs = Int32(weight.blockSize), round: Int32 = compute == .bf16 ? 1 : 0
        withKernelOperands { packed, scales, t in
            Parallel.forEachChunk(O, costPerItem: I * (N + 1)) { range in
                // (I) one decoded weight row; under bf16 also (N, I) bf16 input bits for the AVX512-BF16 path
                ScratchPool.withBuffer(I + (round != 0 ? (N * I + 1) / 2 : 0)) { w in
                    qlora_nf4_forward(packed, scales, t, bs, Int32(I), Int32(O),
                                      Int32(range.lowerBound), Int32(range.upperBound), input, Int32(N), output, round, w)
                }
            }
        }
    }

    /// into (N, I) += gradOutput (N, O) · W by the fused kernel, block-aligned column slices split over the cores.
    private func fusedGradient(gradOutput: UnsafePointer<Float>, into: UnsafeMutablePointer<Float>, rows N: Int) {
        let I = inFeatures, O = outFeatures, bs = weight.blockSize, round: Int32 = compute == .bf16 ? 1 : 0
        withKernelOperands { packed, scales, t in
            Parallel.forEachChunk(I / bs, costPerItem: bs * O * (N + 1)) { range in
                let i0 = range.lowerBound * bs, i1 = range.upperBound * bs
                ScratchPool.withBuffer(i1 - i0) { w in   // (i1 - i0) one decoded slice of a weight row
                    qlora_nf4_backward(packed, scales, t, Int32(bs), Int32(I), Int32(O),
                                       Int32(i0), Int32(i1), gradOutput, Int32(N), into, round, w)
                }
            }
        }
    }

    /// The whole dequantized weight (O, I) — for tests, export and LoRA merging only.
    public func dequantizedWeight() -> [Float] { Quantizer.dequantize(weight) }

    /// Which compute dtype a checkpoint's `bnb_4bit_compute_dtype` names (transformers writes
    /// "float32" / "bfloat16"; older files "torch.bfloat16"); nil for one not supported.
    public static func computeDType(named name: String) -> ComputeDType? {
        switch name.hasPrefix("torch.") ? String(name.dropFirst(6)) : name {
        case "float32": return .fp32
        case "bfloat16": return .bf16
        default: return nil
        }
    }

    // MARK: - Naive oracle (tests)

    /// Reference: full dequantization and triple loops in Double.
    public static func naiveForward(weight: [Float], input: [Float], rows N: Int, inFeatures I: Int, outFeatures O: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * O)
        for n in 0..<N {
            for o in 0..<O {
                var s = 0.0
                for i in 0..<I { s += Double(input[n * I + i]) * Double(weight[o * I + i]) }
                out[n * O + o] = Float(s)
            }
        }
        return out
    }

    public static func naiveBackwardInput(weight: [Float], gradOutput: [Float], rows N: Int, inFeatures I: Int, outFeatures O: Int) -> [Float] {
        var dx = [Float](repeating: 0, count: N * I)
        for n in 0..<N {
            for i in 0..<I {
                var s = 0.0
                for o in 0..<O { s += Double(gradOutput[n * O + o]) * Double(weight[o * I + i]) }
                dx[n * I + i] = Float(s)
            }
        }
        return dx
    }
}
