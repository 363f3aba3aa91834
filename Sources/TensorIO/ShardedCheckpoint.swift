import Foundation

/// The weights of a checkpoint directory: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`).
public final class ShardedCheckpoint: @unchecked Sendable {
    public let directory: URL
    private var files: [SafeTensorsFile] = []
    private var owner: [String: Int] = [:]
    public let names: [String]

    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        if fm.fileExists(atPath: single.path) {
            shardNames = ["model.safetensors"]
        } else if fm.fileExists(atPath: index.path) {
            let data: Data
            do { data = try Data(contentsOf: index) } catch {
                throw TensorIOError.unreadable(file: index.path, reason: error.localizedDescription)
            }
            guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                  let map = obj["weight_map"] as? [String: String] else {
                throw TensorIOError.malformed(file: index.path, reason: "expected an object with a \"weight_map\" of tensor name -> shard file")
            }
            shardNames = Array(Set(map.values)).sorted()
            for s in shardNames where s.contains("/") || s.hasPrefix(".") {
                throw TensorIOError.malformed(file: index.path, reason: "shard name '\(s)' must be a plain file name in the same directory")
            }
        } else {
            throw TensorIOError.unreadable(file: directory.path, reason: "no model.safetensors or model.safetensors.index.json in this directory")
        }
        var all: [String] = []
        for (i, s) in shardNames.enumerated() {
            let f = try SafeTensorsFile(url: directory.appendingPathComponent(s))
            files.append(f)
            for n in f.names {
                if owner[n] != nil { throw TensorIOError.malformedTensor(file: f.url.path, tensor: n, reason: "tensor appears in two shards") }
                owner[n] = i
                all.append(n)
            }
        }
        names = all.sorted()
    }

    private func file(_ name: String) throws -> SafeTensorsFile {
        guard let i = owner[name] else { throw TensorIOError.missingTensor(file: directory.path, tensor: name) }
        return files[i]
    }

    public func info(_ name: String) -> TensorInfo? { owner[name].flatMap { files[$0].info(name) } }
    public func floats(_ name: String) throws -> [Float] { try file(name).floats(name) }
    public func bytes(_ name: String) throws -> [UInt8] { try file(name).bytes(name) }
    public func int64s(_ name: String) throws -> [Int64] { try file(name).int64s(name) }
    public var metadata: [String: String]? { files.first?.metadata }
}
