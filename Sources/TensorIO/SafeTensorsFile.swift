import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only, memory-mapped safetensors file, fully validated on open.
///
/// Layout (safetensors spec): u64 little-endian N, then N bytes of UTF-8 JSON
/// `{"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`,
/// then the data region; offsets are relative to the data region. Validation follows the
/// reference implementation: header ≤ 100 MB, starts with '{', every tensor's byte span equals
/// shape × dtype size, and the spans, sorted, tile the data region exactly (no overlap, gap or
/// trailing bytes). After `init` succeeds no accessor can read out of bounds.
public final class SafeTensorsFile: @unchecked Sendable {  // immutable after init
    public static let maxHeaderSize = 100_000_000
    public static var maximumHeaderSize: Int { maxHeaderSize }

    public let url: URL
    public let metadata: [String: String]?
    /// Tensor names, sorted.
    public let names: [String]
    private let infos: [String: TensorInfo]
    private let base: UnsafeRawPointer?      // start of the mapping (nil for an empty data region)
    private let mappedSize: Int
    private let dataStart: Int               // 8 + N
    /// The name used in error messages (the path, or the label of an in-memory buffer).
    public let displayName: String

    public convenience init(url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw SafeTensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) != S_IFREG { throw SafeTensorsError.cannotOpen(file: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        if size < 8 { throw SafeTensorsError.fileTooSmall(file: path, size: size) }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        try self.init(url: url, displayName: path, mapping: UnsafeRawPointer(m), size: size, ownsMapping: true)
    }

    /// Parses an in-memory buffer (copied). Used by tests and for small blobs.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        let size = bytes.count
        if size < 8 { throw SafeTensorsError.fileTooSmall(file: name, size: size) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: size) }
        try self.init(url: URL(fileURLWithPath: name), displayName: name, mapping: UnsafeRawPointer(p), size: size, ownsMapping: false, heapAllocated: true)
    }

    /// Parses an in-memory buffer (copied); `url` is used in error messages.
    public convenience init(data: Data, url: URL) throws {
        try self.init(bytes: [UInt8](data), name: url.path)
    }

    private let ownsMapping: Bool
    private let heapAllocated: Bool

    private init(url: URL, displayName: String, mapping: UnsafeRawPointer, size: Int, ownsMapping: Bool, heapAllocated: Bool = false) throws {
        self.url = url
        self.displayName = displayName
        self.base = mapping
        self.mappedSize = size
        self.ownsMapping = ownsMapping
        self.heapAllocated = heapAllocated
        let file = displayName
        do {
            let n = mapping.loadUnaligned(as: UInt64.self).littleEndian
            if n > UInt64(SafeTensorsFile.maxHeaderSize) { throw SafeTensorsError.headerTooLarge(file: file, length: n) }
            if n > UInt64(size - 8) { throw SafeTensorsError.headerPastEnd(file: file, length: n, fileSize: size) }
            let headerLength = Int(n)
            dataStart = 8 + headerLength
            let header = UnsafeBufferPointer(start: mapping.advanced(by: 8).assumingMemoryBound(to: UInt8.self), count: headerLength)
            guard headerLength > 0, header[0] == UInt8(ascii: "{") else {
                throw SafeTensorsError.invalidJSON(file: file, detail: "the header does not start with '{'")
            }
            let json: HeaderJSON
            do { json = try HeaderJSONParser.parse(header) } catch let e as HeaderJSONError {
                throw SafeTensorsError.invalidJSON(file: file, detail: e.description)
            }
            (metadata, infos) = try SafeTensorsFile.validate(json, file: file, dataSize: size - dataStart)
            names = infos.keys.sorted(by: SafeTensorsFile.byteOrder)
        } catch {
            SafeTensorsFile.release(mapping, size: size, owns: ownsMapping, heap: heapAllocated)
            throw error
        }
    }

    deinit {
        if let base { SafeTensorsFile.release(base, size: mappedSize, owns: ownsMapping, heap: heapAllocated) }
    }

    private static func release(_ p: UnsafeRawPointer, size: Int, owns: Bool, heap: Bool) {
        if owns { munmap(UnsafeMutableRawPointer(mutating: p), size) }
        if heap { UnsafeMutableRawPointer(mutating: p).deallocate() }
    }

    /// Byte-wise (UTF-8) string order, as Rust's `String::cmp` — the order the writer uses.
    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    private static func validate(_ json: HeaderJSON, file: String, dataSize: Int) throws -> ([String: String]?, [String: TensorInfo]) {
        guard case let .object(members) = json else {
            throw SafeTensorsError.invalidHeader(file: file, tensor: nil, detail: "the header is \(json.typeName), expected an object")
        }
        var metadata: [String: String]? = nil
        var infos: [String: TensorInfo] = [:]
        var order: [TensorInfo] = []
        for (name, entry) in members {
            if name == "__metadata__" {
                guard metadata == nil else { throw SafeTensorsError.invalidHeader(file: file, tensor: nil, detail: "duplicate __metadata__") }
                guard case let .object(kv) = entry else {
                    throw SafeTensorsError.invalidHeader(file: file, tensor: nil, detail: "__metadata__ is \(entry.typeName), expected an object of strings")
                }
                var m: [String: String] = [:]
                for (k, v) in kv {
                    guard case let .string(s) = v else {
                        throw SafeTensorsError.invalidHeader(file: file, tensor: nil, detail: "__metadata__ value for '\(k)' is \(v.typeName), expected a string")
                    }
                    m[k] = s
                }
                metadata = m
                continue
            }
            if infos[name] != nil { throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "the name appears twice") }
            guard case let .object(fields) = entry else {
                throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "entry is \(entry.typeName), expected an object")
            }
            func field(_ key: String) throws -> HeaderJSON {
                guard let v = fields.first(where: { $0.0 == key })?.1 else {
                    throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "missing \"\(key)\"")
                }
                return v
            }
            guard case let .string(dtypeName) = try field("dtype") else {
                throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "\"dtype\" is not a string")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw SafeTensorsError.unknownDType(file: file, tensor: name, dtype: dtypeName)
            }
            guard case let .array(dims) = try field("shape") else {
                throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "\"shape\" is not an array")
            }
            var shape: [Int] = []
            var count = 1
            var overflow = false
            for d in dims {
                guard let v = d.nonNegativeInt else {
                    throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "\"shape\" must hold non-negative integers")
                }
                shape.append(v)
                let (c, o) = count.multipliedReportingOverflow(by: v)
                count = c; overflow = overflow || o
            }
            guard case let .array(offs) = try field("data_offsets"), offs.count == 2,
                  let start = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt else {
                throw SafeTensorsError.invalidHeader(file: file, tensor: name, detail: "\"data_offsets\" must be [begin, end] non-negative integers")
            }
            if start > end || end > dataSize {
                throw SafeTensorsError.offsetsOutOfRange(file: file, tensor: name, start: start, end: end, dataSize: dataSize)
            }
            let (bytes, o2) = count.multipliedReportingOverflow(by: dtype.size)
            if overflow || o2 || bytes != end - start {
                throw SafeTensorsError.sizeMismatch(file: file, tensor: name, dtype: dtype.rawValue, shape: shape,
                                                    expected: overflow || o2 ? Int.max : bytes, actual: end - start)
            }
            let info = TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: start..<end)
            infos[name] = info
            order.append(info)
        }
        // The spans must tile [0, dataSize) exactly, as the reference loader requires.
        order.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        var cursor = 0
        var previous: String? = nil
        for t in order {
            if t.dataOffsets.lowerBound < cursor, let previous {
                throw SafeTensorsError.overlapping(file: file, tensor: t.name, other: previous)
            }
            if t.dataOffsets.lowerBound > cursor {
                throw SafeTensorsError.gap(file: file, tensor: t.name, start: t.dataOffsets.lowerBound, expected: cursor)
            }
            cursor = t.dataOffsets.upperBound
            previous = t.name
        }
        if cursor != dataSize { throw SafeTensorsError.trailingData(file: file, covered: cursor, dataSize: dataSize) }
        return (metadata, infos)
    }

    // MARK: - Access

    public func info(_ name: String) -> TensorInfo? { infos[name] }

    public var tensorInfos: [TensorInfo] { names.compactMap { infos[$0] } }

    private func require(_ name: String) throws -> TensorInfo {
        guard let i = infos[name] else { throw SafeTensorsError.missingTensor(file: displayName, tensor: name) }
        return i
    }

    /// Calls `body` with the tensor's raw little-endian bytes (valid only inside `body`; no copy).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let i = try require(name)
        guard let base, i.byteCount > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base.advanced(by: dataStart + i.dataOffsets.lowerBound), count: i.byteCount))
    }

    public func bytes(_ name: String) throws -> [UInt8] {
        defer { dropPages(of: name) }
        return try withRawBytes(name) { Array($0) }
    }

    /// After a tensor was copied out: tells the kernel its file pages are not needed (they count in
    /// the resident set until memory is short, doubling a model's footprint while it loads). The
    /// mapping is private and read-only, so a later read simply faults the pages back in.
    private func dropPages(of name: String) {
        guard ownsMapping, let base, let i = infos[name], i.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (dataStart + i.dataOffsets.lowerBound) / page * page
        let end = min(mappedSize, (dataStart + i.dataOffsets.upperBound + page - 1) / page * page)
        if end > start { _ = madvise(UnsafeMutableRawPointer(mutating: base.advanced(by: start)), end - start, MADV_DONTNEED) }
    }

    /// F32/F16/BF16/F64 as Float (F64 rounded to nearest).
    public func floats(_ name: String) throws -> [Float] {
        defer { dropPages(of: name) }
        let i = try require(name)
        guard i.dtype.isFloatingPoint else {
            throw SafeTensorsError.wrongDType(file: displayName, tensor: name, dtype: i.dtype.rawValue, expected: "a float type (F32, F16, BF16, F64)")
        }
        let n = i.count
        var out = [Float](repeating: 0, count: n)
        try withRawBytes(name) { raw in
            out.withUnsafeMutableBufferPointer { o in
                switch i.dtype {
                case .f32:
                    if n > 0 { memcpy(o.baseAddress!, raw.baseAddress!, n * 4) }
                case .bf16:
                    for k in 0..<n { o[k] = BFloat16.toFloat(raw.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)) }
                case .f16:
                    for k in 0..<n { o[k] = Float16Bits.toFloat(raw.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)) }
                case .f64:
                    for k in 0..<n { o[k] = Float(raw.loadUnaligned(fromByteOffset: 8 * k, as: Double.self)) }
                default: break
                }
            }
        }
        return out
    }

    /// Integer and bool tensors widened to Int64 (U64 above Int64.max is an error).
    public func int64s(_ name: String) throws -> [Int64] {
        let i = try require(name)
        let n = i.count
        return try withRawBytes(name) { raw -> [Int64] in
            var out = [Int64](repeating: 0, count: n)
            switch i.dtype {
            case .i64: for k in 0..<n { out[k] = raw.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self) }
            case .u64:
                for k in 0..<n {
                    let v = raw.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self)
                    guard v <= UInt64(Int64.max) else {
                        throw SafeTensorsError.invalidHeader(file: displayName, tensor: name, detail: "U64 value \(v) at index \(k) does not fit in Int64")
                    }
                    out[k] = Int64(v)
                }
            case .i32: for k in 0..<n { out[k] = Int64(raw.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)) }
            case .u32: for k in 0..<n { out[k] = Int64(raw.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)) }
            case .i16: for k in 0..<n { out[k] = Int64(raw.loadUnaligned(fromByteOffset: 2 * k, as: Int16.self)) }
            case .u16: for k in 0..<n { out[k] = Int64(raw.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)) }
            case .i8: for k in 0..<n { out[k] = Int64(Int8(bitPattern: raw[k])) }
            case .u8, .bool: for k in 0..<n { out[k] = Int64(raw[k]) }
            default:
                throw SafeTensorsError.wrongDType(file: displayName, tensor: name, dtype: i.dtype.rawValue, expected: "an integer or BOOL type")
            }
            return out
        }
    }
}
