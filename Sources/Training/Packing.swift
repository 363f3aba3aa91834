/// Sequence packing: the examples of one optimizer step laid out as few, full rows instead of one
/// padded row each (Krell et al. 2021, "Efficient Sequence Packing without Cross-contamination").
///
/// A step takes the same examples packed or not (the data order and the step boundaries are those
/// of `batch_size × grad_accum` examples), so the loss, its normalisation by the step's supervised
/// tokens, shuffling and resume are unchanged; only the layout differs. In a row every example is a
/// segment that attends to itself alone with positions from 0 (LlamaModel, PackedSequences.swift);
/// the weight of a segment's first token is 0 (in its own row nothing predicts it either).
extension TrainingDataset {
    /// The examples in order, next fit into rows (`packedRows`); rows grouped into micro-batches of
    /// up to `rowsPerBatch`, each padded to its longest row.
    public func packedBatches(_ indices: [Int], rowLength: Int, rowsPerBatch: Int) -> [Batch] {
        let rows = packedRows(indices, rowLength: rowLength), per = max(1, rowsPerBatch)
        return stride(from: 0, to: rows.count, by: per).map { packedBatch(Array(rows[$0..<min(rows.count, $0 + per)])) }
    }

    /// The rows of `packedBatches`: example indices per row. Next fit (each example appended to the
    /// current row while it fits, else it opens the next: the order is kept, so the layout is a pure
    /// function of the step) at the smallest row capacity that needs no more rows than next fit at
    /// `rowLength` — as many rows, balanced: chat turns of 40, 40, 40 and 44 tokens in rows of 128
    /// become rows of 80 and 84, not 120 and 44, and the micro-batch padded to its longest row
    /// computes 168 positions instead of 240 (176 unpacked). The row count only falls as the
    /// capacity grows, so a bisection finds the smallest.
    func packedRows(_ indices: [Int], rowLength: Int) -> [[Int]] {
        let full = nextFit(indices, capacity: rowLength)
        var lo = indices.map { examples[$0].ids.count }.max() ?? 0, hi = rowLength
        guard full.count > 1, lo < hi else { return full }
        while lo < hi {
            let mid = (lo + hi) / 2
            if nextFit(indices, capacity: mid).count <= full.count { hi = mid } else { lo = mid + 1 }
        }
        return nextFit(indices, capacity: lo)
    }

    func nextFit(_ indices: [Int], capacity: Int) -> [[Int]] {
        var rows: [[Int]] = [], current: [Int] = [], used = 0
        for i in indices {
            let n = examples[i].ids.count
            if !current.isEmpty && used + n > capacity { rows.append(current); current = []; used = 0 }
            current.append(i); used += n
        }
        if !current.isEmpty { rows.append(current) }
        return rows
    }

    /// Token positions a pass computes over micro-batches of `per` rows each padded to its longest
    /// (a row: examples laid end to end).
    func positions(_ rows: [[Int]], per: Int) -> Int {
        let lengths = rows.map { $0.reduce(0) { $0 + examples[$1].ids.count } }
        return stride(from: 0, to: lengths.count, by: max(1, per)).reduce(0) { total, k in
            let chunk = lengths[k..<min(lengths.count, k + max(1, per))]
            return total + chunk.count * (chunk.max() ?? 0)
        }
    }

    /// One micro-batch of packed rows, (B, T) with T the longest row.
    func packedBatch(_ rows: [[Int]]) -> Batch {
        let T = rows.map { $0.reduce(0) { $0 + examples[$1].ids.count } }.max() ?? 0
        var tokens = [Int32](repeating: padId, count: rows.count * T)
        var weights = [Float](repeating: 0, count: rows.count * T)
        var segments: [[Range<Int>]] = []
        for (b, row) in rows.enumerated() {
            var t0 = 0, ranges: [Range<Int>] = []
            for i in row {
                let e = examples[i]
                for t in 0..<e.ids.count { tokens[b * T + t0 + t] = e.ids[t]; weights[b * T + t0 + t] = t == 0 ? 0 : e.lossMask[t] }
                ranges.append(t0..<(t0 + e.ids.count))
                t0 += e.ids.count
            }
            if t0 < T { ranges.append(t0..<T) }   // the padding: a segment of its own
            segments.append(ranges)
        }
        var batch = Batch(tokens: tokens, lossWeights: weights, batch: rows.count, length: T)
        batch.segments = segments
        return batch
    }
}

/// `packing:` as the pipeline says it: always, never, or when it helps.
public enum PackingChoice: String, Sendable {
    case on = "true", off = "false", auto

    /// What `decide` found: packed or not, and both layouts' passes (micro-batches) and token
    /// positions (rows × padded length, summed) over the first epoch (or the evaluation set).
    public struct Decision: Equatable, Sendable {
        public var pack: Bool
        public var packed: Int, plain: Int
        public var packedPositions: Int, plainPositions: Int

        /// The log line of train and evaluate: `passes` names a count ("75 micro-batches", "1 pass").
        public func summary(auto: Bool, rowLength: Int, passes: (Int) -> String) -> String {
            let packedText = "\(passes(packed)) of packed rows (up to \(rowLength) tokens), \(packedPositions) token positions"
            let plainText = "\(passes(plain)) of one example per row, \(plainPositions) token positions"
            return "packing \(pack ? "on" : "off")\(auto ? " (auto)" : ""): "
                + (pack ? "\(packedText); unpacked: \(passes(plain)), \(plainPositions)"
                        : "\(plainText); packed: \(passes(packed)), \(packedPositions)")
        }
    }

    /// Packs when asked, never when told not to, and under `auto` when packing takes fewer passes
    /// with at most 10% more positions, or fewer positions with no more passes: each pass reads every
    /// weight (and dequantizes the 4-bit ones) whatever its length, each position costs its share of
    /// every product.
    func choose(packed: Int, plain: Int, packedPositions: Int, plainPositions: Int) -> Decision {
        let helps = (packed < plain && packedPositions * 10 <= plainPositions * 11)
            || (packed <= plain && packedPositions < plainPositions)
        let pack: Bool
        switch self {
        case .on: pack = true
        case .off: pack = false
        case .auto: pack = helps
        }
        return Decision(pack: pack, packed: packed, plain: plain, packedPositions: packedPositions, plainPositions: plainPositions)
    }

    /// Training: counted over the first epoch's steps from the rows alone (no batch is built): one
    /// padded example per row (batch_size or batch_tokens micro-batches) against each step's examples
    /// packed. Short examples with small batches (batch 1 × grad_accum 8) pack into fewer passes;
    /// ragged ones with larger batches into fewer positions.
    public func decide(_ trainer: Trainer, data: TrainingDataset, rowLength: Int) -> Decision {
        let steps = trainer.stepsOfEpoch(data, epoch: 0)
        let per = trainer.packedRowsPerBatch(rowLength: rowLength)
        var plain = 0, plainPositions = 0, packed = 0, packedPositions = 0
        for step in steps {
            plain += step.count
            for micro in step { plainPositions += micro.count * (micro.map { data.examples[$0].ids.count }.max() ?? 0) }
            let rows = data.packedRows(step.flatMap { $0 }, rowLength: rowLength)
            packed += (rows.count + per - 1) / per
            packedPositions += data.positions(rows, per: per)
        }
        return choose(packed: packed, plain: plain, packedPositions: packedPositions, plainPositions: plainPositions)
    }

    /// Evaluation: one pass per `batchSize` examples, or per `batchSize` packed rows.
    public func decide(evaluating data: TrainingDataset, batchSize: Int, rowLength: Int) -> Decision {
        let per = max(1, batchSize)
        let all = Array(data.examples.indices)
        let rows = data.packedRows(all, rowLength: rowLength)
        let plainRows = all.map { [$0] }
        return choose(packed: (rows.count + per - 1) / per, plain: (all.count + per - 1) / per,
                      packedPositions: data.positions(rows, per: per), plainPositions: data.positions(plainRows, per: per))
    }
}
