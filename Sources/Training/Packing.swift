/// Sequence packing: the examples of one optimizer step laid out as few, full rows instead of one
/// padded row each (Krell et al. 2021, "Efficient Sequence Packing without Cross-contamination").
///
/// A step takes the same examples packed or not (the data order and the step boundaries are those
/// of `batch_size × grad_accum` examples), so the loss, its normalisation by the step's supervised
/// tokens, shuffling and resume are unchanged; only the layout differs. In a row every example is a
/// segment that attends to itself alone with positions from 0 (LlamaModel, PackedSequences.swift);
/// the weight of a segment's first token is 0 (in its own row nothing predicts it either).
extension TrainingDataset {
    /// The examples in order, each appended to the current row while it fits in `rowLength` tokens
    /// (else it opens the next row: next fit keeps the order, so the layout is a pure function of the
    /// step); rows grouped into micro-batches of up to `rowsPerBatch`, each padded to its longest row.
    public func packedBatches(_ indices: [Int], rowLength: Int, rowsPerBatch: Int) -> [Batch] {
        let rows = packedRows(indices, rowLength: rowLength), per = max(1, rowsPerBatch)
        return stride(from: 0, to: rows.count, by: per).map { packedBatch(Array(rows[$0..<min(rows.count, $0 + per)])) }
    }

    /// The rows of `packedBatches`: example indices per row.
    func packedRows(_ indices: [Int], rowLength: Int) -> [[Int]] {
        var rows: [[Int]] = [], current: [Int] = [], used = 0
        for i in indices {
            let n = examples[i].ids.count
            if !current.isEmpty && used + n > rowLength { rows.append(current); current = []; used = 0 }
            current.append(i); used += n
        }
        if !current.isEmpty { rows.append(current) }
        return rows
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

    /// Packs when asked, never when told not to, and under `auto` when packing takes fewer passes.
    func choose(packed: Int, plain: Int) -> (pack: Bool, packed: Int, plain: Int) {
        switch self {
        case .on: return (true, packed, plain)
        case .off: return (false, packed, plain)
        case .auto: return (packed < plain, packed, plain)
        }
    }

    /// Training: auto packs when packing would run fewer micro-batches over the first epoch than one
    /// padded example per row (short examples with small batches, e.g. batch 1 × grad_accum 8); then
    /// the same examples cost fewer passes over the weights. Returns the decision and both counts.
    public func decide(_ trainer: Trainer, data: TrainingDataset, rowLength: Int) -> (pack: Bool, packed: Int, plain: Int) {
        let steps = trainer.stepsOfEpoch(data, epoch: 0)
        let plain = steps.reduce(0) { $0 + $1.count }
        // Counted from the rows alone: no batch is built to decide.
        let per = trainer.packedRowsPerBatch(rowLength: rowLength)
        return choose(packed: steps.reduce(0) { $0 + (data.packedRows($1.flatMap { $0 }, rowLength: rowLength).count + per - 1) / per }, plain: plain)
    }

    /// Evaluation: one pass per `batchSize` examples, or per `batchSize` packed rows.
    public func decide(evaluating data: TrainingDataset, batchSize: Int, rowLength: Int) -> (pack: Bool, packed: Int, plain: Int) {
        let per = max(1, batchSize)
        return choose(packed: (data.packedRows(Array(data.examples.indices), rowLength: rowLength).count + per - 1) / per,
                      plain: (data.examples.count + per - 1) / per)
    }
}
