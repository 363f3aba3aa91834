import Foundation
import Model
import TensorIO

/// Training checkpoints in the stage's work directory: `checkpoint-<step>/` holding
/// adapters.safetensors (A/B of every adapter), optimizer.bin, state.json (step, epoch, position in
/// the epoch — the data order is a pure function of (seed, epoch), so that is the whole data cursor
/// and RNG state) and metrics.jsonl up to that step. Written into a temporary directory, then renamed.
struct CheckpointStore {
    struct State: Codable, Equatable { var step: Int; var epoch: Int; var stepInEpoch: Int }
    struct Loaded {
        let url: URL; let state: State; let metrics: [StepMetrics]
        func restore(into model: LlamaModel, optimizer: Optimizer) throws {
            let file = try SafeTensorsFile(url: url.appendingPathComponent("adapters.safetensors"))
            for m in LoRAAttacher.adapted(model) {
                guard let ad = m.adapter else { continue }
                let a = try file.floats(m.name + ".A"), b = try file.floats(m.name + ".B")
                guard a.count == ad.a.count, b.count == ad.b.count else {
                    throw TrainingError.corruptCheckpoint(path: url.path, detail: "adapter \(m.name) has a different shape")
                }
                ad.a = a; ad.b = b
            }
            let opt = try Data(contentsOf: url.appendingPathComponent("optimizer.bin"))
            try optimizer.restore(stateBytes: [UInt8](opt))
        }
    }

    let directory: URL
    private(set) var lastStep: Int? = nil

    init(directory: URL) { self.directory = directory }

    func latest() throws -> Loaded? {
        let fm = FileManager.default
        guard let items = try? fm.contentsOfDirectory(atPath: directory.path) else { return nil }
        let steps = items.compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst("checkpoint-".count)) : nil }.sorted()
        guard let s = steps.last else { return nil }
        let url = directory.appendingPathComponent("checkpoint-\(s)")
        do {
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: url.appendingPathComponent("state.json")))
            let text = try String(contentsOf: url.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            var metrics: [StepMetrics] = []
            for line in text.split(separator: "\n") {
                guard let m = StepMetrics.parse(String(line)) else { throw TrainingError.corruptCheckpoint(path: url.path, detail: "bad metrics line") }
                metrics.append(m)
            }
            return Loaded(url: url, state: state, metrics: metrics)
        } catch let e as TrainingError { throw e } catch {
            throw TrainingError.corruptCheckpoint(path: url.path, detail: error.localizedDescription)
        }
    }

    mutating func write(model: LlamaModel, optimizer: Optimizer, state: State, metrics: [StepMetrics]) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let final = directory.appendingPathComponent("checkpoint-\(state.step)")
        let tmp = directory.appendingPathComponent(".tmp-checkpoint-\(state.step)-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        var w = SafeTensorsWriter()
        for m in LoRAAttacher.adapted(model) {
            guard let ad = m.adapter else { continue }
            w.add(m.name + ".A", floats: ad.a, shape: [ad.rank, m.inFeatures])
            w.add(m.name + ".B", floats: ad.b, shape: [m.outFeatures, ad.rank])
        }
        try w.write(to: tmp.appendingPathComponent("adapters.safetensors"))
        try AtomicWrite.write(optimizer.stateBytes(), to: tmp.appendingPathComponent("optimizer.bin"))
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        try AtomicWrite.write([UInt8](try enc.encode(state)), to: tmp.appendingPathComponent("state.json"))
        try AtomicWrite.write(Array(metrics.map { $0.jsonLine + "\n" }.joined().utf8), to: tmp.appendingPathComponent("metrics.jsonl"))
        try? fm.removeItem(at: final)
        try fm.moveItem(at: tmp, to: final)
        // keep only the newest checkpoint
        if let items = try? fm.contentsOfDirectory(atPath: directory.path) {
            for it in items where it.hasPrefix("checkpoint-") && it != final.lastPathComponent { try? fm.removeItem(at: directory.appendingPathComponent(it)) }
        }
        lastStep = state.step
    }
}
