import Foundation

public enum QuantType: String, Sendable, CaseIterable { case nf4, fp4 }

/// Second-level (double) quantization of the per-block absmax (QLoRA paper §3, "Double Quantization"):
/// `absmax[i] ≈ dynamic8[codes[i]] * nestedAbsmax[i / nestedBlockSize] + offset`.
public struct DoubleQuantState: Sendable, Equatable {
    public let codes: [UInt8]          // (nblocks) 8-bit codes of absmax - offset
    public let nestedAbsmax: [Float]   // (ceil(nblocks / 256)) fp32 scale per 256 blocks
    public let offset: Float           // mean(absmax)
    public let nestedBlockSize: Int    // always 256 in bitsandbytes

    public init(codes: [UInt8], nestedAbsmax: [Float], offset: Float, nestedBlockSize: Int = 256) {
        self.codes = codes; self.nestedAbsmax = nestedAbsmax; self.offset = offset; self.nestedBlockSize = nestedBlockSize
    }

    /// The absmax bitsandbytes actually uses: two fp32 roundings (multiply, then add), no FMA.
    @inline(__always)
    public func absmax(_ i: Int) -> Float {
        let scaled = QuantTables.dynamic8[Int(codes[i])] * nestedAbsmax[i / nestedBlockSize]
        return scaled + offset
    }
}

/// One 4-bit quantized weight in bitsandbytes' layout: the flattened row-major tensor split into
/// consecutive blocks of `blockSize` values (crossing rows; the last block may be short), two
/// codes per byte with the FIRST element in the HIGH nibble.
public struct QuantizedTensor: Sendable, Equatable {
    public let type: QuantType
    public let blockSize: Int
    public let shape: [Int]
    public let packed: [UInt8]                   // ((count + 1) / 2)
    public let absmax: [Float]?                  // (nblocks) when not double-quantized
    public let doubleQuant: DoubleQuantState?    // when double-quantized

    public init(type: QuantType, blockSize: Int, shape: [Int], packed: [UInt8], absmax: [Float]?, doubleQuant: DoubleQuantState?) throws {
        let count = shape.reduce(1, *)
        try Quantizer.checkBlockSize(blockSize)
        let blocks = (count + blockSize - 1) / blockSize
        guard packed.count == (count + 1) / 2 else {
            throw QuantError.inconsistent("\(packed.count) packed bytes for shape \(shape) (expected \((count + 1) / 2))")
        }
        switch (absmax, doubleQuant) {
        case let (a?, nil):
            guard a.count == blocks else { throw QuantError.inconsistent("\(a.count) absmax values for \(blocks) blocks of \(blockSize)") }
        case let (nil, dq?):
            guard dq.codes.count == blocks else { throw QuantError.inconsistent("\(dq.codes.count) absmax codes for \(blocks) blocks of \(blockSize)") }
            guard dq.nestedBlockSize > 0, dq.nestedAbsmax.count == (blocks + dq.nestedBlockSize - 1) / dq.nestedBlockSize else {
                throw QuantError.inconsistent("\(dq.nestedAbsmax.count) nested absmax values for \(blocks) blocks (nested block size \(dq.nestedBlockSize))")
            }
        default:
            throw QuantError.inconsistent("exactly one of absmax and double-quant state must be present")
        }
        self.type = type; self.blockSize = blockSize; self.shape = shape; self.packed = packed
        self.absmax = absmax; self.doubleQuant = doubleQuant
    }

    public var count: Int { shape.reduce(1, *) }
    public var blockCount: Int { (count + blockSize - 1) / blockSize }

    /// The fp32 scale of block `b` as used by dequantization.
    @inline(__always)
    public func blockAbsmax(_ b: Int) -> Float {
        if let absmax { return absmax[b] }
        return doubleQuant!.absmax(b)
    }

    /// All block scales as used by dequantization.
    public var effectiveAbsmax: [Float] { (0..<blockCount).map(blockAbsmax) }

    /// Bytes held in memory / on disk for the weight and its statistics (not the constant tables).
    public var storageBytes: Int {
        if let absmax { return packed.count + 4 * absmax.count }
        let dq = doubleQuant!
        return packed.count + dq.codes.count + 4 * dq.nestedAbsmax.count + 4
    }

    /// 4 + 32/blockSize without double quant; 4 + 8/64 + 32/(64·256) ≈ 4.127 with it (block 64).
    public var bitsPerParameter: Double { count == 0 ? 0 : Double(storageBytes * 8) / Double(count) }
}

public enum QuantError: LocalizedError, Equatable {
    case invalidBlockSize(Int)
    case shapeMismatch(shape: [Int], count: Int)
    case inconsistent(String)
    case format(module: String, file: String, detail: String)

    public var errorDescription: String? {
        switch self {
        case let .invalidBlockSize(b):
            return "invalid quantization block size \(b): use a power of two from 32 to 4096 (bitsandbytes default 64)"
        case let .shapeMismatch(shape, count):
            return "weight has \(count) values but its shape \(shape) needs \(shape.reduce(1, *))"
        case let .inconsistent(detail):
            return "inconsistent 4-bit quantized tensor: \(detail)"
        case let .format(module, file, detail):
            return "\(file): 4-bit weight '\(module)': \(detail)"
        }
    }
}

/// A human-readable size, as in the quantize stage log ("22.5 MB").
public func formatMegabytes(_ bytes: Int) -> String {
    String(format: "%.1f MB", Double(bytes) / 1_000_000)
}
