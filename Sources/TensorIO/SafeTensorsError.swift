import Foundation

/// Everything that can go wrong reading or writing safetensors files. Every case names the
/// file (as given) and, where one is involved, the tensor.
public enum SafeTensorsError: LocalizedError, Equatable {
    case cannotOpen(file: String, reason: String)
    case fileTooSmall(file: String, size: Int)
    case headerTooLarge(file: String, length: UInt64)
    case headerPastEnd(file: String, length: UInt64, fileSize: Int)
    case invalidJSON(file: String, detail: String)
    case invalidHeader(file: String, tensor: String?, detail: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case sizeMismatch(file: String, tensor: String, dtype: String, shape: [Int], expected: Int, actual: Int)
    case offsetsOutOfRange(file: String, tensor: String, start: Int, end: Int, dataSize: Int)
    case overlapping(file: String, tensor: String, other: String)
    case gap(file: String, tensor: String, start: Int, expected: Int)
    case trailingData(file: String, covered: Int, dataSize: Int)
    case missingTensor(file: String, tensor: String)
    case wrongDType(file: String, tensor: String, dtype: String, expected: String)
    case writeFailed(file: String, reason: String)
    case invalidIndex(file: String, detail: String)

    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open safetensors file: \(reason)"
        case let .fileTooSmall(file, size):
            return "\(file): not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerTooLarge(file, length):
            return "\(file): header length \(length) exceeds the 100000000-byte limit; the file is corrupt or not safetensors"
        case let .headerPastEnd(file, length, fileSize):
            return "\(file): header length \(length) runs past the end of the \(fileSize)-byte file; the file is truncated or corrupt"
        case let .invalidJSON(file, detail):
            return "\(file): header is not valid JSON: \(detail)"
        case let .invalidHeader(file, tensor, detail):
            if let tensor { return "\(file): tensor '\(tensor)': invalid header entry: \(detail)" }
            return "\(file): invalid header: \(detail)"
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)': unsupported dtype \"\(dtype)\" (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .sizeMismatch(file, tensor, dtype, shape, expected, actual):
            return "\(file): tensor '\(tensor)': shape \(shape) of \(dtype) needs \(expected) bytes but data_offsets span \(actual)"
        case let .offsetsOutOfRange(file, tensor, start, end, dataSize):
            return "\(file): tensor '\(tensor)': data_offsets [\(start), \(end)] are outside the \(dataSize)-byte data region"
        case let .overlapping(file, tensor, other):
            return "\(file): tensor '\(tensor)': data overlaps tensor '\(other)'"
        case let .gap(file, tensor, start, expected):
            return "\(file): tensor '\(tensor)': data starts at \(start) but the previous tensor ends at \(expected) (unused bytes between tensors)"
        case let .trailingData(file, covered, dataSize):
            return "\(file): tensors cover \(covered) bytes but the data region has \(dataSize) (unused trailing bytes)"
        case let .missingTensor(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .wrongDType(file, tensor, dtype, expected):
            return "\(file): tensor '\(tensor)' has dtype \(dtype), expected \(expected)"
        case let .writeFailed(file, reason):
            return "\(file): cannot write safetensors file: \(reason)"
        case let .invalidIndex(file, detail):
            return "\(file): invalid sharded checkpoint index: \(detail)"
        }
    }
}
