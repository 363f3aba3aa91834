import Foundation

/// Minimal safetensors reader for golden files (F32/I64 only), so these tests do not depend on
/// TensorIO's progress. Format: u64 LE header length, JSON header, raw little-endian data.
struct GoldenTensors {
    let header: [String: Any]
    let data: Data
    init(_ url: URL) throws {
        let d = try Data(contentsOf: url)
        let n = d.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<8 + n)) as! [String: Any]
        data = d.subdata(in: 8 + n..<d.count)
    }
    var names: [String] { header.keys.filter { $0 != "__metadata__" }.sorted() }
    func shape(_ name: String) -> [Int] { ((header[name] as! [String: Any])["shape"] as! [Int]) }
    private func range(_ name: String) -> Range<Int> {
        let o = (header[name] as! [String: Any])["data_offsets"] as! [Int]
        return o[0]..<o[1]
    }
    func floats(_ name: String) -> [Float] {
        let r = range(name)
        return stride(from: r.lowerBound, to: r.upperBound, by: 4).map { i in
            Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[data.startIndex + i + $1]) << (8 * UInt32($1)) })
        }
    }
    func int64s(_ name: String) -> [Int64] {
        let r = range(name)
        return stride(from: r.lowerBound, to: r.upperBound, by: 8).map { i in
            Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[data.startIndex + i + $1]) << (8 * UInt64($1)) })
        }
    }
}
