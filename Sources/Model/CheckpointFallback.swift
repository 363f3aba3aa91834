import Foundation

/// Tensor access the loader needs; satisfied by TensorIO's checkpoint once it lands and meanwhile
/// by `SafeTensorsFallback` (a minimal, validating, read-only safetensors reader).
protocol TensorSource {
    var tensorNames: [String] { get }
    func tensorShape(_ name: String) -> [Int]?
    func tensorFloats(_ name: String) throws -> [Float]
}

/// Minimal safetensors reader (8-byte LE header length, JSON header, data offsets); F32/F16/BF16
/// converted to Float. Sharded checkpoints through model.safetensors.index.json.
final class SafeTensorsFallback: TensorSource {
    struct Entry { let dtype: String; let shape: [Int]; let begin: Int; let end: Int; let file: Int }
    private var files: [Data] = []
    private var entries: [String: Entry] = [:]
    let directory: URL

    init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var paths: [URL] = []
        if fm.fileExists(atPath: single.path) {
            paths = [single]
        } else if fm.fileExists(atPath: index.path) {
            guard let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: index)) as? [String: Any],
                  let map = obj["weight_map"] as? [String: String] else {
                throw ModelError.checkpoint(directory: directory.path, reason: "model.safetensors.index.json has no weight_map")
            }
            paths = Set(map.values).sorted().map { directory.appendingPathComponent($0) }
        } else {
            throw ModelError.checkpoint(directory: directory.path, reason: "no model.safetensors or model.safetensors.index.json")
        }
        for p in paths { try add(p) }
    }

    private func add(_ url: URL) throws {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        func bad(_ why: String) -> ModelError { .checkpoint(directory: directory.path, reason: "\(url.lastPathComponent): \(why)") }
        guard data.count >= 8 else { throw bad("file shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard n <= UInt64(data.count - 8), n < 100_000_000 else { throw bad("header length \(n) past the end of the file") }
        let header = data.subdata(in: 8..<(8 + Int(n)))
        guard let obj = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else { throw bad("invalid JSON header") }
        let fileIndex = files.count
        files.append(data)
        let dataStart = 8 + Int(n)
        for (name, value) in obj where name != "__metadata__" {
            guard let d = value as? [String: Any], let dtype = d["dtype"] as? String, let shape = d["shape"] as? [Int],
                  let offs = d["data_offsets"] as? [Int], offs.count == 2 else { throw bad("tensor \(name): malformed entry") }
            let size: Int
            switch dtype {
            case "F32", "I32": size = 4
            case "F16", "BF16", "I16": size = 2
            case "F64", "I64": size = 8
            case "U8", "I8", "BOOL": size = 1
            default: throw bad("tensor \(name): unsupported dtype \(dtype)")
            }
            let count = shape.reduce(1, *)
            guard offs[0] >= 0, offs[1] >= offs[0], dataStart + offs[1] <= data.count, offs[1] - offs[0] == count * size else {
                throw bad("tensor \(name): data offsets out of range or not matching shape × dtype size")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: dataStart + offs[0], end: dataStart + offs[1], file: fileIndex)
        }
    }

    var tensorNames: [String] { entries.keys.sorted() }
    func tensorShape(_ name: String) -> [Int]? { entries[name]?.shape }
    func dtype(_ name: String) -> String? { entries[name]?.dtype }

    func tensorFloats(_ name: String) throws -> [Float] {
        guard let e = entries[name] else { throw ModelError.checkpoint(directory: directory.path, reason: "no tensor \(name)") }
        let count = e.shape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        let data = files[e.file]
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + e.begin
            switch e.dtype {
            case "F32":
                for i in 0..<count { out[i] = Float(bitPattern: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            case "BF16":
                for i in 0..<count {
                    let b = base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
                    out[i] = Float(bitPattern: UInt32(b) << 16)
                }
            case "F16":
                for i in 0..<count {
                    let b = base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
                    out[i] = Float(Float16(bitPattern: b))
                }
            case "F64":
                for i in 0..<count { out[i] = Float(Double(bitPattern: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
            case "I64":
                for i in 0..<count { out[i] = Float(Int64(bitPattern: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
            case "I32":
                for i in 0..<count { out[i] = Float(Int32(bitPattern: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)) }
            case "U8":
                for i in 0..<count { out[i] = Float(base.load(fromByteOffset: i, as: UInt8.self)) }
            default:
                break
            }
        }
        return out
    }
}
