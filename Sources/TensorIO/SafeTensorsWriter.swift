import Foundation

/// Deterministic safetensors writer: the same tensors and metadata always give the same bytes,
/// and the bytes equal what the Python `safetensors` library (Rust core, `prepare`) writes:
/// tensors ordered by dtype (descending in the reference's `Dtype` enum order) then by name, the
/// header compact JSON with `__metadata__` first, padded with spaces to a multiple of 8 bytes.
public struct SafeTensorsWriter {
    private struct Pending { let info: TensorInfo; let bytes: [UInt8] }
    private var tensors: [String: Pending] = [:]
    public var metadata: [String: String]?

    public init(metadata: [String: String]? = nil) { self.metadata = metadata }

    public var names: [String] { tensors.keys.sorted() }

    /// Adds an F32 tensor.
    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        var bytes = [UInt8](repeating: 0, count: floats.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, f) in floats.enumerated() { raw.storeBytes(of: f.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        add(name, dtype: .f32, shape: shape, bytes: bytes)
    }

    /// Adds an I64 tensor.
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) {
        var bytes = [UInt8](repeating: 0, count: int64s.count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in int64s.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
        add(name, dtype: .i64, shape: shape, bytes: bytes)
    }

    /// Adds a tensor from raw little-endian bytes. `bytes.count` must equal count × dtype size
    /// (a programming error otherwise: callers build these buffers themselves).
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(bytes.count == shape.reduce(1, *) * dtype.size, "tensor \(name): \(bytes.count) bytes for shape \(shape) \(dtype)")
        tensors[name] = Pending(info: TensorInfo(name: name, dtype: dtype, shape: shape), bytes: bytes)
    }

    /// The reference library's dtype order (its `Dtype` enum); tensors are written highest first.
    static func rank(_ d: DType) -> Int {
        switch d {
        case .bool: return 0
        case .u8: return 1
        case .i8: return 2
        case .i16: return 3
        case .f16: return 5
        case .bf16: return 6
        case .i32: return 7
        case .f32: return 9
        case .f64: return 10
        case .i64: return 11
        }
    }

    public func serialized() -> [UInt8] {
        let ordered = tensors.values.sorted {
            let (a, b) = (SafeTensorsWriter.rank($0.info.dtype), SafeTensorsWriter.rank($1.info.dtype))
            return a != b ? a > b : $0.info.name < $1.info.name
        }
        var header = "{"
        var first = true
        if let metadata {
            header += "\"__metadata__\":{"
            header += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }.joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        for t in ordered {
            if !first { header += "," }
            first = false
            let end = offset + t.bytes.count
            header += "\(jsonString(t.info.name)):{\"dtype\":\"\(t.info.dtype.rawValue)\",\"shape\":[\(t.info.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        var n = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in ordered { out.append(contentsOf: t.bytes) }
        return out
    }

    /// Writes atomically: a temporary sibling, fsync, then rename over the destination.
    public func write(to url: URL) throws {
        try AtomicFile.write(serialized(), to: url)
    }
}

/// JSON string literal as serde_json writes it: `"` `\` and control characters escaped, the rest raw UTF-8.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// temp → fsync → rename, so a reader never sees a half-written file.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TensorIOError.unreadable(file: tmp.path, reason: String(cString: strerror(errno))) }
        var ok = true
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { ok = false; break }
                done += n
            }
        }
        if fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok, rename(tmp.path, url.path) == 0 else {
            unlink(tmp.path)
            throw TensorIOError.unreadable(file: url.path, reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }
}
