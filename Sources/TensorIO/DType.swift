// Element types of the safetensors format and the 16-bit float conversions.
//
// Spec: https://github.com/huggingface/safetensors (README, "Format"). Data is little-endian.
// We only run on little-endian hosts (x86_64, arm64), so raw bytes are copied as is.

/// A safetensors element type. `rawValue` is the string used in the JSON header.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    /// Position of the type in the Rust `safetensors::Dtype` enum (which derives `Ord`).
    /// The writer sorts tensors by this rank DESCENDING, then by name, exactly like
    /// `safetensors::tensor::prepare` ("sorting by descending dtype alignment, then by name"):
    /// BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16,
    /// I32, U32, F32, C64, F64, I64, U64.
    public var safetensorsRank: Int {
        switch self {
        case .bool: return 0
        case .u8: return 4
        case .i8: return 5
        case .i16: return 9
        case .u16: return 10
        case .f16: return 11
        case .bf16: return 12
        case .i32: return 13
        case .u32: return 14
        case .f32: return 15
        case .f64: return 17
        case .i64: return 18
        case .u64: return 19
        }
    }

    /// True for the floating types that `floats(_:)` converts.
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }
}

/// Name, type and shape of one stored tensor.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data region (after the header), as in `data_offsets`.
    public let dataOffsets: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>? = nil) {
        self.name = name; self.dtype = dtype; self.shape = shape
        self.dataOffsets = dataOffsets ?? 0..<(shape.reduce(1, *) * dtype.size)
    }

    /// Describes the tensor, not where it is stored: offsets are ignored.
    public static func == (a: TensorInfo, b: TensorInfo) -> Bool {
        a.name == b.name && a.dtype == b.dtype && a.shape == b.shape
    }

    /// Number of elements (1 for a 0-dim tensor).
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}

/// bfloat16: the upper 16 bits of an IEEE float32.
public enum BFloat16 {
    @inline(__always)
    public static func toFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Round to nearest, ties to even (as torch's `float.to(bfloat16)`); NaN stays a quiet NaN.
    @inline(__always)
    public static func fromFloat(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        let rounding = UInt32(0x7FFF) + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }
}

/// IEEE 754 binary16, converted bit by bit (Swift's `Float16` is not available on every platform).
public enum Float16Bits {
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {                        // inf / NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = mantissa * 2^-24, exact in float32.
            let v = Float(mantissa) * Float(bitPattern: 0x3380_0000)  // 2^-24
            return sign != 0 ? -v : v
        }
        return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
    }

    /// Round to nearest, ties to even; overflow to infinity; NaN stays NaN.
    public static func fromFloat(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        let sign = UInt16((u >> 16) & 0x8000)
        let a = u & 0x7FFF_FFFF
        if a >= 0x7F80_0000 {                         // inf / NaN
            return sign | 0x7C00 | (a > 0x7F80_0000 ? 0x200 : 0)
        }
        if a >= 0x477F_F000 { return sign | 0x7C00 }  // rounds to >= 65520 -> inf
        if a < 0x3880_0000 {                          // below 2^-14: subnormal half (or zero)
            // value / 2^-24 rounded to nearest even integer; Float arithmetic is exact here.
            let scaled = Float(bitPattern: a) * 16_777_216  // 2^24
            let r = scaled.rounded(.toNearestOrEven)
            return sign | UInt16(r)
        }
        // Normal: rebias exponent, round the 13 dropped mantissa bits to nearest even.
        let rounded = a &+ 0x0FFF &+ ((a >> 13) & 1)
        return sign | UInt16(truncatingIfNeeded: (rounded &- 0x3800_0000) >> 13)
    }
}

extension DType {
    /// fp32 values as this type's little-endian bytes: F32 as they are, BF16 and F16 rounded to
    /// nearest even (torch's `.to()`); the safetensors and GGUF writers both store floats this way.
    public func bytes(of floats: [Float]) -> [UInt8] {
        switch self {
        case .bf16, .f16:
            var bytes = [UInt8](repeating: 0, count: floats.count * 2)
            for (k, f) in floats.enumerated() {
                let h = self == .bf16 ? BFloat16.fromFloat(f) : Float16Bits.fromFloat(f)
                bytes[2 * k] = UInt8(h & 0xFF); bytes[2 * k + 1] = UInt8(h >> 8)
            }
            return bytes
        default:
            precondition(self == .f32, "floats are stored as F32, BF16 or F16")
            return floats.withUnsafeBytes { Array($0) }
        }
    }
}
