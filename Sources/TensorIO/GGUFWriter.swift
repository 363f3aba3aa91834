import Foundation

/// Builds a GGUF version 3 file (little-endian, 32-byte alignment): header, metadata in insertion
/// order, tensor infos, then each tensor's data padded to the alignment. Same inputs, same bytes.
public struct GGUFWriter {
    public static let alignment = 32
    private var metadata: [(String, GGUFValue)] = []
    /// fp32 values are kept as given (copy-on-write: a model's weights are not copied) and encoded
    /// only while the file is written, one tensor at a time; deferred ones are also produced then
    /// (a merged or re-read weight); other tensors arrive encoded.
    enum Payload {
        case floats([Float]), bytes([UInt8]), deferred(elements: Int, produce: () throws -> [Float])
        func encoded(_ type: GGMLType, name: String, file: String) throws -> [UInt8] {
            switch self {
            case .floats(let f): return GGMLQuants.quantize(f, type: type)
            case .bytes(let b): return b
            case .deferred(let n, let produce):
                let f = try produce()
                guard f.count == n else { throw GGUFError.writeFailed(file: file, reason: "tensor \(name): \(f.count) values produced, \(n) expected") }
                return GGMLQuants.quantize(f, type: type)
            }
        }
        func byteCount(_ type: GGMLType) -> Int {
            switch self {
            case .floats(let f): return type.byteCount(elements: f.count)
            case .bytes(let b): return b.count
            case .deferred(let n, _): return type.byteCount(elements: n)
            }
        }
    }
    private var tensors: [(name: String, dimensions: [Int], type: GGMLType, payload: Payload)] = []

    public init() {}

    public var tensorNames: [String] { tensors.map(\.name) }

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
    }
    public mutating func set(_ key: String, string: String) { set(key, .string(string)) }
    public mutating func set(_ key: String, uint32: Int) { set(key, .uint32(UInt32(clamping: uint32))) }
    public mutating func set(_ key: String, float32: Double) { set(key, .float32(Float(float32))) }
    public mutating func set(_ key: String, strings: [String]) { set(key, .array(.string, strings.map(GGUFValue.string))) }
    public mutating func set(_ key: String, int32s: [Int]) { set(key, .array(.int32, int32s.map { .int32(Int32(clamping: $0)) })) }

    /// Adds a tensor from fp32 values in torch order (`shape` outermost first), encoded as `type`.
    public mutating func add(_ name: String, floats: [Float], shape: [Int], type: GGMLType) {
        tensors.append((name, shape.reversed(), type, .floats(floats)))
    }
    /// Adds a tensor whose fp32 values (torch order) are produced only while the file is written.
    public mutating func add(_ name: String, shape: [Int], type: GGMLType, deferredFloats produce: @escaping () throws -> [Float]) {
        tensors.append((name, shape.reversed(), type, .deferred(elements: shape.reduce(1, *), produce: produce)))
    }
    /// Adds already-encoded bytes (`dimensions` in ggml order, innermost first).
    public mutating func add(_ name: String, dimensions: [Int], type: GGMLType, bytes: [UInt8]) {
        tensors.append((name, dimensions, type, .bytes(bytes)))
    }

    /// The whole file in memory (tests; `write(to:)` streams instead).
    public func serialized() throws -> [UInt8] {
        var out = headerBytes()
        for t in tensors { out += try t.payload.encoded(t.type, name: t.name, file: "(in memory)"); out += padding(after: out.count) }
        return out
    }

    func padding(after count: Int) -> [UInt8] { [UInt8](repeating: 0, count: (Self.alignment - count % Self.alignment) % Self.alignment) }

    /// Magic, version, counts, metadata and tensor infos, padded to the alignment: everything before the data.
    func headerBytes() -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8)
        func u32(_ v: UInt32) { for s in 0..<4 { out.append(UInt8((v >> UInt32(8 * s)) & 0xFF)) } }
        func u64(_ v: UInt64) { for s in 0..<8 { out.append(UInt8((v >> UInt64(8 * s)) & 0xFF)) } }
        func string(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); out += b }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): out.append(UInt8(x & 0xFF)); out.append(UInt8(x >> 8))
            case .int16(let x): let u = UInt16(bitPattern: x); out.append(UInt8(u & 0xFF)); out.append(UInt8(u >> 8))
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float64(let x): u64(x.bitPattern)
            case .array(let type, let items):
                u32(type.rawValue); u64(UInt64(items.count))
                for item in items { value(item) }
            }
        }
        func type(_ v: GGUFValue) -> GGUFValueType {
            switch v {
            case .uint8: return .uint8
            case .int8: return .int8
            case .uint16: return .uint16
            case .int16: return .int16
            case .uint32: return .uint32
            case .int32: return .int32
            case .float32: return .float32
            case .bool: return .bool
            case .string: return .string
            case .uint64: return .uint64
            case .int64: return .int64
            case .float64: return .float64
            case .array: return .array
            }
        }
        let a = Self.alignment
        func pad() { while out.count % a != 0 { out.append(0) } }
        u32(3); u64(UInt64(tensors.count)); u64(UInt64(metadata.count))
        for (key, v) in metadata { string(key); u32(type(v).rawValue); value(v) }
        var offset = 0
        for t in tensors {
            string(t.name); u32(UInt32(t.dimensions.count))
            for d in t.dimensions { u64(UInt64(d)) }
            u32(t.type.rawValue); u64(UInt64(offset))
            offset += (t.payload.byteCount(t.type) + a - 1) / a * a
        }
        pad()
        return out
    }

    /// Writes the file atomically (`AtomicFile`: a temporary beside it, fsync, rename), one tensor
    /// encoded at a time: memory beyond the caller's weights is one encoded tensor, not the file.
    public func write(to url: URL) throws {
        do {
            try AtomicFile.write(to: url) { append in
                var written = 0
                func put(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try append($0) }; written += bytes.count }
                try put(headerBytes())
                for t in tensors { try put(t.payload.encoded(t.type, name: t.name, file: url.path)); try put(padding(after: written)) }
            }
        } catch let failure as AtomicFile.Failure {
            throw GGUFError.writeFailed(file: url.path, reason: failure.reason)
        }
    }
}
