import Foundation

/// Element types of the safetensors format (https://github.com/huggingface/safetensors, "Format").
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }
}

/// Name, element type and shape of one stored tensor.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Number of elements (1 for a scalar of shape []).
    public var count: Int { shape.reduce(1, *) }
    public init(name: String, dtype: DType, shape: [Int]) { self.name = name; self.dtype = dtype; self.shape = shape }
}

/// bfloat16 <-> float32: bf16 is the upper half of an IEEE float32.
public enum BFloat16 {
    @inline(__always) public static func toFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Round to nearest even, NaN kept quiet (as torch's `.to(torch.bfloat16)`).
    @inline(__always) public static func fromFloat(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        let rounding: UInt32 = 0x7FFF + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }
}

/// Errors of the TensorIO module: every case names the file and, where there is one, the tensor.
public enum TensorIOError: LocalizedError, Equatable {
    case unreadable(file: String, reason: String)
    case malformed(file: String, reason: String)
    case malformedTensor(file: String, tensor: String, reason: String)
    case missingTensor(file: String, tensor: String)
    case wrongDType(file: String, tensor: String, dtype: String, expected: String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read safetensors file: \(reason)"
        case let .malformed(file, reason):
            return "\(file): not a valid safetensors file: \(reason)"
        case let .malformedTensor(file, tensor, reason):
            return "\(file): tensor '\(tensor)': \(reason)"
        case let .missingTensor(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .wrongDType(file, tensor, dtype, expected):
            return "\(file): tensor '\(tensor)' has dtype \(dtype), expected \(expected)"
        }
    }
}
