import Foundation
import Kernels

/// Nearest-value coder over a code table, exactly like bitsandbytes 0.50.2's pure-torch CPU path:
/// sort the table by value, take float32 midpoints (a+b)/2 of neighbours, and
/// `torch.bucketize(scaled, midpoints, right=False)` — the bucket index is the number of
/// midpoints STRICTLY below the value, so a value exactly on a midpoint goes to the LOWER value.
/// For FP4 the stable sort puts +0 (code 0) before -0 (code 8), so small positives in
/// (0, 0.0026] get code 8 ("-0") — reproduced on purpose (quant_README.md).
struct Coder {
    let midpoints: [Float]     // (table.count - 1) ascending
    let codes: [UInt8]         // code of the i-th smallest table value

    init(table: [Float]) {
        let order = table.indices.sorted { (table[$0], $0) < (table[$1], $1) }  // stable by value
        codes = order.map { UInt8($0) }
        let sorted = order.map { table[$0] }
        midpoints = (0..<(sorted.count - 1)).map { (sorted[$0] + sorted[$0 + 1]) / 2 }
    }

    /// Number of midpoints < v (binary search; NaN -> 0).
    @inline(__always)
    func code(_ v: Float) -> UInt8 {
        var lo = 0, hi = midpoints.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if midpoints[mid] < v { lo = mid + 1 } else { hi = mid }
        }
        return codes[lo]
    }

    static let nf4 = Coder(table: QuantTables.nf4)
    static let fp4 = Coder(table: QuantTables.fp4)
    static let dynamic8 = Coder(table: QuantTables.dynamic8)
}

public enum Quantizer {
    public static let nestedBlockSize = 256

    static func checkBlockSize(_ b: Int) throws {
        guard b >= 32, b <= 4096, b & (b - 1) == 0 else { throw QuantError.invalidBlockSize(b) }
    }

    /// Blockwise absmax quantization of `w` (row-major, `shape`) to 4-bit codes.
    public static func quantize(_ w: [Float], shape: [Int], type: QuantType, blockSize: Int, doubleQuant: Bool) throws -> QuantizedTensor {
        try checkBlockSize(blockSize)
        guard shape.reduce(1, *) == w.count, shape.allSatisfy({ $0 >= 0 }) else { throw QuantError.shapeMismatch(shape: shape, count: w.count) }
        let coder = type == .nf4 ? Coder.nf4 : Coder.fp4
        var packed = [UInt8](repeating: 0, count: (w.count + 1) / 2)
        let absmax = quantizeBlocks(w, blockSize: blockSize, coder: coder, packed: &packed)
        if !doubleQuant {
            return try QuantizedTensor(type: type, blockSize: blockSize, shape: shape, packed: packed, absmax: absmax, doubleQuant: nil)
        }
        return try QuantizedTensor(type: type, blockSize: blockSize, shape: shape, packed: packed, absmax: nil,
                                   doubleQuant: quantizeAbsmax(absmax))
    }

    /// Double quantization of the block scales: offset = mean(absmax), then (absmax - offset)
    /// coded to 8 bits with the dynamic map in blocks of 256 (same block rule as 4-bit).
    public static func quantizeAbsmax(_ absmax: [Float]) -> DoubleQuantState {
        let offset = mean(absmax)
        let centered = absmax.map { $0 - offset }
        var codes = [UInt8](repeating: 0, count: centered.count)
        let nested = quantizeBlocks8(centered, blockSize: nestedBlockSize, coder: Coder.dynamic8, codes: &codes)
        return DoubleQuantState(codes: codes, nestedAbsmax: nested, offset: offset, nestedBlockSize: nestedBlockSize)
    }

    /// torch's float32 `mean` = float32 sum (torch's summation order, see TorchSum) / n.
    static func mean(_ x: [Float]) -> Float {
        if x.isEmpty { return 0 }
        return TorchSum.mean(x)
    }

    /// Per-block scale and scaled value, bitsandbytes' rule: full blocks multiply by the float32
    /// reciprocal of max(absmax, 1e-38) and store absmax unclamped; the short last block divides
    /// by the clamped absmax and stores the clamped value.
    @inline(__always)
    static func blockScale(_ p: UnsafePointer<Float>, _ n: Int, full: Bool) -> (stored: Float, multiply: Float, divide: Float) {
        var m: Float = 0
        for i in 0..<n { m = max(m, abs(p[i])) }
        let clamped = max(m, 1e-38)
        return full ? (m, 1 / clamped, 0) : (clamped, 0, clamped)
    }

    static func quantizeBlocks(_ w: [Float], blockSize bs: Int, coder: Coder, packed: inout [UInt8]) -> [Float] {
        let n = w.count
        let blocks = (n + bs - 1) / bs
        var absmax = [Float](repeating: 0, count: blocks)
        w.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { out in
                absmax.withUnsafeMutableBufferPointer { am in
                    let mids = coder.midpoints, codes = coder.codes
                    var mids16 = SIMD16<Float>(repeating: .infinity)
                    for j in 0..<min(15, mids.count) { mids16[j] = mids[j] }
                    let zero16 = SIMD16<Int32>(repeating: 0)
                    Parallel.forEachChunk(blocks, costPerItem: bs * 8) { range in
                        mids.withUnsafeBufferPointer { mp in
                            codes.withUnsafeBufferPointer { cp in
                                for b in range {
                                    let start = b * bs, len = min(bs, n - start)
                                    let s = blockScale(wp.baseAddress! + start, len, full: len == bs)
                                    am[b] = s.stored
                                    let full = len == bs
                                    @inline(__always) func code(_ x: Float) -> UInt8 {
                                        let scaled = min(max(full ? x * s.multiply : x / s.divide, -1), 1)
                                        // Number of midpoints < scaled: 15 lane compares (lane 15 is +inf, never below).
                                        let below = mids16 .< SIMD16<Float>(repeating: scaled)
                                        let k = Int(zero16.replacing(with: 1, where: below).wrappedSum())
                                        return cp[k]
                                    }
                                    var i = 0
                                    while i + 1 < len {
                                        out[(start + i) >> 1] = code(wp[start + i]) << 4 | code(wp[start + i + 1])
                                        i += 2
                                    }
                                    if i < len {  // odd total count: pad with 0.0, coded like any value
                                        out[(start + i) >> 1] = code(wp[start + i]) << 4 | code(0)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return absmax
    }

    static func quantizeBlocks8(_ x: [Float], blockSize bs: Int, coder: Coder, codes: inout [UInt8]) -> [Float] {
        let n = x.count
        let blocks = (n + bs - 1) / bs
        var absmax = [Float](repeating: 0, count: blocks)
        x.withUnsafeBufferPointer { xp in
            for b in 0..<blocks {
                let start = b * bs, len = min(bs, n - start)
                let s = blockScale(xp.baseAddress! + start, len, full: len == bs)
                absmax[b] = s.stored
                for i in start..<(start + len) {
                    let scaled = min(max(len == bs ? xp[i] * s.multiply : xp[i] / s.divide, -1), 1)
                    codes[i] = coder.code(scaled)
                }
            }
        }
        return absmax
    }

    /// Full dequantization (row-major, `q.shape`).
    public static func dequantize(_ q: QuantizedTensor) -> [Float] {
        var out = [Float](repeating: 0, count: q.count)
        out.withUnsafeMutableBufferPointer { dequantize(q, into: $0.baseAddress!) }
        return out
    }

    /// Full dequantization into `out` (q.count floats), on all cores.
    public static func dequantize(_ q: QuantizedTensor, into out: UnsafeMutablePointer<Float>) {
        let perChunk = 16 * q.blockSize
        let chunks = (q.count + perChunk - 1) / perChunk
        Parallel.forEachChunk(chunks, costPerItem: perChunk) { range in
            let lo = range.lowerBound * perChunk, hi = min(q.count, range.upperBound * perChunk)
            dequantize(q, elements: lo..<hi, into: out + lo)
        }
    }

    /// Dequantizes flat elements `elements` into `out[0..<elements.count]`:
    /// `out = table[code] * absmax[block]` (one fp32 multiply, as bitsandbytes).
    public static func dequantize(_ q: QuantizedTensor, elements: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        if elements.isEmpty { return }
        let table = QuantTables.table(q.type)
        let pairs = PairTable.shared(q.type)
        let bs = q.blockSize
        q.packed.withUnsafeBufferPointer { packed in
            table.withUnsafeBufferPointer { t in
                pairs.withUnsafeBufferPointer { pt in
                    var j = elements.lowerBound
                    let end = elements.upperBound
                    while j < end {
                        let b = j / bs
                        let blockEnd = min(end, (b + 1) * bs)
                        let am = q.blockAbsmax(b)
                        if j & 1 == 1 {  // odd start: low nibble alone
                            out[j - elements.lowerBound] = t[Int(packed[j >> 1] & 15)] * am
                            j += 1
                        }
                        // Pairs: one byte -> (high, low) values.
                        let o = out + (j - elements.lowerBound)
                        let pairCount = (blockEnd - j) >> 1
                        let src = packed.baseAddress! + (j >> 1)
                        for k in 0..<pairCount {
                            let v = pt[Int(src[k])]
                            o[2 * k] = v.x * am
                            o[2 * k + 1] = v.y * am
                        }
                        j += 2 * pairCount
                        if j < blockEnd {  // odd end: high nibble alone
                            out[j - elements.lowerBound] = t[Int(packed[j >> 1] >> 4)] * am
                            j += 1
                        }
                    }
                }
            }
        }
    }
}

extension Quantizer {
    /// `dequantize(q, elements:, into:)` with every value rounded to bfloat16 (bitsandbytes'
    /// `dequantize_4bit(...).to(torch.bfloat16)`). A block has only 16 distinct values, so they are
    /// multiplied and rounded once per block and the codes look them up: no slower than fp32.
    public static func dequantizeBF16(_ q: QuantizedTensor, elements: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        if elements.isEmpty { return }
        let table = QuantTables.table(q.type)
        let bs = q.blockSize
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { r in
            q.packed.withUnsafeBufferPointer { packed in
                var j = elements.lowerBound
                let end = elements.upperBound
                while j < end {
                    let b = j / bs
                    let blockEnd = min(end, (b + 1) * bs)
                    let am = q.blockAbsmax(b)
                    for c in 0..<16 { r[c] = BFloat16Rounding.round(table[c] * am) }
                    if j & 1 == 1 {  // odd start: low nibble alone
                        out[j - elements.lowerBound] = r[Int(packed[j >> 1] & 15)]
                        j += 1
                    }
                    let o = out + (j - elements.lowerBound)
                    let pairCount = (blockEnd - j) >> 1
                    let src = packed.baseAddress! + (j >> 1)
                    for k in 0..<pairCount {
                        let byte = Int(src[k])
                        o[2 * k] = r[byte >> 4]
                        o[2 * k + 1] = r[byte & 15]
                    }
                    j += 2 * pairCount
                    if j < blockEnd {  // odd end: high nibble alone
                        out[j - elements.lowerBound] = r[Int(packed[j >> 1] >> 4)]
                        j += 1
                    }
                }
            }
        }
    }
}

/// byte -> (table[high nibble], table[low nibble]): one lookup per two weights.
enum PairTable {
    static let nf4 = make(QuantTables.nf4)
    static let fp4 = make(QuantTables.fp4)
    static func shared(_ t: QuantType) -> [SIMD2<Float>] { t == .nf4 ? nf4 : fp4 }
    static func make(_ table: [Float]) -> [SIMD2<Float>] {
        (0..<256).map { SIMD2(table[$0 >> 4], table[$0 & 15]) }
    }
}
