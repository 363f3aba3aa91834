import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a safetensors file deterministically, byte-identical to the Python `safetensors`
/// library (safetensors/src/tensor.rs `prepare` + `serialize`):
/// - tensors sorted by dtype rank DESCENDING (`DType.safetensorsRank`), then name (bytewise);
/// - data laid out in that order, contiguous, offsets relative to the data region;
/// - header = compact serde_json: `{"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}`
///   (metadata keys sorted here; the reference uses a HashMap, so with one key — the usual case — it agrees);
/// - header padded with spaces to a multiple of 8 bytes.
/// Adding a name twice replaces the earlier tensor.
public struct SafeTensorsWriter {
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// F32 tensors keep the caller's array (copy-on-write: no copy of the weights until written,
        /// so saving a model does not double its memory); other dtypes hold their bytes. A deferred
        /// F32 tensor is produced only while it is written, so a converter holds one tensor at a time.
        enum Payload { case floats([Float]), bytes([UInt8]), deferred(() throws -> [Float]) }
        let payload: Payload
        init(name: String, dtype: DType, shape: [Int], payload: Payload) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.payload = payload
        }
        public var byteCount: Int {
            switch payload {
            case .floats(let f): return f.count * 4
            case .bytes(let b): return b.count
            case .deferred: return shape.reduce(1, *) * dtype.size
            }
        }
        /// The little-endian bytes (a copy for F32 tensors; a deferred one is produced now).
        public func bytes() throws -> [UInt8] { try withBytes { Array($0) } }
        func withBytes<R>(file: String = "", _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
            switch payload {
            case .floats(let f): return try f.withUnsafeBytes(body)
            case .bytes(let b): return try b.withUnsafeBytes(body)
            case .deferred(let produce):
                let f = try produce()
                guard f.count * dtype.size == byteCount else {
                    throw SafeTensorsError.sizeMismatch(file: file, tensor: name, dtype: dtype.rawValue, shape: shape, expected: byteCount, actual: f.count * dtype.size)
                }
                if dtype == .f32 { return try f.withUnsafeBytes(body) }
                return try dtype.bytes(of: f).withUnsafeBytes(body)
            }
        }
    }

    public var metadata: [String: String]?
    private var entries: [String: Entry] = [:]

    public init(metadata: [String: String]? = nil) { self.metadata = metadata }

    public var count: Int { entries.count }
    /// Names added so far, sorted.
    public var names: [String] { entries.keys.sorted(by: SafeTensorsFile.byteOrder) }

    /// F32 tensor.
    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        entries[name] = Entry(name: name, dtype: .f32, shape: shape, payload: .floats(floats))
    }

    /// A tensor produced as fp32 values by `produce` while the file is written (after the header,
    /// in file order) and stored as `dtype` (F32, BF16 or F16): converters and merges add every
    /// tensor this way and never hold more than one in memory.
    public mutating func add(_ name: String, dtype: DType = .f32, shape: [Int], deferredFloats produce: @escaping () throws -> [Float]) {
        precondition(dtype == .f32 || dtype == .bf16 || dtype == .f16, "deferred tensors are stored as F32, BF16 or F16")
        entries[name] = Entry(name: name, dtype: dtype, shape: shape, payload: .deferred(produce))
    }

    /// An entry of another writer as it is (a deferred one stays deferred): how shards are split.
    public mutating func add(_ entry: Entry) { entries[entry.name] = entry }

    /// Raw little-endian bytes of any dtype.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        entries[name] = Entry(name: name, dtype: dtype, shape: shape, payload: .bytes(bytes))
    }

    /// Float values stored as BF16 (round to nearest even).
    public mutating func add(_ name: String, bfloat16 floats: [Float], shape: [Int]) {
        entries[name] = Entry(name: name, dtype: .bf16, shape: shape, payload: .bytes(DType.bf16.bytes(of: floats)))
    }

    /// I64 tensor.
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) {
        entries[name] = Entry(name: name, dtype: .i64, shape: shape, payload: .bytes(int64s.withUnsafeBytes { Array($0) }))
    }

    /// Copies every tensor and the metadata of an open file.
    public mutating func add(contentsOf file: SafeTensorsFile) throws {
        for name in file.names {
            guard let info = file.info(name) else { continue }
            add(name, dtype: info.dtype, shape: info.shape, bytes: try file.bytes(name))
        }
    }

    /// Tensors in file order.
    public var orderedEntries: [Entry] {
        entries.values.sorted { a, b in
            if a.dtype.safetensorsRank != b.dtype.safetensorsRank { return a.dtype.safetensorsRank > b.dtype.safetensorsRank }
            return SafeTensorsFile.byteOrder(a.name, b.name)
        }
    }

    /// Tensors whose byte count disagrees with shape × dtype size (a programming error upstream).
    public func validationErrors(file: String) -> [SafeTensorsError] {
        orderedEntries.compactMap { e in
            let expected = e.shape.reduce(1, *) * e.dtype.size
            return expected == e.byteCount ? nil
                : .sizeMismatch(file: file, tensor: e.name, dtype: e.dtype.rawValue, shape: e.shape, expected: expected, actual: e.byteCount)
        }
    }

    /// The 8-byte length prefix plus the padded JSON header.
    public func headerBytes() -> [UInt8] {
        var h: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        if let metadata {
            h += Array("\"__metadata__\":{".utf8)
            for (k, key) in metadata.keys.sorted(by: SafeTensorsFile.byteOrder).enumerated() {
                if k > 0 { h.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(key, to: &h)
                h.append(UInt8(ascii: ":"))
                JSONWriter.appendString(metadata[key] ?? "", to: &h)
            }
            h.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for e in orderedEntries {
            if !first { h.append(UInt8(ascii: ",")) }
            first = false
            JSONWriter.appendString(e.name, to: &h)
            h += Array(":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[".utf8)
            for (k, d) in e.shape.enumerated() {
                if k > 0 { h.append(UInt8(ascii: ",")) }
                JSONWriter.appendInt(d, to: &h)
            }
            h += Array("],\"data_offsets\":[".utf8)
            JSONWriter.appendInt(offset, to: &h)
            h.append(UInt8(ascii: ","))
            offset += e.byteCount
            JSONWriter.appendInt(offset, to: &h)
            h += Array("]}".utf8)
        }
        h.append(UInt8(ascii: "}"))
        let padding = (8 - h.count % 8) % 8
        h += [UInt8](repeating: 0x20, count: padding)
        var n = UInt64(h.count).littleEndian
        let prefix = withUnsafeBytes(of: &n) { Array($0) }
        return prefix + h
    }

    /// The whole file in memory.
    public func serialized() throws -> [UInt8] {
        var out = headerBytes()
        out.reserveCapacity(out.count + entries.values.reduce(0) { $0 + $1.byteCount })
        for e in orderedEntries { try e.withBytes { out += $0 } }
        return out
    }

    /// Writes atomically (`AtomicFile`: a temporary file beside `url`, fsync, rename), deferred
    /// tensors produced one at a time as they are written.
    public func write(to url: URL) throws {
        let path = url.path
        if let error = validationErrors(file: path).first { throw error }
        do {
            try AtomicFile.write(to: url) { append in
                try headerBytes().withUnsafeBytes { try append($0) }
                for e in orderedEntries where e.byteCount > 0 { try e.withBytes(file: path) { try append($0) } }
            }
        } catch let failure as AtomicFile.Failure {
            throw SafeTensorsError.writeFailed(file: path, reason: failure.reason)
        }
    }
}
