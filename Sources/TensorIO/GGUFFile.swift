import Foundation

/// A metadata value of a GGUF file (spec: ggml/docs/gguf.md, "Standardized key-value pairs").
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Element type code and elements (the spec's typed arrays; nested arrays are allowed).
    case array(GGUFValueType, [GGUFValue])

    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [GGUFValue]? { if case .array(_, let a) = self { return a }; return nil }
}

/// GGUF metadata value type codes.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64
}

/// One tensor's entry in the GGUF tensor-info table. `dimensions` are ggml's `ne`, innermost first:
/// a torch (out, in) weight is stored as ne = [in, out].
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset from the start of the data section (a multiple of the alignment).
    public let offset: Int
    public var count: Int { dimensions.reduce(1, *) }
    /// The torch-order shape (outermost first).
    public var shape: [Int] { dimensions.reversed() }
    public var byteCount: Int { type.byteCount(elements: count) }
}

/// A read-only, memory-mapped GGUF file (versions 2 and 3, little-endian), fully validated on open:
/// every string, array and tensor lies inside the file, tensor offsets are aligned, element counts
/// fit the block size of their type. Tensors are dequantized one at a time on request.
public final class GGUFFile: @unchecked Sendable {  // immutable after init
    public let url: URL
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    private let data: Data          // the mapping
    private let dataStart: Int
    private let byName: [String: Int]

    public convenience init(url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw GGUFError.cannotOpen(file: url.path, reason: (error as NSError).localizedFailureReason ?? error.localizedDescription)
        }
        try self.init(data: data, url: url)
    }

    public init(data: Data, url: URL) throws {
        self.url = url
        self.data = data
        var r = GGUFByteReader(data: data, file: url.path)
        guard data.count >= 4, try r.bytes(4) == Array("GGUF".utf8) else {
            throw GGUFError.notGGUF(file: url.path)
        }
        version = try r.u32()
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(file: url.path, version: version) }
        let tensorCount = try r.count("tensor_count"), kvCount = try r.count("metadata_kv_count")
        var metadata: [String: GGUFValue] = [:], keys: [String] = []
        for _ in 0..<kvCount {
            let key = try r.string()
            let raw = try r.u32()
            guard let type = GGUFValueType(rawValue: raw) else { throw GGUFError.corrupt(file: url.path, detail: "metadata '\(key)' has unknown value type \(raw)") }
            metadata[key] = try r.value(type, key: key)
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys
        let alignment = metadata["general.alignment"]?.int ?? 32
        guard alignment > 0, alignment % 8 == 0 else { throw GGUFError.corrupt(file: url.path, detail: "general.alignment \(alignment) is not a positive multiple of 8") }
        self.alignment = alignment
        var tensors: [GGUFTensorInfo] = []
        var byName: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let name = try r.string()
            let nDims = Int(try r.u32())
            guard (1...4).contains(nDims) else { throw GGUFError.corrupt(file: url.path, detail: "tensor '\(name)' has \(nDims) dimensions (1 to 4 allowed)") }
            var dims: [Int] = []
            for _ in 0..<nDims { dims.append(try r.count("tensor '\(name)' dimension")) }
            let rawType = try r.u32()
            guard let type = GGMLType(rawValue: rawType) else { throw GGUFError.unsupportedTensorType(file: url.path, tensor: name, type: "code \(rawType)") }
            let offset = try r.count("tensor '\(name)' offset")
            guard offset % alignment == 0 else { throw GGUFError.corrupt(file: url.path, detail: "tensor '\(name)' offset \(offset) is not aligned to \(alignment)") }
            let info = GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: offset)
            guard dims[0] % type.blockSize == 0 else {
                throw GGUFError.corrupt(file: url.path, detail: "tensor '\(name)' row of \(dims[0]) is not a multiple of \(type.name)'s block of \(type.blockSize)")
            }
            guard byName[name] == nil else { throw GGUFError.corrupt(file: url.path, detail: "tensor '\(name)' is listed twice") }
            byName[name] = tensors.count
            tensors.append(info)
        }
        dataStart = (r.position + alignment - 1) / alignment * alignment
        for t in tensors where dataStart + t.offset + t.byteCount > data.count {
            throw GGUFError.corrupt(file: url.path, detail: "tensor '\(t.name)' (\(t.byteCount) bytes at \(t.offset)) runs past the end of the \(data.count)-byte file; the file is truncated")
        }
        self.tensors = tensors
        self.byName = byName
    }

    public func info(_ name: String) -> GGUFTensorInfo? { byName[name].map { tensors[$0] } }

    /// The tensor's raw bytes as stored.
    public func rawBytes(_ name: String) throws -> [UInt8] {
        guard let t = info(name) else { throw GGUFError.missingTensor(file: url.path, tensor: name) }
        let start = dataStart + t.offset
        return [UInt8](data[data.startIndex + start ..< data.startIndex + start + t.byteCount])
    }

    /// The tensor as fp32 in row-major torch order (ggml's `ne[0]` innermost), dequantized.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = info(name) else { throw GGUFError.missingTensor(file: url.path, tensor: name) }
        guard t.type.canDequantize else { throw GGUFError.unsupportedTensorType(file: url.path, tensor: name, type: t.type.name) }
        let start = data.startIndex + dataStart + t.offset
        return data[start ..< start + t.byteCount].withUnsafeBytes { GGMLQuants.dequantize($0, type: t.type, count: t.count) }
    }
}

/// Bounds-checked little-endian reads over the mapping; every failure names the file.
struct GGUFByteReader {
    let data: Data
    let file: String
    var position = 0

    init(data: Data, file: String) { self.data = data; self.file = file }

    mutating func bytes(_ n: Int) throws -> [UInt8] {
        guard n >= 0, position + n <= data.count else {
            throw GGUFError.corrupt(file: file, detail: "unexpected end of file at byte \(position): needs \(n) bytes, \(max(data.count - position, 0)) remain; the file is truncated")
        }
        let out = [UInt8](data[data.startIndex + position ..< data.startIndex + position + n])
        position += n
        return out
    }
    mutating func fixed<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let b = try bytes(MemoryLayout<T>.size)
        var v: T = 0
        for (i, byte) in b.enumerated() { v |= T(truncatingIfNeeded: byte) << (8 * i) }
        return v
    }
    mutating func u32() throws -> UInt32 { try fixed(UInt32.self) }
    /// A u64 count or size that must fit the file (guards allocation from corrupt counts).
    mutating func count(_ what: String) throws -> Int {
        let v = try fixed(UInt64.self)
        guard v <= UInt64(data.count) * 8 + 1_000_000 else { throw GGUFError.corrupt(file: file, detail: "\(what) \(v) is impossible for a \(data.count)-byte file") }
        return Int(v)
    }
    mutating func string() throws -> String {
        let n = try count("string length")
        let b = try bytes(n)
        guard let s = String(bytes: b, encoding: .utf8) else { throw GGUFError.corrupt(file: file, detail: "string at byte \(position - n) is not UTF-8") }
        return s
    }
    mutating func value(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try fixed(UInt8.self))
        case .int8: return .int8(try fixed(Int8.self))
        case .uint16: return .uint16(try fixed(UInt16.self))
        case .int16: return .int16(try fixed(Int16.self))
        case .uint32: return .uint32(try fixed(UInt32.self))
        case .int32: return .int32(try fixed(Int32.self))
        case .float32: return .float32(Float(bitPattern: try fixed(UInt32.self)))
        case .bool:
            let b = try fixed(UInt8.self)
            guard b <= 1 else { throw GGUFError.corrupt(file: file, detail: "metadata '\(key)': bool byte \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try string())
        case .uint64: return .uint64(try fixed(UInt64.self))
        case .int64: return .int64(try fixed(Int64.self))
        case .float64: return .float64(Double(bitPattern: try fixed(UInt64.self)))
        case .array:
            guard depth < 4, let element = GGUFValueType(rawValue: try u32()) else {
                throw GGUFError.corrupt(file: file, detail: "metadata '\(key)': bad array element type or nesting")
            }
            let n = try count("metadata '\(key)' array length")
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(element, key: key, depth: depth + 1)) }
            return .array(element, items)
        }
    }
}

public enum GGUFError: LocalizedError, Equatable {
    case cannotOpen(file: String, reason: String)
    case notGGUF(file: String)
    case unsupportedVersion(file: String, version: UInt32)
    case corrupt(file: String, detail: String)
    case unsupportedTensorType(file: String, tensor: String, type: String)
    case missingTensor(file: String, tensor: String)
    case missingMetadata(file: String, key: String)
    case unsupported(file: String, what: String, hint: String)
    case writeFailed(file: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(file, reason): return "\(file): cannot open GGUF file: \(reason)"
        case let .notGGUF(file): return "\(file): not a GGUF file (it does not start with the magic bytes \"GGUF\")"
        case let .unsupportedVersion(file, version): return "\(file): GGUF version \(version) is not supported (versions 2 and 3 are); re-convert it with a current llama.cpp"
        case let .corrupt(file, detail): return "\(file): corrupt GGUF file: \(detail)"
        case let .unsupportedTensorType(file, tensor, type):
            return "\(file): tensor '\(tensor)' has type \(type), which qlora-run cannot read (supported: \(GGMLType.readable.map(\.name).joined(separator: ", ")))"
        case let .missingTensor(file, tensor): return "\(file): no tensor named '\(tensor)'"
        case let .missingMetadata(file, key): return "\(file): metadata key '\(key)' is missing"
        case let .unsupported(file, what, hint): return "\(file): \(what) is not supported; \(hint)"
        case let .writeFailed(file, reason): return "\(file): cannot write GGUF file: \(reason)"
        }
    }
}
