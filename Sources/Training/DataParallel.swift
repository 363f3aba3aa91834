import Foundation
import Distributed
import Model

/// Data-parallel training: what the ranks of an MPI job exchange (see `Trainer.train`).
///
/// Rule: with N ranks, one optimizer step takes `grad_accum × N` micro-batches of `batch_size`
/// in the single-process order, and rank r computes those at positions k ≡ r (mod N). Every rank
/// knows every micro-batch's supervised-token count (the data are deterministic), so each scales its
/// gradients by the global count before the sum; after the all-reduce the gradients, the loss and
/// the step are those of one process running `grad_accum × N`, up to the order of float sums.
/// Each rank then applies the same update to the same parameters: no parameter broadcast, but a
/// check at every checkpoint that the ranks still agree bit for bit.
enum DataParallel {
    /// Sums the loss and every adapter's gradients over the ranks. The loss goes first, alone (one
    /// double): it returns when the slowest rank has finished its micro-batches, so the gradient
    /// all-reduce after it (all gradients packed in parameter order, one call) times the transfer
    /// alone. Returns the summed loss and both times.
    static func reduce(_ adapters: [LoRAAdapter], lossSum: Double, over collective: any Collective) throws
        -> (loss: Double, waitSeconds: Double, transferSeconds: Double) {
        let started = DispatchTime.now().uptimeNanoseconds
        var loss = [lossSum]
        try collective.sum(&loss)
        let synchronised = DispatchTime.now().uptimeNanoseconds
        var total = 0
        for ad in adapters { total += ad.gradA.count + ad.gradB.count }
        var packed = [Float](repeating: 0, count: total)  // (Σ rank·(in+out)) over adapters
        var offset = 0
        for ad in adapters {
            packed.replaceSubrange(offset..<offset + ad.gradA.count, with: ad.gradA); offset += ad.gradA.count
            packed.replaceSubrange(offset..<offset + ad.gradB.count, with: ad.gradB); offset += ad.gradB.count
        }
        try collective.sum(&packed)
        offset = 0
        for ad in adapters {
            ad.gradA = Array(packed[offset..<offset + ad.gradA.count]); offset += ad.gradA.count
            ad.gradB = Array(packed[offset..<offset + ad.gradB.count]); offset += ad.gradB.count
        }
        let done = DispatchTime.now().uptimeNanoseconds
        return (loss[0], Double(synchronised - started) / 1e9, Double(done - synchronised) / 1e9)
    }

    /// FNV-1a 64 over the bits of every adapter's A and B: equal on all ranks while they agree.
    static func fingerprint(_ adapters: [LoRAAdapter]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for ad in adapters {
            for values in [ad.a, ad.b] {
                for v in values { h = (h ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01b3 }
            }
        }
        return h
    }

    /// Rank 0's newest checkpoint on every rank. Rank 0 sends its files; every other rank replaces
    /// the checkpoints of its own work directory with them and loads them back through the same
    /// verification (manifest checksums) as a local checkpoint. Nil everywhere when rank 0 has none.
    static func share(_ latest: CheckpointStore.Loaded?, store: CheckpointStore, over collective: any Collective) throws -> CheckpointStore.Loaded? {
        var bytes: [UInt8] = []
        if collective.rank == 0, let latest {
            bytes = try pack(latest.url, step: latest.state.step)
        }
        bytes = try collective.broadcast(bytes, root: 0)
        guard collective.rank != 0 else { return latest }
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: store.directory.path)) ?? [] where name.hasPrefix("checkpoint-") {
            try? fm.removeItem(at: store.directory.appendingPathComponent(name))
        }
        guard !bytes.isEmpty else { return nil }
        let (step, files) = try unpack(bytes)
        let url = store.directory.appendingPathComponent("checkpoint-\(step)")
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, data) in files { try AtomicWrite.write(data, to: url.appendingPathComponent(name)) }
        return try store.load(url, step: step)
    }

    /// `step (8 bytes LE) · count (4) · per file: name length (4) · name · size (8) · bytes`.
    static func pack(_ directory: URL, step: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        append(Int64(step)); append(UInt32(names.count))
        for name in names {
            let data = [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
            append(UInt32(name.utf8.count)); out.append(contentsOf: Array(name.utf8))
            append(UInt64(data.count)); out.append(contentsOf: data)
        }
        return out
    }

    static func unpack(_ bytes: [UInt8]) throws -> (step: Int, files: [(String, [UInt8])]) {
        var at = 0
        func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let n = MemoryLayout<T>.size
            guard at + n <= bytes.count else { throw DistributedError.checkpointTransfer("truncated at byte \(at)") }
            var v: T = 0
            for i in 0..<n { v |= T(truncatingIfNeeded: bytes[at + i]) << (8 * i) }
            at += n
            return v
        }
        func take(_ n: Int) throws -> [UInt8] {
            guard n >= 0, at + n <= bytes.count else { throw DistributedError.checkpointTransfer("truncated at byte \(at)") }
            defer { at += n }
            return Array(bytes[at..<at + n])
        }
        let step = Int(try read(Int64.self))
        let count = Int(clamping: try read(UInt32.self))
        var files: [(String, [UInt8])] = []
        for _ in 0..<count {
            let name = String(decoding: try take(Int(clamping: try read(UInt32.self))), as: UTF8.self)
            guard !name.contains("/"), !name.hasPrefix(".") else { throw DistributedError.checkpointTransfer("bad file name \(name)") }
            files.append((name, try take(Int(clamping: try read(UInt64.self)))))
        }
        return (step, files)
    }
}
