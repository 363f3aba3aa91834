import Foundation

/// The weights of a Hugging Face checkpoint directory: either one `model.safetensors`, or
/// `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: shard file}}`)
/// plus its shards. Every shard is mapped and validated on open; a tensor listed in the index
/// but missing from its shard (or present in two shards) is an error.
public final class ShardedCheckpoint: @unchecked Sendable {  // immutable after init
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"

    public let directory: URL
    /// Tensor names, sorted (bytewise).
    public let names: [String]
    /// The open shards, in file-name order.
    public let files: [SafeTensorsFile]
    private let location: [String: Int]   // tensor -> index in `files`

    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let single = directory.appendingPathComponent(ShardedCheckpoint.singleFileName)
        let index = directory.appendingPathComponent(ShardedCheckpoint.indexFileName)
        if fm.fileExists(atPath: index.path) {
            let data: Data
            do { data = try Data(contentsOf: index) } catch {
                throw SafeTensorsError.invalidIndex(file: index.path, detail: "cannot read: \(error.localizedDescription)")
            }
            let json: HeaderJSON
            do { json = try HeaderJSONParser.parse([UInt8](data)) } catch let e as HeaderJSONError {
                throw SafeTensorsError.invalidIndex(file: index.path, detail: "not valid JSON: \(e.description)")
            }
            guard case let .object(top) = json, let mapValue = top.first(where: { $0.0 == "weight_map" })?.1,
                  case let .object(map) = mapValue else {
                throw SafeTensorsError.invalidIndex(file: index.path, detail: "missing the \"weight_map\" object")
            }
            var shardNames: [String] = []
            var wanted: [String: String] = [:]
            for (tensor, v) in map {
                guard case let .string(shard) = v else {
                    throw SafeTensorsError.invalidIndex(file: index.path, detail: "weight_map[\"\(tensor)\"] is \(v.typeName), expected a file name")
                }
                guard !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw SafeTensorsError.invalidIndex(file: index.path, detail: "weight_map[\"\(tensor)\"] = \"\(shard)\" must be a file in the same directory")
                }
                wanted[tensor] = shard
                if !shardNames.contains(shard) { shardNames.append(shard) }
            }
            shardNames.sort()
            var files: [SafeTensorsFile] = []
            var location: [String: Int] = [:]
            for (k, shard) in shardNames.enumerated() {
                let f = try SafeTensorsFile(url: directory.appendingPathComponent(shard))
                files.append(f)
                for name in f.names where wanted[name] == shard { location[name] = k }
            }
            for (tensor, shard) in wanted.sorted(by: { $0.key < $1.key }) where location[tensor] == nil {
                throw SafeTensorsError.invalidIndex(file: index.path, detail: "tensor '\(tensor)' is mapped to \(shard) but that shard does not contain it")
            }
            self.files = files
            self.location = location
        } else if fm.fileExists(atPath: single.path) {
            let f = try SafeTensorsFile(url: single)
            files = [f]
            var location: [String: Int] = [:]
            for name in f.names { location[name] = 0 }
            self.location = location
        } else {
            throw SafeTensorsError.cannotOpen(file: directory.path, reason: "neither \(ShardedCheckpoint.singleFileName) nor \(ShardedCheckpoint.indexFileName) exists in this directory")
        }
        names = location.keys.sorted(by: SafeTensorsFile.byteOrder)
    }

    /// The shard holding `name`.
    public func file(containing name: String) -> SafeTensorsFile? {
        location[name].map { files[$0] }
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func info(_ name: String) -> TensorInfo? { file(containing: name)?.info(name) }

    private func require(_ name: String) throws -> SafeTensorsFile {
        guard let f = file(containing: name) else { throw SafeTensorsError.missingTensor(file: directory.path, tensor: name) }
        return f
    }

    public func floats(_ name: String) throws -> [Float] { try require(name).floats(name) }
    public func int64s(_ name: String) throws -> [Int64] { try require(name).int64s(name) }
    public func bytes(_ name: String) throws -> [UInt8] { try require(name).bytes(name) }
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try require(name).withRawBytes(name, body)
    }

    /// `__metadata__` of the first shard.
    public var metadata: [String: String]? { files.first?.metadata }
}
