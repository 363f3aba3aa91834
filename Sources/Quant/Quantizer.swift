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
        let table = QuantTables.table(q.type), pairs = PairTable.shared(q.type)
        table.withUnsafeBufferPointer { t in
            pairs.withUnsafeBufferPointer { pt in
                decode(q, elements: elements, into: out, ScaledCodes(table: t.baseAddress!, pairs: pt.baseAddress!))
            }
        }
    }

    /// The same values rounded to bfloat16 (bitsandbytes' `dequantize_4bit(...).to(torch.bfloat16)`).
    /// A block has only 16 distinct values, so they are multiplied and rounded once per block and the
    /// codes look them up: no slower than fp32.
    public static func dequantizeBF16(_ q: QuantizedTensor, elements: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let table = QuantTables.table(q.type)
        table.withUnsafeBufferPointer { t in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { r in
                decode(q, elements: elements, into: out, RoundedCodes(table: t.baseAddress!, values: r.baseAddress!))
            }
        }
    }

    /// The walk over `elements` both share: block by block, a lone low nibble at an odd start, then
    /// one byte per two values (first element in the high nibble), a lone high nibble at an odd end.
    @inline(__always)
    static func decode<Codes: BlockCodes>(_ q: QuantizedTensor, elements: Range<Int>, into out: UnsafeMutablePointer<Float>, _ codesIn: Codes) {
        if elements.isEmpty { return }
        var codes = codesIn
        let bs = q.blockSize
        q.packed.withUnsafeBufferPointer { packed in
            var j = elements.lowerBound
            let end = elements.upperBound
            while j < end {
                let b = j / bs
                let blockEnd = min(end, (b + 1) * bs)
                codes.begin(absmax: q.blockAbsmax(b))
                if j & 1 == 1 {  // odd start: low nibble alone
                    out[j - elements.lowerBound] = codes.single(packed[j >> 1] & 15)
                    j += 1
                }
                let o = out + (j - elements.lowerBound)
                let pairCount = (blockEnd - j) >> 1
                let src = packed.baseAddress! + (j >> 1)
                for k in 0..<pairCount {
                    let v = codes.pair(src[k])
                    o[2 * k] = v.x
                    o[2 * k + 1] = v.y
                }
                j += 2 * pairCount
                if j < blockEnd {  // odd end: high nibble alone
                    out[j - elements.lowerBound] = codes.single(packed[j >> 1] >> 4)
                    j += 1
                }
            }
        }
    }
}

/// How one block's codes become values (`Quantizer.decode`).
protocol BlockCodes {
    mutating func begin(absmax: Float)
    /// The two values of a byte: (high nibble, low nibble).
    func pair(_ byte: UInt8) -> SIMD2<Float>
    func single(_ code: UInt8) -> Float
}

/// fp32: table[code] * absmax, two per byte from the pair table.
struct ScaledCodes: BlockCodes {
    let table: UnsafePointer<Float>, pairs: UnsafePointer<SIMD2<Float>>
    var absmax: Float = 0
    init(table: UnsafePointer<Float>, pairs: UnsafePointer<SIMD2<Float>>) { self.table = table; self.pairs = pairs }
    mutating func begin(absmax: Float) { self.absmax = absmax }
    func pair(_ byte: UInt8) -> SIMD2<Float> { pairs[Int(byte)] * absmax }
    func single(_ code: UInt8) -> Float { table[Int(code)] * absmax }
}

/// bf16: the block's 16 values, multiplied and rounded once, looked up.
struct RoundedCodes: BlockCodes {
    let table: UnsafePointer<Float>, values: UnsafeMutablePointer<Float>
    func begin(absmax: Float) { for c in 0..<16 { values[c] = BFloat16Rounding.round(table[c] * absmax) } }
    func pair(_ byte: UInt8) -> SIMD2<Float> { SIMD2(values[Int(byte >> 4)], values[Int(byte & 15)]) }
    func single(_ code: UInt8) -> Float { values[Int(code)] }
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
