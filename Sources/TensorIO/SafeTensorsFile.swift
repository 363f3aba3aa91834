import Foundation

/// A validated, memory-mapped safetensors file.
///
/// Layout (safetensors "Format" section): 8-byte little-endian header length N, N bytes of JSON
/// `{"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end]}}`, then
/// the byte buffer; offsets are relative to the buffer start. Everything is checked when the file is
/// opened, so no later access can read out of bounds.
public final class SafeTensorsFile: @unchecked Sendable {
    struct Entry { let info: TensorInfo; let begin: Int; let end: Int }

    /// Largest header accepted: the reference implementation's limit is 100 MB.
    public static let maximumHeaderSize = 100_000_000

    public let url: URL
    public let metadata: [String: String]?
    private let data: Data
    private let entries: [String: Entry]
    public let names: [String]

    public convenience init(url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw TensorIOError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        try self.init(data: data, url: url)
    }

    /// Parses bytes already in memory (`url` is used in messages only).
    public init(data: Data, url: URL) throws {
        let file = url.path
        guard data.count >= 8 else { throw TensorIOError.malformed(file: file, reason: "file is \(data.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard n <= UInt64(SafeTensorsFile.maximumHeaderSize) else {
            throw TensorIOError.malformed(file: file, reason: "header length \(n) exceeds the \(SafeTensorsFile.maximumHeaderSize)-byte limit")
        }
        guard n <= UInt64(data.count - 8) else {
            throw TensorIOError.malformed(file: file, reason: "header length \(n) runs past the end of the file (\(data.count) bytes)")
        }
        let headerEnd = 8 + Int(n)
        let header = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + headerEnd))
        guard let object = (try? JSONSerialization.jsonObject(with: header)) as? [String: Any] else {
            throw TensorIOError.malformed(file: file, reason: "header is not a JSON object")
        }
        var metadata: [String: String]? = nil
        if let raw = object["__metadata__"] {
            guard let m = raw as? [String: String] else {
                throw TensorIOError.malformed(file: file, reason: "__metadata__ must map strings to strings")
            }
            metadata = m
        }
        let bufferSize = data.count - headerEnd
        var entries: [String: Entry] = [:]
        for (name, value) in object where name != "__metadata__" {
            func bad(_ why: String) -> TensorIOError { .malformedTensor(file: file, tensor: name, reason: why) }
            guard let d = value as? [String: Any] else { throw bad("entry is not an object") }
            guard let dtypeName = d["dtype"] as? String else { throw bad("missing dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw bad("unsupported dtype '\(dtypeName)'") }
            guard let shapeAny = d["shape"] as? [Any], let shape = SafeTensorsFile.integers(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("shape must be a list of non-negative integers")
            }
            guard let offAny = d["data_offsets"] as? [Any], let offsets = SafeTensorsFile.integers(offAny), offsets.count == 2 else {
                throw bad("data_offsets must be two integers")
            }
            let (count, overflow1) = shape.reduce((1, false)) { acc, dim in
                let r = acc.0.multipliedReportingOverflow(by: dim); return (r.partialValue, acc.1 || r.overflow)
            }
            let (bytes, overflow2) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow1, !overflow2 else { throw bad("shape \(shape) is too large") }
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= bufferSize else {
                throw bad("data offsets [\(offsets[0]), \(offsets[1])] outside the \(bufferSize)-byte data buffer")
            }
            guard offsets[1] - offsets[0] == bytes else {
                throw bad("shape \(shape) × \(dtype.rawValue) is \(bytes) bytes but its data offsets span \(offsets[1] - offsets[0])")
            }
            entries[name] = Entry(info: TensorInfo(name: name, dtype: dtype, shape: shape),
                                  begin: headerEnd + offsets[0], end: headerEnd + offsets[1])
        }
        // Tensors must not overlap (the reference implementation also requires them to tile the buffer).
        let sorted = entries.values.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = headerEnd
        for e in sorted {
            guard e.begin >= cursor else {
                throw TensorIOError.malformedTensor(file: file, tensor: e.info.name, reason: "data overlaps another tensor's data")
            }
            cursor = e.end
        }
        self.url = url
        self.data = data
        self.metadata = metadata
        self.entries = entries
        self.names = entries.keys.sorted()
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            if let i = v as? Int { out.append(i) } else if let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() { out.append(n.intValue) } else { return nil }
        }
        return out
    }

    public func info(_ name: String) -> TensorInfo? { entries[name]?.info }

    private func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else { throw TensorIOError.missingTensor(file: url.path, tensor: name) }
        return e
    }

    /// Raw little-endian bytes of a tensor.
    public func bytes(_ name: String) throws -> [UInt8] {
        let e = try entry(name)
        return [UInt8](data[(data.startIndex + e.begin)..<(data.startIndex + e.end)])
    }

    /// A floating-point tensor converted to Float (F32 exact; F16/BF16 exact upcast; F64 rounded).
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        let count = e.info.count
        guard e.info.dtype.isFloatingPoint else {
            throw TensorIOError.wrongDType(file: url.path, tensor: name, dtype: e.info.dtype.rawValue, expected: "a floating-point type (F32, F16, BF16, F64)")
        }
        var out = [Float](repeating: 0, count: count)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress.map({ $0 + e.begin }) else { return }
            out.withUnsafeMutableBufferPointer { o in
                switch e.info.dtype {
                case .f32:
                    for i in 0..<count { o[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case .bf16:
                    for i in 0..<count { o[i] = BFloat16.toFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                case .f16:
                    for i in 0..<count { o[i] = Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
                case .f64:
                    for i in 0..<count { o[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                default: break
                }
            }
        }
        return out
    }

    /// An integer (or boolean) tensor widened to Int64.
    public func int64s(_ name: String) throws -> [Int64] {
        let e = try entry(name)
        let count = e.info.count
        guard !e.info.dtype.isFloatingPoint else {
            throw TensorIOError.wrongDType(file: url.path, tensor: name, dtype: e.info.dtype.rawValue, expected: "an integer type")
        }
        var out = [Int64](repeating: 0, count: count)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress.map({ $0 + e.begin }) else { return }
            for i in 0..<count {
                switch e.info.dtype {
                case .i64: out[i] = Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                case .i32: out[i] = Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .i16: out[i] = Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                case .i8: out[i] = Int64(base.load(fromByteOffset: i, as: Int8.self))
                case .u8, .bool: out[i] = Int64(base.load(fromByteOffset: i, as: UInt8.self))
                default: break
                }
            }
        }
        return out
    }
}
