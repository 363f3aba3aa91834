import Foundation
import Model
import TensorIO

/// Training checkpoints in the stage's work directory: `checkpoint-<step>/` holding
/// adapters.safetensors (A/B of every adapter), optimizer.bin, state.json (step, epoch, position in
/// the epoch — the data order is a pure function of (seed, epoch), so that is the whole data cursor
/// and RNG state) and metrics.jsonl up to that step. Written into a temporary directory, then renamed.
/// `manifest.json`, written last, holds each file's size and FNV-1a 64 checksum: a checkpoint that
/// does not match it (a torn copy, a flipped bit, an edited step) is discarded with a warning and
/// the previous one is used. The newest two are kept, so one bad checkpoint costs one interval.
/// With `keep: best`, best_adapters.safetensors holds the best validation pass's adapter (listed in
/// the manifest and verified like the others); metrics.jsonl holds the validation rows too, from
/// which the early-stopping state is replayed.
struct CheckpointStore {
    static let files = ["adapters.safetensors", "optimizer.bin", "state.json", "metrics.jsonl"]
    static let bestFile = "best_adapters.safetensors"
    static let kept = 2
    struct State: Codable, Equatable { var step: Int; var epoch: Int; var stepInEpoch: Int }
    struct Loaded {
        let url: URL; let state: State; let metrics: [StepMetrics]
        var validations: [ValidationMetrics] = []
        var best: [AdapterSnapshot]? = nil
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

    init(directory: URL) { self.directory = directory }

    /// The newest checkpoint that verifies. Ones that do not are removed, each with a warning.
    func latest(warn: (String) -> Void = { _ in }) throws -> Loaded? {
        let fm = FileManager.default
        guard let items = try? fm.contentsOfDirectory(atPath: directory.path) else { return nil }
        let steps = items.compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst("checkpoint-".count)) : nil }.sorted()
        for s in steps.reversed() {
            let url = directory.appendingPathComponent("checkpoint-\(s)")
            do {
                return try load(url, step: s)
            } catch {
                let detail = (error as? TrainingError).map { if case let .corruptCheckpoint(_, d) = $0 { return d }; return $0.localizedDescription } ?? error.localizedDescription
                warn("warning: checkpoint at step \(s) does not verify (\(detail)); discarded" +
                     (s == steps.first ? ", training starts from the beginning" : ", using the previous one"))
                try? fm.removeItem(at: url)
            }
        }
        return nil
    }

    func load(_ url: URL, step: Int) throws -> Loaded {
        func bad(_ detail: String) -> TrainingError { .corruptCheckpoint(path: url.path, detail: detail) }
        guard let manifestData = FileManager.default.contents(atPath: url.appendingPathComponent("manifest.json").path),
              let manifest = try? JSONDecoder().decode([String: FileCheck].self, from: manifestData) else { throw bad("no readable manifest.json") }
        for name in Self.files + (manifest[Self.bestFile] != nil ? [Self.bestFile] : []) {
            guard let expected = manifest[name] else { throw bad("manifest.json does not list \(name)") }
            guard let actual = FileCheck(file: url.appendingPathComponent(name)) else { throw bad("\(name) is missing") }
            guard actual == expected else {
                throw bad("\(name) has \(actual.size) bytes, checksum \(actual.fnv1a64); manifest.json says \(expected.size), \(expected.fnv1a64)")
            }
        }
        do {
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: url.appendingPathComponent("state.json")))
            guard state.step == step else { throw bad("state.json says step \(state.step)") }
            let text = try String(contentsOf: url.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            var metrics: [StepMetrics] = [], validations: [ValidationMetrics] = []
            for line in text.split(separator: "\n") {
                if let m = StepMetrics.parse(String(line)) { metrics.append(m) } else if let v = ValidationMetrics.parse(String(line)) {
                    validations.append(v)
                } else { throw bad("bad metrics line") }
            }
            var loaded = Loaded(url: url, state: state, metrics: metrics)
            loaded.validations = validations
            if manifest[Self.bestFile] != nil {
                let file = try SafeTensorsFile(url: url.appendingPathComponent(Self.bestFile))
                var best: [AdapterSnapshot] = []
                var k = 0
                while file.names.contains("\(k).A") {
                    best.append(AdapterSnapshot(a: try file.floats("\(k).A"), b: try file.floats("\(k).B")))
                    k += 1
                }
                loaded.best = best
            }
            return loaded
        } catch let e as TrainingError { throw e } catch {
            throw bad(error.localizedDescription)
        }
    }

    /// Size and FNV-1a 64 of a file: a cheap integrity check (not a defence against tampering).
    struct FileCheck: Codable, Equatable {
        var size: Int
        var fnv1a64: String
        init(bytes: [UInt8]) {
            var h = Self.offsetBasis
            bytes.withUnsafeBytes { Self.fold(&h, $0) }
            size = bytes.count
            fnv1a64 = String(h, radix: 16)
        }

        /// The check of a file read in 1 MiB pieces: a checkpoint's optimizer state (tens of MB)
        /// is never held twice while the manifest is written or verified. nil when unreadable.
        init?(file url: URL) {
            guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
            defer { try? handle.close() }
            var h = Self.offsetBasis, total = 0
            while true {
                let piece: Data?
                do { piece = try handle.read(upToCount: 1 << 20) } catch { return nil }
                guard let piece, !piece.isEmpty else { break }   // nil or empty: the end of the file
                piece.withUnsafeBytes { Self.fold(&h, $0) }
                total += piece.count
            }
            size = total
            fnv1a64 = String(h, radix: 16)
        }

        /// FNV-1a, 64 bit (Fowler, Noll, Vo).
        static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
        static func fold(_ h: inout UInt64, _ bytes: UnsafeRawBufferPointer) {
            var x = h
            for b in bytes { x = (x ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            h = x
        }
    }

    func write(model: LlamaModel, optimizer: Optimizer, state: State, metrics: [StepMetrics],
                        validations: [ValidationMetrics] = [], best: [AdapterSnapshot]? = nil) throws {
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
        try AtomicWrite.write(to: tmp.appendingPathComponent("optimizer.bin")) { append in try optimizer.writeState(to: append) }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        try AtomicWrite.write([UInt8](try enc.encode(state)), to: tmp.appendingPathComponent("state.json"))
        try AtomicWrite.write(Array(Trainer.metricsJSONL(metrics, validations).utf8), to: tmp.appendingPathComponent("metrics.jsonl"))
        var names = Self.files
        if let best {
            var b = SafeTensorsWriter()
            for (k, snap) in best.enumerated() {
                b.add("\(k).A", floats: snap.a, shape: [snap.a.count])
                b.add("\(k).B", floats: snap.b, shape: [snap.b.count])
            }
            try b.write(to: tmp.appendingPathComponent(Self.bestFile))
            names.append(Self.bestFile)
        }
        var manifest: [String: FileCheck] = [:]
        for name in names {
            guard let check = FileCheck(file: tmp.appendingPathComponent(name)) else {
                throw TrainingError.corruptCheckpoint(path: tmp.appendingPathComponent(name).path, detail: "cannot be read back after writing")
            }
            manifest[name] = check
        }
        try AtomicWrite.write([UInt8](try enc.encode(manifest)), to: tmp.appendingPathComponent("manifest.json"))  // last
        try? fm.removeItem(at: final)
        try fm.moveItem(at: tmp, to: final)
        // keep the newest `kept` checkpoints: if the newest turns out damaged, the one before is there
        if let items = try? fm.contentsOfDirectory(atPath: directory.path) {
            let steps = items.compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst("checkpoint-".count)) : nil }.sorted()
            for old in steps.dropLast(Self.kept) { try? fm.removeItem(at: directory.appendingPathComponent("checkpoint-\(old)")) }
        }
    }
}

/// A copy of one adapter's (A, B), in Trainer.parameters order.
struct AdapterSnapshot: Equatable, Sendable { var a: [Float]; var b: [Float] }
