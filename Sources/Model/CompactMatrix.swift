import Foundation
import Kernels

/// A frozen fp32 matrix (rows, columns) held in fewer bytes when that loses nothing: every value
/// decodes back to the very same fp32 bits, so the model computes what it would from the fp32
/// array. Used for the token embedding (and a tied head), the largest frozen tensor of a small
/// model that 4-bit quantization leaves alone (SmolLM2-135M: 49152 × 576, 113 MB in fp32).
///
/// Two encodings, tried in order:
/// - int8 blocks: each run of 32 values of a row is q·d with q an integer in [-127, 127] and one fp32
///   scale d per block (1.125 bytes a value). A GGUF Q8_0 tensor dequantized to fp32 has exactly this
///   form (ggml's block_q8_0: d = amax/127 stored as f16, values d·q), so the embedding of a Q8_0
///   GGUF comes back to its own size (30 MB for SmolLM2).
/// - bf16: every value's low 16 bits are zero (a bf16 checkpoint loaded to fp32): 2 bytes a value.
///
/// Products decode `tileRows` rows at a time into scratch and run sgemm on the tile, so the
/// full-precision matrix is never in memory; decoding 113 MB costs a few ms, against ~1 s of
/// a SmolLM2 training step.
public final class CompactMatrix: @unchecked Sendable {   // immutable after init
    public enum Encoding: Equatable {
        case int8Blocks   // codes (rows·columns) and scales (rows·columns / 32)
        case bf16         // high halves (rows·columns)
    }
    public let rows: Int, columns: Int
    public let encoding: Encoding
    static let block = 32
    /// Rows decoded per product tile: 2048 × 576 floats = 4.7 MB for SmolLM2.
    nonisolated(unsafe) static var tileRows = 2048   // var: tests force several tiles
    private let codes: [Int8]
    private let scales: [Float]
    private let halves: [UInt16]

    private init(rows: Int, columns: Int, encoding: Encoding, codes: [Int8] = [], scales: [Float] = [], halves: [UInt16] = []) {
        self.rows = rows; self.columns = columns; self.encoding = encoding
        self.codes = codes; self.scales = scales; self.halves = halves
    }

    /// The compact form of `values` (rows, columns), or nil when no encoding reproduces every
    /// value bit for bit (then the fp32 array is kept as it is).
    public static func lossless(_ values: [Float], rows: Int, columns: Int) -> CompactMatrix? {
        guard rows > 0, columns > 0, values.count == rows * columns else { return nil }
        return values.withUnsafeBufferPointer { v in
            if columns % block == 0, let (codes, scales) = int8Blocks(v) {
                return CompactMatrix(rows: rows, columns: columns, encoding: .int8Blocks, codes: codes, scales: scales)
            }
            if v.allSatisfy({ $0.bitPattern & 0xFFFF == 0 }) {
                return CompactMatrix(rows: rows, columns: columns, encoding: .bf16, halves: v.map { UInt16($0.bitPattern >> 16) })
            }
            return nil
        }
    }

    /// Per block of 32: d = amax/127 and q = round(x/d); nil as soon as some Float(q)·d differs from
    /// x in any bit (-0.0 included) or a value is not finite.
    private static func int8Blocks(_ v: UnsafeBufferPointer<Float>) -> ([Int8], [Float])? {
        let blocks = v.count / block
        var codes = [Int8](repeating: 0, count: v.count), scales = [Float](repeating: 0, count: blocks)
        let ok = codes.withUnsafeMutableBufferPointer { cp in
            scales.withUnsafeMutableBufferPointer { sp in
                for b in 0..<blocks {
                    let x = v.baseAddress! + b * block
                    var amax: Float = 0
                    for i in 0..<block {
                        guard x[i].isFinite else { return false }
                        amax = max(amax, abs(x[i]))
                    }
                    let d = amax / 127
                    for i in 0..<block {
                        let q = d > 0 ? (x[i] / d).rounded() : 0
                        guard abs(q) <= 127, (q * d).bitPattern == x[i].bitPattern else { return false }
                        cp[b * block + i] = Int8(q)
                    }
                    sp[b] = d
                }
                return true
            }
        }
        return ok ? (codes, scales) : nil
    }

    /// Bytes held (codes and scales, or the halves).
    public var byteCount: Int { codes.count + 4 * scales.count + 2 * halves.count }

    /// Row `r` decoded into `out` (columns).
    public func decode(row r: Int, into out: UnsafeMutablePointer<Float>) {
        let C = columns, src = r * C
        switch encoding {
        case .int8Blocks:
            codes.withUnsafeBufferPointer { cp in
                scales.withUnsafeBufferPointer { sp in
                    for b in 0..<(C / Self.block) {
                        let d = sp[src / Self.block + b], o = b * Self.block
                        for j in 0..<Self.block { out[o + j] = Float(cp[src + o + j]) * d }
                    }
                }
            }
        case .bf16:
            halves.withUnsafeBufferPointer { hp in
                for i in 0..<C { out[i] = Float(bitPattern: UInt32(hp[src + i]) << 16) }
            }
        }
    }

    /// Rows `range` decoded into `out` (range.count, columns), in parallel.
    public func decode(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let C = columns
        Parallel.forEachChunk(range.count, costPerItem: C) { chunk in
            for r in chunk { decode(row: range.lowerBound + r, into: out + r * C) }
        }
    }

    /// The whole matrix in fp32 (writers, tests).
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { buffer, count in
            decode(rows: 0..<rows, into: buffer.baseAddress!)
            count = rows * columns
        }
    }

    /// output (N, rows) = input (N, columns) · Wᵀ, one decoded tile of rows at a time (the tile's
    /// output columns are independent of the others, so tiling changes no sum).
    public func multiply(input x: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>, rows N: Int) {
        let R = rows, C = columns
        eachDecodedTile { r0, n, w in
            BLAS.sgemm(transposeA: false, transposeB: true, m: N, n: n, k: C,
                       a: x, lda: C, b: w, ldb: C, beta: 0, c: y + r0, ldc: R)
        }
    }

    /// gradInput (N, columns) += gradOutput (N, rows) · W, tile by tile (the sum over rows runs
    /// in tiles: float rounding may differ from one sgemm over all rows).
    public func accumulateInputGradient(gradOutput dy: UnsafePointer<Float>, gradInput dx: UnsafeMutablePointer<Float>, rows N: Int) {
        let R = rows, C = columns
        eachDecodedTile { r0, n, w in
            BLAS.sgemm(transposeA: false, transposeB: false, m: N, n: C, k: n,
                       a: dy + r0, lda: R, b: w, ldb: C, beta: 1, c: dx, ldc: C)
        }
    }

    /// Calls `body(firstRow, rowCount, tile)` for consecutive tiles of at most `tileRows` rows,
    /// each decoded into one scratch buffer (tileRows, columns) reused for all of them.
    private func eachDecodedTile(_ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let tile = min(Self.tileRows, rows)
        ScratchPool.withBuffer(tile * columns) { w in   // (tile, C)
            for r0 in stride(from: 0, to: rows, by: tile) {
                let n = min(tile, rows - r0)
                decode(rows: r0..<(r0 + n), into: w)
                body(r0, n, w)
            }
        }
    }
}
